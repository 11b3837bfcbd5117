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

"""Hostile and broken staged images, through Glance's real import flow.

Each must fail the import with a clear task message, put the image back to
``queued`` with the store in ``os_glance_failed_import``, and leave no RBD
image and no qemu process behind. Those the checks can see must be refused
before anything is created in Ceph.
"""

import os
import shutil
import struct
import subprocess

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import series

MiB = 1024 ** 2
PREFIX = 'Sparse RBD import failed: '


def _qcow2(builder):
    return builder.qcow2(64 * MiB, 8 * MiB)


def backing_file(builder, work):
    path = os.path.join(work, 'overlay.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b',
               _qcow2(builder), path])
    return path, 'qcow2'


def data_file(builder, work):
    path = os.path.join(work, 'external.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-o',
               'data_file=%s' % os.path.join(work, 'external.data'), path,
               '16M'])
    return path, 'qcow2'


def qcow2_claimed_raw(builder, work):
    return _qcow2(builder), 'raw'


def raw_claimed_qcow2(builder, work):
    return builder.ext4_raw(64 * MiB, 8 * MiB), 'qcow2'


def vmdk_hidden_in_raw(builder, work):
    path = os.path.join(work, 'hidden.raw')
    shutil.copy(builder.ext4_raw(64 * MiB, 8 * MiB), path)
    with open(builder.vmdk(64 * MiB, 8 * MiB, 'monolithicSparse'),
              'rb') as src, open(path, 'r+b') as dst:
        dst.write(src.read(MiB))
    return path, 'raw'


def truncated_qcow2(builder, work):
    path = os.path.join(work, 'truncated.qcow2')
    with open(_qcow2(builder), 'rb') as src, open(path, 'wb') as dst:
        dst.write(src.read(100))
    return path, 'qcow2'


def bad_header_field(builder, work):
    path = os.path.join(work, 'bad-header.qcow2')
    shutil.copy(_qcow2(builder), path)
    with open(path, 'r+b') as f:
        f.seek(20)
        f.write(struct.pack('>I', 40))  # cluster_bits
    return path, 'qcow2'


def bad_l2_table(builder, work):
    """Every data cluster of the first L2 table points past the file."""
    path = os.path.join(work, 'bad-l2.qcow2')
    shutil.copy(_qcow2(builder), path)
    with open(path, 'r+b') as f:
        header = f.read(48)
        cluster_size = 1 << struct.unpack('>I', header[20:24])[0]
        l1_offset = struct.unpack('>Q', header[40:48])[0]
        f.seek(l1_offset)
        l2_offset = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
        entries = cluster_size // 8
        f.seek(l2_offset)
        old = struct.unpack('>%dQ' % entries, f.read(cluster_size))
        new = [(e & (1 << 63)) | (1 << 50) if e else 0 for e in old]
        f.seek(l2_offset)
        f.write(struct.pack('>%dQ' % entries, *new))
    return path, 'qcow2'


def bad_refcounts(builder, work):
    """The first refcount block says no cluster is in use."""
    path = os.path.join(work, 'bad-refcount.qcow2')
    shutil.copy(_qcow2(builder), path)
    with open(path, 'r+b') as f:
        header = f.read(56)
        cluster_size = 1 << struct.unpack('>I', header[20:24])[0]
        table_offset = struct.unpack('>Q', header[48:56])[0]
        f.seek(table_offset)
        block_offset = struct.unpack('>Q', f.read(8))[0]
        f.seek(block_offset)
        f.write(bytes(cluster_size))
    return path, 'qcow2'


def huge_virtual_size(builder, work):
    path = os.path.join(work, 'huge.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', path, '1P'])
    procs.run(['qemu-io', '-c', 'write -P 1 0 64k', path])
    return path, 'qcow2'


def vmdk_disallowed_create_type(builder, work):
    path = os.path.join(work, 'twogb.vmdk')
    procs.run(['qemu-img', 'convert', '-O', 'vmdk', '-o',
               'subformat=twoGbMaxExtentSparse',
               builder.ext4_raw(64 * MiB, 8 * MiB), path])
    return path, 'vmdk'


def vmdk_naming_other_files(builder, work):
    path = os.path.join(work, 'flat.vmdk')
    procs.run(['qemu-img', 'convert', '-O', 'vmdk', '-o',
               'subformat=monolithicFlat',
               builder.ext4_raw(64 * MiB, 8 * MiB), path])
    return path, 'vmdk'


def empty_file(builder, work):
    path = os.path.join(work, 'empty.raw')
    open(path, 'w').close()
    return path, 'raw'


# (maker, refused before any write to Ceph)
CASES = [
    (backing_file, True), (data_file, True), (qcow2_claimed_raw, True),
    (raw_claimed_qcow2, True), (vmdk_hidden_in_raw, True),
    (truncated_qcow2, True), (bad_header_field, True),
    (bad_l2_table, True), (bad_refcounts, True),
    (huge_virtual_size, True), (vmdk_disallowed_create_type, True),
    (vmdk_naming_other_files, True), (empty_file, True),
]


@pytest.fixture(scope='module')
def flow(ceph_cluster, tmp_path_factory):
    return glance_flow.GlanceFlow(str(tmp_path_factory.mktemp('hostile')),
                                  {'ceph': ceph_cluster}, 'ceph',
                                  plugins=['sparse_rbd_import'])


def _qemu_nbd_pids(staging_dir):
    out = subprocess.run(['pgrep', '-f', 'qemu-nbd.*%s' % staging_dir],
                         capture_output=True, text=True).stdout
    return out.split()


# The case every Glance series runs.
SERIES_CORE = backing_file


@pytest.mark.parametrize('maker,early', [
    series.core(*c, id=c[0].__name__) if c[0] is SERIES_CORE
    else pytest.param(*c, id=c[0].__name__) for c in CASES])
def test_hostile_input(flow, ceph_cluster, image_builder, scratch_dir, maker,
                       early):
    path, claimed = maker(image_builder, scratch_dir)
    log_start = len(flow.log())
    result = flow.run_import(claimed, file=path, stores=['ceph'])
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    assert task['message'].startswith(PREFIX), task['message']
    assert 'Internal Error' not in task['message']
    assert scratch_dir not in task['message']
    assert image['status'] == 'queued'
    assert image['locations'] == [] and image['checksum'] is None
    props = image['extra_properties']
    assert props['os_glance_failed_import'] == 'ceph'
    assert props.get('os_glance_importing_to_stores', '') == ''
    assert image['id'] not in ceph_cluster.rbd_images()
    assert _qemu_nbd_pids(flow.staging_dir) == []
    log = flow.log()[log_start:]
    if early:
        assert 'Created RBD image %s' % image['id'] not in log
