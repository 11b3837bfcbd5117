#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Read a staged image in a format qemu reads, through qemu-nbd.

qemu-nbd runs read-only, under an address space limit, serving a Unix
socket in a private (0700) temporary directory; it is our child and is
gone when the source is closed. Extents come from NBD block status
(``base:allocation``); several reads are kept in flight so qemu
decompresses clusters on more than one thread.
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import units

from glance_sparse_import import errors
from glance_sparse_import import inspection
from glance_sparse_import import native
from glance_sparse_import.sources.base import Chunk
from glance_sparse_import.sources.base import requests

try:
    import nbd
except ImportError:  # pragma: no cover - glance_compat.problems() says so
    nbd = None

LOG = logging.getLogger(__name__)

# Seconds qemu-nbd may take to open the image and finish the handshake.
START_TIMEOUT = 30
# Seconds qemu-nbd may take to exit on SIGTERM before it is killed.
STOP_TIMEOUT = 10
# Largest block status request; lengths are 32-bit in the NBD protocol.
MAX_STATUS_LENGTH = 1 * units.Gi
# Largest read qemu-nbd serves, used when it does not advertise one.
DEFAULT_MAX_READ = 32 * units.Mi
# Host I/O settings of qemu-nbd (see tools/bench-source.py).
CACHE_MODE = 'writeback'
AIO_MODE = 'threads'


def _reads_into_bytearray():
    """Whether aio_pread takes any writable buffer (libnbd >= 1.14).

    Older bindings (Debian 11's 1.6) read only into an nbd.Buffer.
    ``Buffer.from_buffer`` came with the change.
    """
    return hasattr(nbd.Buffer, 'from_buffer')


def _read_buffer(n):
    """A buffer of n bytes that aio_pread can read into."""
    # A plain bytearray where possible, not nbd.Buffer: libnbd 1.14 leaks a
    # reference to the bytes behind every nbd.Buffer it reads into, so an
    # import would keep all its data in memory.
    if _reads_into_bytearray():
        return bytearray(n)
    return nbd.Buffer(n)


def _with_bytes(chunk):
    """The chunk, its data copied out of an nbd.Buffer if it is in one."""
    # Older libnbd: one more copy of every byte read, in memory.
    if chunk.data is None or isinstance(chunk.data, bytearray):
        return chunk
    return chunk._replace(data=chunk.data.to_bytearray())


class NbdSource:
    """A source reading any qemu format through a private qemu-nbd.

    :param path: the staged file
    :param fmt: the qemu driver name (qcow2, vmdk, vpc, vhdx, ...)
    :param request_size: largest read, in bytes
    :param requests_in_flight: reads kept in flight
    :param address_space_limit_mib: address space limit of qemu-nbd, MiB
    :param python_exec: interpreter that applies the limit (Glance's
                        ``[wsgi] python_interpreter``); sys.executable if None
    """

    def __init__(self, path, fmt, request_size, requests_in_flight,
                 address_space_limit_mib, python_exec=None):
        self._path = path
        self._fmt = fmt
        self._request_size = request_size
        self._requests_in_flight = requests_in_flight
        self._limit = address_space_limit_mib * units.Mi
        self._python_exec = python_exec or sys.executable
        self._tmpdir = None
        self._proc = None
        self._h = None
        self._has_status = False
        self.size = None

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Disconnect and make sure qemu-nbd is gone."""
        # Dropping the handle closes the socket; chunks() never keeps a
        # reference of its own, so a suspended iteration does not hold it.
        self._h = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    LOG.warning('qemu-nbd ignored SIGTERM, killing it')
                    proc.kill()
                    proc.wait()
            self._log_stderr(logging.DEBUG)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def chunks(self):
        """Yield Chunks covering the image, in order."""
        pending = collections.deque()  # (chunk, cookie or None)
        reads = 0
        for offset, length, zero in self._extents():
            if zero:
                pending.append((Chunk(offset, length, None), None))
                continue
            for start, n in requests(offset, offset + length,
                                     self._request_size):
                while reads >= self._requests_in_flight:
                    chunk, cookie = pending.popleft()
                    if cookie is not None:
                        self._wait(cookie)
                        reads -= 1
                    yield _with_bytes(chunk)
                buf = _read_buffer(n)
                cookie = self._call(self._handle().aio_pread, buf, start)
                pending.append((Chunk(start, n, buf), cookie))
                reads += 1
        while pending:
            chunk, cookie = pending.popleft()
            if cookie is not None:
                self._wait(cookie)
            yield _with_bytes(chunk)

    def _start(self):
        self._tmpdir = tempfile.mkdtemp(prefix='glance-sparse-import-')
        sock = os.path.join(self._tmpdir, 'nbd.sock')
        with open(os.path.join(self._tmpdir, 'stderr'), 'wb') as stderr:
            self._proc = subprocess.Popen(
                self._command(sock), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr, close_fds=True,
                env=inspection.qemu_environment())
        self._h = self._connect(sock)
        h = self._h
        self.size = self._call(h.get_size)
        self._has_status = self._call(h.can_meta_context,
                                      nbd.CONTEXT_BASE_ALLOCATION)
        max_read = self._call(h.get_block_size, nbd.SIZE_MAXIMUM)
        self._request_size = min(self._request_size,
                                 max_read or DEFAULT_MAX_READ)

    def _command(self, sock):
        # The image is opened without any backing file whatever its header
        # says, and as the given driver, never probed.
        spec = {
            'driver': self._fmt,
            'backing': None,
            'file': {'driver': 'file', 'filename': self._path},
        }
        limits = processutils.ProcessLimits(address_space=self._limit)
        return ([self._python_exec, '-m', 'oslo_concurrency.prlimit'] +
                limits.prlimit_args() +
                ['--', 'qemu-nbd', '--read-only', '--shared=1',
                 '--socket=%s' % sock,
                 '--cache=%s' % CACHE_MODE, '--aio=%s' % AIO_MODE,
                 'json:' + json.dumps(spec)])

    def _connect(self, sock):
        deadline = native.time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                text = self._log_stderr(logging.ERROR) or ''
                raise errors.SourceError(
                    'qemu-nbd cannot open the image: %s'
                    % inspection.qemu_reason(text, self._path))
            if native.time.monotonic() > deadline:
                raise errors.SourceError('qemu-nbd did not start in time')
            h = self._try_connect(sock, deadline)
            if h is not None:
                return h
            native.time.sleep(0.01)

    def _try_connect(self, sock, deadline):
        """Return a connected handle, or None if qemu-nbd is not ready."""
        if not os.path.exists(sock):
            return None
        h = nbd.NBD()
        h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
        # libnbd < 1.10 (Debian 11's 1.6) cannot skip zeroing each read
        # buffer before qemu-nbd fills it: one more pass over its memory.
        if hasattr(h, 'set_pread_initialize'):
            h.set_pread_initialize(False)
        try:
            h.aio_connect_unix(sock)
            while h.aio_is_connecting():
                if native.time.monotonic() > deadline:
                    return None
                h.poll(100)
        except nbd.Error as e:
            LOG.debug('Connecting to qemu-nbd: %s', e)
            return None
        return h if h.aio_is_ready() else None

    def _extents(self):
        """Yield (offset, length, zero) covering [0, size), merged."""
        if self.size == 0:
            return
        if not self._has_status:
            yield 0, self.size, False
            return
        run_start, run_zero = 0, None
        offset = 0
        while offset < self.size:
            for length, zero in self._block_status(offset):
                if zero != run_zero:
                    if offset > run_start:
                        yield run_start, offset - run_start, run_zero
                    run_start, run_zero = offset, zero
                offset += length
        yield run_start, offset - run_start, run_zero

    def _block_status(self, offset):
        """Return [(length, zero)] from offset, at least one, within size."""
        found = []

        def extent(metacontext, _offset, entries, _error):
            if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
                found.extend(entries)
            return 0

        count = min(self.size - offset, MAX_STATUS_LENGTH)
        self._call(self._handle().block_status, count, offset, extent)
        result = []
        for i in range(0, len(found) - 1, 2):
            # The last extent may run past what was asked, even past size.
            length = min(found[i], self.size - offset)
            if length <= 0:
                break
            # A hole without the zero flag may not read as zeros.
            result.append((length, bool(found[i + 1] & nbd.STATE_ZERO)))
            offset += length
        if not result:
            raise errors.SourceError('qemu-nbd returned no block status')
        return result

    def _wait(self, cookie):
        h = self._handle()
        while not self._call(h.aio_command_completed, cookie):
            self._call(h.poll, -1)

    def _handle(self):
        if self._h is None:
            raise errors.SourceError('The image source is closed')
        return self._h

    def _call(self, func, *args):
        try:
            return func(*args)
        except nbd.Error as e:
            LOG.error('NBD request to qemu-nbd failed: %s', e)
            if self._proc is not None and self._proc.poll() is not None:
                self._log_stderr(logging.ERROR)
            raise errors.SourceError('Reading the staged image failed')

    def _log_stderr(self, level):
        """Log what qemu-nbd printed, and return it (or None)."""
        try:
            with open(os.path.join(self._tmpdir, 'stderr'), 'rb') as f:
                text = f.read(4096).decode('utf-8', 'replace').strip()
        except (OSError, TypeError):
            return None
        if text:
            LOG.log(level, 'qemu-nbd: %s', text)
        return text
