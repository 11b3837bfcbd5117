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

"""The copy loop: one read of the source, one hash, every target written.

It knows nothing of image formats or of Ceph: a source yields chunks (see
``sources.base``), targets take ``write(offset, data)``.
"""

import time

from oslo_log import log as logging

from glance_sparse_import import errors
from glance_sparse_import import store_policy

LOG = logging.getLogger(__name__)


class CopyStats(object):
    """Byte counts of one copy.

    ``written`` counts each byte once, however many targets received it.
    """

    def __init__(self, virtual_size):
        self.virtual_size = virtual_size
        self.allocated = 0
        self.written = 0
        self.zero_skipped = 0
        self.processed = 0

    def as_dict(self):
        return dict(vars(self))


def nonzero_runs(data, block_size, zero_block):
    """Yield (start, end) of the runs of ``data`` that are not all zero.

    ``data`` is split into ``block_size`` blocks; a block equal to
    ``zero_block`` (a memcmp, never a Python loop over bytes) is skipped.
    """
    size = len(data)
    start = None
    for pos in range(0, size, block_size):
        end = min(pos + block_size, size)
        zero = data.startswith(zero_block[:end - pos], pos, end)
        if zero:
            if start is not None:
                yield start, pos
                start = None
        elif start is None:
            start = pos
    if start is not None:
        yield start, size


class Copy(object):
    """Copy a source to every target and feed a hasher in stream order.

    ``stats`` and ``active`` (the targets still written) may be read from
    another thread while :meth:`run` goes on. A target whose write raises
    ``StoreError`` is dropped when ``policy`` (a ``StorePolicy``) allows it,
    else the error is raised. Without a policy, ``tolerate_target_failures``
    stands for ``all_stores_must_succeed`` false. ``on_drop(target,
    error)``, if given, is called in the copy's thread as a target is
    dropped: it must not block the copy.
    """

    def __init__(self, targets, hasher, zero_block_size,
                 tolerate_target_failures=False, policy=None, on_drop=None):
        self.active = list(targets)
        self.failed = {}
        self._on_drop = on_drop
        self.stats = None
        self._hasher = hasher
        self._zero_block_size = zero_block_size
        self._zero_block = bytes(zero_block_size)
        if policy is None:
            policy = store_policy.StorePolicy(
                all_stores_must_succeed=not tolerate_target_failures)
        self.policy = policy

    def _write(self, offset, data):
        for target in list(self.active):
            try:
                target.write(offset, data)
            except errors.StoreError as e:
                if not self.policy.may_drop(target):
                    raise
                LOG.warning('Dropping target %(t)s: %(e)s',
                            {'t': target.name, 'e': e})
                self.active.remove(target)
                self.failed[target] = e
                if self._on_drop is not None:
                    self._on_drop(target, e)
        if not self.active:
            self.policy.check_left(self.active, self.failed)
        self.stats.written += len(data)

    def run(self, source, cancelled=None, progress=None,
            progress_interval=10.0):
        """Copy ``source``; return ``(stats, failed)``.

        ``failed`` maps the dropped targets to their error.
        ``progress(stats, active)`` is called at most every
        ``progress_interval`` seconds and may raise to stop the copy.

        :raises Cancelled: ``cancelled`` (a threading.Event) was set
        :raises StoreError: a target failed (see above)
        :raises SourceError: the source failed or ended early
        """
        stats = self.stats = CopyStats(source.size)
        hasher = self._hasher
        block, zero_block = self._zero_block_size, self._zero_block
        next_report = time.monotonic() + progress_interval
        for chunk in source.chunks():
            if cancelled is not None and cancelled.is_set():
                raise errors.Cancelled('the copy was cancelled')
            if chunk.data is None:
                hasher.update_zeros(chunk.length)
            else:
                data = chunk.data
                hasher.update(data)
                stats.allocated += chunk.length
                runs = list(nonzero_runs(data, block, zero_block))
                if runs == [(0, chunk.length)]:
                    self._write(chunk.offset, data)
                else:
                    view = memoryview(data)
                    for start, end in runs:
                        self._write(chunk.offset + start,
                                    bytes(view[start:end]))
            stats.processed = chunk.offset + chunk.length
            if progress is not None and time.monotonic() >= next_report:
                progress(stats, self.active)
                next_report = time.monotonic() + progress_interval

        if stats.processed != source.size:
            raise errors.SourceError('source ended at byte %d of %d'
                                     % (stats.processed, source.size))
        stats.zero_skipped = stats.allocated - stats.written
        return stats, self.failed


def copy_image(source, targets, hasher, zero_block_size,
               tolerate_target_failures=False, progress=None,
               progress_interval=10.0):
    """Copy ``source`` to every target and feed ``hasher`` in stream order.

    Returns ``(stats, failed)``: ``failed`` maps the targets dropped after a
    write error to that error. Without ``tolerate_target_failures`` the first
    target error is raised. ``progress(stats, targets)`` is called at most
    every ``progress_interval`` seconds and may raise to stop the copy.
    """
    return Copy(targets, hasher, zero_block_size,
                tolerate_target_failures).run(
                    source, progress=progress,
                    progress_interval=progress_interval)
