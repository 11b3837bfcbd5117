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
"""

import hashlib
import queue
import threading

from oslo_utils import units

_ZEROS = bytes(4 * units.Mi)
_STOP = object()


class _HashWorker(object):

    def __init__(self, algorithm, depth):
        self.name = algorithm
        self._hash = hashlib.new(algorithm, usedforsecurity=False)
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._thread = threading.Thread(
            target=self._run, name='hash-%s' % algorithm, daemon=True)
        self._thread.start()

    def _run(self):
        update = self._hash.update
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if isinstance(item, int):
                    full, rest = divmod(item, len(_ZEROS))
                    for _ in range(full):
                        update(_ZEROS)
                    if rest:
                        update(memoryview(_ZEROS)[:rest])
                else:
                    update(item)
        except Exception as e:  # pragma: no cover - hashlib does not fail
            self._error = e
            # Keep draining so the producer never blocks on a dead worker.
            while self._queue.get() is not _STOP:
                pass

    def put(self, item):
        self._queue.put(item)

    def finish(self):
        self._queue.put(_STOP)
        self._thread.join()
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

    def hexdigests(self):
        """Wait for every worker and return the digests, in order."""
        return [worker.finish() for worker in self._workers]

    def close(self):
        """Stop the workers without a result (after a failure)."""
        for worker in self._workers:
            try:
                worker.finish()
            except Exception:  # pragma: no cover
                pass
