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

"""Two Glance API nodes behind one database, as a highly available cloud
runs them: each node has its own staging directory and its own
``worker_self_reference_url``, both serve the same RBD store.

glance-direct: the image is staged on node A and the import is called on
node B; Glance proxies the call to A, which holds the data, and the plugin
runs there. web-download: the node that receives the call downloads the
data and runs the plugin. Either way both nodes show the import's progress
(the task message), since it lives in the shared database.
"""

import filecmp
import os
import re
import time

import pytest

from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
GiB = 1024 ** 3
PROGRESS = re.compile(r'Sparse import: \d+ of \d+ MiB read, \d+ MiB hashed, '
                      r'\d+ MiB written to each of: ceph$')


@pytest.fixture(scope='module')
def nodes(module_glance_api_factory, ceph_cluster, mariadb_server):
    """Nodes A and B: the same store and database, their own staging."""
    database = mariadb_server.create_database()
    # One uWSGI worker each: the nodes, not the workers, are under test.
    return [module_glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['sparse_rbd_import'],
        database=database, workers=1,
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})
        for _ in range(2)]


@pytest.fixture(scope='module')
def source(image_builder):
    """A qcow2 image big enough to hash for a few seconds; its raw form."""
    path = image_builder.qcow2(3 * GiB, 32 * MiB)
    with fixtures.temp_dir('nodes') as workdir:
        raw = os.path.join(workdir, 'expected.raw')
        procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path,
                   raw], timeout=300)
        yield (path, raw) + images.file_digests(raw)


def _watch_from_both(nodes, image_id, timeout=300):
    """Poll the image's task on each node in turn until it ends.

    Returns the task as the last node saw it and, per node, the progress
    messages it showed while the task was processing.
    """
    clis = [cli.GlanceCLI(n) for n in nodes]
    seen = [set() for _ in nodes]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for glance, messages in zip(clis, seen):
            tasks = glance.task_list_for_image(image_id)
            task = tasks[0] if tasks else None
            if task and task['status'] == 'processing' and PROGRESS.match(
                    task['message'] or ''):
                messages.add(task['message'])
        if task and task['status'] in ('success', 'failure'):
            return task, seen
        time.sleep(0.2)
    raise AssertionError('import of %s did not end; saw %s' % (image_id,
                                                               seen))


def _check_imported(nodes, ceph_cluster, image_id, raw, md5, sha512,
                    scratch_dir):
    for node in nodes:
        image = cli.GlanceCLI(node).wait_for_status(image_id, timeout=60)
        assert image['checksum'] == md5
        assert image['os_hash_value'] == sha512
        assert image['size'] == os.path.getsize(raw)
        assert image['disk_format'] == 'raw'
        assert image['stores'] == 'ceph'
    exported = os.path.join(scratch_dir, 'export.raw')
    ceph_cluster.rbd('export', '--no-progress', 'images/%s@snap' % image_id,
                     exported)
    try:
        assert filecmp.cmp(exported, raw, shallow=False)
    finally:
        os.unlink(exported)


def _ran_on(node, image_id):
    return bench.parse_import_summary(node.log_text(), image_id) is not None


def test_stage_on_one_node_import_on_the_other(nodes, ceph_cluster, source,
                                               scratch_dir):
    a, b = nodes
    path, raw, md5, sha512 = source
    image_id = bench.stage_image(cli.GlanceCLI(a), path, 'qcow2', 'staged-a')
    assert os.path.exists(os.path.join(a.staging_dir, image_id))
    assert not os.path.exists(os.path.join(b.staging_dir, image_id))

    cli.GlanceCLI(b).run('image-import', '--import-method', 'glance-direct',
                         image_id)
    task, seen = _watch_from_both(nodes, image_id)

    assert task['status'] == 'success', task['message']
    assert all(seen), seen
    _check_imported(nodes, ceph_cluster, image_id, raw, md5, sha512,
                    scratch_dir)
    assert 'Proxying POST request to host %s' % a.url in b.log_text()
    assert _ran_on(a, image_id) and not _ran_on(b, image_id)
    assert not os.path.exists(os.path.join(a.staging_dir, image_id))


def test_web_download_runs_where_called(nodes, ceph_cluster, source,
                                        file_server, scratch_dir):
    a, b = nodes
    path, raw, md5, sha512 = source
    created = cli.GlanceCLI(a).run(
        'image-create', '--disk-format', 'qcow2', '--container-format',
        'bare', '--name', 'web-b')
    image_id = cli.parse_table(created.stdout)['id']
    logged = [len(n.log_text()) for n in nodes]

    cli.GlanceCLI(b).run('image-import', '--import-method', 'web-download',
                         '--uri', file_server.url(path), image_id)
    task, seen = _watch_from_both(nodes, image_id)

    assert task['status'] == 'success', task['message']
    assert all(seen), seen
    _check_imported(nodes, ceph_cluster, image_id, raw, md5, sha512,
                    scratch_dir)
    assert _ran_on(b, image_id) and not _ran_on(a, image_id)
    for node, offset in zip(nodes, logged):
        assert 'Proxying' not in node.log_text()[offset:]
