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

"""md5 and the multihash over the raw stream, each in its own thread.

Glance's checksums cover every byte of the virtual disk, zeros included, so
hashing is the floor of an import. hashlib releases the GIL for large
buffers, so one thread per algorithm runs them side by side on separate
cores while the caller goes on reading and writing.

The import ends when the slowest algorithm ends. While the source is being
read, the hash threads share the CPU with qemu, librbd and the copy loop;
left alone, the faster algorithm runs ahead and then idles its core at the
end while the slower one finishes. Given the stream length, a thread that
would finish well before another waits instead, leaving its CPU to the
others, so both reach the end together.
"""

import hashlib
import queue
import threading
import time

from oslo_utils import units

# bytes() of this size comes from calloc: untouched pages that read as the
# kernel's zero page, so it costs address space, not memory. Each update
# releases and retakes the GIL; large pieces keep the hash threads from
# queueing for it thousands of times behind the copy loop, while pacing
# still acts between pieces.
_ZEROS = bytes(64 * units.Mi)
# Pace only once the rate is known, and only by more than one piece.
_PACE_AFTER = 64 * units.Mi
_PACE_MARGIN = 0.25
_PACE_SLEEP = 0.005
_STOP = object()


class _HashWorker(object):

    def __init__(self, algorithm, depth, total=None):
        self.name = algorithm
        self._hash = hashlib.new(algorithm, usedforsecurity=False)
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._total = total
        self._cpu = 0.0
        self._stopping = False
        self.peers = ()
        # True while waiting for input or after the end: nothing to wait for.
        self.idle = True
        self.bytes_done = 0
        self._thread = threading.Thread(
            target=self._run, name='hash-%s' % algorithm, daemon=True)

    def start(self):
        self._thread.start()

    def seconds_left(self):
        """CPU seconds this algorithm still needs, or None if unknown."""
        if self._total is None or self.bytes_done < _PACE_AFTER:
            return None
        return (self._total - self.bytes_done) * self._cpu / self.bytes_done

    def _pace(self):
        # Never wait with a full queue (the producer may be blocked on it),
        # nor for a peer that is itself waiting for input or has ended.
        while not self._stopping and not self._queue.full():
            mine = self.seconds_left()
            others = [p.seconds_left() for p in self.peers if not p.idle]
            if mine is None or not others or None in others:
                return
            if mine + _PACE_MARGIN >= max(others):
                return
            time.sleep(_PACE_SLEEP)

    def _update(self, data):
        self._pace()
        start = time.thread_time()
        self._hash.update(data)
        self._cpu += time.thread_time() - start
        self.bytes_done += len(data)

    def _run(self):
        zeros = memoryview(_ZEROS)
        try:
            while True:
                self.idle = True
                item = self._queue.get()
                if item is _STOP:
                    return
                self.idle = False
                if isinstance(item, int):
                    full, rest = divmod(item, len(zeros))
                    for _ in range(full):
                        self._update(zeros)
                    if rest:
                        self._update(zeros[:rest])
                else:
                    self._update(item)
        except Exception as e:  # pragma: no cover - hashlib does not fail
            self._error = e
            self.idle = True
            # Keep draining so the producer never blocks on a dead worker.
            while self._queue.get() is not _STOP:
                pass

    def put(self, item):
        self._queue.put(item)

    def stop(self):
        self._stopping = True
        self._queue.put(_STOP)

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def finish(self):
        self.stop()
        self.join()
        return self.result()

    def result(self):
        if self._error is not None:
            raise self._error
        return self._hash.hexdigest()


class ParallelHasher(object):
    """Feed one stream to several hash algorithms running in parallel.

    ``update`` takes a bytes-like object that nobody modifies afterwards;
    ``update_zeros`` feeds a run of zeros without allocating it. The bounded
    queues keep memory bounded: the caller blocks when hashing lags behind.
    ``total``, the stream length if known, lets the threads pace each other.
    """

    def __init__(self, algorithms, depth=16, total=None):
        self._workers = [_HashWorker(a, depth, total) for a in algorithms]
        for worker in self._workers:
            worker.peers = [w for w in self._workers if w is not worker]
            worker.start()
        self.bytes_hashed = 0

    def update(self, data):
        for worker in self._workers:
            worker.put(data)
        self.bytes_hashed += len(data)

    def update_zeros(self, length):
        if length:
            for worker in self._workers:
                worker.put(length)
            self.bytes_hashed += length

    @property
    def bytes_done(self):
        """Bytes of the stream every algorithm has hashed so far."""
        return min(worker.bytes_done for worker in self._workers)

    def hexdigests(self, progress=None, interval=10.0):
        """Wait for every worker and return the digests, in order.

        Hashing the zero runs usually lasts well beyond the copy, so
        ``progress()`` is called every ``interval`` seconds meanwhile; it
        may raise to give up (the workers still finish their queue).
        """
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            while not worker.join(interval if progress else None):
                progress()
        return [worker.result() for worker in self._workers]

    def close(self):
        """Stop the workers without a result (after a failure)."""
        for worker in self._workers:
            try:
                worker.finish()
            except Exception:  # pragma: no cover
                pass
