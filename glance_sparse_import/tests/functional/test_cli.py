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

"""The installed ``glance-sparse-import`` command on real images and Ceph.

What it prints is checked against qemu-img and hashlib; what it writes
against ``rbd export``, ``rbd info`` and an import by the plugin itself in
Glance's real import flow.
"""

import filecmp
import hashlib
import json
import os
import random
import subprocess
import time

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
KiB = 1024
VIRTUAL = 256 * MiB
DATA = 40 * MiB
ZERO_BLOCK = 64 * KiB
REQUEST = 4 * MiB


def run_cli(*args, timeout=300):
    return subprocess.run(
        [procs.bin_path('glance-sparse-import')] + [str(a) for a in args],
        capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL)


def run_json(*args):
    res = run_cli(*(args + ('--json',)))
    assert res.returncode == 0, res.stderr
    # Not a terminal: no progress bar, no noise.
    assert res.stderr == ''
    return json.loads(res.stdout)


def crafted_raw(path):
    """A raw disk with data, written zeros (allocated) and holes."""
    rnd = random.Random(6)
    with open(path, 'wb') as f:
        f.truncate(64 * MiB)
        f.seek(1 * MiB)
        f.write(rnd.randbytes(3 * MiB))
        f.write(bytes(2 * MiB))
        # Data that ends inside a zero block, then a zero tail.
        f.write(rnd.randbytes(100 * KiB) + bytes(28 * KiB))
        f.seek(40 * MiB + 4 * KiB)
        f.write(bytes(12 * KiB) + rnd.randbytes(4 * KiB))
        os.fsync(f.fileno())
    return path


def source_image(kind, image_builder, scratch_dir):
    """(path, qemu format) of a test image."""
    if kind == 'raw':
        return crafted_raw(os.path.join(scratch_dir, 'crafted.raw')), 'raw'
    if kind == 'qcow2':
        return image_builder.qcow2(VIRTUAL, DATA), 'qcow2'
    if kind == 'qcow2-compressed':
        return image_builder.qcow2(VIRTUAL, DATA, compressed=True), 'qcow2'
    return image_builder.vmdk(VIRTUAL, DATA), 'vmdk'


def raw_of(path, fmt, workdir):
    if fmt == 'raw':
        return path
    raw = os.path.join(workdir, os.path.basename(path) + '.raw')
    if not os.path.exists(raw):
        procs.run(['qemu-img', 'convert', '-f', fmt, '-O', 'raw', path,
                   raw], timeout=300)
    return raw


def data_extents(path, fmt):
    """Merged [(start, length)] qemu-img map does not report as zeros."""
    runs = []
    for e in json.loads(procs.run(['qemu-img', 'map', '-f', fmt,
                                   '--output=json', path])):
        if e['zero']:
            continue
        if runs and sum(runs[-1]) == e['start']:
            runs[-1][1] += e['length']
        else:
            runs.append([e['start'], e['length']])
    return runs


def expected(path, fmt, workdir):
    """What an import must find and record, from qemu-img and hashlib."""
    raw = raw_of(path, fmt, workdir)
    md5, sha512 = images.file_digests(raw)
    extents = data_extents(path, fmt)
    written = 0
    with open(raw, 'rb') as f:
        for start, length in extents:
            # Zero blocks are counted from each request's start.
            for req in range(start, start + length, REQUEST):
                req_end = min(req + REQUEST, start + length)
                for pos in range(req, req_end, ZERO_BLOCK):
                    n = min(ZERO_BLOCK, req_end - pos)
                    f.seek(pos)
                    if f.read(n) != bytes(n):
                        written += n
    return {
        'virtual_size': images.qemu_img_info(path, fmt)['virtual-size'],
        'allocated_extents': len(extents),
        'allocated_bytes': sum(length for _start, length in extents),
        'written_bytes': written,
        'checksum': md5,
        'os_hash_value': sha512,
        'raw': raw,
    }


@pytest.fixture
def pool_guard(ceph_cluster):
    """Assert the test leaves the pool as it found it, then tidy it."""
    before = set(ceph_cluster.rbd_images())
    keep = []
    yield keep
    left = set(ceph_cluster.rbd_images()) - before
    for name in left:
        ceph_cluster.purge_image(name)
    assert left <= set(keep), 'left in the pool: %s' % (left - set(keep))


# inspect

@pytest.mark.parametrize('kind', ['raw', 'qcow2', 'qcow2-compressed',
                                  'vmdk'])
def test_inspect_matches_qemu_img_and_hashlib(kind, image_builder,
                                              scratch_dir):
    path, fmt = source_image(kind, image_builder, scratch_dir)
    want = expected(path, fmt, scratch_dir)
    got = run_json('inspect', path)
    assert got['format'] == fmt
    assert got['disk_format'] == 'raw'
    assert got['virtual_size'] == got['size'] == want['virtual_size']
    assert got['file_size'] == os.path.getsize(path)
    for key in ('allocated_extents', 'allocated_bytes', 'written_bytes',
                'checksum', 'os_hash_value'):
        assert got[key] == want[key], key
    assert got['os_hash_algo'] == 'sha512'
    assert got['zero_skipped_bytes'] == (got['allocated_bytes'] -
                                         got['written_bytes'])
    if kind == 'raw':
        assert got['zero_skipped_bytes'] == 2 * MiB


def test_inspect_text_and_hash_algo(image_builder, scratch_dir):
    path = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    res = run_cli('inspect', '--format', 'qcow2', '--hash-algo', 'sha256',
                  path)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(':', 1) for line in res.stdout.splitlines())
    assert lines['format'].strip() == 'qcow2'
    assert lines['os_hash_algo'].strip() == 'sha256'
    assert lines['virtual size'].strip() == '%d (256.00 MiB)' % VIRTUAL
    sha256 = hashlib.sha256()
    with open(raw_of(path, 'qcow2', scratch_dir), 'rb') as f:
        for block in iter(lambda: f.read(4 * MiB), b''):
            sha256.update(block)
    assert lines['os_hash_value'].strip() == sha256.hexdigest()


def test_inspect_iso_stays_iso(image_builder):
    path = image_builder.iso(4 * MiB)
    got = run_json('inspect', '--format', 'iso', path)
    assert (got['format'], got['disk_format']) == ('iso', 'iso')
    assert got['size'] == os.path.getsize(path)
    with open(path, 'rb') as f:
        assert got['checksum'] == hashlib.md5(f.read()).hexdigest()


def _overlay(image_builder, scratch_dir):
    path = os.path.join(scratch_dir, 'overlay.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b',
               image_builder.qcow2(VIRTUAL, DATA), path])
    return path


def _nested(scratch_dir):
    """A qcow2 whose disk is itself a qcow2: unsafe once stored raw."""
    inner = os.path.join(scratch_dir, 'inner.qcow2')
    outer = os.path.join(scratch_dir, 'outer.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', inner, '1G'])
    procs.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', inner,
               outer])
    return outer


def test_inspect_refuses_unsafe_images(image_builder, scratch_dir):
    cases = [
        (('inspect', _overlay(image_builder, scratch_dir)),
         'Image has disallowed configuration'),
        (('inspect', _nested(scratch_dir)),
         'Converted image in unexpected format'),
        (('inspect', '--format', 'raw', image_builder.qcow2(VIRTUAL, DATA)),
         'Image claimed to be raw but its content is qcow2'),
        (('inspect', os.path.join(scratch_dir, 'missing.qcow2')),
         'No such file or directory'),
    ]
    for args, message in cases:
        res = run_cli(*args)
        assert res.returncode == 1, (args, res.stdout)
        assert res.stdout == ''
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith('glance-sparse-import: error: '), res.stderr
        assert message in last


def test_inspect_reads_glance_config(image_builder, scratch_dir):
    conf = os.path.join(scratch_dir, 'glance-api.conf')
    with open(conf, 'w') as f:
        f.write('[DEFAULT]\nimage_size_cap = %d\nhashing_algorithm = sha1\n'
                % (VIRTUAL - 1))
    path = image_builder.qcow2(VIRTUAL, DATA)
    res = run_cli('--config-file', conf, 'inspect', path)
    assert res.returncode == 1
    assert 'exceeds the limit of %d bytes' % (VIRTUAL - 1) in res.stderr
    with open(conf, 'w') as f:
        f.write('[DEFAULT]\nhashing_algorithm = sha1\n'
                '[sparse_rbd_import]\nzero_block_size = 4096\n')
    got = run_json('--config-file', conf, 'inspect', path)
    assert got['os_hash_algo'] == 'sha1'
    assert got['written_bytes'] <= run_json('inspect', path)['written_bytes']


# import

def _rbd_info(cluster, name):
    info = json.loads(cluster.rbd('info', '--format', 'json',
                                  '%s/%s' % (cluster.pool, name)))
    return {k: info[k] for k in ('size', 'order', 'features')}


def _check_rbd_image(cluster, name, raw, scratch_dir):
    snaps = json.loads(cluster.rbd('snap', 'ls', '--format', 'json',
                                   '%s/%s' % (cluster.pool, name)))
    assert [(s['name'], str(s['protected']).lower()) for s in snaps] == \
        [('snap', 'true')]
    exported = os.path.join(scratch_dir, name + '.export')
    cluster.rbd('export', '--no-progress',
                '%s/%s@snap' % (cluster.pool, name), exported)
    try:
        assert filecmp.cmp(exported, raw, shallow=False)
    finally:
        os.unlink(exported)


def _import(cluster, path, *args):
    return run_json('import', path, '--conf', cluster.conf_path, '--pool',
                    cluster.pool, '--user', 'admin', *args)


@pytest.mark.parametrize('kind', ['raw', 'qcow2-compressed'])
def test_import_writes_what_the_plugin_writes(
        kind, ceph_cluster, image_builder, scratch_dir, pool_guard):
    path, fmt = source_image(kind, image_builder, scratch_dir)
    want = expected(path, fmt, scratch_dir)
    name = 'cli-%s' % kind
    got = _import(ceph_cluster, path, '--name', name)
    pool_guard.append(name)
    assert got['name'] == name
    assert got['location'] == 'rbd://%s/%s/%s/snap' % (
        ceph_cluster.fsid, ceph_cluster.pool, name)
    for key in ('virtual_size', 'written_bytes', 'checksum',
                'os_hash_value'):
        assert got[key] == want[key], key
    assert got['size'] == want['virtual_size']
    _check_rbd_image(ceph_cluster, name, want['raw'], scratch_dir)
    assert _rbd_info(ceph_cluster, name)['order'] == 23
    assert ceph_cluster.rbd_used_bytes(name, snap='snap') < VIRTUAL / 2


def test_import_matches_a_plugin_import(ceph_cluster, image_builder,
                                        scratch_dir, pool_guard):
    path = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    flow = glance_flow.GlanceFlow(os.path.join(scratch_dir, 'glance'),
                                  {'ceph': ceph_cluster}, 'ceph',
                                  plugins=['sparse_rbd_import'])
    result = flow.run_import('qcow2', file=path, stores=['ceph'])
    image = result['image']
    pool_guard.append(image['id'])
    assert image['status'] == 'active', result['task']
    name = 'cli-like-plugin'
    got = _import(ceph_cluster, path, '--name', name)
    pool_guard.append(name)
    assert got['checksum'] == image['checksum']
    assert got['os_hash_algo'] == image['os_hash_algo']
    assert got['os_hash_value'] == image['os_hash_value']
    assert got['size'] == image['size']
    assert got['virtual_size'] == image['virtual_size']
    assert got['disk_format'] == image['disk_format']
    assert _rbd_info(ceph_cluster, name) == \
        _rbd_info(ceph_cluster, image['id'])
    assert got['location'].replace(name, image['id']) in \
        [loc['url'] for loc in image['locations']]
    _check_rbd_image(ceph_cluster, name, raw_of(path, 'qcow2', scratch_dir),
                     scratch_dir)


def test_import_chunk_size_sets_order(ceph_cluster, image_builder,
                                      scratch_dir, pool_guard):
    path = crafted_raw(os.path.join(scratch_dir, 'crafted.raw'))
    got = _import(ceph_cluster, path, '--chunk-size', '4', '--hash-algo',
                  'sha256', '--format', 'raw')
    pool_guard.append(got['name'])
    assert _rbd_info(ceph_cluster, got['name'])['order'] == 22
    with open(path, 'rb') as f:
        assert got['os_hash_value'] == hashlib.sha256(f.read()).hexdigest()
    _check_rbd_image(ceph_cluster, got['name'], path, scratch_dir)


def test_import_rate_limit(ceph_cluster, image_builder, scratch_dir,
                           pool_guard):
    """--rate-limit: the same image, written no faster than the limit."""
    path = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    want = expected(path, 'qcow2', scratch_dir)
    got = _import(ceph_cluster, path, '--rate-limit', '4')
    pool_guard.append(got['name'])
    for key in ('written_bytes', 'checksum', 'os_hash_value'):
        assert got[key] == want[key], key
    # A second of writes passes at once; the rest at 4 MiB/s.
    paced = (got['written_bytes'] - 4 * MiB) / (4 * MiB)
    assert paced > 5
    assert paced <= got['seconds'] < paced * 1.5 + 10, got
    _check_rbd_image(ceph_cluster, got['name'], want['raw'], scratch_dir)


def _import_fails(cluster, args, message, timeout=120):
    res = run_cli('import', '--conf', cluster.conf_path, '--pool',
                  cluster.pool, *args, timeout=timeout)
    assert res.returncode == 1, res.stdout
    assert res.stdout == ''
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith('glance-sparse-import: error: '), res.stderr
    assert message in last, res.stderr
    return res


def test_import_errors_leave_nothing(ceph_cluster, image_builder,
                                     scratch_dir, pool_guard):
    # Refused before anything is created.
    _import_fails(ceph_cluster, [_overlay(image_builder, scratch_dir),
                                 '--name', 'cli-overlay'],
                  'Image has disallowed configuration')
    # Refused mid-copy, once the RBD image exists: it is removed.
    _import_fails(ceph_cluster, [_nested(scratch_dir), '--name',
                                 'cli-nested'],
                  'Converted image in unexpected format')
    _import_fails(ceph_cluster, [image_builder.qcow2(VIRTUAL, DATA),
                                 '--pool', 'no-such-pool'],
                  'cannot create the RBD image')
    # pool_guard asserts the pool holds no new image.


def test_import_never_overwrites(ceph_cluster, image_builder, scratch_dir,
                                 pool_guard):
    path = crafted_raw(os.path.join(scratch_dir, 'crafted.raw'))
    first = _import(ceph_cluster, path, '--name', 'cli-taken')
    pool_guard.append('cli-taken')
    _import_fails(ceph_cluster, [image_builder.qcow2(VIRTUAL, DATA),
                                 '--name', 'cli-taken'],
                  'an RBD image named cli-taken already exists in pool')
    _check_rbd_image(ceph_cluster, 'cli-taken', path, scratch_dir)
    assert first['checksum']


def test_import_unreachable_cluster_fails_fast(ceph_cluster, image_builder,
                                               scratch_dir, pool_guard):
    port = procs.free_port_pair()
    conf = os.path.join(scratch_dir, 'dead.conf')
    with open(conf, 'w') as f:
        f.write('[global]\nmon host = [v2:127.0.0.1:%d,v1:127.0.0.1:%d]\n'
                'auth client required = none\n' % (port + 1, port))
    start = time.monotonic()
    res = run_cli('import', image_builder.qcow2(VIRTUAL, DATA), '--conf',
                  conf, '--pool', 'images', '--timeout', '3', timeout=60)
    assert res.returncode == 1
    assert res.stdout == ''
    assert res.stderr.strip().splitlines()[-1] == (
        'glance-sparse-import: error: store images: cannot connect to the '
        'Ceph cluster')
    assert time.monotonic() - start < 30
