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
import os
import time

from glance_sparse_import import hashing


def _expected(parts, algorithm):
    h = hashlib.new(algorithm)
    for part in parts:
        h.update(bytes(part) if isinstance(part, int) else part)
    return h.hexdigest()


def test_zero_runs_and_data_hash_like_one_stream():
    # Zero runs longer than, equal to and shorter than the zero buffer.
    parts = [os.urandom(1000), 3 * 4 * 1024 * 1024 + 17, b'x' * 65536,
             4 * 1024 * 1024, 1, os.urandom(7)]
    hasher = hashing.ParallelHasher(['md5', 'sha512'], depth=2)
    for part in parts:
        if isinstance(part, int):
            hasher.update_zeros(part)
        else:
            hasher.update(part)
    md5, sha512 = hasher.hexdigests()
    assert md5 == _expected(parts, 'md5')
    assert sha512 == _expected(parts, 'sha512')
    assert hasher.bytes_hashed == sum(
        p if isinstance(p, int) else len(p) for p in parts)


def test_other_multihash_algorithm():
    hasher = hashing.ParallelHasher(['md5', 'sha256'])
    hasher.update(b'abc')
    hasher.update_zeros(0)
    assert hasher.hexdigests() == [hashlib.md5(b'abc').hexdigest(),
                                   hashlib.sha256(b'abc').hexdigest()]


def test_close_without_result_stops_threads():
    hasher = hashing.ParallelHasher(['md5', 'sha512'], depth=1)
    hasher.update(b'a' * 10)
    hasher.close()
    assert all(not w._thread.is_alive() for w in hasher._workers)


def test_close_drops_queued_zero_runs():
    # A cancelled import of a 1 TiB disk must not hash the rest of it
    # (about half an hour at 600 MB/s) before it can fail.
    hasher = hashing.ParallelHasher(['md5', 'sha512'])
    hasher.update(b'a' * 10)
    hasher.update_zeros(1024 ** 4)
    hasher.update_zeros(1024 ** 4)
    started = time.monotonic()
    hasher.close()
    assert time.monotonic() - started < 60
    assert all(not w._thread.is_alive() for w in hasher._workers)
    assert hasher.bytes_done < 1024 ** 4


def test_close_after_progress_gave_up():
    # The plugin's path: the progress check raises while the digests are
    # awaited, then the hasher is closed.
    hasher = hashing.ParallelHasher(['md5', 'sha512'])
    hasher.update_zeros(1024 ** 4)

    def cancelled():
        raise RuntimeError('cancelled')

    try:
        hasher.hexdigests(progress=cancelled, interval=0.01)
    except RuntimeError:
        hasher.close()
    assert all(not w._thread.is_alive() for w in hasher._workers)
    assert hasher.bytes_done < 1024 ** 4


def test_progress_while_waiting_for_digests():
    hasher = hashing.ParallelHasher(['md5', 'sha512'])
    hasher.update_zeros(128 * 1024 * 1024)
    seen = []
    digests = hasher.hexdigests(progress=lambda: seen.append(
        hasher.bytes_done), interval=0.01)
    assert digests == [_expected([128 * 1024 * 1024], 'md5'),
                       _expected([128 * 1024 * 1024], 'sha512')]
    assert seen and seen == sorted(seen)
    assert hasher.bytes_done == 128 * 1024 * 1024
