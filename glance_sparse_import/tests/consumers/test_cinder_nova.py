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

"""Cinder and Nova use the plugin's images by copy-on-write clone.

Cinder's RBD volume driver and Nova's libvirt RBD image backend, installed
from PyPI, each run in a process of their own against the test bed's
Glance API and Ceph cluster (see cinder_clone.py and nova_clone.py). They
must find the image's location cloneable, clone ``<id>@snap`` and give a
disk whose bytes are the image's.
"""

import json
import os
import subprocess
import sys
import uuid

import pytest

from glance_sparse_import.tests.consumers import common

GiB = 1024 ** 3
# A converted image and a raw one whose size is not a multiple of 512.
KINDS = ('qcow2-compressed', 'raw-odd-length')


@pytest.fixture(scope='module')
def pools(ceph_cluster):
    """Cinder's and Nova's pools beside Glance's, as a cloud has them."""
    existing = json.loads(ceph_cluster.ceph('osd', 'pool', 'ls', '--format',
                                            'json'))
    for pool in ('volumes', 'vms'):
        if pool not in existing:
            ceph_cluster.ceph('osd', 'pool', 'create', pool, '8')
            ceph_cluster.rbd('pool', 'init', pool, timeout=120)
    return 'volumes', 'vms'


@pytest.fixture
def clones(ceph_cluster, pools):
    """``pool/image`` names of clones, removed after the test.

    Glance cannot delete an image whose snapshot still has clones.
    """
    made = []
    yield made
    for spec in made:
        pool, name = spec.split('/')
        if name in ceph_cluster.rbd_images(pool):
            ceph_cluster.rbd('rm', '--no-progress', spec)


def _write_conf(path, sections):
    with open(path, 'w') as f:
        for section, options in sections.items():
            f.write('[%s]\n' % section)
            for key, value in options.items():
                f.write('%s = %s\n' % (key, value))


def _run(module, *args):
    """Run a consumer module with this interpreter; its JSON output."""
    res = subprocess.run(
        [sys.executable, '-m', 'glance_sparse_import.tests.consumers.'
         + module] + [str(a) for a in args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=300)
    assert res.returncode == 0, res.stderr[-6000:]
    return json.loads(res.stdout)


def _sections(workdir):
    return {'DEFAULT': {'state_path': workdir, 'debug': True,
                        'log_file': os.path.join(workdir, 'service.log')},
            'oslo_concurrency': {'lock_path': os.path.join(workdir,
                                                           'locks')}}


def _location(cluster, image_id):
    return 'rbd://%s/images/%s/snap' % (cluster.fsid, image_id)


def test_cinder_volume_from_image_is_a_clone(
        plugin_api, ceph_cluster, clones, imported, test_images,
        scratch_dir):
    shown = [imported(kind) for kind in KINDS]
    conf = os.path.join(scratch_dir, 'cinder.conf')
    sections = _sections(scratch_dir)
    sections['DEFAULT'].update({'glance_api_servers': plugin_api.url,
                                'auth_strategy': 'noauth',
                                'enabled_backends': 'rbd1'})
    sections['rbd1'] = {
        'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver',
        'volume_backend_name': 'rbd1',
        'rbd_pool': 'volumes',
        'rbd_ceph_conf': ceph_cluster.conf_path,
        'rbd_user': 'admin',
    }
    _write_conf(conf, sections)
    volumes = [str(uuid.uuid4()) for _kind in KINDS]
    clones.extend('volumes/volume-%s' % v for v in volumes)

    out = _run('cinder_clone', conf, 1, *('%s:%s' % (image['id'], volume)
                                          for image, volume
                                          in zip(shown, volumes)))

    for kind, image, volume, result in zip(KINDS, shown, volumes, out):
        source = test_images(kind)
        # Glance 33 answers Cinder's GET /v2/images/ID/locations: Cinder
        # reads the location list, not direct_url.
        assert result['direct_url'] is None
        assert _location(ceph_cluster, image['id']) in [
            loc['url'] for loc in result['locations']]
        assert result['disk_format'] == 'raw'
        assert result['size'] == source.size
        assert result['cloned'] is True
        name = 'volume-%s' % volume
        assert result['volume_name'] == name
        assert common.parent(ceph_cluster, 'volumes/' + name) == (
            'images/%s@snap' % image['id'])
        md5, size, beyond = common.RBDReader(ceph_cluster).digest(
            'volumes', name, source.size)
        assert md5 == source.md5 == image['checksum']
        # Cinder grew the clone to the volume size, zeros past the image.
        assert size == 1 * GiB
        assert beyond == []


def test_nova_disk_from_image_is_a_clone(
        plugin_api, ceph_cluster, clones, imported, test_images,
        scratch_dir):
    shown = [imported(kind) for kind in KINDS]
    conf = os.path.join(scratch_dir, 'nova.conf')
    sections = _sections(scratch_dir)
    sections['glance'] = {'api_servers': plugin_api.url}
    sections['libvirt'] = {
        'images_type': 'rbd',
        'images_rbd_pool': 'vms',
        'images_rbd_ceph_conf': ceph_cluster.conf_path,
        'rbd_user': 'admin',
    }
    _write_conf(conf, sections)
    disks = ['%s_disk' % uuid.uuid4() for _kind in KINDS]
    clones.extend('vms/' + d for d in disks)

    out = _run('nova_clone', conf, *('%s:%s' % (image['id'], disk)
                                     for image, disk in zip(shown, disks)))

    for kind, image, disk, result in zip(KINDS, shown, disks, out):
        source = test_images(kind)
        # Nova lists the direct_url (show_image_direct_url) as a location.
        assert _location(ceph_cluster, image['id']) in [
            loc['url'] for loc in result['locations']]
        assert all(result['cloneable'])
        assert result['disk_format'] == 'raw'
        assert result['rbd_name'] == disk
        assert result['parent'] == ['images', image['id'], 'snap']
        assert common.parent(ceph_cluster, 'vms/' + disk) == (
            'images/%s@snap' % image['id'])
        md5, size, beyond = common.RBDReader(ceph_cluster).digest(
            'vms', disk, source.size)
        assert md5 == source.md5 == image['checksum']
        assert size == source.size
