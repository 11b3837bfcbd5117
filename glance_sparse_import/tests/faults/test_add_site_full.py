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

"""A site's pool filling up while ``add-site`` copies an image to it.

The real CLI against the real Glance API: the image is in edge1, add-site
copies it to edge2 (healthy) and to ``full``, a cluster whose pool quota
leaves less room than the image's data. As in test_pool_full, the quota
needs a manager daemon, and the OSD is slowed until the monitor marks the
pool full so that the quota trips mid-copy; then it is fast again, as a
real one would be for the removal.
"""

import time

import pytest

from glance_sparse_import.tests.e2e import test_add_site as e2e
from glance_sparse_import.tests.faults import test_ceph_faults as faults
from glance_sparse_import.tests.faults import test_pool_full as pool_full
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
GiB = 1024 ** 3
# Room left under the quota: a fraction of the image's data.
HEADROOM = 4 * MiB


@pytest.fixture(scope='module')
def full():
    extra = {'osd debug inject dispatch delay duration': pool_full.OP_DELAY,
             'osd client watch timeout': 5}
    with fixtures.running_cluster('add-site-full', memstore_bytes=GiB,
                                  extra_conf=extra, mgr=True) as c:
        yield c


@pytest.fixture
def api(glance_api_factory, ceph_cluster, ceph_cluster2, full):
    return glance_api_factory(
        {'edge1': ceph_cluster, 'edge2': ceph_cluster2, 'full': full},
        'edge1', plugins=['sparse_rbd_import'],
        rados_connect_timeout=e2e.TIMEOUT,
        extra_conf={'DEFAULT': {'show_multiple_locations': True}})


def _objects(cluster):
    return set(cluster.rados('-p', cluster.pool, 'ls').split())


def _tripped(proc, cluster):
    if proc.poll() is not None:
        raise AssertionError('add-site ended before the quota tripped: %s'
                             % ''.join(proc.communicate()))
    return 'full_quota' in pool_full._pool_flags(cluster)


def test_pool_full_during_add_site(api, ceph_cluster, ceph_cluster2, full,
                                   image_builder, scratch_dir):
    """edge2 is added; ``full`` is reported, cleaned, the image intact."""
    glance = cli.GlanceCLI(api)
    before, path = e2e.import_to_edge1(glance, image_builder, 'full',
                                       512 * MiB, 96 * MiB)
    image_id = before['id']
    assert before['stores'] == 'edge1'
    data = ceph_cluster.rbd_used_bytes(image_id, snap='snap')
    assert data > 4 * HEADROOM

    objects = _objects(full)
    pool_full._set_quota(full, pool_full._pool_bytes(full) + HEADROOM)
    try:
        proc = e2e.start_add_site(api, image_id, '--stores', 'edge2,full')
        try:
            with faults._slow(full):
                procs.wait_until(lambda: _tripped(proc, full), 60,
                                 'the quota did not trip',
                                 abort=(AssertionError,))
                tripped = time.monotonic()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        ended = time.monotonic()
        # Nothing waited for a Ceph timeout.
        assert ended - tripped < 10, (ended - tripped, out + err)
        assert proc.returncode == 1, out + err
        lines = out.splitlines()
        url = 'rbd://%s/images/%s/snap' % (ceph_cluster2.fsid, image_id)
        assert 'image %s: store edge2: added %s' % (image_id, url) in \
            out, out + err
        assert ('image %s: store full: NOT added: store full: write '
                'failed: pool images is over its quota (error 122)'
                % image_id) in lines, out + err
        assert '1 of 2 store copies not added' in err
        assert image_id not in full.rbd_images()
        # Nor any of its objects: only the pool's RBD bookkeeping is new.
        assert _objects(full) - objects <= {'rbd_directory', 'rbd_trash'}
        # Removing it freed the space.
        procs.wait_until(
            lambda: 'full' not in pool_full._pool_flags(full), 30,
            'the pool stayed full')
    finally:
        pool_full._set_quota(full, 0)

    after = glance.get_image(image_id)
    e2e._unchanged(before, after)
    assert set(after['stores'].split(',')) == {'edge1', 'edge2'}
    locations = e2e._locations(api, image_id)
    assert locations == {
        'edge1': 'rbd://%s/images/%s/snap' % (ceph_cluster.fsid, image_id),
        'edge2': url}
    e2e._check_copy(ceph_cluster2, image_id, e2e.raw_of(path, scratch_dir),
                    scratch_dir)
