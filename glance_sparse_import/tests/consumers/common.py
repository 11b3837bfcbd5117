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

"""Images of every kind the plugin imports, and reading RBD images back."""

import hashlib
import json
import os
import urllib.request

import rados
import rbd

from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
# Small, as the consumers care about form, not size.
VIRTUAL = 32 * MiB
DATA = 8 * MiB
# (kind, disk_format Glance is told, qemu-img format of the file)
KINDS = (
    ('raw', 'raw', 'raw'),
    ('raw-odd-length', 'raw', 'raw'),
    ('qcow2', 'qcow2', 'qcow2'),
    ('qcow2-compressed', 'qcow2', 'qcow2'),
    ('vmdk', 'vmdk', 'vmdk'),
    ('vhd', 'vhd', 'vpc'),
    ('iso', 'iso', 'raw'),
)


class TestImage(object):
    """A source file and the raw bytes an import of it must give.

    :ivar path: file to upload
    :ivar disk_format: what Glance is told
    :ivar raw: the raw bytes, as ``qemu-img convert`` gives them
    :ivar md5: md5 of ``raw``
    :ivar sha512: sha512 of ``raw``
    """

    def __init__(self, kind, path, disk_format, raw):
        self.kind = kind
        self.path = path
        self.disk_format = disk_format
        self.raw = raw
        self.md5, self.sha512 = images.file_digests(raw)
        self.size = os.path.getsize(raw)

    def __repr__(self):
        return '<TestImage %s>' % self.kind


def build(kind, image_builder, workdir):
    """The :class:`TestImage` of ``kind`` (one of KINDS), built in workdir."""
    _kind, disk_format, qemu_format = next(k for k in KINDS if k[0] == kind)
    if kind == 'raw':
        path = image_builder.ext4_raw(VIRTUAL, DATA)
    elif kind == 'raw-odd-length':
        # Not a multiple of 512 nor of the RBD object size.
        path = images.write_sparse_raw(
            os.path.join(workdir, 'odd.raw'), VIRTUAL + 4097,
            [(0, 1 * MiB), (VIRTUAL - 3 * MiB, 3 * MiB + 4097)])
    elif kind.startswith('qcow2'):
        path = image_builder.qcow2(VIRTUAL, DATA,
                                   compressed=kind.endswith('compressed'))
    elif kind == 'vmdk':
        path = image_builder.vmdk(VIRTUAL, DATA)
    elif kind == 'vhd':
        path = os.path.join(workdir, 'disk.vhd')
        procs.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'vpc',
                   image_builder.ext4_raw(VIRTUAL, DATA), path], timeout=300)
    else:
        path = image_builder.iso(4 * MiB)
    if qemu_format == 'raw':
        raw = path
    else:
        raw = os.path.join(workdir, kind + '.expected.raw')
        procs.run(['qemu-img', 'convert', '-f', qemu_format, '-O', 'raw',
                   path, raw], timeout=300)
    return TestImage(kind, path, disk_format, raw)


class RBDReader(object):
    """Reads RBD images of one cluster through librbd."""

    def __init__(self, cluster):
        self.cluster = cluster

    def _open(self, pool, name, snapshot=None):
        client = rados.Rados(conffile=self.cluster.conf_path,
                             rados_id='admin')
        client.connect(timeout=30)
        ioctx = client.open_ioctx(pool)
        return client, ioctx, rbd.Image(ioctx, name, snapshot=snapshot,
                                        read_only=True)

    def digest(self, pool, name, length, snapshot=None):
        """Read an image back.

        :returns: md5 of the first ``length`` bytes, the image size in
            bytes, and the extents ``[(offset, length)]`` that hold data
            past ``length``
        """
        client, ioctx, image = self._open(pool, name, snapshot)
        try:
            size = image.size()
            md5 = hashlib.md5()
            offset = 0
            while offset < length:
                n = min(4 * MiB, length - offset)
                md5.update(image.read(offset, n))
                offset += n
            beyond = []
            if size > length:
                image.diff_iterate(
                    length, size - length, None,
                    lambda off, n, exists: beyond.append((off, n))
                    if exists else None)
            return md5.hexdigest(), size, beyond
        finally:
            image.close()
            ioctx.close()
            client.shutdown()


def parent(cluster, spec):
    """``pool/image@snap`` of an RBD image's parent, from ``rbd info``."""
    info = json.loads(cluster.rbd('info', '--format', 'json', spec))
    p = info['parent']
    return '%s/%s@%s' % (p['pool'], p['image'], p['snapshot'])


def corrupt_snapshot(cluster, image_id, pool='images'):
    """Change one byte of ``<image_id>@snap``, keeping its size.

    Ceph serves another content under the same location, as a damaged or
    tampered store would.
    """
    spec = '%s/%s' % (pool, image_id)
    client = rados.Rados(conffile=cluster.conf_path, rados_id='admin')
    client.connect(timeout=30)
    try:
        with client.open_ioctx(pool) as ioctx:
            with rbd.Image(ioctx, image_id) as image:
                byte = image.read(0, 1)
                image.write(bytes([byte[0] ^ 0xff]), 0)
    finally:
        client.shutdown()
    cluster.rbd('snap', 'unprotect', spec + '@snap')
    cluster.rbd('snap', 'rm', '--no-progress', spec + '@snap')
    cluster.rbd('snap', 'create', spec + '@snap')
    cluster.rbd('snap', 'protect', spec + '@snap')


def import_image(glance, image, stores=None):
    """Import ``image`` through the plugin with the glance CLI; wait."""
    shown = glance.image_create_via_import(
        image.path, image.disk_format, name='consumer-' + image.kind,
        stores=stores)
    task = glance.wait_task(shown['id'])
    assert task['status'] == 'success', task
    return glance.wait_for_status(shown['id'])


def api_import(api, image, stores=('ceph',)):
    """Import ``image`` with glance-direct through plain API calls; wait.

    Cheaper than the CLI where the client is not what a test is about.
    """
    status, body = api.request('POST', '/v2/images', {
        'name': 'consumer-' + image.kind, 'disk_format': image.disk_format,
        'container_format': 'bare'})
    assert status == 201, body
    image_id = body['id']
    with open(image.path, 'rb') as f:
        request = urllib.request.Request(
            '%s/v2/images/%s/stage' % (api.url, image_id), data=f,
            method='PUT', headers={
                'X-Auth-Token': 'testbed',
                'Content-Type': 'application/octet-stream',
                'Content-Length': str(os.path.getsize(image.path))})
        with urllib.request.urlopen(request, timeout=300) as response:
            assert response.status == 204, response.status
    api_call_import(api, image_id, 'glance-direct', stores)
    return image_id


def api_call_import(api, image_id, method, stores,
                    all_stores_must_succeed=True):
    """``POST /v2/images/ID/import``."""
    status, body = api.request(
        'POST', '/v2/images/%s/import' % image_id,
        {'method': {'name': method}, 'stores': list(stores),
         'all_stores_must_succeed': all_stores_must_succeed})
    assert status == 202, body
