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

"""End to end, distributed compute nodes: three Ceph clusters as three
edge sites behind one Glance API, driven with the real ``glance`` CLI
(``--stores``, ``--allow-failure``).
"""

import filecmp
import os
import time

import pytest

from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
SITES = ('edge1', 'edge2', 'edge3')
# Ceph timeout of the stores, seconds: a site down costs about this much.
TIMEOUT = 5


@pytest.fixture
def dcn_api(glance_api_factory, ceph_cluster, ceph_cluster2, ceph_cluster3):
    """Three RBD stores with different chunk sizes, and a file store."""
    return glance_api_factory(
        {'edge1': ceph_cluster, 'edge2': ceph_cluster2,
         'edge3': ceph_cluster3, 'file1': None}, 'edge1',
        plugins=['sparse_rbd_import'], rados_connect_timeout=TIMEOUT,
        extra_conf={'edge2': {'rbd_store_chunk_size': 4},
                    'edge3': {'rbd_store_chunk_size': 16}})


@pytest.fixture
def glance(dcn_api):
    return cli.GlanceCLI(dcn_api)


@pytest.fixture
def clusters(ceph_cluster, ceph_cluster2, ceph_cluster3):
    return dict(zip(SITES, (ceph_cluster, ceph_cluster2, ceph_cluster3)))


def _raw(image_builder, scratch_dir):
    path = image_builder.qcow2(512 * MiB, 48 * MiB, compressed=True)
    raw = os.path.join(scratch_dir, 'expected.raw')
    if not os.path.exists(raw):
        procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path,
                   raw], timeout=300)
    return (path, raw) + images.file_digests(raw)


def _assert_success(glance, image_id):
    task = glance.wait_task(image_id)
    assert task['status'] == 'success', glance.explain(image_id)


def _check_copy(cluster, image_id, raw, scratch_dir):
    exported = os.path.join(scratch_dir, '%s.export' % cluster.name)
    cluster.rbd('export', '--no-progress', 'images/%s@snap' % image_id,
                exported)
    try:
        assert filecmp.cmp(exported, raw, shallow=False), cluster
    finally:
        os.unlink(exported)


def _check_image(glance, image_id, stores, failed, raw, md5, sha512):
    image = glance.get_image(image_id)
    assert image['status'] == 'active'
    assert set(image['stores'].split(',')) == set(stores)
    assert image['os_glance_failed_import'] == ','.join(sorted(failed))
    assert image['os_glance_importing_to_stores'] == ''
    assert image['checksum'] == md5
    assert image['os_hash_value'] == sha512
    assert image['size'] == os.path.getsize(raw)
    assert image['disk_format'] == 'raw'
    return image


def test_import_to_three_sites(glance, dcn_api, clusters, image_builder,
                               file_server, scratch_dir):
    path, raw, md5, sha512 = _raw(image_builder, scratch_dir)

    image = glance.image_create_via_import(path, 'qcow2', name='dcn',
                                           stores=SITES)
    _assert_success(glance, image['id'])
    _check_image(glance, image['id'], SITES, (), raw, md5, sha512)
    for name, cluster in clusters.items():
        _check_copy(cluster, image['id'], raw, scratch_dir)

    # web-download, mixed with a file store.
    image = glance.image_create_via_import(
        uri=file_server.url(path), disk_format='qcow2', name='dcn-web',
        stores=SITES + ('file1',))
    # Without --allow-failure False the image is active from the first
    # store on; the task ends after the last one.
    _assert_success(glance, image['id'])
    _check_image(glance, image['id'], SITES + ('file1',), (), raw, md5,
                 sha512)
    for name, cluster in clusters.items():
        _check_copy(cluster, image['id'], raw, scratch_dir)
    assert filecmp.cmp(os.path.join(dcn_api.store_dir('file1'),
                                    image['id']), raw, shallow=False)


def test_site_down(glance, clusters, image_builder, scratch_dir):
    """edge3 loses its OSD: ``--allow-failure`` decides the outcome."""
    path, raw, md5, sha512 = _raw(image_builder, scratch_dir)
    clusters['edge3'].stop_osd()
    try:
        start = time.monotonic()
        allowed = glance.image_create_via_import(
            path, 'qcow2', name='dcn-allowed', stores=SITES,
            all_stores_must_succeed=False)
        _assert_success(glance, allowed['id'])
        assert time.monotonic() - start < 120

        strict = glance.image_create_via_import(
            path, 'qcow2', name='dcn-strict', stores=SITES,
            all_stores_must_succeed=True)
        task = glance.wait_task(strict['id'])
    finally:
        clusters['edge3'].start_osd()

    _check_image(glance, allowed['id'], ('edge1', 'edge2'), ('edge3',), raw,
                 md5, sha512)
    for name in ('edge1', 'edge2'):
        _check_copy(clusters[name], allowed['id'], raw, scratch_dir)
    assert allowed['id'] not in clusters['edge3'].rbd_images()

    assert task['status'] == 'failure', glance.explain(strict['id'])
    assert 'store edge3: cannot create the RBD image' in task['message']
    image = glance.get_image(strict['id'])
    assert image['status'] == 'queued'
    assert 'stores' not in image or image['stores'] == ''
    assert image['os_glance_failed_import'] == ','.join(SITES)
    assert image['os_glance_importing_to_stores'] == ''
    assert image['checksum'] is None
    for cluster in clusters.values():
        assert strict['id'] not in cluster.rbd_images()
