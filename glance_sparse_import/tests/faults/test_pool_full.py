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

"""The pool filling up in the middle of an import, in Glance's real flow.

Memstore does not enforce its size, so the pool fills up through its
quota, which needs a manager daemon (pool usage reaches the monitor through
it, a few seconds late). The OSD is slowed until the monitor marks the
pool full, so that the quota trips in the middle of the import.
"""

import filecmp
import json
import os
import time
import uuid

import pytest

from glance_sparse_import.tests.faults import test_ceph_faults as faults
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import procs

# Fixtures of the other Ceph fault tests, on this module's cluster.
leftovers = faults.leftovers
raw_image = faults.raw_image

MiB = 1024 ** 2
GiB = 1024 ** 3
# Room left under the quota for the second import: a tenth of its data.
HEADROOM = 24 * MiB
# Slower than in test_ceph_faults: the quota takes up to ~4 s to trip.
OP_DELAY = 0.1


@pytest.fixture(scope='module')
def cluster():
    extra = {'osd debug inject dispatch delay duration': OP_DELAY,
             'osd client watch timeout': 5}
    with fixtures.running_cluster('pool-full', memstore_bytes=GiB,
                                  extra_conf=extra, mgr=True) as c:
        yield c


def _pool_flags(cluster):
    dump = json.loads(cluster.ceph('osd', 'dump', '--format', 'json'))
    pool, = [p for p in dump['pools'] if p['pool_name'] == cluster.pool]
    return set(pool['flags_names'].split(','))


def _pool_bytes(cluster):
    df = json.loads(cluster.ceph('df', '--format', 'json'))
    pool, = [p for p in df['pools'] if p['name'] == cluster.pool]
    return pool['stats']['stored']


def _set_quota(cluster, max_bytes):
    cluster.ceph('osd', 'pool', 'set-quota', cluster.pool, 'max_bytes',
                 str(max_bytes))


def _wait_stats(cluster, stored, timeout=30):
    """Wait until the pool usage the monitor sees reaches ``stored``."""
    procs.wait_until(lambda: _pool_bytes(cluster) >= stored, timeout,
                     'pool usage not reported')


def _check_intact(cluster, image_id, raw, workdir):
    """The RBD image of an active Glance image still serves its bytes."""
    snaps = json.loads(cluster.rbd('snap', 'ls', '--format', 'json',
                                   '%s/%s' % (cluster.pool, image_id)))
    assert [(s['name'], str(s['protected']).lower()) for s in snaps] == \
        [('snap', 'true')]
    exported = os.path.join(workdir, 'kept.raw')
    cluster.rbd('export', '--no-progress',
                '%s/%s@snap' % (cluster.pool, image_id), exported)
    assert filecmp.cmp(exported, raw, shallow=False)
    os.unlink(exported)


def test_pool_full_mid_import(cluster, raw_image, scratch_dir, leftovers):
    """Over quota mid-import: clean at once, space freed, nothing lost."""
    data = sum(length for _, length in faults.EXTENTS)
    # An image already stored, which must survive.
    kept = faults._flow(scratch_dir, cluster, timeout=20)
    result = kept.run_import('raw', file=raw_image, stores=['ceph'])
    faults._check_active(result, cluster, raw_image, scratch_dir)
    kept_id = result['image']['id']
    leftovers.add(kept_id)
    _wait_stats(cluster, data)
    _set_quota(cluster, _pool_bytes(cluster) + HEADROOM)

    flow = faults._flow(scratch_dir, cluster, timeout=20)
    image_id = str(uuid.uuid4())
    run = faults._Import(flow, raw_image, image_id)
    try:
        with faults._slow(cluster):
            run.start()
            run.wait_for_writes()
            procs.wait_until(lambda: 'full_quota' in _pool_flags(cluster),
                             30, 'the quota did not trip')
            full = time.monotonic()
        result = run.outcome()
        failed = run.ended - full
        faults._check_failed(result, flow,
                             'store ceph: write failed: pool images is '
                             'over its quota (error 122)')
        # Nothing waited for a Ceph timeout, the removal went through.
        assert failed < 10, failed
        assert 'Removed RBD image %s' % image_id in flow.log()
        assert image_id not in cluster.rbd_images()
        # Deleting freed the space: the pool leaves the full state.
        procs.wait_until(lambda: 'full' not in _pool_flags(cluster), 30,
                         'the pool stayed full')
        _check_intact(cluster, kept_id, raw_image, scratch_dir)
    finally:
        _set_quota(cluster, 0)
