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

"""The sources read real images exactly as qemu-img convert does."""

import base64
import os
import signal
import stat
import sys

from oslo_config import cfg
import pytest

from glance_sparse_import import errors
from glance_sparse_import import inspection
from glance_sparse_import import opts
from glance_sparse_import import sources
from glance_sparse_import.sources import nbd as nbd_source
from glance_sparse_import.sources.nbd import NbdSource
from glance_sparse_import.sources.raw import RawSource
from glance_sparse_import.tests import disk_images as images

MiB = images.MiB
KiB = 1024
SIZE = 64 * MiB
CAP = 1024 ** 4


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    path = tmp_path_factory.mktemp('sources')
    tree = images.make_tree(str(path / 'tree'))
    images.make_ext4(str(path / 'base.raw'), SIZE, tree)
    return path


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    return conf


IMAGES = {
    # name: (disk format, qemu format, -o options, compressed)
    'plain.qcow2': ('qcow2', 'qcow2', (), False),
    'compressed.qcow2': ('qcow2', 'qcow2', (), True),
    'sparse.vmdk': ('vmdk', 'vmdk', ('subformat=monolithicSparse',), False),
    'stream.vmdk': ('vmdk', 'vmdk', ('subformat=streamOptimized',), False),
    'disk.vhd': ('vhd', 'vpc', (), False),
    'disk.vhdx': ('vhdx', 'vhdx', (), False),
    'disk.vdi': ('vdi', 'vdi', (), False),
}


def image(work, name):
    fmt, qemu_format, options, compress = IMAGES[name]
    path = str(work / name)
    if not os.path.exists(path):
        images.convert(str(work / 'base.raw'), path, qemu_format, *options,
                       compress=compress)
    return path, fmt, qemu_format


def read_all(source, request_size):
    """Check the chunk contract; return (bytes, [zero runs])."""
    out = bytearray()
    zero_runs = []
    for chunk in source.chunks():
        assert chunk.offset == len(out)
        assert chunk.length > 0
        if chunk.data is None:
            zero_runs.append((chunk.offset, chunk.offset + chunk.length))
            out += bytes(chunk.length)
        else:
            assert len(chunk.data) == chunk.length <= request_size
            out += chunk.data
    assert len(out) == source.size
    return bytes(out), zero_runs


def covered(ranges, runs):
    """Whether every [start, end) of ranges lies inside runs."""
    for start, end in ranges:
        for run_start, run_end in runs:
            if run_start <= start < run_end:
                start = run_end
            if start >= end:
                break
        if start < end:
            return False
    return True


def qemu_nbd_children():
    """pid -> state of the qemu-nbd processes this process started."""
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index('(') + 1:text.rindex(')')]
        state, ppid = text[text.rindex(')') + 2:].split()[:2]
        if int(ppid) == os.getpid() and comm == 'qemu-nbd':
            found[int(entry)] = state
    return found


@pytest.fixture
def no_leftover_qemu_nbd():
    assert not qemu_nbd_children()
    yield
    assert not qemu_nbd_children()


# Raw and ISO.

@pytest.mark.parametrize('request_size', [64 * KiB, 4 * MiB])
def test_raw_reads_file_with_holes_as_zero_runs(work, conf, request_size):
    path = str(work / 'base.raw')
    conf.set_override('request_size', request_size, 'sparse_rbd_import')
    info = inspection.inspect_image(path, 'raw', CAP)
    # Before anything reads the file: ext4 reports unwritten extents that
    # are in the page cache as data.
    holes = images.hole_ranges(path)
    source = sources.open_source(path, info, conf)
    assert isinstance(source, RawSource)
    with source:
        data, zero_runs = read_all(source, request_size)
    with open(path, 'rb') as f:
        assert data == f.read()
    assert holes and zero_runs
    assert covered(holes, zero_runs)


def test_raw_fully_allocated_and_all_hole(work):
    dense = str(work / 'dense.raw')
    with open(dense, 'wb') as f:
        f.write(os.urandom(MiB + 512))
    with RawSource(dense, 256 * KiB) as source:
        data, zero_runs = read_all(source, 256 * KiB)
    assert zero_runs == []
    with open(dense, 'rb') as f:
        assert data == f.read()

    hole = str(work / 'hole.raw')
    with open(hole, 'wb') as f:
        f.truncate(SIZE)
    with RawSource(hole, MiB) as source:
        assert list(source.chunks()) == [(0, SIZE, None)]


def test_iso(work, conf):
    path = images.make_iso(str(work / 'disk.iso'), str(work / 'tree'))
    info = inspection.inspect_image(path, 'iso', CAP)
    source = sources.open_source(path, info, conf)
    assert isinstance(source, RawSource)
    with source:
        assert source.size == info.size
        data, _ = read_all(source, conf.sparse_rbd_import.request_size)
    with open(path, 'rb') as f:
        assert data == f.read()


# Formats qemu reads.

@pytest.mark.parametrize('name', sorted(IMAGES))
@pytest.mark.parametrize('request_size,in_flight', [
    (64 * KiB, 1), (4 * MiB, 8)])
def test_qemu_formats_match_qemu_img_convert(
        work, conf, no_leftover_qemu_nbd, name, request_size, in_flight):
    path, fmt, qemu_format = image(work, name)
    conf.set_override('request_size', request_size, 'sparse_rbd_import')
    conf.set_override('requests_in_flight', in_flight, 'sparse_rbd_import')
    info = inspection.inspect_image(path, fmt, CAP)
    with sources.open_source(path, info, conf) as source:
        assert source.size == info.size == info.virtual_size
        data, zero_runs = read_all(source, request_size)
    expected = images.to_raw(path, qemu_format, str(work / 'expected.raw'))
    assert data == expected
    qemu_zeros = images.zero_ranges(path, qemu_format)
    assert covered(qemu_zeros, zero_runs)
    # qemu's vhdx driver reports no block status: all of it reads as data.
    if qemu_format != 'vhdx':
        assert sum(end - start for start, end in qemu_zeros) > SIZE // 2


def test_open_source_takes_the_option_group(work, conf):
    path, fmt, _ = image(work, 'plain.qcow2')
    info = inspection.inspect_image(path, fmt, CAP)
    conf.set_override('request_size', 128 * KiB, 'sparse_rbd_import')
    source = sources.open_source(path, info, conf.sparse_rbd_import,
                                 python_exec=sys.executable)
    with source:
        data, _ = read_all(source, 128 * KiB)
    assert data == images.to_raw(path, 'qcow2', str(work / 'exp.raw'))


def test_short_block_status_replies(work, monkeypatch):
    # Ask block status for odd, small ranges so replies end inside
    # extents and extents straddle requests.
    monkeypatch.setattr(nbd_source, 'MAX_STATUS_LENGTH', 3 * MiB + 4096)
    path, _, qemu_format = image(work, 'compressed.qcow2')
    with NbdSource(path, qemu_format, MiB, 4, 2048) as source:
        data, zero_runs = read_all(source, MiB)
    assert data == images.to_raw(path, qemu_format, str(work / 'exp.raw'))
    assert covered(images.zero_ranges(path, qemu_format), zero_runs)
    # Adjacent runs of one kind are merged across replies.
    assert all(a[1] < b[0] for a, b in zip(zero_runs, zero_runs[1:]))


def test_request_size_above_qemu_maximum(work, no_leftover_qemu_nbd):
    raw = str(work / 'big-extent.raw')
    with open(raw, 'wb') as f:
        f.write(os.urandom(40 * MiB))
    path = str(work / 'big-extent.qcow2')
    images.convert(raw, path, 'qcow2')
    with NbdSource(path, 'qcow2', 64 * MiB, 2, 2048) as source:
        chunks = list(source.chunks())
    assert max(c.length for c in chunks) <= 32 * MiB
    with open(raw, 'rb') as f:
        assert b''.join(c.data for c in chunks) == f.read()


def test_chunk_data_is_not_kept_by_libnbd(work):
    # libnbd 1.14 keeps a reference to every nbd.Buffer it reads into;
    # the data must be referenced by the caller only.
    path, _, qemu_format = image(work, 'plain.qcow2')
    with NbdSource(path, qemu_format, MiB, 4, 2048) as source:
        datas = [c.data for c in source.chunks() if c.data is not None]
    assert datas
    # References: the list, the loop variable, getrefcount's argument.
    assert all(sys.getrefcount(d) == 3 for d in datas)


def test_hidden_format_is_rejected_after_conversion(work, conf):
    # A qcow2 whose disk is a qcow2: Glance rejects the converted file.
    inner, _, _ = image(work, 'plain.qcow2')
    raw = str(work / 'inner.raw')
    with open(inner, 'rb') as src, open(raw, 'wb') as dst:
        dst.write(src.read())
        dst.truncate(SIZE)
    path = str(work / 'outer.qcow2')
    images.convert(raw, path, 'qcow2')
    info = inspection.inspect_image(path, 'qcow2', CAP)
    with sources.open_source(path, info, conf) as source:
        with pytest.raises(errors.InvalidImage, match='unexpected format'):
            list(source.chunks())


def test_backing_file_is_never_opened(work):
    # Even if the checks were bypassed, qemu-nbd opens no backing file:
    # the overlay reads as zeros, not as its base.
    base, _, _ = image(work, 'plain.qcow2')
    path = str(work / 'overlay.qcow2')
    images.run('qemu-img', 'create', '-f', 'qcow2', '-b', base,
               '-F', 'qcow2', path)
    with NbdSource(path, 'qcow2', MiB, 2, 2048) as source:
        assert list(source.chunks()) == [(0, SIZE, None)]


def test_corrupt_compressed_data_fails_reading(work, no_leftover_qemu_nbd):
    # Compressible but not trivially: every data cluster is compressed.
    raw = str(work / 'text.raw')
    with open(raw, 'wb') as f:
        f.write(base64.b64encode(os.urandom(6 * MiB)))
        f.truncate(SIZE)
    path = str(work / 'corrupt-data.qcow2')
    images.convert(raw, path, 'qcow2', compress=True)
    size = os.path.getsize(path)
    assert size > 4 * MiB
    # Metadata sits in the first clusters; the rest is compressed data.
    with open(path, 'r+b') as f:
        f.seek(size // 2)
        f.write(os.urandom(256 * KiB))
    with NbdSource(path, 'qcow2', 64 * KiB, 4, 2048) as source:
        with pytest.raises(errors.SourceError):
            list(source.chunks())


# qemu-nbd's life.

def test_qemu_nbd_is_private_and_limited(work, no_leftover_qemu_nbd):
    path, _, qemu_format = image(work, 'plain.qcow2')
    limit_mib = 1536
    with NbdSource(path, qemu_format, MiB, 2, limit_mib) as source:
        (pid,) = qemu_nbd_children()
        with open('/proc/%d/limits' % pid) as f:
            limits = f.read()
        line = [ln for ln in limits.splitlines()
                if ln.startswith('Max address space')][0]
        assert line.split()[3:5] == [str(limit_mib * MiB)] * 2
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            argv = f.read().decode().split('\0')
        assert '--read-only' in argv
        sock = [a for a in argv if a.startswith('--socket=')][0]
        sock = sock[len('--socket='):]
        assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
        next(source.chunks())
    assert not os.path.exists(os.path.dirname(sock))


def test_qemu_nbd_gone_after_exception_mid_iteration(
        work, no_leftover_qemu_nbd):
    path, _, qemu_format = image(work, 'compressed.qcow2')
    with pytest.raises(RuntimeError):
        with NbdSource(path, qemu_format, 64 * KiB, 8, 2048) as source:
            for chunk in source.chunks():
                if chunk.data is not None:
                    raise RuntimeError('consumer failed')


def test_qemu_nbd_gone_after_abandoned_iteration(work, no_leftover_qemu_nbd):
    path, _, qemu_format = image(work, 'compressed.qcow2')
    source = NbdSource(path, qemu_format, 64 * KiB, 8, 2048)
    with source:
        chunks = source.chunks()
        next(chunks)
    # The suspended iteration keeps no connection alive.
    with pytest.raises(errors.SourceError):
        for _ in chunks:
            pass


def test_qemu_nbd_killed_mid_read(work, no_leftover_qemu_nbd):
    path, _, qemu_format = image(work, 'compressed.qcow2')
    with NbdSource(path, qemu_format, 64 * KiB, 4, 2048) as source:
        chunks = source.chunks()
        next(chunks)
        for pid in qemu_nbd_children():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(errors.SourceError):
            for _ in chunks:
                pass


def test_qemu_nbd_cannot_open_image(work, no_leftover_qemu_nbd):
    # qemu-nbd fails on a file that is not what it is told.
    with pytest.raises(errors.SourceError):
        with NbdSource(str(work / 'base.raw'), 'qcow2', MiB, 2, 2048):
            pass


def test_qemu_nbd_over_its_address_space(work, no_leftover_qemu_nbd):
    # qemu-nbd cannot even map its libraries in 8 MiB.
    path, _, qemu_format = image(work, 'compressed.qcow2')
    with pytest.raises(errors.SourceError,
                       match='^qemu-nbd cannot open the image: ') as e:
        with NbdSource(path, qemu_format, MiB, 16, 8) as source:
            list(source.chunks())
    # qemu-nbd's reason, never the staged file's path.
    assert str(work) not in str(e.value)
