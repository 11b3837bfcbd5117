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

import hashlib

import pytest

from glance_sparse_import import copy
from glance_sparse_import import errors
from glance_sparse_import import hashing
from glance_sparse_import.sources import base

BLOCK = 4096


class ListSource(object):
    def __init__(self, chunks):
        self.chunks_ = chunks
        self.size = sum(c.length for c in chunks)

    def chunks(self):
        return iter(self.chunks_)


class MemoryTarget(object):
    def __init__(self, name, size, fail_at=None):
        self.name = name
        self.buf = bytearray(size)
        self.writes = []
        self.fail_at = fail_at

    def write(self, offset, data):
        if self.fail_at is not None and offset >= self.fail_at:
            raise errors.StoreError('boom')
        self.writes.append((offset, len(data)))
        self.buf[offset:offset + len(data)] = data


def _image():
    data1 = b'\0' * BLOCK + b'a' * BLOCK + b'\0' * 2 * BLOCK + b'b' * 10
    chunks = [base.Chunk(0, 3 * BLOCK, None),
              base.Chunk(3 * BLOCK, len(data1), data1),
              base.Chunk(3 * BLOCK + len(data1), 5 * BLOCK, None),
              base.Chunk(8 * BLOCK + len(data1), BLOCK, b'c' * BLOCK)]
    raw = b''.join(c.data or bytes(c.length) for c in chunks)
    return chunks, raw


def test_nonzero_runs_memcmp_blocks():
    data = b'\0' * BLOCK + b'a' + b'\0' * (2 * BLOCK - 1) + b'\0' * BLOCK + \
        b'z' * 5
    runs = list(copy.nonzero_runs(data, BLOCK, bytes(BLOCK)))
    assert runs == [(BLOCK, 2 * BLOCK), (4 * BLOCK, 4 * BLOCK + 5)]
    assert list(copy.nonzero_runs(bytes(3 * BLOCK), BLOCK,
                                  bytes(BLOCK))) == []


def test_copy_writes_only_nonzero_and_hashes_everything():
    chunks, raw = _image()
    source = ListSource(chunks)
    targets = [MemoryTarget('a', source.size), MemoryTarget('b', source.size)]
    hasher = hashing.ParallelHasher(['md5', 'sha512'])
    stats, failed = copy.copy_image(source, targets, hasher, BLOCK)
    assert failed == {}
    assert hasher.hexdigests() == [hashlib.md5(raw).hexdigest(),
                                   hashlib.sha512(raw).hexdigest()]
    for target in targets:
        assert bytes(target.buf) == raw
        assert target.writes == [(4 * BLOCK, BLOCK), (7 * BLOCK, 10),
                                 (12 * BLOCK + 10, BLOCK)]
    assert stats.allocated == len(chunks[1].data) + BLOCK
    assert stats.written == 2 * BLOCK + 10
    assert stats.zero_skipped == stats.allocated - stats.written
    assert stats.processed == stats.virtual_size == len(raw)


def test_copy_raises_on_target_failure_by_default():
    chunks, _ = _image()
    source = ListSource(chunks)
    hasher = hashing.ParallelHasher(['md5'])
    bad = MemoryTarget('bad', source.size, fail_at=0)
    with pytest.raises(errors.StoreError):
        copy.copy_image(source, [MemoryTarget('ok', source.size), bad],
                        hasher, BLOCK)
    hasher.close()


def test_copy_drops_failed_target_when_tolerated():
    chunks, raw = _image()
    source = ListSource(chunks)
    hasher = hashing.ParallelHasher(['md5'])
    good = MemoryTarget('ok', source.size)
    bad = MemoryTarget('bad', source.size, fail_at=6 * BLOCK)
    stats, failed = copy.copy_image(source, [good, bad], hasher, BLOCK,
                                    tolerate_target_failures=True)
    assert list(failed) == [bad]
    assert bytes(good.buf) == raw
    assert hasher.hexdigests() == [hashlib.md5(raw).hexdigest()]


def test_copy_fails_when_every_target_failed():
    chunks, _ = _image()
    source = ListSource(chunks)
    hasher = hashing.ParallelHasher(['md5'])
    with pytest.raises(errors.StoreError, match='every target'):
        copy.copy_image(source, [MemoryTarget('bad', source.size, 0)],
                        hasher, BLOCK, tolerate_target_failures=True)
    hasher.close()


def test_copy_detects_short_source():
    chunks, _ = _image()
    source = ListSource(chunks)
    source.size += 1
    hasher = hashing.ParallelHasher(['md5'])
    with pytest.raises(errors.SourceError):
        copy.copy_image(source, [MemoryTarget('a', source.size)], hasher,
                        BLOCK)
    hasher.close()


def test_progress_called_and_can_stop_the_copy():
    chunks, _ = _image()
    source = ListSource(chunks)
    hasher = hashing.ParallelHasher(['md5'])
    seen = []

    def progress(stats, targets):
        seen.append(stats.processed)
        raise RuntimeError('cancelled')

    with pytest.raises(RuntimeError):
        copy.copy_image(source, [MemoryTarget('a', source.size)], hasher,
                        BLOCK, progress=progress, progress_interval=0)
    hasher.close()
    assert seen == [3 * BLOCK]
