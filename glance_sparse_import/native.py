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

"""Real OS threads and waits that leave Glance's eventlet hub free.

Glance's own server, ``glance-api`` (up to 2026.1), monkey-patches
``threading``, ``queue`` and ``time`` with eventlet: a "thread" is then a
greenthread on the hub's one OS thread, a lock is a green lock, and any
blocking C call (librbd, libnbd, hashlib) stops every request the API
serves. librbd completes writes on its own OS threads, where a green lock
cannot wake the greenthread waiting on it: the import hangs.

So the copy, the hash threads and every Ceph call run on real OS threads
with the unpatched modules, and the task's greenthread waits for them
through eventlet's thread pool (``tpool``), as glance_store's RBD driver,
Nova and Cinder wait for librbd. Under uWSGI nothing is patched: these are
the standard modules and plain calls.
"""

import sys


def green():
    """Whether eventlet has monkey-patched threading in this process.

    True under Glance's eventlet ``glance-api`` server; False under uWSGI,
    mod_wsgi or a command of ours.
    """
    # Nothing is patched before eventlet is imported; importing it to ask
    # would print its deprecation warning in our command.
    if 'eventlet' not in sys.modules:
        return False
    from oslo_utils import eventletutils
    return eventletutils.is_monkey_patched('thread')


if green():
    from eventlet import patcher as _patcher
    from eventlet import tpool as _tpool

    threading = _patcher.original('threading')
    queue = _patcher.original('queue')
    time = _patcher.original('time')
else:  # pragma: no cover - which branch runs depends on the process
    import queue  # noqa: F401
    import threading
    import time  # noqa: F401

    _tpool = None

# Set on the threads of this module: they wait with plain calls. eventlet's
# pool may only be used from the hub's thread (and runs its own threads'
# calls directly).
_local = threading.local()


def server():
    """Which kind of server this process is, for the API log."""
    if green():
        return "eventlet (Glance's glance-api)"
    return 'native threads (uWSGI, mod_wsgi or a command)'


def call(func, *args):
    """Return ``func(*args)``, run so that it blocks only the caller.

    Under eventlet, called from a greenthread, ``func`` runs on a thread of
    eventlet's pool while the greenthread yields; otherwise (no eventlet,
    or called on one of our OS threads) it is a plain call. Exceptions are
    raised in the caller.
    """
    if _tpool is not None and not getattr(_local, 'native', False):
        return _tpool.execute(func, *args)
    return func(*args)


class Worker(object):
    """``func(cancelled)`` running on its own OS thread.

    ``cancelled`` is a ``threading.Event`` the function checks between
    steps; :meth:`cancel` sets it.
    """

    def __init__(self, func, name):
        self.cancelled = threading.Event()
        self._func = func
        self._done = threading.Event()
        self._result = self._error = None
        self._thread = threading.Thread(target=self._run, name=name,
                                        daemon=True)
        self._thread.start()

    def _run(self):
        _local.native = True
        try:
            self._result = self._func(self.cancelled)
        except BaseException as e:
            self._error = e
        finally:
            self._done.set()

    def wait(self, timeout=None):
        """Wait up to ``timeout`` seconds (None: no bound); True if done."""
        return call(self._done.wait, timeout)

    def cancel(self):
        self.cancelled.set()

    def result(self):
        """The function's return value; raises what it raised."""
        if self._error is not None:
            raise self._error
        return self._result


def supervise(func, tick, interval, name):
    """Run ``func(cancelled)`` on an OS thread, calling ``tick()`` meanwhile.

    ``tick`` runs in the caller every ``interval`` seconds, so it may use
    what belongs to the caller's (green) thread, such as Glance's database
    session. When ``tick`` raises, the function is cancelled and waited for,
    then the exception is raised.

    :returns: what ``func`` returned
    :raises: what ``func`` or ``tick`` raised
    """
    worker = Worker(func, name)
    try:
        while not worker.wait(interval):
            tick()
    except BaseException:
        worker.cancel()
        worker.wait()
        raise
    return worker.result()


def each(func, items):
    """Call ``func(item)`` for every item at once, each on an OS thread.

    :returns: the results, in the order of ``items``
    :raises: the first exception raised, after every call has ended
    """
    items = list(items)
    if len(items) == 1:
        return [call(func, items[0])]
    workers = [Worker(lambda _cancelled, item=item: func(item),
                      'each-%d' % i) for i, item in enumerate(items)]
    for worker in workers:
        worker.wait()
    return [worker.result() for worker in workers]
