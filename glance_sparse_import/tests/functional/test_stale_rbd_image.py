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

"""An RBD image named after the image is already in the pool.

An import that never finished (its API killed) leaves one, with or without
its ``snap``. The next import of that image replaces it, in Glance's real
flow against real Ceph, unless a Glance location points at it: then it is
data, and the import fails without touching it.
"""

import json
import os
import uuid

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import glance_db
from glance_sparse_import.tests.testbed import images

MiB = 1024 ** 2


@pytest.fixture
def flow(scratch_dir, ceph_cluster):
    return glance_flow.GlanceFlow(os.path.join(scratch_dir, 'glance'),
                                  {'ceph': ceph_cluster}, 'ceph')


@pytest.fixture
def raw_image(scratch_dir):
    path = os.path.join(scratch_dir, 'disk.raw')
    images.write_sparse_raw(path, 64 * MiB, [(MiB, 3 * MiB),
                                             (40 * MiB, 5 * MiB)])
    return path


def _location(cluster, name):
    return 'rbd://%s/%s/%s/snap' % (cluster.fsid, cluster.pool, name)


def _leave_rbd_image(cluster, name, snap):
    """An RBD image as a killed import leaves it: some data written."""
    spec = '%s/%s' % (cluster.pool, name)
    cluster.rbd('create', '--size', '128M', spec)
    cluster.rbd('bench', '--io-type', 'write', '--io-size', '1M',
                '--io-total', '16M', '--io-pattern', 'seq', spec)
    if snap:
        cluster.rbd('snap', 'create', spec + '@snap')
        cluster.rbd('snap', 'protect', spec + '@snap')


def _rbd_info(cluster, name):
    spec = '%s/%s' % (cluster.pool, name)
    info = json.loads(cluster.rbd('info', '--format', 'json', spec))
    snaps = json.loads(cluster.rbd('snap', 'ls', '--format', 'json', spec))
    return info['id'], info['size'], [(s['name'], s['protected'])
                                      for s in snaps]


@pytest.mark.parametrize('snap', [False, True], ids=['no-snap', 'snap'])
def test_stale_rbd_image_is_replaced(flow, ceph_cluster, raw_image, snap):
    image_id = str(uuid.uuid4())
    _leave_rbd_image(ceph_cluster, image_id, snap)
    stale_id = _rbd_info(ceph_cluster, image_id)[0]
    try:
        result = flow.run_import('raw', file=raw_image, stores=['ceph'],
                                 image_id=image_id)
        task, image = result['task'], result['image']
        assert task['status'] == 'success', (task, result['stderr'][-3000:])
        assert image['status'] == 'active'
        assert image['checksum'] == images.file_digests(raw_image)[0]
        rbd_id, size, snaps = _rbd_info(ceph_cluster, image_id)
        assert rbd_id != stale_id
        assert size == os.path.getsize(raw_image)
        assert snaps == [('snap', 'true')]
        exported = raw_image + '.exported'
        ceph_cluster.rbd('export', '--no-progress', '%s/%s@snap' % (
            ceph_cluster.pool, image_id), exported)
        assert (images.file_digests(exported) ==
                images.file_digests(raw_image))
        assert 'left by an import that did not finish' in flow.log()
    finally:
        ceph_cluster.purge_image(image_id)


def test_rbd_image_with_a_location_is_not_touched(flow, ceph_cluster,
                                                  raw_image):
    # Image A is active in the store; then its location is pointed at the
    # RBD image named after B, as an operator adding a location would.
    image_a = str(uuid.uuid4())
    image_b = str(uuid.uuid4())
    try:
        result = flow.run_import('raw', file=raw_image, stores=['ceph'],
                                 image_id=image_a)
        assert result['task']['status'] == 'success', result['task']
        _leave_rbd_image(ceph_cluster, image_b, snap=True)
        glance_db.set_location_urls(
            flow.config.db_path, image_a,
            _location(ceph_cluster, image_b))
        before = _rbd_info(ceph_cluster, image_b)

        result = flow.run_import('raw', file=raw_image, stores=['ceph'],
                                 image_id=image_b)
        task, image = result['task'], result['image']
        assert task['status'] == 'failure'
        assert task['message'] == (
            'Sparse RBD import failed: store ceph: an RBD image named %s '
            'already exists in pool %s and a Glance image location points '
            'at it' % (image_b, ceph_cluster.pool))
        assert image['status'] == 'queued'
        assert image['locations'] == []
        assert image['extra_properties']['os_glance_failed_import'] == 'ceph'
        # Same RBD image (same internal id), snapshot still protected.
        assert _rbd_info(ceph_cluster, image_b) == before
        assert ceph_cluster.rbd_used_bytes(image_b, snap='snap') == 16 * MiB
    finally:
        for name in (image_a, image_b):
            if name in ceph_cluster.rbd_images():
                ceph_cluster.purge_image(name)
