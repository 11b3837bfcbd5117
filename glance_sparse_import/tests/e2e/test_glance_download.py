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

"""glance-download between two regions, each with its own Glance, database
and Ceph cluster, both running the plugin.

Region two imports an image of region one with ``glance
image-create-via-import --import-method glance-download``: its Glance finds
region one's endpoint in the service catalog of the request, reads the
image's metadata and data from there with the caller's token, stages the
data, and the plugin writes it to region two's cluster.
"""

import filecmp
import os

import pytest

from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
METHODS = '[glance-direct,web-download,copy-image,glance-download]'


@pytest.fixture(scope='module')
def regions(module_glance_api_factory, ceph_cluster, ceph_cluster2):
    one = module_glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['sparse_rbd_import'],
        workers=1, region='RegionOne')
    two = module_glance_api_factory(
        {'ceph': ceph_cluster2}, 'ceph', plugins=['sparse_rbd_import'],
        workers=1, region='RegionTwo', remote_regions={'RegionOne': one.url},
        extra_conf={'DEFAULT': {'enabled_import_methods': METHODS}})
    return one, two


def test_import_from_another_region(regions, ceph_cluster, ceph_cluster2,
                                    image_builder, scratch_dir):
    one, two = regions
    path = image_builder.qcow2(512 * MiB, 48 * MiB, compressed=True)
    raw = os.path.join(scratch_dir, 'expected.raw')
    procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path, raw],
              timeout=300)
    md5, sha512 = images.file_digests(raw)
    glance1, glance2 = cli.GlanceCLI(one), cli.GlanceCLI(two)
    source = glance1.image_create_via_import(
        path, 'qcow2', name='region-one', properties={'os_distro': 'debian'})
    source = glance1.wait_for_status(source['id'])

    created = glance2.image_create_via_import(
        disk_format='raw', name='from-region-one',
        import_method='glance-download',
        extra_args=['--remote-region', 'RegionOne',
                    '--remote-image-id', source['id']])
    task = glance2.wait_task(created['id'])
    assert task['status'] == 'success', task['message']
    image = glance2.get_image(created['id'])

    assert image['id'] != source['id']
    for key in ('checksum', 'os_hash_algo', 'os_hash_value', 'size',
                'virtual_size', 'disk_format', 'container_format',
                'os_distro'):
        assert image[key] == source[key], key
    assert (image['checksum'], image['os_hash_value']) == (md5, sha512)
    assert image['size'] == image['virtual_size'] == os.path.getsize(raw)
    assert image['disk_format'] == 'raw'
    assert image['stores'] == 'ceph'
    assert image['direct_url'] == 'rbd://%s/images/%s/snap' % (
        ceph_cluster2.fsid, image['id'])

    # Region one served the data; region two's plugin wrote its cluster.
    with open(one.uwsgi_log_path, errors='replace') as f:
        assert 'GET /v2/images/%s/file' % source['id'] in f.read()
    summary = bench.parse_import_summary(two.log_text(), image['id'])
    assert summary and summary['stores'] == ['ceph']
    assert summary['written'] < summary['virtual']
    assert bench.parse_import_summary(one.log_text(), image['id']) is None
    assert image['id'] not in ceph_cluster.rbd_images()
    used = ceph_cluster2.rbd_used_bytes(image['id'], snap='snap')
    assert 0 < used < image['virtual_size']
    exported = os.path.join(scratch_dir, 'export.raw')
    ceph_cluster2.rbd('export', '--no-progress',
                      'images/%s@snap' % image['id'], exported)
    assert filecmp.cmp(exported, raw, shallow=False)
