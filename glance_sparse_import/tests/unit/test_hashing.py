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
import threading

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


def test_paced_stream_hashes_like_one_stream():
    size = 300 * 1024 * 1024
    parts = [os.urandom(4096), size - 8192, os.urandom(4096)]
    hasher = hashing.ParallelHasher(['md5', 'sha256'], depth=1, total=size)
    for part in parts:
        if isinstance(part, int):
            hasher.update_zeros(part)
        else:
            hasher.update(part)
    assert hasher.hexdigests() == [_expected(parts, 'md5'),
                                   _expected(parts, 'sha256')]


class _Peer(object):
    def __init__(self, left, idle=False):
        self.left = left
        self.idle = idle

    def seconds_left(self):
        return self.left


def test_thread_ahead_waits_for_the_slower_one():
    # Not started: the test plays the worker thread.
    worker = hashing._HashWorker('sha256', 2, total=1024 * 1024 * 1024)
    worker.bytes_done = 512 * 1024 * 1024
    worker._cpu = 0.25               # 0.25 s left
    peer = _Peer(5.0)
    worker.peers = [peer]
    waited = threading.Thread(target=worker._pace)
    waited.start()
    waited.join(0.2)
    assert waited.is_alive()
    peer.left = 0.3                  # within the margin: go on
    waited.join(5)
    assert not waited.is_alive()


def test_thread_with_full_queue_never_waits():
    # The producer may be blocked on this queue while the peer starves.
    worker = hashing._HashWorker('sha256', 1, total=1024 * 1024 * 1024)
    worker._queue.put(b'x')
    worker.bytes_done = 512 * 1024 * 1024
    worker._cpu = 0.25
    worker.peers = [_Peer(100.0)]
    worker._pace()
    assert worker._queue.full()


def test_no_pacing_without_total():
    worker = hashing._HashWorker('md5', 1)
    worker.bytes_done = 512 * 1024 * 1024
    worker._cpu = 0.25
    worker.peers = [_Peer(100.0)]
    assert worker.seconds_left() is None
    worker._pace()


def test_no_waiting_for_a_peer_without_input():
    # A cancelled import stops feeding: the peer will not catch up.
    worker = hashing._HashWorker('sha256', 2, total=1024 * 1024 * 1024)
    worker.bytes_done = 512 * 1024 * 1024
    worker._cpu = 0.25
    worker.peers = [_Peer(100.0, idle=True)]
    worker._pace()


def test_close_mid_stream_with_pacing():
    hasher = hashing.ParallelHasher(['md5', 'sha256'], depth=4,
                                    total=8 * 1024 * 1024 * 1024)
    hasher.update_zeros(512 * 1024 * 1024)
    closer = threading.Thread(target=hasher.close)
    closer.start()
    closer.join(30)
    assert not closer.is_alive()
