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

"""Faults under Glance's eventlet ``glance-api`` (up to Glance 32).

The same failures as the flow-level fault tests, through the real API on
the server RHOSO, Kolla and TripleO run: another task taking the import
lock, and one Ceph site going down mid-import while the API must keep
answering (a librbd call waiting for its timeout may not block eventlet's
hub). A delete during an import is in e2e/test_eventlet_server.py. The
series-2025.1 lane runs them (marker ``eventlet_faults``); faults/conftest.py
leaves this module out where Glance has no eventlet server.
"""

import os
import re
import time
import uuid

import pytest

from glance_sparse_import.tests.faults import test_ceph_faults as faults
from glance_sparse_import.tests.testbed import answers
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import glance_db
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

pytestmark = pytest.mark.eventlet_faults

# The fault tests' image and bounds.
raw_image = faults.raw_image
MiB = 1024 ** 2
GiB = 1024 ** 3


@pytest.fixture(scope='module')
def site():
    """An edge site whose OSD can be slowed and stopped."""
    extra = {'osd debug inject dispatch delay duration': faults.OP_DELAY,
             'osd client watch timeout': 5}
    with fixtures.running_cluster('site', memstore_bytes=GiB,
                                  extra_conf=extra) as cluster:
        yield cluster


@pytest.fixture(scope='module')
def glance(site, ceph_cluster, module_glance_api_factory):
    # The factory, set up after the site, is torn down before it.
    api = module_glance_api_factory(
        {'ceph': ceph_cluster, 'site': site}, 'ceph',
        plugins=['sparse_rbd_import'], server='eventlet', workers=1,
        rados_connect_timeout=faults.TIMEOUT,
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})
    return cli.GlanceCLI(api)


def _wait_for_message(glance, image_id, pattern, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in glance.task_list_for_image(image_id):
            if re.search(pattern, task['message'] or ''):
                return task
        time.sleep(0.2)
    raise AssertionError('no task message matching %r; %s'
                         % (pattern, glance.explain(image_id)))


def test_lock_taken_mid_copy(glance, ceph_cluster, image_builder):
    # Hashing 32 GiB takes about a minute: an import that went on to the
    # end instead of stopping could not meet the bound below.
    path = image_builder.qcow2(32 * GiB, 32 * MiB)
    image = glance.image_create_via_import(path, 'qcow2', stores=['ceph'],
                                           name='lock-taken')
    task = _wait_for_message(glance, image['id'], r'^Sparse import:')
    assert image['id'] in ceph_cluster.rbd_images()
    thief = str(uuid.uuid4())
    glance_db.take_import_lock(glance.api.db_path, image['id'], thief)
    taken = time.monotonic()
    task = glance.wait_task_id(task['id'], timeout=60)
    assert task['status'] == 'failure'
    assert task['message'] == ('Sparse RBD import failed: another task '
                               'took the import lock of the image')
    # One progress tick and the revert, not a minute of hashing.
    assert time.monotonic() - taken < 20
    assert image['id'] not in ceph_cluster.rbd_images()
    # Nothing registered: the new holder owns the image.
    shown = glance.get_image(image['id'])
    assert shown['status'] == 'importing'
    assert shown['checksum'] is None
    assert shown['os_glance_import_task'] == thief
    glance.image_delete(image['id'])


def test_site_down_mid_import(glance, ceph_cluster, site, raw_image,
                              scratch_dir):
    """One site's OSD stops: the API answers, the other site gets it."""
    image = glance.image_create_via_import(
        raw_image, 'raw', stores=['ceph', 'site'],
        all_stores_must_succeed=False, name='site-down')
    try:
        with faults._slow(site):
            task = _wait_for_message(glance, image['id'],
                                     r' [1-9]\d* MiB written')
            site.stop_osd()
            stopped = time.monotonic()
        latencies = answers.sample(glance, image['id'], interval=0.2,
                                   timeout=faults.FAILURE_BOUND)
        assert time.monotonic() - stopped < faults.FAILURE_BOUND
        task = glance.wait_task_id(task['id'],
                                   timeout=faults.FAILURE_BOUND)
    finally:
        site.start_osd()
    # librbd waited for its timeout on native threads: the hub went on.
    assert latencies, 'the import ended before the API was asked'
    answers.check(latencies)
    assert task['status'] == 'success', glance.explain(image['id'])
    shown = glance.get_image(image['id'])
    assert shown['status'] == 'active'
    assert shown['stores'] == 'ceph'
    assert shown['os_glance_failed_import'] == 'site'
    assert (shown['checksum'], shown['os_hash_value']) == \
        images.file_digests(raw_image)
    exported = os.path.join(scratch_dir, 'export.raw')
    ceph_cluster.rbd('export', '--no-progress',
                     'images/%s@snap' % image['id'], exported)
    assert images.file_digests(exported) == images.file_digests(raw_image)
    # The site could not be cleaned while down (the log says so); the
    # next import there replaces what is left (test_ceph_faults.py).
    procs.wait_until(
        lambda: 'Could not remove RBD image %s' % image['id'] in
        glance.api.log_text() or image['id'] not in site.rbd_images(),
        30, 'neither removed nor reported')
    if image['id'] in site.rbd_images():
        site.purge_image(image['id'])
    glance.image_delete(image['id'])
