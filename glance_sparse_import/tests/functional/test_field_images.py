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

"""Images as producers leave them, through Glance's real flow into Ceph.

A qcow2 left dirty by a crash imports with exactly the bytes qemu reads, as
stock Glance imports it; a hybrid ISO imports whole as an ISO; a dirty
qcow2 that is also damaged, an ISO that is also a qcow2 and a VHDX whose
log needs replaying are refused, the last with qemu's reason.
"""

import filecmp
import os

import pytest

from glance_sparse_import.tests import field_images as field
from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.functional import test_plugin_flow as flows
from glance_sparse_import.tests.functional.test_plugin_flow import pool_guard  # noqa
from glance_sparse_import.tests.testbed import images

MiB = 1024 ** 2
PREFIX = 'Sparse RBD import failed: '


@pytest.fixture(scope='module')
def flow(ceph_cluster, tmp_path_factory):
    return glance_flow.GlanceFlow(str(tmp_path_factory.mktemp('field')),
                                  {'ceph': ceph_cluster}, 'ceph',
                                  plugins=['sparse_rbd_import'])


def _explain(flow, result):
    return 'task %s\nflow stderr:\n%s\nGlance log:\n%s' % (
        result['task'], result['stderr'][-3000:], flow.log()[-6000:])


def test_dirty_qcow2_imports_exact_bytes(flow, ceph_cluster, scratch_dir,
                                         pool_guard):  # noqa: F811
    source = field.dirty_qcow2(os.path.join(scratch_dir, 'dirty.qcow2'))
    assert field.qcow2_check(source) == 2
    result = flow.run_import('qcow2', file=source, stores=['ceph'])
    pool_guard.append(result['image']['id'])
    assert result['task']['status'] == 'success', _explain(flow, result)
    flows._check_active(result, ceph_cluster, source, 'qcow2', scratch_dir)
    raw = flows._raw_of(source, 'qcow2', scratch_dir)
    with open(raw, 'rb') as f:
        assert f.read(2 * MiB) == b'\x3c' * 2 * MiB
        f.seek(8 * MiB)
        assert f.read(MiB) == b'\x3d' * MiB


@pytest.mark.parametrize('gpt', [False, True], ids=['mbr', 'gpt'])
def test_hybrid_iso_imports_whole(flow, ceph_cluster, scratch_dir,
                                  pool_guard, gpt):  # noqa: F811
    from oslo_utils.imageutils import format_inspector
    work = os.path.join(scratch_dir, 'hybrid-%s' % gpt)
    os.makedirs(work, exist_ok=True)
    source = field.hybrid_iso(os.path.join(work, 'hybrid.iso'), work, gpt)
    result = flow.run_import('iso', file=source, stores=['ceph'])
    image = result['image']
    pool_guard.append(image['id'])
    assert result['task']['status'] == 'success', _explain(flow, result)
    assert image['status'] == 'active'
    assert image['disk_format'] == 'iso'
    md5, sha512 = images.file_digests(source)
    assert (image['checksum'], image['os_hash_value']) == (md5, sha512)
    assert image['size'] == os.path.getsize(source)
    # As Glance's upload path records it: the ISO volume's size.
    assert image['virtual_size'] == format_inspector.ISOInspector.from_file(
        source).virtual_size
    exported = os.path.join(work, 'export')
    ceph_cluster.rbd('export', '--no-progress',
                     'images/%s@snap' % image['id'], exported)
    assert filecmp.cmp(exported, source, shallow=False)


def _refused(flow, ceph_cluster, path, claimed):
    result = flow.run_import(claimed, file=path, stores=['ceph'])
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', _explain(flow, result)
    assert task['message'].startswith(PREFIX), task['message']
    assert os.path.dirname(path) not in task['message']
    assert flow.staging_dir not in task['message']
    assert image['status'] == 'queued'
    assert image['id'] not in ceph_cluster.rbd_images()
    return task['message']


def test_dirty_qcow2_past_end_refused(flow, ceph_cluster, scratch_dir):
    dirty = field.dirty_qcow2(os.path.join(scratch_dir, 'dirty2.qcow2'))
    path = field.first_l2_past_end(
        dirty, os.path.join(scratch_dir, 'dirty-past-end.qcow2'))
    message = _refused(flow, ceph_cluster, path, 'qcow2')
    assert 'Image metadata is corrupt: ' in message
    assert 'exceeding the end of the file' in message


def test_iso_with_qcow2_header_refused(flow, ceph_cluster, image_builder,
                                       scratch_dir):
    work = os.path.join(scratch_dir, 'iso-qcow2')
    os.makedirs(work, exist_ok=True)
    iso = field.hybrid_iso(os.path.join(work, 'hybrid.iso'), work)
    path = field.iso_with_qcow2_header(
        iso, os.path.join(work, 'both.iso'),
        image_builder.qcow2(64 * MiB, 8 * MiB))
    message = _refused(flow, ceph_cluster, path, 'iso')
    assert message == PREFIX + 'Image format detection failed'


def test_vhdx_log_replay_reason_reaches_task(flow, ceph_cluster,
                                             scratch_dir):
    path = field.vhdx_needing_log_replay(
        os.path.join(scratch_dir, 'log.vhdx'))
    message = _refused(flow, ceph_cluster, path, 'vhdx')
    assert message.startswith(PREFIX + 'qemu-img cannot read the image: ')
    assert 'contains a log that needs to be replayed' in message
    assert "'qemu-img check -r all'" in message
