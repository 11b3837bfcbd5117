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

"""End to end: ``glance-sparse-import add-site`` adds DCN sites to an image
imported to one, against real Ceph clusters (three; two in the test every
series lane runs) and the real Glance API (an internal endpoint with
``show_multiple_locations``).
"""

import filecmp
import json
import os
import re
import signal
import subprocess

import pytest

from glance_sparse_import.tests.consumers import common
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
SITES = ('edge1', 'edge2', 'edge3')
# Ceph timeout of the stores, seconds: a site down costs about this much.
TIMEOUT = 5
LOCK = 'os_glance_import_task'


def _dcn_conf(**extra):
    conf = {'DEFAULT': {'show_multiple_locations': True},
            'edge2': {'rbd_store_chunk_size': 4},
            'edge3': {'rbd_store_chunk_size': 16}}
    conf.update(extra)
    return conf


@pytest.fixture
def dcn_api(glance_api_factory, ceph_cluster, ceph_cluster2, ceph_cluster3):
    """Three RBD stores with different chunk sizes, and a file store."""
    return glance_api_factory(
        {'edge1': ceph_cluster, 'edge2': ceph_cluster2,
         'edge3': ceph_cluster3, 'file1': None}, 'edge1',
        plugins=['sparse_rbd_import'], rados_connect_timeout=TIMEOUT,
        extra_conf=_dcn_conf())


@pytest.fixture
def two_sites(glance_api_factory, ceph_cluster, ceph_cluster2,
              mariadb_server):
    """edge1 and edge2 only: two clusters, on MariaDB as deployed.

    On the test bed's sqlite, Glance 28's own import flow failed this
    test's import two runs of three with "database is locked" (a lock
    upgrade sqlite refuses at once), before the plugin ran.
    """
    return glance_api_factory(
        {'edge1': ceph_cluster, 'edge2': ceph_cluster2}, 'edge1',
        plugins=['sparse_rbd_import'], rados_connect_timeout=TIMEOUT,
        database=mariadb_server.create_database(),
        extra_conf={'DEFAULT': {'show_multiple_locations': True},
                    'edge2': {'rbd_store_chunk_size': 4}})


@pytest.fixture
def locking_nodes(glance_api_factory, ceph_cluster, ceph_cluster2,
                  ceph_cluster3, mariadb_server):
    """Nodes A and B of one Glance: one database, the same stores.

    add-site talks to A; B runs Glance's copy-image, and a test pauses B
    to keep the import lock held for as long as it needs. The new sites
    are written at 4 MiB/s each, so add-site copies for seconds.
    """
    database = mariadb_server.create_database()
    a = glance_api_factory(
        {'edge1': ceph_cluster, 'edge2': ceph_cluster2,
         'edge3': ceph_cluster3, 'file1': None}, 'edge1',
        plugins=['sparse_rbd_import'], rados_connect_timeout=TIMEOUT,
        database=database, extra_conf=_dcn_conf(sparse_rbd_import={
            'store_write_rate_limit': 'edge2:4,edge3:4'}))
    b = glance_api_factory(
        {'edge1': ceph_cluster, 'edge2': ceph_cluster2,
         'edge3': ceph_cluster3, 'file1': a.store_dir('file1')}, 'edge1',
        plugins=['sparse_rbd_import'], rados_connect_timeout=TIMEOUT,
        database=database, workers=1, extra_conf=_dcn_conf())
    return a, b


@pytest.fixture
def glance(dcn_api):
    return cli.GlanceCLI(dcn_api)


@pytest.fixture
def clusters(ceph_cluster, ceph_cluster2, ceph_cluster3):
    return dict(zip(SITES, (ceph_cluster, ceph_cluster2, ceph_cluster3)))


@pytest.fixture
def imported(glance, image_builder, scratch_dir):
    """An image imported to edge1 only: (image, raw path)."""
    image, path = import_to_edge1(glance, image_builder, 'add-site',
                                  512 * MiB, 48 * MiB, compressed=True)
    return image, raw_of(path, scratch_dir)


def add_site_command(api, *args):
    return ([procs.bin_path('glance-sparse-import'), 'add-site'] +
            api.config_args() +
            ['--os-auth-type', 'none', '--os-endpoint', api.url] +
            list(args))


def add_site(api, *args, timeout=300):
    """Run ``add-site`` as an operator does on the glance-api host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    cmd = add_site_command(api, *args)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return cli.CLIResult(cmd, proc.returncode, proc.stdout, proc.stderr)


def start_add_site(api, *args):
    """``add-site`` started as :func:`add_site` runs it: the Popen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    return subprocess.Popen(add_site_command(api, *args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_writing(proc, cluster, image_id):
    """Wait until ``proc`` (add-site) writes ``cluster``, or has ended."""
    procs.wait_until(
        lambda: proc.poll() is not None or
        image_id in cluster.rbd_images(), 120,
        'add-site did not start writing %s' % cluster.name)


def import_to_edge1(glance, image_builder, name, virtual, data,
                    compressed=False):
    """A qcow2 imported with the plugin to edge1 only: (image, path)."""
    path = image_builder.qcow2(virtual, data, compressed=compressed)
    image = glance.image_create_via_import(path, 'qcow2', name=name,
                                           stores=['edge1'])
    task = glance.wait_task(image['id'])
    assert task['status'] == 'success', glance.explain(image['id'])
    return glance.get_image(image['id']), path


def raw_of(path, scratch_dir):
    """The raw disk of the qcow2 ``path``, converted by qemu-img."""
    raw = os.path.join(scratch_dir, 'expected.raw')
    procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path,
               raw], timeout=300)
    return raw


def _locations(api, image_id):
    status, image = api.request('GET', '/v2/images/%s' % image_id)
    assert status == 200
    return {loc['metadata'].get('store'): loc['url']
            for loc in image['locations']}


def _check_copy(cluster, image_id, raw, scratch_dir):
    spec = 'images/%s@snap' % image_id
    info = json.loads(cluster.rbd('info', '--format', 'json', spec))
    assert str(info['protected']).lower() == 'true'
    exported = os.path.join(scratch_dir, '%s.export' % cluster.name)
    cluster.rbd('export', '--no-progress', spec, exported)
    try:
        assert filecmp.cmp(exported, raw, shallow=False), cluster
    finally:
        os.unlink(exported)


def _unchanged(before, after):
    for key in ('status', 'size', 'checksum', 'os_hash_algo',
                'os_hash_value', 'virtual_size', 'disk_format'):
        assert after[key] == before[key], key


def test_add_two_sites_at_once(glance, dcn_api, clusters, imported,
                               scratch_dir):
    before, raw = imported
    image_id = before['id']
    assert before['stores'] == 'edge1'
    md5, sha512 = images.file_digests(raw)
    assert (before['checksum'], before['os_hash_value']) == (md5, sha512)

    result = add_site(dcn_api, image_id, '--stores', 'edge2,edge3')

    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    for site in ('edge2', 'edge3'):
        url = 'rbd://%s/images/%s/snap' % (clusters[site].fsid, image_id)
        assert 'image %s: store %s: added %s' % (image_id, site, url) in \
            '\n'.join(lines)
    after = glance.get_image(image_id)
    _unchanged(before, after)
    assert set(after['stores'].split(',')) == set(SITES)
    locations = _locations(dcn_api, image_id)
    for site in SITES:
        cluster = clusters[site]
        assert locations[site] == 'rbd://%s/images/%s/snap' % (
            cluster.fsid, image_id)
        _check_copy(cluster, image_id, raw, scratch_dir)
    # Written once per site, only what the source holds.
    source_used = clusters['edge1'].rbd_used_bytes(image_id, snap='snap')
    for site in ('edge2', 'edge3'):
        written = re.search(r'store %s: added \S+ \((\d+) bytes written\)'
                            % site, result.stdout).group(1)
        assert 0 < int(written) <= source_used
    # rbd diff counts in pages of the OSD's objects: for objects no larger
    # than the source's, no more than the source's. (16 MiB objects count
    # a little more for the same writes.)
    assert clusters['edge2'].rbd_used_bytes(image_id, snap='snap') <= \
        source_used
    for site, order in (('edge2', 22), ('edge3', 24)):
        info = json.loads(clusters[site].rbd('info', '--format', 'json',
                                             'images/%s' % image_id))
        assert info['order'] == order

    # Nothing left to add: every store already holds it.
    again = add_site(dcn_api, image_id, '--stores', 'edge2')
    assert again.returncode == 1
    assert 'already in store(s) edge2' in again.stderr


@pytest.mark.series_core
def test_add_a_site_then_download_from_it(two_sites, ceph_cluster,
                                          ceph_cluster2, image_builder,
                                          scratch_dir):
    """On every Glance release: edge2 added, then edge1's copy deleted.

    ``glance image-download`` then gets the image from edge2's location
    and verifies it.
    """
    glance = cli.GlanceCLI(two_sites)
    before, path = import_to_edge1(glance, image_builder, 'series',
                                   64 * MiB, 8 * MiB)
    raw = raw_of(path, scratch_dir)
    image_id = before['id']
    assert (before['checksum'], before['os_hash_value']) == \
        images.file_digests(raw)
    urls = {site: 'rbd://%s/images/%s/snap' % (cluster.fsid, image_id)
            for site, cluster in (('edge1', ceph_cluster),
                                  ('edge2', ceph_cluster2))}

    result = add_site(two_sites, image_id, '--stores', 'edge2')

    assert result.returncode == 0, result.output
    assert 'image %s: store edge2: added %s' % (image_id, urls['edge2']) \
        in result.stdout
    after = glance.get_image(image_id)
    _unchanged(before, after)
    assert set(after['stores'].split(',')) == {'edge1', 'edge2'}
    assert _locations(two_sites, image_id) == urls
    _check_copy(ceph_cluster2, image_id, raw, scratch_dir)

    # The operator retires edge1's copy: Glance's delete-from-store API.
    status, body = two_sites.request('DELETE', '/v2/stores/edge1/%s'
                                     % image_id)
    assert status == 204, body
    after = glance.get_image(image_id)
    _unchanged(before, after)
    assert after['stores'] == 'edge2'
    assert _locations(two_sites, image_id) == {'edge2': urls['edge2']}
    assert image_id not in ceph_cluster.rbd_images()

    out = os.path.join(scratch_dir, 'downloaded')
    glance.run('image-download', '--file', out, image_id)
    assert filecmp.cmp(out, raw, shallow=False)
    # glanceclient checks what it receives against the image's hashes:
    # the same download of a damaged copy fails.
    common.corrupt_snapshot(ceph_cluster2, image_id)
    bad = glance.run('image-download', '--file', out + '.bad', image_id,
                     check=False)
    assert bad.returncode != 0, bad.output
    assert 'Corrupt image download' in bad.output
    # The clusters serve the lane's later tests: leave them as found.
    glance.image_delete(image_id)
    assert image_id not in ceph_cluster2.rbd_images()


def test_refused_stores(dcn_api, clusters, imported):
    before, _raw = imported
    image_id = before['id']
    for stores, message in (
            ('edge2,nosuch', 'nosuch is not a store of this Glance'),
            ('file1', 'file1 is a file store, not an RBD store'),
            ('edge1,edge2', 'already in store(s) edge1')):
        result = add_site(dcn_api, image_id, '--stores', stores)
        assert result.returncode == 1, result.output
        assert message in result.stderr
    for site in ('edge2', 'edge3'):
        assert image_id not in clusters[site].rbd_images()
    status, after = dcn_api.request('GET', '/v2/images/%s' % image_id)
    _unchanged(before, after)
    assert after['stores'] == 'edge1'


def test_endpoint_without_locations(glance_api_factory, ceph_cluster,
                                    ceph_cluster2, image_builder):
    """A user-facing endpoint (no show_multiple_locations) is refused."""
    api = glance_api_factory({'edge1': ceph_cluster, 'edge2': ceph_cluster2},
                             'edge1', plugins=['sparse_rbd_import'])
    glance = cli.GlanceCLI(api)
    path = image_builder.qcow2(64 * MiB, 8 * MiB)
    image = glance.image_create_via_import(path, 'qcow2', stores=['edge1'])
    assert glance.wait_task(image['id'])['status'] == 'success'
    result = add_site(api, image['id'], '--stores', 'edge2')
    assert result.returncode == 1
    assert 'show_multiple_locations = True' in result.stderr
    assert image['id'] not in ceph_cluster2.rbd_images()


def test_site_down(glance, dcn_api, clusters, imported, scratch_dir):
    """edge3 has no OSD: edge2 is added, edge3 reported and left clean."""
    before, raw = imported
    image_id = before['id']
    clusters['edge3'].stop_osd()
    try:
        result = add_site(dcn_api, image_id, '--stores', 'edge2,edge3')
    finally:
        clusters['edge3'].start_osd()
    assert result.returncode == 1, result.output
    assert 'image %s: store edge2: added' % image_id in result.stdout
    assert ('image %s: store edge3: NOT added: store edge3: cannot create '
            'the RBD image' % image_id) in result.stdout
    assert '1 of 2 store copies not added' in result.stderr
    after = glance.get_image(image_id)
    _unchanged(before, after)
    assert set(after['stores'].split(',')) == {'edge1', 'edge2'}
    _check_copy(clusters['edge2'], image_id, raw, scratch_dir)
    assert image_id not in clusters['edge3'].rbd_images()

    # The site back, every image that lacks it is added to it.
    result = add_site(dcn_api, '--all-images', '--stores', 'edge3')
    assert result.returncode == 0, result.output
    assert 'image %s: store edge3: added' % image_id in result.stdout
    assert '1 image(s), 1 store copies added, 0 failed' in result.stdout
    _check_copy(clusters['edge3'], image_id, raw, scratch_dir)
    assert set(glance.get_image(image_id)['stores'].split(',')) == \
        set(SITES)


def test_source_bytes_changed(glance, dcn_api, clusters, imported):
    """A source snapshot whose bytes changed: nothing added, nothing left.

    As a damaged or tampered store would, Ceph serves other bytes under
    the image's location: the hashes differ from the image's.
    """
    before, _raw = imported
    image_id = before['id']
    common.corrupt_snapshot(clusters['edge1'], image_id)
    result = add_site(dcn_api, image_id, '--stores', 'edge2,edge3')
    assert result.returncode == 1, result.output
    assert 'the data read differs from the image: checksum ' in \
        result.stderr
    assert 'os_hash_value ' in result.stderr
    for site in ('edge2', 'edge3'):
        assert 'image %s: store %s: NOT added: the data read differs' % (
            image_id, site) in result.stdout
        assert image_id not in clusters[site].rbd_images()
    after = glance.get_image(image_id)
    _unchanged(before, after)
    assert after['stores'] == 'edge1'


def test_image_deleted_during_the_copy(glance, dcn_api, clusters,
                                       image_builder):
    """The image is deleted while add-site copies it: nothing is left."""
    # 4 GiB of virtual size: hashing it leaves seconds to delete it in.
    image, _path = import_to_edge1(glance, image_builder, 'deleted',
                                   4 * 1024 * MiB, 16 * MiB)
    image_id = image['id']
    proc = start_add_site(dcn_api, image_id, '--stores', 'edge2,edge3')
    try:
        # Once the new sites are being written.
        wait_writing(proc, clusters['edge3'], image_id)
        status, _body = dcn_api.request('DELETE', '/v2/images/%s'
                                        % image_id)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 204
    assert proc.returncode == 1, out + err
    # glance_store removed the source snapshot under the reads.
    for site in ('edge2', 'edge3'):
        assert 'image %s: store %s: NOT added: image %s was deleted during ' \
            'the copy' % (image_id, site, image_id) in out
    for cluster in clusters.values():
        assert image_id not in cluster.rbd_images()
    assert dcn_api.request('GET', '/v2/images/%s' % image_id)[0] == 404


def _lock_by_copy_image(glance, node_b, image_id):
    """copy-image to file1 on node B, paused: return the task holding it.

    Glance takes the lock before it answers the call; B, paused right
    after, holds it until resumed. Checked, not hoped: a copy of 512 MiB
    lasts far longer than the time to pause B.
    """
    known = glance.task_ids(image_id)
    status, body = node_b.request(
        'POST', '/v2/images/%s/import' % image_id,
        {'method': {'name': 'copy-image'}, 'stores': ['file1']})
    node_b.pause()
    assert status == 202, body
    # Not GET /v2/images/ID/tasks while B is paused: Glance soft-deletes
    # expired tasks there (an UPDATE), which waits on any row lock B was
    # paused holding. Reading the image only selects.
    image = glance.get_image(image_id)
    task_id = image.get(LOCK)
    assert task_id and task_id not in known, image
    assert image['stores'] == 'edge1'
    return task_id


def _copy_image_ended(glance, image_id, task_id, before):
    """copy-image, resumed, ends as if add-site had not run."""
    task = glance.wait_task_id(task_id, timeout=300)
    assert task['status'] == 'success', glance.explain(image_id)
    after = glance.get_image(image_id)
    _unchanged(before, after)
    assert not after.get(LOCK)
    assert set(after['stores'].split(',')) == {'edge1', 'file1'}
    assert set(_locations(glance.api, image_id)) == {'edge1', 'file1'}


def test_image_locked_by_an_import(locking_nodes, clusters, image_builder):
    """copy-image holds the image: add-site refuses it and writes nothing."""
    api, node_b = locking_nodes
    glance = cli.GlanceCLI(api)
    before, _path = import_to_edge1(glance, image_builder, 'locked',
                                    512 * MiB, 16 * MiB)
    image_id = before['id']
    try:
        task_id = _lock_by_copy_image(glance, node_b, image_id)
        result = add_site(api, image_id, '--stores', 'edge2,edge3')
    finally:
        node_b.resume()
    assert result.returncode == 1, result.output
    message = ('image %s is locked by import task %s: try again when it '
               'ends' % (image_id, task_id))
    assert message in result.stderr
    for site in ('edge2', 'edge3'):
        assert 'image %s: store %s: NOT added: %s' % (
            image_id, site, message) in result.stdout
        assert image_id not in clusters[site].rbd_images()
    _copy_image_ended(glance, image_id, task_id, before)


def test_image_locked_during_the_copy(locking_nodes, clusters,
                                      image_builder):
    """copy-image takes the lock while add-site copies: nothing is added.

    add-site finds the lock when it re-reads the image after the copy,
    registers nothing and removes what it wrote to every site.
    """
    api, node_b = locking_nodes
    glance = cli.GlanceCLI(api)
    before, _path = import_to_edge1(glance, image_builder, 'locked-later',
                                    512 * MiB, 16 * MiB)
    image_id = before['id']
    proc = start_add_site(api, image_id, '--stores', 'edge2,edge3')
    try:
        wait_writing(proc, clusters['edge3'], image_id)
        # Paused, add-site cannot end its copy before the lock is taken.
        proc.send_signal(signal.SIGSTOP)
        try:
            assert proc.poll() is None, proc.communicate()
            # Still copying: a site is snapshotted once fully written,
            # before the image is read again.
            assert json.loads(clusters['edge3'].rbd(
                'snap', 'ls', '--format', 'json',
                'images/%s' % image_id)) == []
            task_id = _lock_by_copy_image(glance, node_b, image_id)
        finally:
            proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=300)
        # B still paused: the image is as add-site left it.
        after = glance.get_image(image_id)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        node_b.resume()
    assert proc.returncode == 1, out + err
    message = ('image %s was locked by import task %s during the copy: try '
               'again when it ends' % (image_id, task_id))
    assert message in err
    for site in ('edge2', 'edge3'):
        assert 'image %s: store %s: NOT added: %s' % (
            image_id, site, message) in out
        assert image_id not in clusters[site].rbd_images()
    _unchanged(before, after)
    assert after[LOCK] == task_id
    assert after['stores'] == 'edge1'
    assert [loc['metadata'].get('store') for loc in after['locations']] == \
        ['edge1']
    _copy_image_ended(glance, image_id, task_id, before)
