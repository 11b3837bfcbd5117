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

"""NbdSource with the libnbd bindings it may get.

Debian 12's libnbd 1.14 binding reads into any writable buffer and can skip
zeroing read buffers; Debian 11's 1.6 (the Python 3.9 lanes) reads only
into an nbd.Buffer and has no set_pread_initialize. Fake bindings of both
kinds stand in for the real ones, which the functional tests use.
"""

import types

import pytest

from glance_sparse_import.sources import nbd as nbd_source

DATA = bytes(range(256)) * 64


class Error(Exception):
    pass


class OldBuffer(object):
    """libnbd 1.6's nbd.Buffer: memory of its own, copied out."""

    def __init__(self, n):
        self._o = bytearray(n)

    def to_bytearray(self):
        return bytearray(self._o)


class NewBuffer(OldBuffer):
    @classmethod
    def from_buffer(cls, buf):
        raise AssertionError('not used')


class Handle(object):
    def __init__(self, old):
        self.old = old
        self.pread_initialize = True
        self.calls = []

    def __getattr__(self, name):
        if name == 'set_pread_initialize' and not self.old:
            return self._set_pread_initialize
        raise AttributeError(name)

    def _set_pread_initialize(self, value):
        self.pread_initialize = value

    def add_meta_context(self, name):
        self.calls.append(('add_meta_context', name))

    def aio_connect_unix(self, sock):
        self.calls.append(('aio_connect_unix', sock))

    def aio_is_connecting(self):
        return False

    def aio_is_ready(self):
        return True

    def aio_pread(self, buf, offset):
        # Like each binding: 1.6 reads into buf._o, 1.14 into buf itself.
        target = buf._o if self.old else buf
        assert isinstance(target, bytearray)
        target[:] = DATA[offset:offset + len(target)]
        return offset

    def aio_command_completed(self, cookie):
        return True


def binding(old):
    return types.SimpleNamespace(
        NBD=lambda: Handle(old), Buffer=OldBuffer if old else NewBuffer,
        Error=Error, CONTEXT_BASE_ALLOCATION='base:allocation')


@pytest.fixture(params=['1.6', '1.14'])
def libnbd(request, monkeypatch):
    old = request.param == '1.6'
    monkeypatch.setattr(nbd_source, 'nbd', binding(old))
    return old


def source(tmp_path):
    s = nbd_source.NbdSource(str(tmp_path / 'image'), 'qcow2', 1000, 3,
                             2048)
    s.size = len(DATA)
    return s


def test_connects_with_either_binding(libnbd, tmp_path):
    sock = tmp_path / 'nbd.sock'
    sock.write_bytes(b'')
    h = source(tmp_path)._try_connect(str(sock), float('inf'))
    assert h.calls == [('add_meta_context', 'base:allocation'),
                       ('aio_connect_unix', str(sock))]
    # 1.6 cannot skip zeroing each read buffer; the reads stay correct.
    assert h.pread_initialize is libnbd


def test_reads_with_either_binding(libnbd, tmp_path):
    s = source(tmp_path)
    s._h = Handle(libnbd)
    chunks = list(s.chunks())
    assert [(c.offset, c.length) for c in chunks] == [
        (i, min(1000, len(DATA) - i)) for i in range(0, len(DATA), 1000)]
    # Whatever the binding read into, the caller gets bytearrays.
    assert all(type(c.data) is bytearray for c in chunks)
    assert b''.join(c.data for c in chunks) == DATA


def test_read_buffer_follows_the_binding(libnbd):
    buf = nbd_source._read_buffer(10)
    assert type(buf) is (OldBuffer if libnbd else bytearray)
    assert len(buf._o if libnbd else buf) == 10


def test_chunks_of_zeros_and_bytearrays_are_kept():
    chunk = nbd_source.Chunk(0, 4, None)
    assert nbd_source._with_bytes(chunk) is chunk
    chunk = nbd_source.Chunk(0, 4, bytearray(b'abcd'))
    assert nbd_source._with_bytes(chunk) is chunk
