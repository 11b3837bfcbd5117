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

"""End to end: the real ``glance`` CLI, a real Glance API under uWSGI with
sparse_rbd_import enabled, and a real Ceph cluster.

After each import the checks of the operators' guide are repeated:
``qemu-img info`` virtual size against the sum of ``rbd diff``, and
``glance image-show``.
"""

import os

import pytest

from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import series

MiB = 1024 ** 2
GiB = 1024 ** 3


@pytest.fixture
def plugin_glance(glance_api_factory, ceph_cluster):
    """Glance with one thin RBD store ``ceph`` and sparse_rbd_import."""
    return glance_api_factory({'ceph': ceph_cluster}, 'ceph',
                              plugins=['sparse_rbd_import'])


@pytest.fixture
def glance(plugin_glance):
    return cli.GlanceCLI(plugin_glance)


def _export_md5(cluster, image_id, scratch_dir):
    path = os.path.join(scratch_dir, image_id + '.export')
    cluster.rbd('export', '--no-progress', 'images/%s@snap' % image_id, path)
    try:
        return images.file_digests(path, ['md5'])[0], os.path.getsize(path)
    finally:
        os.unlink(path)


def _import_and_verify(glance, cluster, path, disk_format, scratch_dir,
                       **kwargs):
    image = glance.image_create_via_import(path, disk_format,
                                           name='e2e-%s' % disk_format,
                                           **kwargs)
    glance.wait_for_status(image['id'], timeout=300)
    shown = glance.image_show(image['id'])
    assert shown['status'] == 'active'
    virtual = images.qemu_img_info(path)['virtual-size']
    assert shown['virtual_size'] == virtual
    assert shown['size'] == virtual
    used = cluster.rbd_used_bytes(image['id'])
    assert 0 < used < virtual
    md5, size = _export_md5(cluster, image['id'], scratch_dir)
    assert md5 == shown['checksum']
    assert size == virtual
    return shown, used


@pytest.mark.parametrize('kind', ['raw', 'qcow2',
                                  series.core('qcow2-compressed'),
                                  'vmdk', 'iso'])
def test_glance_direct(glance, ceph_cluster, image_builder, scratch_dir,
                       kind):
    virtual, data = 512 * MiB, 48 * MiB
    if kind == 'raw':
        path, fmt = image_builder.ext4_raw(virtual, data), 'raw'
    elif kind.startswith('qcow2'):
        path = image_builder.qcow2(virtual, data,
                                   compressed=kind.endswith('compressed'))
        fmt = 'qcow2'
    elif kind == 'vmdk':
        path, fmt = image_builder.vmdk(virtual, data), 'vmdk'
    else:
        path, fmt = image_builder.iso(8 * MiB), 'iso'
    shown, used = _import_and_verify(glance, ceph_cluster, path, fmt,
                                     scratch_dir)
    assert shown['disk_format'] == ('iso' if fmt == 'iso' else 'raw')
    assert shown['container_format'] == 'bare'
    assert shown['os_hash_algo'] == 'sha512'
    assert shown['stores'] == 'ceph'
    if fmt != 'iso':
        assert used <= virtual / 4


def test_web_download(glance, ceph_cluster, image_builder, file_server,
                      scratch_dir):
    path = image_builder.qcow2(512 * MiB, 48 * MiB, compressed=True)
    image = glance.image_create_via_import(
        uri=file_server.url(path), disk_format='qcow2', name='e2e-web')
    glance.wait_for_status(image['id'], timeout=300)
    shown = glance.image_show(image['id'])
    md5, _size = _export_md5(ceph_cluster, image['id'], scratch_dir)
    assert md5 == shown['checksum']
    assert shown['disk_format'] == 'raw'


def test_same_metadata_as_stock_glance(glance_api_factory, ceph_cluster,
                                       image_builder, scratch_dir):
    """Stock (image_conversion + thin RBD) and the plugin, same input."""
    path = image_builder.qcow2(1 * GiB, 64 * MiB, compressed=True)
    stock = cli.GlanceCLI(glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['image_conversion']))
    ours = cli.GlanceCLI(glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['sparse_rbd_import']))
    results = {}
    for name, glance in (('stock', stock), ('ours', ours)):
        image = glance.image_create_via_import(path, 'qcow2', name=name)
        glance.wait_for_status(image['id'], timeout=600)
        shown = glance.image_show(image['id'])
        results[name] = (
            shown, ceph_cluster.rbd_used_bytes(shown['id'], snap='snap'),
            _export_md5(ceph_cluster, shown['id'], scratch_dir))
    (s_img, s_used, s_export), (o_img, o_used, o_export) = (
        results['stock'], results['ours'])
    for key in ('checksum', 'os_hash_algo', 'os_hash_value', 'size',
                'virtual_size', 'disk_format', 'container_format'):
        assert o_img[key] == s_img[key], key
    assert o_export == s_export
    assert o_used <= s_used
    # Same location form: rbd://<fsid>/<pool>/<image>/snap.
    for shown in (s_img, o_img):
        assert shown['direct_url'] == 'rbd://%s/images/%s/snap' % (
            ceph_cluster.fsid, shown['id'])


def test_hostile_image_fails_cleanly(glance, ceph_cluster, image_builder,
                                     scratch_dir):
    base = image_builder.qcow2(512 * MiB, 8 * MiB)
    overlay = os.path.join(scratch_dir, 'overlay.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b',
               base, overlay])
    image = glance.image_create_via_import(overlay, 'qcow2',
                                           name='e2e-hostile', check=False)
    if isinstance(image, cli.CLIResult):
        # The CLI may print the image and then report the failed task.
        image_id = _id_from_output(image.output)
    else:
        image_id = image['id']
    # The revert puts the image back to queued before Glance marks the task
    # failed: wait for the task.
    task = glance.wait_task(image_id, timeout=120)
    assert task['status'] == 'failure', glance.explain(image_id)
    message = task['message']
    assert message.startswith('Sparse RBD import failed: ')
    # The format inspector refuses the backing file before qemu-img does.
    assert 'disallowed configuration' in message or 'backing' in message
    shown = glance.get_image(image_id)
    assert shown['status'] == 'queued'
    assert shown['os_glance_failed_import'] == 'ceph'
    assert shown['os_glance_importing_to_stores'] == ''
    assert image_id not in ceph_cluster.rbd_images()


def _id_from_output(text):
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) == 2 and cells[0] == 'id':
            return cells[1]
    raise AssertionError('no image id in:\n%s' % text)
