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

"""The safety checks, on real images made with qemu-img and mke2fs."""

import os
import shutil
import sys

from oslo_config import cfg
import pytest

from glance_sparse_import import errors
from glance_sparse_import import glance_compat as compat
from glance_sparse_import import inspection
from glance_sparse_import import opts
from glance_sparse_import.sources.base import Chunk
from glance_sparse_import.tests import disk_images as images
from glance_sparse_import.tests import field_images as field

MiB = images.MiB
TiB = 1024 ** 4
SIZE = 64 * MiB
CAP = TiB


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    """A directory of images; base.raw is an ext4 file system."""
    path = tmp_path_factory.mktemp('inspection')
    tree = images.make_tree(str(path / 'tree'))
    images.make_ext4(str(path / 'base.raw'), SIZE, tree)
    return path


@pytest.fixture
def image_format_conf():
    yield inspection.CONF
    if compat._HAS_VMDK_OPTION:
        inspection.CONF.clear_override('vmdk_allowed_types',
                                       group='image_format')
    try:
        inspection.CONF.clear_override('gpt_safety_checks_nonfatal',
                                       group='image_format')
    except cfg.NoSuchOptError:
        pass  # Glance before 30


def converted(work, name, fmt, *options, compress=False):
    path = str(work / name)
    if not os.path.exists(path):
        images.convert(str(work / 'base.raw'), path, fmt, *options,
                       compress=compress)
    return path


def rejected(path, claimed, cap=CAP, match=None, **kwargs):
    with pytest.raises(errors.InvalidImage, match=match) as e:
        inspection.inspect_image(path, claimed, cap, **kwargs)
    # The message reaches the image owner: no host paths in it.
    assert os.path.dirname(path) not in str(e.value)
    assert os.path.basename(path) not in str(e.value)
    return e.value


# Accepted images.

def test_raw(work):
    info = inspection.inspect_image(str(work / 'base.raw'), 'raw', CAP)
    assert info == inspection.ImageInfo('raw', SIZE, SIZE, None, SIZE)


def test_gpt_disk_is_raw(work):
    path = str(work / 'gpt.raw')
    with open(path, 'wb') as f:
        f.truncate(16 * MiB)
    images.run('sgdisk', '-q', '-n', '1:0:0', path)
    info = inspection.inspect_image(path, 'raw', CAP)
    assert info == inspection.ImageInfo(
        'raw', 16 * MiB, 16 * MiB, None, 16 * MiB)


@pytest.mark.parametrize('name,fmt,qemu_format,options,compress', [
    ('plain.qcow2', 'qcow2', 'qcow2', (), False),
    ('compressed.qcow2', 'qcow2', 'qcow2', (), True),
    ('sparse.vmdk', 'vmdk', 'vmdk', ('subformat=monolithicSparse',), False),
    ('stream.vmdk', 'vmdk', 'vmdk', ('subformat=streamOptimized',), False),
    ('disk.vhdx', 'vhdx', 'vhdx', (), False),
    ('disk.vdi', 'vdi', 'vdi', (), False),
])
def test_qemu_formats(work, name, fmt, qemu_format, options, compress):
    path = converted(work, name, qemu_format, *options, compress=compress)
    info = inspection.inspect_image(path, fmt, CAP)
    assert info == inspection.ImageInfo(
        fmt, SIZE, os.path.getsize(path), qemu_format, SIZE)


def test_vhd_is_read_by_qemu_vpc(work):
    path = converted(work, 'disk.vhd', 'vpc')
    info = inspection.inspect_image(path, 'vhd', CAP)
    assert (info.format, info.qemu_format) == ('vhd', 'vpc')
    # qemu rounds a VHD to its CHS geometry; qemu's size is what is read.
    assert info.virtual_size >= SIZE
    assert info.size == info.virtual_size


@pytest.fixture(scope='module')
def iso(work):
    return images.make_iso(str(work / 'disk.iso'), str(work / 'tree'))


def test_iso_records_volume_size(iso):
    info = inspection.inspect_image(iso, 'iso', CAP)
    # xorriso pads nothing after the volume.
    volume_size = os.path.getsize(iso)
    assert info == inspection.ImageInfo(
        'iso', volume_size, os.path.getsize(iso), None, os.path.getsize(iso))


def test_iso_size_is_file_size(iso, tmp_path):
    # Padding after the volume is part of the disk Glance stores.
    padded = str(tmp_path / 'padded.iso')
    shutil.copy(iso, padded)
    with open(padded, 'r+b') as f:
        f.truncate(os.path.getsize(iso) + MiB)
    info = inspection.inspect_image(padded, 'iso', CAP)
    assert info.size == info.actual_size == os.path.getsize(iso) + MiB
    assert info.virtual_size == os.path.getsize(iso)


def test_python_exec_runs_qemu_img(work):
    path = converted(work, 'plain.qcow2', 'qcow2')
    info = inspection.inspect_image(path, 'qcow2', CAP,
                                    python_exec=sys.executable)
    assert info.virtual_size == SIZE
    with pytest.raises(errors.SourceError):
        inspection.inspect_image(path, 'qcow2', CAP,
                                 python_exec=str(work / 'no-python'))


def test_qemu_img_runs_with_bounded_malloc_arenas(tmp_path, monkeypatch):
    """Every qemu-img run (info, the overlay, check) bounds its arenas.

    Under Glance's 1 GiB address space limit, a qemu-img with a thread per
    busy I/O request and an arena per thread failed on a valid image on a
    loaded host (qemu_thread_create: Resource temporarily unavailable).
    """
    path = field.dirty_qcow2(str(tmp_path / 'dirty.qcow2'))
    real = shutil.which('qemu-img')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'runs'
    wrapper = bin_dir / 'qemu-img'
    wrapper.write_text('#!/bin/sh\necho "$1 $MALLOC_ARENA_MAX" >> %s\n'
                       'exec %s "$@"\n' % (log, real))
    wrapper.chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bin_dir, os.environ['PATH']))
    monkeypatch.setenv('MALLOC_ARENA_MAX', '64')
    inspection.inspect_image(path, 'qcow2', CAP, python_exec=sys.executable)
    assert log.read_text().splitlines() == [
        'info %s' % inspection.MALLOC_ARENA_MAX,
        'create %s' % inspection.MALLOC_ARENA_MAX,
        'check %s' % inspection.MALLOC_ARENA_MAX]


@pytest.mark.parametrize('command', ['info', 'check'])
def test_qemu_img_stopped_by_a_signal(work, tmp_path, monkeypatch, command):
    """A qemu-img a signal ended is named as such, not as a verdict.

    qemu-img stands in for one its limits aborted mid-check (seen in CI
    under load): some errors printed, then qemu's abort. Its real abort
    under a tight limit depends on thread timing, so it is not relied on.
    """
    path = converted(work, 'plain.qcow2', 'qcow2')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    wrapper = bin_dir / 'qemu-img'
    wrapper.write_text(
        '#!/bin/sh\n'
        'if [ "$1" = %s ]; then\n'
        '  echo "ERROR cluster 5 refcount=0 reference=1" >&2\n'
        '  echo "qemu: qemu_thread_create: Resource temporarily '
        'unavailable" >&2\n'
        '  kill -ABRT $$\n'
        'fi\n'
        'exec %s "$@"\n' % (command, shutil.which('qemu-img')))
    wrapper.chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bin_dir, os.environ['PATH']))
    error = rejected(path, 'qcow2', python_exec=sys.executable)
    assert str(error) == (
        'qemu-img %s was stopped by SIGABRT (its process limits, or a '
        'crash): qemu: qemu_thread_create: Resource temporarily '
        'unavailable' % command)


def test_max_virtual_size_helper():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf.register_opt(cfg.IntOpt('image_size_cap', default=TiB))
    conf([])
    assert inspection.max_virtual_size(conf) == TiB
    conf.set_override('max_virtual_size', MiB, group='sparse_rbd_import')
    assert inspection.max_virtual_size(conf) == MiB


# Rejected images.

def test_empty_file(work):
    path = str(work / 'empty.raw')
    open(path, 'wb').close()
    rejected(path, 'raw', match='empty')


def test_missing_file_is_source_error(work):
    with pytest.raises(errors.SourceError):
        inspection.inspect_image(str(work / 'missing'), 'raw', CAP)


def test_qcow2_with_backing_file(work):
    base = converted(work, 'plain.qcow2', 'qcow2')
    path = str(work / 'child.qcow2')
    images.run('qemu-img', 'create', '-f', 'qcow2', '-b', base,
               '-F', 'qcow2', path)
    rejected(path, 'qcow2')


def test_qcow2_with_data_file(work):
    path = str(work / 'external.qcow2')
    images.run('qemu-img', 'create', '-f', 'qcow2', '-o',
               'data_file=%s' % (work / 'external.data'), path, '16M')
    rejected(path, 'qcow2')


def test_qcow2_claimed_raw(work):
    rejected(converted(work, 'plain.qcow2', 'qcow2'), 'raw',
             match='claimed to be raw')


def test_raw_claimed_qcow2(work):
    rejected(str(work / 'base.raw'), 'qcow2', match='claimed to be qcow2')


def test_vmdk_hidden_in_raw(work):
    vmdk = converted(work, 'sparse.vmdk', 'vmdk',
                     'subformat=monolithicSparse')
    path = str(work / 'hidden-vmdk.raw')
    shutil.copy(str(work / 'base.raw'), path)
    with open(vmdk, 'rb') as src, open(path, 'r+b') as dst:
        dst.write(src.read(MiB))
    rejected(path, 'raw')


def test_iso_claimed_raw(iso):
    rejected(iso, 'raw', match='ISO')


def test_raw_claimed_iso(work):
    rejected(str(work / 'base.raw'), 'iso')


def test_truncated_qcow2_header(work):
    path = str(work / 'truncated.qcow2')
    with open(converted(work, 'plain.qcow2', 'qcow2'), 'rb') as f:
        header = f.read(100)
    with open(path, 'wb') as f:
        f.write(header)
    rejected(path, 'qcow2')


@pytest.mark.parametrize('offset,value', [
    (20, b'\x00\x00\x00\x28'),  # cluster_bits = 40
    (36, b'\x7f\xff\xff\xff'),  # l1_size far too large
    (72, b'\xff' * 8),          # unknown incompatible features
])
def test_corrupt_qcow2_header(work, offset, value):
    path = str(work / ('corrupt-%d.qcow2' % offset))
    shutil.copy(converted(work, 'plain.qcow2', 'qcow2'), path)
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(value)
    rejected(path, 'qcow2')


def test_virtual_size_over_cap(work):
    path = str(work / 'huge.qcow2')
    images.run('qemu-img', 'create', '-f', 'qcow2', path, '1P')
    rejected(path, 'qcow2', match='exceeds')


def test_virtual_size_over_configured_cap(work):
    path = converted(work, 'plain.qcow2', 'qcow2')
    rejected(path, 'qcow2', cap=SIZE - 1, match='exceeds')
    assert inspection.inspect_image(path, 'qcow2', SIZE).virtual_size == SIZE
    rejected(str(work / 'base.raw'), 'raw', cap=SIZE - 1, match='exceeds')


def _allow_vmdk(conf, monkeypatch, create_types):
    if compat._HAS_VMDK_OPTION:
        conf.set_override('vmdk_allowed_types', create_types,
                          group='image_format')
    else:
        # Glance 22 as released: the option's default of Glance 23.1.
        monkeypatch.setattr(compat, '_VMDK_ALLOWED_DEFAULT',
                            tuple(create_types))


def test_vmdk_create_type_not_allowed(work, image_format_conf, monkeypatch):
    path = converted(work, 'sparse.vmdk', 'vmdk',
                     'subformat=monolithicSparse')
    assert inspection.inspect_image(path, 'vmdk', SIZE).format == 'vmdk'
    _allow_vmdk(image_format_conf, monkeypatch, ['streamOptimized'])
    rejected(path, 'vmdk', match='create-type')
    _allow_vmdk(image_format_conf, monkeypatch, [])
    rejected(path, 'vmdk')


def test_vmdk_with_extent_files(work):
    path = str(work / 'flat.vmdk')
    images.convert(str(work / 'base.raw'), path, 'vmdk',
                   'subformat=monolithicFlat')
    rejected(path, 'vmdk')


def test_qed_is_banned(work):
    rejected(converted(work, 'disk.qed', 'qed'), 'qed')


def test_luks_is_not_imported(work):
    path = str(work / 'disk.luks')
    # qemu times its key derivation with the thread's CPU clock and gives
    # up when that clock has not moved ("Unable to get accurate CPU
    # usage"): here a third of the runs at iter-time=10, a sixth at 100,
    # more under load. Each try is a fresh draw.
    for _ in range(20):
        try:
            images.run('qemu-img', 'create', '--object',
                       'secret,id=sec0,data=secret', '-f', 'luks',
                       '-o', 'key-secret=sec0,iter-time=100', path, '16M')
            break
        except RuntimeError as e:
            error = e
    else:
        pytest.fail('qemu-img made no LUKS image in 20 tries: %s' % error)
    rejected(path, 'luks')


# The qemu-img checks, on what qemu-img info would print.

@pytest.mark.parametrize('qemu_format,metadata', [
    ('qcow2', {'format': 'raw'}),
    ('qcow2', {'format': 'qcow2', 'backing-filename': 'base'}),
    ('qcow2', {'format': 'qcow2', 'full-backing-filename': 'base'}),
    ('qcow2', {'format': 'qcow2',
               'format-specific': {'data': {'data-file': 'elsewhere'}}}),
    ('vmdk', {'format': 'vmdk', 'format-specific': {'data': {}}}),
    ('vmdk', {'format': 'vmdk',
              'format-specific': {'data': {'create-type': 'monolithicFlat'}}}),
])
def test_qemu_metadata_rejected(qemu_format, metadata):
    with pytest.raises(errors.InvalidImage):
        inspection._check_qemu_metadata(metadata, qemu_format)


def test_qemu_metadata_accepted():
    inspection._check_qemu_metadata(
        {'format': 'qcow2', 'format-specific': {'data': {}}}, 'qcow2')
    inspection._check_qemu_metadata(
        {'format': 'vmdk',
         'format-specific': {'data': {'create-type': 'streamOptimized'}}},
        'vmdk')


# The check of the converted stream.

def chunks_of(data, zero_runs=(), size=None, step=MiB):
    """Chunks over data, with [start, end) runs given as zero runs."""
    size = len(data) if size is None else size
    offset = 0
    for start, end in sorted(zero_runs) + [(size, size)]:
        while offset < start:
            n = min(step, start - offset)
            yield Chunk(offset, n, data[offset:offset + n])
            offset += n
        if end > start:
            yield Chunk(start, end - start, None)
            offset = end


def test_checked_output_passes_plain_disk(work):
    with open(str(work / 'base.raw'), 'rb') as f:
        data = f.read()
    chunks = list(chunks_of(data))
    assert list(inspection.checked_output(iter(chunks))) == chunks


def test_checked_output_passes_zeros():
    chunks = [Chunk(0, 3 * MiB + 512, None)]
    assert list(inspection.checked_output(iter(chunks))) == chunks


@pytest.mark.parametrize('name,fmt,options', [
    ('plain.qcow2', 'qcow2', ()),
    ('sparse.vmdk', 'vmdk', ('subformat=monolithicSparse',)),
    ('stream.vmdk', 'vmdk', ('subformat=streamOptimized',)),
])
def test_checked_output_rejects_hidden_format(work, name, fmt, options):
    with open(converted(work, name, fmt, *options), 'rb') as f:
        data = f.read()
    size = len(data) + 64 * MiB
    chunks = chunks_of(data, [(len(data), size)], size=size)
    with pytest.raises(errors.InvalidImage, match='unexpected format'):
        list(inspection.checked_output(chunks))


# Images from the field: what their producers leave, read as qemu reads them.

def test_dirty_qcow2_accepted(tmp_path):
    path = field.dirty_qcow2(str(tmp_path / 'dirty.qcow2'))
    # Refcounts lag the tables: qemu-img check calls that corruption.
    assert field.qcow2_check(path) == 2
    with open(path, 'rb') as f:
        before = f.read()
    info = inspection.inspect_image(path, 'qcow2', CAP)
    assert info == inspection.ImageInfo(
        'qcow2', 64 * MiB, len(before), 'qcow2', 64 * MiB)
    with open(path, 'rb') as f:
        assert f.read() == before, 'the check wrote to the staged file'


def test_dirty_qcow2_with_table_past_end_refused(tmp_path):
    dirty = field.dirty_qcow2(str(tmp_path / 'dirty.qcow2'))
    path = field.first_l2_past_end(dirty, str(tmp_path / 'bad.qcow2'))
    error = rejected(path, 'qcow2', match='Image metadata is corrupt: ')
    assert 'exceeding the end of the file' in str(error)


def test_clean_qcow2_refcount_damage_refused(work, tmp_path):
    path = str(tmp_path / 'refcounts.qcow2')
    shutil.copy(converted(work, 'plain.qcow2', 'qcow2'), path)
    with open(path, 'r+b') as f:
        header = f.read(56)
        table = int.from_bytes(header[48:56], 'big')
        f.seek(table)
        block = int.from_bytes(f.read(8), 'big')
        f.seek(block)
        f.write(bytes(65536))
    assert field.qcow2_check(path) == 2
    rejected(path, 'qcow2', match='Image metadata is corrupt: ERROR')


@pytest.mark.parametrize('gpt', [False, True], ids=['mbr', 'gpt'])
def test_hybrid_iso_is_iso(tmp_path, gpt):
    path = field.hybrid_iso(str(tmp_path / 'hybrid.iso'), str(tmp_path),
                            gpt=gpt)
    if compat.HAS_ISO_INSPECTOR:
        fi = compat._fi
        # Two formats at once (one on Glance 27 to 29, which know neither
        # MBR nor GPT): what stock's import path refuses.
        if 'gpt' in fi.ALL_FORMATS:
            with pytest.raises(fi.ImageFormatError,
                               match='Multiple formats'):
                fi.detect_file_format(path)
        volume = fi.ISOInspector.from_file(path).virtual_size
    else:
        # Glance 26: no ISO inspector; the plugin reads the descriptor.
        volume = compat.iso_volume(path)[1]
    size = os.path.getsize(path)
    assert 0 < volume < size
    info = inspection.inspect_image(path, 'iso', CAP)
    assert info == inspection.ImageInfo('iso', volume, size, None, size)


def test_hybrid_iso_claimed_raw(tmp_path):
    path = field.hybrid_iso(str(tmp_path / 'hybrid.iso'), str(tmp_path))
    rejected(path, 'raw', match='but is an ISO image')


def test_iso_with_other_format_refused(work, tmp_path):
    iso = field.hybrid_iso(str(tmp_path / 'hybrid.iso'), str(tmp_path))
    path = field.iso_with_qcow2_header(
        iso, str(tmp_path / 'both.iso'), converted(work, 'plain.qcow2',
                                                   'qcow2'))
    # Glance 26's inspector knows no ISO and stops at the first match.
    rejected(path, 'iso', match='Image format detection failed'
             if compat.HAS_ISO_INSPECTOR else 'its content is qcow2')


def test_vhdx_log_replay_reason(tmp_path):
    path = field.vhdx_needing_log_replay(str(tmp_path / 'log.vhdx'))
    error = str(rejected(path, 'vhdx',
                         match='qemu-img cannot read the image: '))
    assert 'contains a log that needs to be replayed' in error
    assert "'qemu-img check -r all'" in error
    assert 'export the disk again' in error
    assert str(tmp_path) not in error


@pytest.mark.parametrize('output,reason', [
    ("qemu-img: Could not open '%(p)s': Image is not in qcow2 format\n",
     'Image is not in qcow2 format'),
    ("qemu-img: Could not open '%(p)s': Could not open backing file: "
     "Could not open '/srv/other.raw': No such file or directory\n",
     'Could not open backing file: Could not open: No such file or '
     'directory'),
    ('ERROR cluster 5 refcount=0 reference=1\n'
     'ERROR cluster 6 refcount=0 reference=1\n',
     'ERROR cluster 5 refcount=0 reference=1 (2 errors)'),
    ('qemu-img: failed to read %(p)s and /var/lib/x\n',
     'failed to read and <path>'),
    ('', 'no reason given'),
])
def test_qemu_reason_has_no_paths(output, reason):
    path = '/var/lib/glance/staging/3f1c'
    assert inspection.qemu_reason(output % {'p': path}, path) == reason


def test_qemu_reason_drops_json_filename():
    path = '/var/lib/glance/staging/3f1c'
    output = ("qemu-nbd: Failed to blk_new_open 'json:{\"driver\": \"qcow2\", "
              "\"file\": {\"filename\": \"%s\"}}': Cannot allocate memory\n"
              % path)
    assert inspection.qemu_reason(output, path) == (
        'Failed to blk_new_open: Cannot allocate memory')
