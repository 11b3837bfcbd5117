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

"""What every target of the copy loop provides.

A target is where one copy of the image goes: an RBD store
(``targets.rbd``), a raw file in the staging area (``targets.file``) or
nothing at all (``targets.null``). ``targets.throttle`` wraps any of them
with a write rate limit. The copy loop (``copy.Copy``) only calls
``write``; its callers call the rest, in this order:

``open()``
    Create the (empty, thin) destination of ``size`` bytes. On failure it
    has already removed what it created.
``write(offset, data)``
    Write ``data`` (a bytes-like object the target may keep until
    ``finish``) at byte ``offset``. Called with increasing offsets for the
    non-zero runs only: what is never written reads as zeros. A target
    may queue the write and report its failure at a later call.
``finish()``
    Wait for every write, make the copy what its readers expect (for RBD:
    the protected ``snap`` snapshot) and release the connection.
``remove()``
    Delete whatever this target created. Safe at any point, after a
    failure and more than once.

Attributes: ``name`` is the store identifier Glance knows (``None`` for
single-store Glance) or a label for a target no Glance store holds;
``url`` is the location URL to register once ``open`` has succeeded
(``None`` for a target that is no store).

Every failure of the destination raises ``errors.StoreError`` with a
message that names it; the copy policy (``store_policy``) decides whether
the import goes on without that target.
"""

from glance_sparse_import import errors
from glance_sparse_import import native

# Closing, then removing an RBD image: how many Ceph timeouts to wait.
REMOVE_TIMEOUTS = 3


class Target(object):
    """Base of the targets; see the module docstring for the protocol."""

    name = None

    @property
    def url(self):
        """The location URL to register, or None."""
        return None

    def open(self):
        """Create the destination; :raises StoreError: it cannot be."""

    def write(self, offset, data):
        """Write ``data`` at ``offset``; :raises StoreError: on failure."""
        raise NotImplementedError()

    def finish(self):
        """Complete every write; :raises StoreError: on failure."""

    def remove(self):
        """Delete what this target created; safe at any point."""


def each(func, targets):
    """Call ``func(target)`` for every target at once, on OS threads.

    So that unreachable clusters cost one Ceph timeout, not one each.

    :returns: ``{target: StoreError}`` of the targets that failed
    :raises: any other exception, once every call has ended
    """
    targets = list(targets)
    if not targets:
        return {}
    calls = native.each(lambda t: _call(func, t), targets)
    failed = {}
    for target, error in zip(targets, calls):
        if isinstance(error, errors.StoreError):
            failed[target] = error
        elif error is not None:
            raise error
    return failed


def _call(func, target):
    try:
        func(target)
    except Exception as e:
        return e
    return None


class Removal(object):
    """``target.remove()``, started at once on an OS thread.

    With the OSD gone, librbd can wait on an image beyond every Ceph
    timeout: :meth:`wait` gives up after ``REMOVE_TIMEOUTS`` times the
    target's ``op_timeout`` (seconds; 0: no bound).
    """

    def __init__(self, target):
        self.target = target
        self.error = None
        self.timeout = REMOVE_TIMEOUTS * getattr(target, 'op_timeout', 0)
        self._worker = native.Worker(self._run, 'remove-%s' % target.name)

    def _run(self, _cancelled):
        try:
            self.target.remove()
        except Exception as e:
            self.error = e

    def wait(self):
        """True once removed; else False and ``error`` says why."""
        if not self._worker.wait(self.timeout or None):
            self.error = TimeoutError('no answer from Ceph within %d s'
                                      % self.timeout)
        return self.error is None


class Removals(object):
    """Removals started early (as the copy drops a target), taken later."""

    def __init__(self):
        self._started = {}

    def start(self, target):
        """Start removing ``target`` now, from any thread."""
        self._started[target] = Removal(target)

    def take(self, target):
        """The removal of ``target``: the one started, else a new one."""
        return self._started.pop(target, None) or Removal(target)
