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

"""Ceph failing in the middle of an import, in Glance's real flow.

The tests get a cluster of their own. During an import its OSD waits
``OP_DELAY`` seconds before each operation, so that the import writes for
several seconds; the fault is injected once the task message shows data
written to Ceph.
"""

import contextlib
import filecmp
import os
import re
import threading
import time
import uuid

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import glance_db
from glance_sparse_import.tests.testbed import images

MiB = 1024 ** 2
GiB = 1024 ** 3
VIRTUAL = 512 * MiB
# 256 MiB of data in 4 MiB writes: about 9 s at OP_DELAY.
EXTENTS = [(0, 96 * MiB), (128 * MiB, 64 * MiB), (320 * MiB, 96 * MiB)]
OP_DELAY = 0.05
# The stores' rados_connect_timeout in the failure tests.
TIMEOUT = 5
# A write times out, then the plugin waits three timeouts for the removal.
FAILURE_BOUND = 4 * TIMEOUT + 10


@pytest.fixture(scope='module')
def cluster():
    extra = {'osd debug inject dispatch delay duration': OP_DELAY,
             # Ceph keeps the watch of a client that could not close the
             # image for this long (30 s by default); only then can the
             # image be removed.
             'osd client watch timeout': 5}
    with fixtures.running_cluster('faults', memstore_bytes=GiB,
                                  extra_conf=extra) as c:
        yield c


@pytest.fixture
def leftovers(cluster):
    """``set()`` of RBD images a test expects to find; fail on the rest."""
    before = set(cluster.rbd_images())
    expected = set()
    yield expected
    stray = set(cluster.rbd_images()) - before
    for name in stray:
        cluster.purge_image(name)
    assert stray <= expected, 'left behind: %s' % sorted(stray - expected)


@pytest.fixture(scope='module')
def raw_image():
    with fixtures.temp_dir('faults-image') as workdir:
        yield images.write_sparse_raw(os.path.join(workdir, 'disk.raw'),
                                      VIRTUAL, EXTENTS)


@contextlib.contextmanager
def _slow(cluster):
    """Delay every OSD operation (a restarted OSD is fast again)."""
    _set_delay(cluster, 1)
    try:
        yield
    finally:
        _set_delay(cluster, 0)


def _set_delay(cluster, probability):
    try:
        cluster.ceph('tell', 'osd.0', 'config', 'set',
                     'osd_debug_inject_dispatch_delay_probability',
                     str(probability), timeout=30)
    except Exception:
        if probability:
            raise


def _flow(workdir, cluster, timeout):
    return glance_flow.GlanceFlow(
        os.path.join(workdir, 'glance-%s' % uuid.uuid4().hex[:8]),
        {'ceph': cluster}, 'ceph', plugins=['sparse_rbd_import'],
        rados_connect_timeout=timeout,
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})


class _Import(threading.Thread):
    """``flow.run_import`` in the background."""

    def __init__(self, flow, path, image_id):
        super(_Import, self).__init__(daemon=True)
        self.flow = flow
        self.path = path
        self.image_id = image_id
        self.result = None
        self.error = None
        self.ended = None

    def run(self):
        try:
            self.result = self.flow.run_import('raw', file=self.path,
                                               stores=['ceph'],
                                               image_id=self.image_id,
                                               timeout=300)
        except Exception as e:
            self.error = e
        self.ended = time.monotonic()

    def wait_for_writes(self, timeout=60):
        """Wait until the task message shows data written to Ceph."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_alive():
            for task in _tasks(self.flow, self.image_id):
                m = re.search(r'(\d+) MiB written', task['message'] or '')
                if m and int(m.group(1)) > 0:
                    return task['message']
            time.sleep(0.2)
        raise AssertionError('no data written: %s' % (
            self.error or self.flow.log()[-3000:]))

    def outcome(self, timeout=300):
        self.join(timeout)
        assert not self.is_alive(), 'the import did not end'
        if self.error:
            raise self.error
        return self.result


def _tasks(flow, image_id):
    try:
        return glance_db.tasks(flow.config.db_path, image_id)
    except Exception:
        # The runner may not have created the database rows yet.
        return []


def _store_list(image, key):
    value = image['extra_properties'].get(key, '')
    return set(filter(None, value.split(',')))


def _check_failed(result, flow, message):
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', glance_flow.explain(result)
    assert task['message'].startswith('Sparse RBD import failed:'), \
        glance_flow.explain(result)
    assert message in task['message'], glance_flow.explain(result)
    assert image['status'] == 'queued'
    assert image['locations'] == []
    assert image['checksum'] is None
    assert _store_list(image, 'os_glance_importing_to_stores') == set()
    assert _store_list(image, 'os_glance_failed_import') == {'ceph'}
    assert os.listdir(flow.staging_dir) == []


def _check_active(result, cluster, raw, workdir):
    image, task = result['image'], result['task']
    assert task['status'] == 'success', glance_flow.explain(result)
    assert image['status'] == 'active'
    assert (image['checksum'], image['os_hash_value']) == \
        images.file_digests(raw)
    assert image['size'] == VIRTUAL
    assert [loc['url'] for loc in image['locations']] == [
        'rbd://%s/%s/%s/snap' % (cluster.fsid, cluster.pool, image['id'])]
    exported = os.path.join(workdir, 'export.raw')
    cluster.rbd('export', '--no-progress',
                '%s/%s@snap' % (cluster.pool, image['id']), exported)
    assert filecmp.cmp(exported, raw, shallow=False)
    assert cluster.rbd_used_bytes(image['id'], snap='snap') == \
        sum(length for _, length in EXTENTS)


def test_osd_back_within_timeout(cluster, raw_image, scratch_dir,
                                 leftovers):
    """An OSD restart shorter than the timeout only stalls the import."""
    flow = _flow(scratch_dir, cluster, timeout=60)
    image_id = str(uuid.uuid4())
    run = _Import(flow, raw_image, image_id)
    with _slow(cluster):
        run.start()
        run.wait_for_writes()
        cluster.stop_osd()
        stopped = time.monotonic()
    time.sleep(2)
    cluster.start_osd()
    outage = time.monotonic() - stopped
    result = run.outcome()
    leftovers.add(image_id)
    _check_active(result, cluster, raw_image, scratch_dir)
    assert outage < 60


def _check_next_import(cluster, raw, workdir, image_id):
    """Ceph is back: the next import of the image replaces the leftover.

    A fresh Glance database holds the image, as the failed import left it:
    queued, no location pointing at the RBD image.
    """
    assert image_id in cluster.rbd_images()
    flow = _flow(workdir, cluster, timeout=TIMEOUT)
    result = flow.run_import('raw', file=raw, stores=['ceph'],
                             image_id=image_id)
    _check_active(result, cluster, raw, workdir)
    assert 'left by an import that did not finish' in flow.log()


def test_osd_down_beyond_timeout(cluster, raw_image, scratch_dir,
                                 leftovers):
    """The OSD stays down: a clean failure in bounded time."""
    flow = _flow(scratch_dir, cluster, timeout=TIMEOUT)
    image_id = str(uuid.uuid4())
    leftovers.add(image_id)
    run = _Import(flow, raw_image, image_id)
    try:
        with _slow(cluster):
            run.start()
            run.wait_for_writes()
            cluster.stop_osd()
            stopped = time.monotonic()
        result = run.outcome()
    finally:
        cluster.start_osd()
    _check_failed(result, flow, 'store ceph: write failed: no answer from '
                  'Ceph within %d s (error 110)' % TIMEOUT)
    assert run.ended - stopped < FAILURE_BOUND
    # Removing the RBD image timed out too (see the report in the log).
    assert 'Could not remove RBD image %s' % image_id in flow.log()
    _check_next_import(cluster, raw_image, scratch_dir, image_id)
