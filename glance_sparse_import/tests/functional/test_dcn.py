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

"""Several RBD stores (distributed compute nodes) in Glance's real flow.

Three real Ceph clusters stand for three edge sites; each store has its own
pool, chunk size and Ceph timeout. Imports run Glance's installed
``api_image_import`` flow with sparse_rbd_import, serial and parallel store
uploads, as ``test_plugin_flow`` does for one store.
"""

import contextlib
import filecmp
import json
import math
import os
import re
import time
import uuid

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import ceph
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import series

MiB = 1024 ** 2
VIRTUAL = 256 * MiB
DATA = 32 * MiB
# Ceph timeout, in seconds, of the stores in outage tests.
TIMEOUT = 5
# An outage must cost a few timeouts, never a hang (librados waits 300 s
# to connect and forever for a dead OSD when nothing bounds it).
OUTAGE_BOUND = 60

SITES = ('edge1', 'edge2', 'edge3')
# Every site configured differently: (pool, rbd_store_chunk_size in MiB).
LAYOUT = {'edge1': ('images', 8), 'edge2': ('dcn', 4),
          'edge3': ('images', 16)}
# No name may be a prefix of another: Glance's parallel upload records a
# location under the first store whose URL prefix the URL starts with, so
# .../stores/local2/ID would be recorded as store "local".
FILES = ('file1', 'file2')


@pytest.fixture(scope='module')
def dcn_pool(ceph_cluster2):
    """A second pool in the second cluster, so pools differ per store."""
    ceph_cluster2.ceph('osd', 'pool', 'create', 'dcn', '8')
    ceph_cluster2.rbd('pool', 'init', 'dcn', timeout=120)
    yield 'dcn'
    ceph_cluster2.ceph('osd', 'pool', 'delete', 'dcn', 'dcn',
                       '--yes-i-really-really-mean-it')


@pytest.fixture
def two_sites(ceph_cluster, ceph_cluster2, dcn_pool):
    """edge1 and edge2, for tests that need no third cluster."""
    return {'edge1': ceph_cluster, 'edge2': ceph_cluster2}


@pytest.fixture
def sites(two_sites, ceph_cluster3):
    return dict(two_sites, edge3=ceph_cluster3)


@pytest.fixture
def leftovers(request, two_sites):
    """``{image_id: sites}`` where a test expects data; fail on the rest.

    Every new RBD image in every pool of the test's clusters is purged at
    teardown; one in a site its import did not succeed in fails the test.
    """
    sites = two_sites
    if 'sites' in request.fixturenames:
        sites = request.getfixturevalue('sites')
    pools = [(name, sites[name], LAYOUT[name][0]) for name in SITES
             if name in sites]
    pools.append(('edge2-images', sites['edge2'], 'images'))
    before = {name: set(c.rbd_images(p)) for name, c, p in pools}
    expected = {}
    yield expected
    stray = []
    for name, cluster, pool in pools:
        for image in set(cluster.rbd_images(pool)) - before[name]:
            cluster.purge_image(image, pool=pool)
            if name not in expected.get(image, ()):
                stray.append('%s/%s' % (name, image))
    assert not stray, 'left behind: %s' % stray


def _flow(workdir, stores, rados_connect_timeout=60, max_parallel_stores=1,
          extra_conf=None):
    """GlanceFlow for ``{name: cluster or None}``, laid out as LAYOUT."""
    extra = {}
    for name, store in stores.items():
        if isinstance(store, ceph.CephCluster):
            pool, chunk = LAYOUT.get(name, ('images', 8))
            extra[name] = {'rbd_store_pool': pool,
                           'rbd_store_chunk_size': chunk}
    for section, options in (extra_conf or {}).items():
        extra.setdefault(section, {}).update(options)
    return glance_flow.GlanceFlow(
        os.path.join(workdir, 'glance-%s' % uuid.uuid4().hex[:8]), stores,
        next(iter(stores)), plugins=['sparse_rbd_import'],
        rados_connect_timeout=rados_connect_timeout, extra_conf=extra,
        extra_import_conf={'image_import_opts': {
            'max_parallel_stores': max_parallel_stores}})


def _raw_of(path):
    raw = path + '.expected.raw'
    if not os.path.exists(raw):
        procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path,
                   raw], timeout=300)
    return raw


def _stores_of(image):
    return {loc['metadata'].get('store') for loc in image['locations']}


def _store_list(image, key):
    value = image['extra_properties'].get(key, '')
    return set(filter(None, value.split(',')))


def _importing_history(flow, image_id):
    """Successive values of os_glance_importing_to_stores, from the log."""
    pattern = re.compile(r'Image %s os_glance_importing_to_stores=(\S*)'
                         % re.escape(image_id))
    return [set(filter(None, m.split(',')))
            for m in pattern.findall(flow.log())]


def _check_shrinks(flow, image_id, first_out=None):
    """The importing list only shrinks once complete, and ends empty.

    ``first_out``: stores that must leave before every other one.
    """
    history = _importing_history(flow, image_id)
    full = max(history, key=len)
    last = max(i for i, stores in enumerate(history) if stores == full)
    tail = history[last:]
    for before, after in zip(tail, tail[1:]):
        assert after <= before, history
    assert tail[-1] == set(), history
    if first_out:
        assert set(first_out).isdisjoint(tail[1]) and \
            tail[1] == full - set(first_out), history


def _check_rbd_copy(cluster, pool, chunk_mib, image_id, raw, workdir):
    spec = '%s/%s' % (pool, image_id)
    info = json.loads(cluster.rbd('info', '--format', 'json', spec))
    assert info['order'] == 20 + int(math.log2(chunk_mib)), (spec, info)
    snaps = json.loads(cluster.rbd('snap', 'ls', '--format', 'json', spec))
    assert [s['name'] for s in snaps] == ['snap']
    assert str(snaps[0]['protected']).lower() == 'true'
    exported = os.path.join(workdir, '%s-%s.export' % (cluster.name,
                                                       image_id))
    cluster.rbd('export', '--no-progress', spec + '@snap', exported)
    try:
        assert filecmp.cmp(exported, raw, shallow=False), spec
    finally:
        os.unlink(exported)


def _check_active(result, raw, flow, stores, workdir, failed=(),
                  first_out=None):
    """Active in exactly the stores of ``stores`` that are not failed."""
    image, task = result['image'], result['task']
    assert task['status'] == 'success', (task, result['stderr'][-3000:])
    assert image['status'] == 'active'
    md5, sha512 = images.file_digests(raw)
    assert image['checksum'] == md5
    assert image['os_hash_algo'] == 'sha512'
    assert image['os_hash_value'] == sha512
    assert image['size'] == os.path.getsize(raw)
    assert image['virtual_size'] == os.path.getsize(raw)
    assert (image['disk_format'], image['container_format']) == \
        ('raw', 'bare')
    good = set(stores) - set(failed)
    assert _stores_of(image) == good
    assert _store_list(image, 'os_glance_importing_to_stores') == set()
    assert _store_list(image, 'os_glance_failed_import') == set(failed)
    for name in good:
        store = stores[name]
        if isinstance(store, ceph.CephCluster):
            pool, chunk = LAYOUT[name]
            url = 'rbd://%s/%s/%s/snap' % (store.fsid, pool, image['id'])
            assert {'url': url, 'metadata': {'store': name}} in \
                image['locations']
            _check_rbd_copy(store, pool, chunk, image['id'], raw, workdir)
        else:
            path = os.path.join(flow.store_dir(name), image['id'])
            assert filecmp.cmp(path, raw, shallow=False), name
    # Neither the staged qcow2 nor the raw file written for other stores.
    assert os.listdir(flow.staging_dir) == []
    _check_shrinks(flow, image['id'], first_out=first_out)


def _check_failed(result, flow, stores, message=None):
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    if message:
        assert message in task['message'], task
    assert image['status'] == 'queued'
    assert image['locations'] == []
    assert image['checksum'] is None
    assert image['os_hash_value'] is None
    assert _store_list(image, 'os_glance_importing_to_stores') == set()
    assert _store_list(image, 'os_glance_failed_import') == set(stores)
    assert os.listdir(flow.staging_dir) == []


def _block_file_store(flow, name, image_id):
    """Make file store ``name`` fail for ``image_id``: it never overwrites."""
    path = os.path.join(flow.store_dir(name), image_id)
    with open(path, 'w') as f:
        f.write('in the way')
    return path


def _file_store_is_clean(flow, name, image_id, blocker=None):
    path = os.path.join(flow.store_dir(name), image_id)
    if blocker:
        with open(path) as f:
            return f.read() == 'in the way'
    return not os.path.exists(path)


@pytest.mark.parametrize('method', ['glance-direct', 'web-download'])
def test_three_sites(sites, image_builder, file_server, scratch_dir,
                     leftovers, method):
    """One read, three clusters, each with its own pool and chunk size."""
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    raw = _raw_of(source)
    flow = _flow(scratch_dir, sites)
    if method == 'glance-direct':
        result = flow.run_import('qcow2', file=source, stores=SITES)
    else:
        result = flow.run_import('qcow2', uri=file_server.url(source),
                                 stores=SITES)
    leftovers[result['image']['id']] = set(SITES)
    _check_active(result, raw, flow, sites, scratch_dir)
    assert flow.log().count('imported sparse to edge1,edge2,edge3') == 1

    if method == 'glance-direct':
        single = flow.run_import('qcow2', file=source, stores=['edge2'])
        leftovers[single['image']['id']] = {'edge2'}
        for key in ('checksum', 'os_hash_algo', 'os_hash_value', 'size',
                    'virtual_size', 'disk_format', 'container_format'):
            assert single['image'][key] == result['image'][key], key


def test_rate_limited_site_paces_the_import(two_sites, image_builder,
                                            scratch_dir, leftovers):
    """store_write_rate_limit holds edge2 (and so the pass) to its rate."""
    rate = 2
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    raw = _raw_of(source)
    flow = _flow(scratch_dir, two_sites, extra_conf={'sparse_rbd_import': {
        'store_write_rate_limit': 'edge2:%d,edge3:1' % rate}})
    result = flow.run_import('qcow2', file=source, stores=list(two_sites))
    leftovers[result['image']['id']] = set(two_sites)
    _check_active(result, raw, flow, two_sites, scratch_dir)
    summary = bench.parse_import_summary(result['glance_log'],
                                         result['image']['id'])
    assert summary, flow.explain(result)
    # Only the limits of the stores written are named.
    assert summary['line'].endswith(
        '; write rate limit: edge2 %d MiB/s (paces the whole pass)' % rate)
    # A second of writes passes at once; the rest at the rate.
    paced = (summary['written'] - rate * MiB) / (rate * MiB)
    assert paced > 10, summary
    assert paced <= summary['phases']['copy'] < paced * 1.5 + 10, summary


@contextlib.contextmanager
def _outage(clusters, daemon):
    """Stop the OSD (or the monitor) of each cluster; restart afterwards."""
    stopped = []
    try:
        for cluster in clusters:
            getattr(cluster, 'stop_' + daemon)()
            stopped.append(cluster)
        yield
    finally:
        for cluster in stopped:
            getattr(cluster, 'start_' + daemon)()


@pytest.mark.parametrize('all_stores_must_succeed', [True, False])
@pytest.mark.parametrize('outage', ['osd', 'osd-plugin-timeout', 'mon'])
def test_site_down(sites, image_builder, scratch_dir, leftovers, outage,
                   all_stores_must_succeed):
    """edge3 is cut off: its OSD is stopped, or its monitor.

    ``osd`` and ``mon`` bound time with the stores' ``rados_connect_timeout``;
    ``osd-plugin-timeout`` leaves that unset and relies on
    ``[sparse_rbd_import] ceph_op_timeout``. (Without a monitor and without
    a store timeout, glance_store itself hangs when it configures edge3.)
    """
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    raw = _raw_of(source)
    if outage == 'osd-plugin-timeout':
        flow = _flow(scratch_dir, sites, rados_connect_timeout=-1,
                     extra_conf={'sparse_rbd_import': {
                         'ceph_op_timeout': TIMEOUT}})
    else:
        flow = _flow(scratch_dir, sites, rados_connect_timeout=TIMEOUT)
    with _outage([sites['edge3']], outage[:3]):
        start = time.monotonic()
        result = flow.run_import(
            'qcow2', file=source, stores=SITES,
            all_stores_must_succeed=all_stores_must_succeed)
        elapsed = time.monotonic() - start
    assert elapsed < OUTAGE_BOUND
    if outage == 'mon':
        message = 'store edge3: cannot connect to the Ceph cluster'
    else:
        message = 'store edge3: cannot create the RBD image'
    assert 'S' + message[1:] in flow.log()
    if all_stores_must_succeed:
        _check_failed(result, flow, SITES, message=message)
    else:
        leftovers[result['image']['id']] = {'edge1', 'edge2'}
        # edge3 leaves the importing list as soon as it fails.
        _check_active(result, raw, flow, sites, scratch_dir,
                      failed=['edge3'], first_out=['edge3'])


@pytest.mark.parametrize('all_stores_must_succeed', [True, False])
@pytest.mark.parametrize('max_parallel_stores', [1, 4])
def test_mixed_rbd_and_file_stores(sites, image_builder, scratch_dir,
                                   leftovers, max_parallel_stores,
                                   all_stores_must_succeed):
    """File stores get the raw bytes through Glance, serial or parallel."""
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    raw = _raw_of(source)
    stores = {'edge1': sites['edge1'], 'edge2': sites['edge2'],
              'file1': None, 'file2': None}
    flow = _flow(scratch_dir, stores,
                 max_parallel_stores=max_parallel_stores)
    result = flow.run_import('qcow2', file=source, stores=list(stores),
                             all_stores_must_succeed=all_stores_must_succeed)
    leftovers[result['image']['id']] = {'edge1', 'edge2'}
    _check_active(result, raw, flow, stores, scratch_dir)
    parallel = 'Parallel store import starting' in flow.log()
    assert parallel == (max_parallel_stores > 1)


@pytest.mark.parametrize('max_parallel_stores,all_stores_must_succeed', [
    series.core(1, True), series.core(1, False), (4, True), (4, False)])
def test_mixed_file_store_fails(two_sites, image_builder, scratch_dir,
                                leftovers, max_parallel_stores,
                                all_stores_must_succeed):
    """Two RBD stores and two file stores, one of which fails."""
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    raw = _raw_of(source)
    sites = two_sites
    stores = {'edge1': sites['edge1'], 'edge2': sites['edge2'],
              'file1': None, 'file2': None}
    flow = _flow(scratch_dir, stores,
                 max_parallel_stores=max_parallel_stores)
    image_id = str(uuid.uuid4())
    blocker = _block_file_store(flow, 'file1', image_id)
    result = flow.run_import('qcow2', file=source, stores=list(stores),
                             all_stores_must_succeed=all_stores_must_succeed,
                             image_id=image_id)
    assert _file_store_is_clean(flow, 'file1', image_id, blocker)
    if all_stores_must_succeed:
        image, task = result['image'], result['task']
        assert task['status'] == 'failure', task
        assert image['status'] == 'queued'
        assert image['locations'] == []
        assert image['checksum'] is None
        assert 'file1' in _store_list(image, 'os_glance_failed_import')
        assert _store_list(image, 'os_glance_importing_to_stores') == set()
        assert _file_store_is_clean(flow, 'file2', image_id)
        assert os.listdir(flow.staging_dir) == []
    else:
        leftovers[image_id] = {'edge1', 'edge2'}
        _check_active(result, raw, flow, stores, scratch_dir,
                      failed=['file1'])


@pytest.mark.parametrize('down,max_parallel_stores', [
    (('edge3',), 4), (('edge2', 'edge3'), 1), (('edge2', 'edge3'), 4)])
def test_rbd_sites_down_file_stores_succeed(sites, image_builder,
                                            scratch_dir, leftovers, down,
                                            max_parallel_stores):
    """Without all_stores_must_succeed, the file stores still get it."""
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    raw = _raw_of(source)
    stores = {'edge2': sites['edge2'], 'edge3': sites['edge3'],
              'file1': None, 'file2': None}
    flow = _flow(scratch_dir, stores, rados_connect_timeout=TIMEOUT,
                 max_parallel_stores=max_parallel_stores)
    with _outage([sites[name] for name in down], 'osd'):
        start = time.monotonic()
        result = flow.run_import('qcow2', file=source, stores=list(stores),
                                 all_stores_must_succeed=False)
        elapsed = time.monotonic() - start
    assert elapsed < OUTAGE_BOUND
    leftovers[result['image']['id']] = set(stores) - set(down)
    _check_active(result, raw, flow, stores, scratch_dir, failed=down,
                  first_out=down)


def test_parallel_file_stores_all_fail(sites, image_builder, scratch_dir,
                                       leftovers):
    """A known limit: Glance's parallel upload fails the whole import.

    Without all_stores_must_succeed, Glance's parallel task raises when
    none of *its* stores succeeds, though the RBD stores did; the flow then
    reverts, so nothing may stay behind anywhere.
    """
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    stores = {'edge1': sites['edge1'], 'file1': None, 'file2': None}
    flow = _flow(scratch_dir, stores, max_parallel_stores=4)
    image_id = str(uuid.uuid4())
    blockers = [_block_file_store(flow, name, image_id) for name in FILES]
    result = flow.run_import('qcow2', file=source, stores=list(stores),
                             all_stores_must_succeed=False,
                             image_id=image_id)
    _check_failed(result, flow, stores)
    for name, blocker in zip(FILES, blockers):
        assert _file_store_is_clean(flow, name, image_id, blocker)


def test_download_fails_before_the_plugin(sites, file_server, scratch_dir,
                                          leftovers):
    """A failed download must not leave the RBD stores importing.

    Glance's download task reverts with the store list the plugin
    shortened, so only the plugin can list its stores, once it runs.
    """
    flow = _flow(scratch_dir, sites)
    result = flow.run_import('qcow2', uri=file_server.url('missing.qcow2'),
                             stores=SITES)
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    assert image['status'] == 'queued'
    assert image['locations'] == []
    assert _store_list(image, 'os_glance_importing_to_stores') == set()
    assert os.listdir(flow.staging_dir) == []
