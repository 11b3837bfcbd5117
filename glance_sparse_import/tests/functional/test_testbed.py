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

"""The test bed itself: real Ceph, real Glance, real CLI."""

import hashlib
import os

from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = images.MiB


def md5_of(path):
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(4 * MiB), b''):
            digest.update(block)
    return digest.hexdigest()


def test_rbd_write_read(ceph_cluster, scratch_dir):
    src = images.write_sparse_raw(os.path.join(scratch_dir, 'src.raw'),
                                  32 * MiB, [(0, MiB), (20 * MiB, 3 * MiB)])
    ceph_cluster.rbd('import', '--no-progress', src, 'images/rw')
    try:
        out = os.path.join(scratch_dir, 'out.raw')
        ceph_cluster.rbd('export', '--no-progress', 'images/rw', out)
        assert md5_of(out) == md5_of(src)
        # rbd import skips zeros, so only the written extents exist.
        assert ceph_cluster.rbd_used_bytes('rw') == 4 * MiB
        assert 'rw' in ceph_cluster.rbd_images()
    finally:
        ceph_cluster.purge_image('rw')
    assert 'rw' not in ceph_cluster.rbd_images()


def test_two_clusters_at_once(ceph_cluster, ceph_cluster2):
    assert ceph_cluster.fsid != ceph_cluster2.fsid
    assert ceph_cluster.mon_port != ceph_cluster2.mon_port
    ceph_cluster2.rbd('create', '--size', '8M', 'images/only-in-2')
    try:
        assert 'only-in-2' in ceph_cluster2.rbd_images()
        assert 'only-in-2' not in ceph_cluster.rbd_images()
    finally:
        ceph_cluster2.purge_image('only-in-2')


def test_osd_restart_keeps_data(scratch_dir):
    src = images.write_sparse_raw(os.path.join(scratch_dir, 'src.raw'),
                                  8 * MiB, [(MiB, MiB)])
    with fixtures.running_cluster('osdrestart',
                                  memstore_bytes=256 * MiB) as cluster:
        cluster.rbd('import', '--no-progress', src, 'images/keep')
        osd_pid = procs.read_pid(cluster.pid_file('osd.0'))
        cluster.stop_osd()
        assert not procs.pid_alive(osd_pid)
        cluster.start_osd()
        out = os.path.join(scratch_dir, 'out.raw')
        cluster.rbd('export', '--no-progress', 'images/keep', out)
        assert md5_of(out) == md5_of(src)
        mon_pid = procs.read_pid(cluster.pid_file('mon.a'))
    assert not procs.pid_alive(mon_pid)


def test_stock_import_qcow2(stock_glance, stock_cli, ceph_cluster,
                            image_builder):
    raw = image_builder.ext4_raw(256 * MiB, 16 * MiB)
    qcow2 = image_builder.qcow2(256 * MiB, 16 * MiB)
    image = stock_cli.image_create_via_import(qcow2, 'qcow2', name='stock')
    image = stock_cli.wait_for_status(image['id'], timeout=120)

    shown = stock_cli.image_show(image['id'])
    assert shown['status'] == 'active'
    assert shown['disk_format'] == 'raw'
    assert shown['size'] == shown['virtual_size'] == 256 * MiB
    assert shown['checksum'] == md5_of(raw)
    assert shown['stores'] == 'ceph'
    assert shown['direct_url'] == 'rbd://%s/images/%s/snap' % (
        ceph_cluster.fsid, image['id'])
    # The image goes active before Glance completes the task.
    assert stock_cli.wait_task(image['id'])['status'] == 'success'

    # The operators' guide checks thin provisioning with rbd diff.
    used = ceph_cluster.rbd_used_bytes(image['id'])
    assert 0 < used < 256 * MiB
    snaps = ceph_cluster.rbd('snap', 'ls', '--format', 'json',
                             'images/%s' % image['id'])
    assert '"name":"snap"' in snaps and '"protected":"true"' in snaps
    ceph_cluster.rbd('info', 'images/%s@snap' % image['id'])


def test_stock_web_download(stock_cli, file_server, image_builder):
    qcow2 = image_builder.qcow2(64 * MiB, 4 * MiB)
    image = stock_cli.image_create_via_import(
        disk_format='qcow2', uri=file_server.url(qcow2))
    image = stock_cli.wait_for_status(image['id'], timeout=120)
    assert image['virtual_size'] == 64 * MiB


def test_cli_reports_failure(stock_cli):
    result = stock_cli.image_create_via_import(
        '/nonexistent', 'qcow2', check=False)
    assert isinstance(result, cli.CLIResult)
    assert result.returncode != 0
    assert 'does not exist' in result.output


def test_legacy_single_store_and_restart(glance_api_factory, ceph_cluster,
                                         scratch_dir):
    api = glance_api_factory({'ceph': ceph_cluster}, multistore=False,
                             plugins=[])
    glance = cli.GlanceCLI(api)
    raw = images.write_sparse_raw(os.path.join(scratch_dir, 'l.raw'),
                                  16 * MiB, [(0, MiB)])
    image = glance.image_create_via_import(raw, 'raw')
    image = glance.wait_for_status(image['id'], timeout=60)
    assert image['checksum'] == md5_of(raw)
    assert image['id'] in ceph_cluster.rbd_images()

    url = api.url
    api.restart()
    assert api.url == url
    assert glance.get_image(image['id'])['status'] == 'active'
    assert 'glance' in api.log_text()


def test_other_image_formats(image_builder):
    for path, fmt in ((image_builder.vmdk(64 * MiB, 4 * MiB), 'vmdk'),
                      (image_builder.vmdk(64 * MiB, 4 * MiB,
                                          'monolithicSparse'), 'vmdk'),
                      (image_builder.qcow2(64 * MiB, 4 * MiB, True),
                       'qcow2')):
        info = images.qemu_img_info(path)
        assert info['format'] == fmt
        assert info['virtual-size'] == 64 * MiB
    iso = image_builder.iso(2 * MiB)
    with open(iso, 'rb') as f:
        f.seek(0x8001)
        assert f.read(5) == b'CD001'
    assert os.path.getsize(iso) > 2 * MiB
