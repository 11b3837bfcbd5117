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

"""sparse_rbd_import in Glance's real import flow, against real Ceph.

Each import runs the installed ``api_image_import.get_flow`` with the
plugins named in glance-image-import.conf, through Glance's taskflow
executor, exactly as the API worker does after ``POST .../import``.
"""

import filecmp
import os
import uuid

import pytest

from glance_sparse_import.tests import disk_images
from glance_sparse_import.tests.functional import failing_plugin
from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import series

MiB = 1024 ** 2
VIRTUAL = 256 * MiB
DATA = 40 * MiB


def _raw_of(path, fmt, workdir):
    raw = os.path.join(workdir, os.path.basename(path) + '.expected.raw')
    if fmt in ('raw', 'iso'):
        return path
    if not os.path.exists(raw):
        procs.run(['qemu-img', 'convert', '-f', fmt, '-O', 'raw', path,
                   raw], timeout=300)
    return raw


@pytest.fixture
def flow_factory(scratch_dir):
    made = []

    def factory(stores, default_store=None, **kwargs):
        kwargs.setdefault('plugins', ['sparse_rbd_import'])
        flow = glance_flow.GlanceFlow(
            os.path.join(scratch_dir, 'glance%d' % len(made)), stores,
            default_store, **kwargs)
        made.append(flow)
        return flow
    return factory


@pytest.fixture
def pool_guard(ceph_cluster):
    """Fail on RBD images left behind; remove them for the next test."""
    before = set(ceph_cluster.rbd_images())
    created = []
    yield created
    left = set(ceph_cluster.rbd_images()) - before
    for name in left:
        ceph_cluster.purge_image(name)
    assert left <= set(created), 'left in the pool: %s' % (left - set(created))


def _check_active(result, cluster, source, fmt, workdir, store='ceph',
                  disk_format='raw'):
    image, task = result['image'], result['task']
    assert task['status'] == 'success', (task, result['stderr'][-3000:])
    assert image['status'] == 'active'
    raw = _raw_of(source, fmt, workdir)
    md5, sha512 = images.file_digests(raw)
    assert image['checksum'] == md5
    assert image['os_hash_algo'] == 'sha512'
    assert image['os_hash_value'] == sha512
    assert image['size'] == os.path.getsize(raw)
    assert image['virtual_size'] == os.path.getsize(raw)
    assert image['disk_format'] == disk_format
    url = 'rbd://%s/images/%s/snap' % (cluster.fsid, image['id'])
    expected_meta = {'store': store} if store else {}
    assert {'url': url, 'metadata': expected_meta} in image['locations']
    props = image['extra_properties']
    assert props.get('os_glance_importing_to_stores', '') == ''
    assert props.get('os_glance_failed_import', '') == ''
    assert 'os_glance_import_task' not in props

    snaps = cluster.rbd('snap', 'ls', '--format', 'json',
                        'images/%s' % image['id'])
    assert '"name":"snap"' in snaps.replace(' ', '')
    assert '"protected":"true"' in snaps.replace(' ', '')
    exported = os.path.join(workdir, image['id'] + '.export')
    cluster.rbd('export', '--no-progress', 'images/%s@snap' % image['id'],
                exported)
    assert filecmp.cmp(exported, raw, shallow=False)
    os.unlink(exported)
    used = cluster.rbd_used_bytes(image['id'], snap='snap')
    assert used <= _objects_with_data(raw, 8 * MiB)
    return used


def _objects_with_data(path, object_size):
    """Bytes of the RBD objects that hold some of ``path``'s data.

    ``rbd diff`` counts whole objects once fast-diff is on, so this, not the
    allocated bytes, bounds what an import may leave in the pool.
    """
    objects = set()
    for start, stop in disk_images.data_ranges(path):
        objects.update(range(start // object_size,
                             (stop - 1) // object_size + 1))
    return len(objects) * object_size


@pytest.mark.parametrize('fmt,kind', [
    series.core('qcow2', 'plain'), series.core('qcow2', 'compressed'),
    series.core('raw', None), series.core('vmdk', 'streamOptimized'),
    ('vmdk', 'monolithicSparse')])
def test_import_formats(flow_factory, ceph_cluster, image_builder,
                        scratch_dir, pool_guard, fmt, kind):
    if fmt == 'qcow2':
        source = image_builder.qcow2(VIRTUAL, DATA,
                                     compressed=kind == 'compressed')
    elif fmt == 'vmdk':
        source = image_builder.vmdk(VIRTUAL, DATA, subformat=kind)
    else:
        source = image_builder.ext4_raw(VIRTUAL, DATA)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph')
    result = flow.run_import(fmt, file=source, stores=['ceph'])
    pool_guard.append(result['image']['id'])
    used = _check_active(result, ceph_cluster, source, fmt, scratch_dir)
    assert used < VIRTUAL / 2
    assert os.listdir(flow.staging_dir) == []
    assert 'imported sparse to ceph' in flow.log()


@pytest.mark.series_core
def test_iso_stays_iso(flow_factory, ceph_cluster, image_builder,
                       scratch_dir, pool_guard):
    source = image_builder.iso(8 * MiB)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph')
    result = flow.run_import('iso', file=source, stores=['ceph'])
    pool_guard.append(result['image']['id'])
    _check_active(result, ceph_cluster, source, 'iso', scratch_dir,
                  disk_format='iso')


def test_single_store_glance(flow_factory, ceph_cluster, image_builder,
                             scratch_dir, pool_guard):
    source = image_builder.qcow2(VIRTUAL, DATA)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph', multistore=False)
    result = flow.run_import('qcow2', file=source)
    pool_guard.append(result['image']['id'])
    _check_active(result, ceph_cluster, source, 'qcow2', scratch_dir,
                  store=None)


def test_web_download(flow_factory, ceph_cluster, image_builder,
                      file_server, scratch_dir, pool_guard):
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph')
    result = flow.run_import('qcow2', uri=file_server.url(source),
                             stores=['ceph'])
    pool_guard.append(result['image']['id'])
    _check_active(result, ceph_cluster, source, 'qcow2', scratch_dir)


def test_mixed_rbd_and_file_store(flow_factory, ceph_cluster, image_builder,
                                  scratch_dir, pool_guard):
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    flow = flow_factory({'ceph': ceph_cluster, 'local': None}, 'ceph')
    result = flow.run_import('qcow2', file=source, stores=['ceph', 'local'])
    pool_guard.append(result['image']['id'])
    _check_active(result, ceph_cluster, source, 'qcow2', scratch_dir)
    image = result['image']
    stored = os.path.join(flow.store_dir('local'), image['id'])
    assert filecmp.cmp(stored, _raw_of(source, 'qcow2', scratch_dir),
                       shallow=False)
    assert {'url': 'file://' + stored, 'metadata': {'store': 'local'}} in \
        image['locations']
    assert os.listdir(flow.staging_dir) == []


def _check_failed(result, cluster, stores=('ceph',), message=None):
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    if message:
        assert message in task['message']
    assert image['status'] == 'queued'
    assert image['locations'] == []
    assert image['checksum'] is None
    props = image['extra_properties']
    assert set(props.get('os_glance_failed_import', '').split(',')) == \
        set(stores)
    assert props.get('os_glance_importing_to_stores', '') == ''
    assert image['id'] not in cluster.rbd_images()


def test_backing_file_is_refused(flow_factory, ceph_cluster, image_builder,
                                 scratch_dir, pool_guard):
    base = image_builder.qcow2(VIRTUAL, DATA)
    overlay = os.path.join(scratch_dir, 'overlay.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b',
               base, overlay])
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph')
    result = flow.run_import('qcow2', file=overlay, stores=['ceph'])
    _check_failed(result, ceph_cluster)


def test_format_mismatch_is_refused(flow_factory, ceph_cluster,
                                    image_builder, pool_guard):
    source = image_builder.qcow2(VIRTUAL, DATA)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph')
    result = flow.run_import('raw', file=source, stores=['ceph'])
    _check_failed(result, ceph_cluster)


def test_failure_in_later_store_removes_rbd_data(
        flow_factory, ceph_cluster, image_builder, pool_guard):
    """A file store failing after us reverts our RBD image too."""
    source = image_builder.qcow2(VIRTUAL, DATA)
    flow = flow_factory({'ceph': ceph_cluster, 'local': None}, 'ceph')
    image_id = str(uuid.uuid4())
    # The file store refuses to overwrite an existing file (Duplicate).
    with open(os.path.join(flow.store_dir('local'), image_id), 'w') as f:
        f.write('in the way')
    result = flow.run_import('qcow2', file=source, stores=['ceph', 'local'],
                             image_id=image_id)
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    assert image['status'] == 'queued'
    assert image['locations'] == []
    assert image['checksum'] is None
    assert 'local' in image['extra_properties']['os_glance_failed_import']
    assert image_id not in ceph_cluster.rbd_images()


@pytest.mark.parametrize('fmt', [series.core('qcow2')])
def test_failure_in_later_plugin_reverts_active_image(
        fmt, flow_factory, ceph_cluster, image_builder, pool_guard,
        scratch_dir, monkeypatch):
    """A plugin after ours fails once ours has set the image active.

    Glance reverts the flow: our revert removes the RBD image and its
    location and puts the image back to queued, the store failed, as
    stock Glance leaves an image whose import failed.
    """
    plugin_dir = failing_plugin.install(os.path.join(scratch_dir, 'plugin'))
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [plugin_dir] + [p for p in os.environ.get('PYTHONPATH', '').split(
            os.pathsep) if p]))
    source = image_builder.qcow2(VIRTUAL, DATA)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph', plugins=[
        'sparse_rbd_import', failing_plugin.NAME])
    image_id = str(uuid.uuid4())
    result = flow.run_import('qcow2', file=source, stores=['ceph'],
                             image_id=image_id)
    image, task = result['image'], result['task']
    why = glance_flow.explain(result)
    assert task['status'] == 'failure', why
    # Ours wrote Ceph and finished before the failing plugin ran.
    assert 'Image %s imported sparse to' % image_id in result['glance_log'], \
        why
    assert failing_plugin.MESSAGE in result['stderr'] + result[
        'glance_log'] + str(task.get('message')), why
    assert image['status'] == 'queued', why
    assert image['locations'] == [], why
    assert image['checksum'] is None, why
    assert image['os_hash_value'] is None, why
    props = image['extra_properties']
    assert 'ceph' in props['os_glance_failed_import'], why
    assert props.get('os_glance_importing_to_stores', '') == '', why
    assert image_id not in ceph_cluster.rbd_images(), why


@pytest.mark.parametrize('plugins', [
    series.core(['sparse_rbd_import', 'image_conversion'], id='ours-first'),
    pytest.param(['image_conversion', 'sparse_rbd_import'],
                 id='conversion-first')])
def test_conversion_to_qcow2_is_left_to_glance(
        plugins, flow_factory, ceph_cluster, image_builder, pool_guard,
        scratch_dir):
    """``output_format = qcow2``: stock stores qcow2, the plugin stands aside.

    The plugin writes raw only; where image_conversion is told to make
    qcow2, Glance stores that in RBD too, and the plugin must not store
    something else. It takes no store, says why, and the image is stock's.
    """
    source = image_builder.qcow2(VIRTUAL, DATA)
    flow = flow_factory({'ceph': ceph_cluster}, 'ceph', plugins=plugins,
                        extra_import_conf={
                            'image_conversion': {'output_format': 'qcow2'}})
    result = flow.run_import('qcow2', file=source, stores=['ceph'])
    image, task = result['image'], result['task']
    why = glance_flow.explain(result)
    pool_guard.append(image['id'])
    assert task['status'] == 'success', why
    assert image['status'] == 'active', why
    assert image['disk_format'] == 'qcow2', why
    assert 'sparse_rbd_import stands aside' in result['glance_log'], why
    assert 'imported sparse' not in result['glance_log'], why
    # What Glance stored is the qcow2 image_conversion made, whose
    # checksum the image records.
    exported = os.path.join(scratch_dir, 'export.qcow2')
    ceph_cluster.rbd('export', '--no-progress',
                     'images/%s@snap' % image['id'], exported)
    assert images.file_digests(exported, ['md5'])[0] == image['checksum']
    info = procs.run(['qemu-img', 'info', '--output=json', exported],
                     timeout=60)
    assert '"format": "qcow2"' in info, info
    ceph_cluster.purge_image(image['id'])
