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
cores while the caller goes on reading and writing. They are real OS
threads even under eventlet (see ``native``).
"""

import hashlib

from oslo_utils import units

from glance_sparse_import import native

# bytes() of this size comes from calloc: untouched pages that read as the
# kernel's zero page, so it costs address space, not memory. Each update
# releases the GIL once; large pieces keep the hash threads from queueing
# for the GIL thousands of times behind the copy loop.
_ZEROS = bytes(256 * units.Mi)
_STOP = object()


def zero_pieces(length):
    """Yield views of one shared zero buffer adding up to ``length`` bytes."""
    zeros = memoryview(_ZEROS)
    full, rest = divmod(length, len(zeros))
    for _ in range(full):
        yield zeros
    if rest:
        yield zeros[:rest]


class _HashWorker(object):

    def __init__(self, algorithm, depth):
        self.name = algorithm
        self._hash = hashlib.new(algorithm, usedforsecurity=False)
        self._queue = native.queue.Queue(maxsize=depth)
        self._error = None
        self._abandoned = native.threading.Event()
        self.bytes_done = 0
        self._thread = native.threading.Thread(
            target=self._run, name='hash-%s' % algorithm, daemon=True)
        self._thread.start()

    def _run(self):
        update = self._hash.update
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if self._abandoned.is_set():
                    continue
                if isinstance(item, int):
                    for piece in zero_pieces(item):
                        # A zero run can be terabytes: give up between
                        # pieces, not at the end of the run.
                        if self._abandoned.is_set():
                            break
                        update(piece)
                        self.bytes_done += len(piece)
                else:
                    update(item)
                    self.bytes_done += len(item)
        except Exception as e:  # pragma: no cover - hashlib does not fail
            self._error = e
            # Keep draining so the producer never blocks on a dead worker.
            while self._queue.get() is not _STOP:
                pass

    def put(self, item):
        self._queue.put(item)

    def stop(self):
        self._queue.put(_STOP)

    def join(self, timeout=None):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abandon(self):
        """Drop what is queued, from now on; stop hashing a zero run."""
        self._abandoned.set()

    def result(self):
        if self._error is not None:
            raise self._error
        return self._hash.hexdigest()


class ParallelHasher(object):
    """Feed one stream to several hash algorithms running in parallel.

    ``update`` takes a bytes-like object that nobody modifies afterwards;
    ``update_zeros`` feeds a run of zeros without allocating it. The bounded
    queues keep memory bounded: the caller blocks when hashing lags behind.
    """

    def __init__(self, algorithms, depth=16):
        self._workers = [_HashWorker(a, depth) for a in algorithms]
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

    def abandon(self):
        """Stop hashing what is queued or comes, without waiting.

        Safe from any thread while another one goes on calling ``update``:
        the workers take and drop items, so the caller never blocks on them.
        """
        for worker in self._workers:
            worker.abandon()

    def close(self):
        """Stop the workers without a result (after a failure).

        What is still queued is dropped rather than hashed: a cancelled
        import stops within one 256 MiB zero piece (well under a second),
        not after the rest of its virtual size. Call it once nothing
        calls ``update`` any more.
        """
        self.abandon()
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            worker.join()
