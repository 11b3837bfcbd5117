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

"""The multi-store rules, alone, in the copy loop and in the plugin task."""

import hashlib
import types

import pytest

from glance_sparse_import import copy
from glance_sparse_import import errors
from glance_sparse_import import hashing
from glance_sparse_import import plugin
from glance_sparse_import.sources import base
from glance_sparse_import import store_policy
from glance_sparse_import import stores
from glance_sparse_import.tests.unit.fake_ceph import FakeCephTarget

BLOCK = 4096
SIZE = 16 * BLOCK


class ListSource(object):
    """Sixteen blocks of data, each written in its own chunk."""

    size = SIZE

    def __init__(self):
        self.raw = b''.join(bytes([i + 1]) * BLOCK for i in range(16))

    def chunks(self):
        for pos in range(0, SIZE, BLOCK):
            yield base.Chunk(pos, BLOCK, self.raw[pos:pos + BLOCK])


def _copy(targets, policy):
    source = ListSource()
    hasher = hashing.ParallelHasher(['md5'])
    job = copy.Copy(targets, hasher, BLOCK, policy=policy)
    try:
        stats, failed = job.run(source)
        assert hasher.hexdigests() == [hashlib.md5(source.raw).hexdigest()]
    finally:
        hasher.close()
    return source, stats, failed


def _targets(*specs):
    result = []
    for name, fail_on in specs:
        t = FakeCephTarget(name, SIZE, fail_on=fail_on, fail_at=4 * BLOCK)
        t.open()
        result.append(t)
    return result


def test_all_stores_must_succeed_fails_on_the_first_failure():
    a, b = _targets(('a', ()), ('b', ()))
    policy = store_policy.StorePolicy(all_stores_must_succeed=True)
    assert not policy.may_drop(a)
    policy.check({})
    with pytest.raises(errors.StoreError) as e:
        policy.check({a: errors.StoreError('a down'),
                      b: errors.StoreError('b full')})
    assert str(e.value) == 'a down; b full'


def test_a_failed_store_is_dropped_when_failures_are_tolerated():
    a, = _targets(('a', ()))
    policy = store_policy.StorePolicy(all_stores_must_succeed=False)
    assert policy.may_drop(a)
    policy.check({a: errors.StoreError('a down')})


def test_a_required_member_fails_the_copy_whatever_the_flag():
    a, raw = _targets(('a', ()), ('staging', ()))
    policy = store_policy.StorePolicy(all_stores_must_succeed=False)
    policy.require(raw)
    error = errors.StoreError('cannot write the raw staging file')
    assert policy.may_drop(a) and not policy.may_drop(raw)
    with pytest.raises(errors.StoreError) as e:
        policy.check({a: errors.StoreError('a down'), raw: error})
    assert e.value is error


@pytest.mark.parametrize('must, required, others, expected', [
    (False, False, True, True),
    (True, False, True, False),
    (False, True, True, False),
    (False, False, False, False),
])
def test_losing_every_target(must, required, others, expected):
    policy = store_policy.StorePolicy(
        must, required=[object()] if required else (), others=others)
    assert policy.may_lose_every_target() is expected
    with pytest.raises(errors.StoreError, match='every target store failed: '
                                                'a down'):
        policy.check_left([], {'a': errors.StoreError('a down')})


def test_copy_stops_at_a_failed_write_when_every_store_must_succeed():
    a, b = _targets(('a', ()), ('b', ('write',)))
    with pytest.raises(errors.StoreError, match='store b: write failed'):
        _copy([a, b], store_policy.StorePolicy(True))
    # Written up to the failing block, not beyond.
    assert a.writes == 5 and b.writes == 4


def test_copy_drops_a_failed_store_and_completes_the_others():
    a, b, c = _targets(('a', ()), ('b', ('write',)), ('c', ()))
    source, stats, failed = _copy([a, b, c], store_policy.StorePolicy(False))
    assert list(failed) == [b]
    assert str(failed[b]) == 'store b: write failed'
    assert bytes(a.data) == bytes(c.data) == source.raw
    assert b.writes == 4
    assert stats.written == SIZE


def test_copy_fails_at_once_when_a_required_member_fails():
    a, raw = _targets(('a', ()), ('staging', ('write',)))
    policy = store_policy.StorePolicy(False, required=[raw])
    with pytest.raises(errors.StoreError, match='store staging: write'):
        _copy([a, raw], policy)
    assert a.writes == 5


def test_copy_fails_when_every_store_failed():
    a, b = _targets(('a', ('write',)), ('b', ('write',)))
    with pytest.raises(errors.StoreError) as e:
        _copy([a, b], store_policy.StorePolicy(False))
    assert str(e.value) == ('every target store failed: store a: write '
                            'failed; store b: write failed')


def test_copy_without_a_policy_keeps_tolerate_target_failures():
    a, b = _targets(('a', ()), ('b', ('write',)))
    job = copy.Copy([a, b], None, BLOCK, tolerate_target_failures=True)
    assert job.policy.may_drop(b)
    assert not copy.Copy([a], None, BLOCK).policy.may_drop(a)


class _Action(object):
    def __init__(self):
        self.importing = set()
        self.failed = []

    def remove_importing_stores(self, names):
        self.importing -= set(names)

    def add_failed_stores(self, names):
        self.failed.extend(names)


class _Wrapper(object):
    """Glance's ImportActionWrapper, as far as the plugin task uses it."""

    image_id = 'image'

    def __init__(self):
        self.action = _Action()

    def __enter__(self):
        return self.action

    def __exit__(self, *exc):
        return False


def _task(names, must, monkeypatch, failing):
    """A plugin import task whose RBD stores are fake Ceph targets."""
    made = {}

    def target(store, image_name, size, **kwargs):
        made[store.name] = FakeCephTarget(
            store.name, size, fail_on=failing.get(store.name, ()))
        return made[store.name]

    monkeypatch.setattr(plugin.rbd_target, 'RbdTarget', target)
    rbd = [stores.RbdStore(name=n, pool='images', user='glance',
                           conf_file='ceph.conf', chunk_size=8 << 20,
                           connect_timeout=5) for n in names]
    task = plugin._SparseRbdImport('task', 'api_image_import', None,
                                   _Wrapper(), rbd, [], must)
    conf = types.SimpleNamespace(writes_in_flight=1, ceph_op_timeout=5)
    return task, made, conf


def test_plugin_drops_a_store_that_fails_to_open(monkeypatch):
    task, made, conf = _task(['a', 'b'], False, monkeypatch,
                             {'b': ('open',)})
    task._open_targets(SIZE, conf)
    assert task._live() == [made['a']]
    assert task.action_wrapper.action.failed == ['b']


def test_plugin_fails_when_a_store_fails_to_open_and_all_must(monkeypatch):
    task, made, conf = _task(['a', 'b'], True, monkeypatch,
                             {'b': ('open',)})
    with pytest.raises(errors.StoreError, match='store b: open failed'):
        task._open_targets(SIZE, conf)
    assert task.action_wrapper.action.failed == []


def test_plugin_removes_and_lists_a_store_that_fails_to_finish(monkeypatch):
    task, made, conf = _task(['a', 'b', 'c'], False, monkeypatch,
                             {'c': ('finish',)})
    task._open_targets(SIZE, conf)
    task._finish_targets()
    assert task._live() == [made['a'], made['b']]
    assert made['c'].removed and not made['a'].removed
    assert made['a'].snapshot == bytes(SIZE)
    assert task.action_wrapper.action.failed == ['c']


def test_plugin_fails_when_a_store_fails_to_finish_and_all_must(monkeypatch):
    task, made, conf = _task(['a', 'c'], True, monkeypatch,
                             {'c': ('finish',)})
    task._open_targets(SIZE, conf)
    with pytest.raises(errors.StoreError, match='store c: finish failed'):
        task._finish_targets()
    # The flow's revert removes what is left.
    assert task._live() == [made['a'], made['c']]
