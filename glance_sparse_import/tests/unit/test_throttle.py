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

"""The per-store write rate limit, on a fake clock."""

from oslo_config import cfg
from oslo_utils import units
import pytest

from glance_sparse_import import opts
from glance_sparse_import import plugin
from glance_sparse_import.targets import throttle
from glance_sparse_import.tests.unit.fake_ceph import FakeCephTarget

MiB = units.Mi


class Clock(object):
    """time.monotonic and time.sleep, where sleeping moves time on."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_one_second_of_writes_passes_at_once_then_the_rate_holds():
    clock = Clock()
    bucket = throttle.TokenBucket(10 * MiB, clock=clock.monotonic,
                                  sleep=clock.sleep)
    bucket.take(10 * MiB)
    assert clock.sleeps == []
    bucket.take(5 * MiB)
    assert clock.sleeps == [pytest.approx(0.5)]
    # A second later a second's worth passes again, and no more.
    clock.now += 1.0
    bucket.take(10 * MiB)
    assert len(clock.sleeps) == 1
    bucket.take(10 * MiB)
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(1.0)]
    assert bucket.waited == pytest.approx(1.5)


def test_a_long_copy_takes_its_bytes_over_the_rate():
    clock = Clock()
    start = clock.now
    bucket = throttle.TokenBucket(4 * MiB, clock=clock.monotonic,
                                  sleep=clock.sleep)
    for _ in range(100):
        bucket.take(MiB)
    # 100 MiB at 4 MiB/s, the first second's 4 MiB free.
    assert clock.now - start == pytest.approx(24.0)


def test_idle_time_does_not_bank_more_than_the_burst():
    clock = Clock()
    bucket = throttle.TokenBucket(MiB, clock=clock.monotonic,
                                  sleep=clock.sleep)
    clock.now += 3600
    bucket.take(3 * MiB)
    assert clock.sleeps == [pytest.approx(2.0)]


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        throttle.TokenBucket(0)


def test_throttled_target_writes_through_and_keeps_the_protocol():
    clock = Clock()
    inner = FakeCephTarget('edge1', 8 * MiB)
    target = throttle.ThrottledTarget(inner, 2, clock=clock.monotonic,
                                      sleep=clock.sleep)
    target.open()
    for i in range(4):
        target.write(i * 2 * MiB, b'x' * (2 * MiB))
    target.finish()
    assert inner.snapshot == b'x' * (8 * MiB)
    assert clock.sleeps == [pytest.approx(1.0)] * 3
    assert (target.name, target.url) == ('edge1', inner.url)
    assert target.image_name == inner.image_name
    target.remove()
    assert inner.removed


def test_wrap_only_when_limited():
    inner = FakeCephTarget('a', MiB)
    assert throttle.wrap(inner, 0) is inner
    wrapped = throttle.wrap(inner, 2.5)
    assert wrapped.rate == 2.5 and throttle.unwrap(wrapped) is inner
    assert throttle.unwrap(inner) is inner
    assert throttle.describe(2.5) == '2.5 MiB/s'


@pytest.mark.parametrize('value, store, expected', [
    ('', 'edge1', 0),
    ('edge1:100,edge2:2.5', 'edge1', 100),
    ('edge1:100,edge2:2.5', 'edge2', 2.5),
    ('edge1:100,edge2:2.5', 'central', 0),
    ('glance_store:40', None, 40),
])
def test_store_write_rate_limit_option(value, store, expected):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('store_write_rate_limit', value, opts.GROUP)
    assert opts.store_write_rate_limit(conf.sparse_rbd_import,
                                       store) == expected


def test_store_write_rate_limits_leave_out_unlimited_stores():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    conf.set_override('store_write_rate_limit', 'edge1:100,edge2:0,edge3:4',
                      opts.GROUP)
    limits = opts.store_write_rate_limits(
        conf.sparse_rbd_import, ['edge3', 'edge2', 'central', 'edge1'])
    assert limits == {'edge1': 100, 'edge3': 4}
    assert throttle.describe_limits(limits) == \
        'edge1 100 MiB/s, edge3 4 MiB/s'


def test_store_write_rate_limit_refuses_a_negative_rate():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    with pytest.raises(ValueError):
        conf.set_override('store_write_rate_limit', 'edge1:-1', opts.GROUP)


def test_task_message_names_the_limits():
    task = plugin._SparseRbdImport.__new__(plugin._SparseRbdImport)
    task._limits = {}
    assert task._describe_limits() == ''
    task._limits = {'edge2': 40.0, 'edge1': 100.0}
    assert task._describe_limits() == (
        '; write rate limit: edge1 100 MiB/s, edge2 40 MiB/s (paces the '
        'whole pass)')
