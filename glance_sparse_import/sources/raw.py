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

"""Read a staged raw (or ISO) file by its allocated extents."""

import errno
import os

from oslo_log import log as logging

from glance_sparse_import import errors
from glance_sparse_import.sources.base import Chunk
from glance_sparse_import.sources.base import requests

LOG = logging.getLogger(__name__)

# lseek errors meaning the file system cannot tell data from holes.
_NO_SEEK_DATA = (errno.EINVAL, errno.EOPNOTSUPP)


class RawSource:
    """A source reading a raw file, holes as zero runs.

    Extents come from ``SEEK_DATA``/``SEEK_HOLE``; a file system that does
    not support them shows the whole file as data.
    """

    def __init__(self, path, request_size):
        self._path = path
        self._request_size = request_size
        self._fd = None
        self.size = None

    def __enter__(self):
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            self.size = os.fstat(self._fd).st_size
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError as e:
            self.close()
            LOG.error('Cannot open staged image: %s', e)
            raise errors.SourceError('The staged image cannot be read')
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def chunks(self):
        """Yield Chunks covering the file, in order."""
        try:
            for offset, length, is_data in self._extents():
                if not is_data:
                    yield Chunk(offset, length, None)
                    continue
                for start, n in requests(offset, offset + length,
                                         self._request_size):
                    yield Chunk(start, n, self._read(start, n))
        except OSError as e:
            LOG.error('Reading staged image failed: %s', e)
            raise errors.SourceError('Reading the staged image failed')

    def _extents(self):
        """Yield (offset, length, is_data) covering [0, size)."""
        offset = 0
        while offset < self.size:
            try:
                data = os.lseek(self._fd, offset, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    data = self.size
                elif e.errno in _NO_SEEK_DATA:
                    yield offset, self.size - offset, True
                    return
                else:
                    raise
            data = min(data, self.size)
            if data > offset:
                yield offset, data - offset, False
            if data == self.size:
                return
            hole = min(os.lseek(self._fd, data, os.SEEK_HOLE), self.size)
            yield data, hole - data, True
            offset = hole

    def _read(self, offset, length):
        buf = bytearray(length)
        with memoryview(buf) as view:
            done = 0
            while done < length:
                n = os.preadv(self._fd, [view[done:]], offset + done)
                if n == 0:
                    raise errors.SourceError('The staged image shrank while '
                                             'being read')
                done += n
        return buf
