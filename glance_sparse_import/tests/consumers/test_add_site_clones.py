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

"""Cinder and Nova clone from a site that ``add-site`` added.

The image is imported with the plugin to ``ceph`` only, then added to
``ceph2`` with ``glance-sparse-import add-site``. Cinder and Nova, set up
on ``ceph2``'s cluster as an edge site's are, must pick the location
add-site registered, clone its ``snap`` and give the image's bytes.
"""

import json
import os
import uuid

import pytest

from glance_sparse_import.tests.consumers import common
from glance_sparse_import.tests.consumers import test_cinder_nova as cn
from glance_sparse_import.tests.e2e import test_add_site as e2e
from glance_sparse_import.tests.testbed import cli

GiB = 1024 ** 3


@pytest.fixture
def edge(ceph_cluster2):
    """``ceph2`` with Cinder's and Nova's pools; clones removed after."""
    existing = json.loads(ceph_cluster2.ceph('osd', 'pool', 'ls',
                                             '--format', 'json'))
    for pool in ('volumes', 'vms'):
        if pool not in existing:
            ceph_cluster2.ceph('osd', 'pool', 'create', pool, '8')
            ceph_cluster2.rbd('pool', 'init', pool, timeout=120)
    made = []
    yield ceph_cluster2, made
    for spec in made:
        pool, name = spec.split('/')
        if name in ceph_cluster2.rbd_images(pool):
            ceph_cluster2.rbd('rm', '--no-progress', spec)


@pytest.fixture
def added(glance_api_factory, ceph_cluster, ceph_cluster2, test_images):
    """(api, image as shown) of an image imported to ceph, added to ceph2."""
    api = glance_api_factory(
        {'ceph': ceph_cluster, 'ceph2': ceph_cluster2}, 'ceph',
        plugins=['sparse_rbd_import'],
        extra_conf={'DEFAULT': {'show_multiple_locations': True}})
    source = test_images('qcow2-compressed')
    image = common.import_image(cli.GlanceCLI(api), source, stores=['ceph'])
    result = e2e.add_site(api, image['id'], '--stores', 'ceph2')
    assert result.returncode == 0, result.output
    shown = cli.GlanceCLI(api).get_image(image['id'])
    assert set(shown['stores'].split(',')) == {'ceph', 'ceph2'}
    return api, shown, source


def test_cinder_and_nova_clone_the_added_site(added, edge, scratch_dir):
    api, image, source = added
    cluster, clones = edge
    location = cn._location(cluster, image['id'])

    conf = os.path.join(scratch_dir, 'cinder.conf')
    sections = cn._sections(scratch_dir)
    sections['DEFAULT'].update({'glance_api_servers': api.url,
                                'auth_strategy': 'noauth',
                                'enabled_backends': 'rbd1'})
    sections['rbd1'] = {
        'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver',
        'volume_backend_name': 'rbd1', 'rbd_pool': 'volumes',
        'rbd_ceph_conf': cluster.conf_path, 'rbd_user': 'admin'}
    cn._write_conf(conf, sections)
    volume = str(uuid.uuid4())
    clones.append('volumes/volume-%s' % volume)
    [result] = cn._run('cinder_clone', conf, 1,
                       '%s:%s' % (image['id'], volume))
    assert location in [loc['url'] for loc in result['locations']]
    assert result['cloned'] is True
    assert common.parent(cluster, 'volumes/volume-' + volume) == (
        'images/%s@snap' % image['id'])
    md5, size, beyond = common.RBDReader(cluster).digest(
        'volumes', 'volume-' + volume, source.size)
    assert md5 == source.md5 == image['checksum']
    assert (size, beyond) == (1 * GiB, [])

    conf = os.path.join(scratch_dir, 'nova.conf')
    sections = cn._sections(scratch_dir)
    sections['glance'] = {'api_servers': api.url}
    sections['libvirt'] = {
        'images_type': 'rbd', 'images_rbd_pool': 'vms',
        'images_rbd_ceph_conf': cluster.conf_path, 'rbd_user': 'admin'}
    cn._write_conf(conf, sections)
    disk = '%s_disk' % uuid.uuid4()
    clones.append('vms/' + disk)
    [result] = cn._run('nova_clone', conf, '%s:%s' % (image['id'], disk))
    urls = [loc['url'] for loc in result['locations']]
    # Only the edge's own location is cloneable there.
    assert result['cloneable'] == [url == location for url in urls]
    assert result['parent'] == ['images', image['id'], 'snap']
    assert common.parent(cluster, 'vms/' + disk) == (
        'images/%s@snap' % image['id'])
    md5, size, _beyond = common.RBDReader(cluster).digest(
        'vms', disk, source.size)
    assert (md5, size) == (source.md5, source.size)
