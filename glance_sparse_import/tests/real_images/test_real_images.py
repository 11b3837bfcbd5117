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

"""Every image of the real-image corpus through Glance's flow into Ceph.

Each image of ``../shared/real-images`` (see :mod:`.corpus`) is imported
with the plugin through Glance's real import flow into real Ceph, told the
disk format SOURCES.md gives. An imported image must have the checksum,
multihash, size and Ceph bytes of ``qemu-img convert -O raw`` of the same
file (the file itself for raw and iso), the virtual size SOURCES.md gives,
and no more data in Ceph (``rbd diff``) than the objects that hold the raw
disk's data. What is refused must be refused with a clear message and
nothing left in Ceph: the images of ``negative/``, and those stock Glance
refuses too (see ``_refusal``).

Glance is configured with ``[image_format] gpt_safety_checks_nonfatal =
mbr``, so that a disk holding a bare file system (whose boot record fails
Glance's MBR check; stock refuses it by default, as the plugin does) is
imported and checked too.

Hashing a 127 GiB disk takes minutes, so images larger than
``GSI_REAL_IMAGES_MAX_GIB`` (10 GiB by default) are imported with
``max_virtual_size`` below their size and must be refused by it; set it to
200 to import those too.
"""

from concurrent import futures
import hashlib
import os

import pytest

from glance_sparse_import.tests import disk_images
from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.functional import test_plugin_flow as flows
from glance_sparse_import.tests.real_images import corpus
from glance_sparse_import.tests.testbed import procs

GiB = 1024 ** 3
MiB = 1024 ** 2
CAP = int(float(os.environ.get('GSI_REAL_IMAGES_MAX_GIB', '10')) * GiB)
PREFIX = 'Sparse RBD import failed: '
# Glance disk format -> qemu driver.
QEMU_FORMATS = {'vhd': 'vpc'}
# Disk formats Glance's format inspector has no inspector for.
UNINSPECTED = ('ploop',)
OBJECT_SIZE = 8 * MiB

ENTRIES = corpus.entries()


def _refusal(entry):
    """The texts one of which the task message must hold, or None.

    None means the image must be imported.
    """
    if entry.negative:
        # External files: the format inspector's safety checks refuse them.
        return ('Image has disallowed configuration',
                'backing file', 'data-file')
    if entry.disk_format in UNINSPECTED:
        # Read as raw, which is not the claimed format: stock refuses it
        # ("Image format mismatch") for the same reason.
        return ('Image claimed to be %s but its content is raw'
                % entry.disk_format,)
    if entry.disk_format == 'vhd' and 'fixed' in entry.description.lower():
        # A fixed VHD's only footer is at its end: the inspector reads the
        # guest disk at its start, as stock's does, and refuses it as
        # stock does (its MBR fails the GPT/MBR check, or it is raw).
        return ('Image has disallowed configuration',
                'Image claimed to be vhd but its content is')
    if entry.virtual_size > CAP:
        return ('exceeds the limit of %d bytes' % CAP,)
    return None


@pytest.fixture(scope='module')
def flow(ceph_cluster, tmp_path_factory):
    return glance_flow.GlanceFlow(
        str(tmp_path_factory.mktemp('real-images')), {'ceph': ceph_cluster},
        'ceph', plugins=['sparse_rbd_import'],
        extra_conf={'sparse_rbd_import': {'max_virtual_size': CAP},
                    # A bare file system (NTFS in plaso-vsstest) starts with
                    # a boot record that fails Glance's MBR check, which
                    # stock applies to the converted disk as the plugin
                    # does; operators of such images make it non-fatal.
                    'image_format': {'gpt_safety_checks_nonfatal': 'mbr'}})


@pytest.fixture(scope='module')
def unpacked(tmp_path_factory):
    return str(tmp_path_factory.mktemp('unpacked'))


def test_sources_lists_every_file():
    assert sorted(e.name for e in ENTRIES) == corpus.files_on_disk()


@pytest.mark.parametrize('entry', ENTRIES, ids=[e.name for e in ENTRIES])
def test_real_image(flow, ceph_cluster, unpacked, scratch_dir, entry):
    source = corpus.decompressed(entry, unpacked)
    result = flow.run_import(entry.disk_format, file=source,
                             stores=['ceph'])
    image, task = result['image'], result['task']
    expected = _refusal(entry)
    try:
        if expected is None:
            _check_imported(result, ceph_cluster, source, entry, scratch_dir)
        else:
            _check_refused(result, ceph_cluster, expected,
                           (corpus.ROOT, unpacked, flow.staging_dir))
    except AssertionError as e:
        raise AssertionError('%s\n%s' % (e, glance_flow.explain(result)))
    finally:
        if image['id'] in ceph_cluster.rbd_images():
            ceph_cluster.purge_image(image['id'])
    assert task['status'] == ('failure' if expected else 'success')


def _check_refused(result, cluster, expected, paths):
    image, task = result['image'], result['task']
    assert task['status'] == 'failure'
    message = task['message']
    assert message.startswith(PREFIX), message
    assert any(text in message for text in expected), (message, expected)
    assert 'Internal Error' not in message
    for path in paths:
        assert path not in message
    assert image['status'] == 'queued'
    assert image['locations'] == [] and image['checksum'] is None
    assert image['id'] not in cluster.rbd_images()


def _check_imported(result, cluster, source, entry, workdir):
    image, task = result['image'], result['task']
    assert task['status'] == 'success'
    assert image['status'] == 'active'
    # As stock's image_conversion: iso stays iso, the rest becomes raw.
    assert image['disk_format'] == ('iso' if entry.disk_format == 'iso'
                                    else 'raw')
    raw = _raw_of(source, entry.disk_format, workdir)
    md5, sha512 = _digests(raw)
    assert image['checksum'] == md5
    assert (image['os_hash_algo'], image['os_hash_value']) == ('sha512',
                                                               sha512)
    assert image['size'] == os.path.getsize(raw)
    # What qemu-img info says, as SOURCES.md records it.
    assert image['virtual_size'] == entry.virtual_size
    exported = os.path.join(workdir, 'export.raw')
    cluster.rbd('export', '--no-progress', 'images/%s@snap' % image['id'],
                exported)
    try:
        assert _same_bytes(exported, raw), 'Ceph holds other bytes'
    finally:
        os.unlink(exported)
    used = cluster.rbd_used_bytes(image['id'], snap='snap')
    assert used <= flows._objects_with_data(raw, OBJECT_SIZE), used
    if raw != source:
        os.unlink(raw)


def _raw_of(source, disk_format, workdir):
    if disk_format in ('raw', 'iso'):
        return source
    raw = os.path.join(workdir, 'expected.raw')
    procs.run(['qemu-img', 'convert', '-f',
               QEMU_FORMATS.get(disk_format, disk_format), '-O', 'raw',
               source, raw], timeout=600)
    return raw


def _digests(path):
    """md5 and sha512 of a file, the two hashes on two threads."""
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    with open(path, 'rb') as f, futures.ThreadPoolExecutor(1) as pool:
        while True:
            chunk = f.read(8 * MiB)
            if not chunk:
                break
            pending = pool.submit(md5.update, chunk)
            sha512.update(chunk)
            pending.result()
    return md5.hexdigest(), sha512.hexdigest()


def _same_bytes(a, b):
    """Whether two sparse files read the same, comparing their data only.

    Holes read as zeros in both, so only the ranges where either has data
    are read.
    """
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, 'rb') as fa, open(b, 'rb') as fb:
        ranges = disk_images.data_ranges(a) + disk_images.data_ranges(b)
        for start, stop in sorted(ranges):
            fa.seek(start)
            fb.seek(start)
            pos = start
            while pos < stop:
                n = min(8 * MiB, stop - pos)
                if fa.read(n) != fb.read(n):
                    return False
                pos += n
    return True
