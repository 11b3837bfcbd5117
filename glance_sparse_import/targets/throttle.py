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

"""A write rate limit on a target, for stores behind a slow link.

A token bucket on the bytes written: up to one second of writes passes at
once, then each write waits until the bytes before it fit the rate. The
copy loop writes every target in turn, so a limited target paces the
whole pass: the other stores (and the hashing) go no faster than it.
"""

from oslo_utils import units

from glance_sparse_import import native
from glance_sparse_import.targets import base


class TokenBucket(object):
    """Pace a byte stream to ``rate`` bytes per second.

    :param rate: bytes per second, more than 0
    :param burst: bytes that may pass at once (default: one second's)
    :param clock: seconds, monotonic (default ``time.monotonic``)
    :param sleep: waits the given seconds (default ``time.sleep``); both
                  the real ones, never eventlet's, as the copy runs on OS
                  threads
    """

    def __init__(self, rate, burst=None, clock=None, sleep=None):
        if rate <= 0:
            raise ValueError('rate must be more than 0')
        self.rate = float(rate)
        self.burst = float(burst or rate)
        self._clock = clock or native.time.monotonic
        self._sleep = sleep or native.time.sleep
        self._tokens = self.burst
        self._last = self._clock()
        # Seconds spent waiting, for the summary.
        self.waited = 0.0

    def take(self, n):
        """Account for ``n`` bytes; wait first if they exceed the rate."""
        now = self._clock()
        self._tokens = min(self.burst,
                           self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            delay = -self._tokens / self.rate
            self._sleep(delay)
            self.waited += delay


class ThrottledTarget(base.Target):
    """``target`` with its writes limited to ``rate`` MiB/s.

    Everything but ``write`` is the wrapped target's; attributes it has
    beyond the protocol (``store``, ``image_name``, ...) read through.
    """

    def __init__(self, target, rate, clock=None, sleep=None):
        self.target = target
        self.rate = rate
        self.bucket = TokenBucket(rate * units.Mi, clock=clock, sleep=sleep)

    @property
    def name(self):
        return self.target.name

    @property
    def url(self):
        return self.target.url

    def open(self):
        self.target.open()

    def write(self, offset, data):
        self.bucket.take(len(data))
        self.target.write(offset, data)

    def finish(self):
        self.target.finish()

    def remove(self):
        self.target.remove()

    def __getattr__(self, name):
        # Only called for what this class lacks.
        if name == 'target':
            raise AttributeError(name)
        return getattr(self.target, name)


def wrap(target, rate):
    """``target`` limited to ``rate`` MiB/s; itself when ``rate`` is 0."""
    if not rate:
        return target
    return ThrottledTarget(target, rate)


def unwrap(target):
    """The target a ``wrap`` result writes to."""
    return target.target if isinstance(target, ThrottledTarget) else target


def describe(rate):
    """``rate`` (MiB/s) for messages and the progress bar."""
    return '%g MiB/s' % rate


def describe_limits(limits):
    """``{store name: MiB/s}`` for messages: ``'edge1 40 MiB/s, ...'``."""
    return ', '.join('%s %s' % (name, describe(rate))
                     for name, rate in sorted(limits.items(),
                                              key=lambda item: str(item[0])))
