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

"""The plugin where Glance or the host lacks something, in Glance's flow.

A missing internal must fail the import with a message naming it, never
let Glance store the image unconverted; Glance 33's flow-building retry on
a locked SQLite database must not drop the RBD stores.
"""

import os
import subprocess
import sys

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import images

MiB = 1024 ** 2
VIRTUAL = 64 * MiB
DATA = 8 * MiB


@pytest.fixture
def flow(scratch_dir, ceph_cluster):
    return glance_flow.GlanceFlow(
        os.path.join(scratch_dir, 'glance-compat'),
        {'ceph': ceph_cluster, 'local': None}, 'ceph',
        plugins=['sparse_rbd_import'])


# A binding of the host and a Glance function, at once: both are named.
MISSING = {
    'nbd': 'Python module nbd (install python3-libnbd for this '
           'interpreter)',
    'glance.common.crypt:urlsafe_decrypt':
        'glance.common.crypt.urlsafe_decrypt (not in this release)',
}


def test_missing_internal_fails_the_import(flow, ceph_cluster,
                                           image_builder):
    source = image_builder.qcow2(VIRTUAL, DATA)
    result = flow.run_import('qcow2', file=source, stores=['ceph', 'local'],
                             extra_args=[arg for hidden in MISSING
                                         for arg in ('--hide', hidden)])
    image, task = result['image'], result['task']
    why = glance_flow.explain(result)
    assert task['status'] == 'failure', why
    assert task['message'].startswith(
        'sparse_rbd_import cannot run on this Glance deployment; '
        'missing: '), why
    for named in MISSING.values():
        assert named in task['message'], why
    # Not stored unconverted anywhere, and ready for another import.
    assert image['status'] == 'queued', why
    assert image['locations'] == [], why
    assert image['disk_format'] == 'qcow2'
    props = image['extra_properties']
    assert set(props['os_glance_failed_import'].split(',')) == \
        {'ceph', 'local'}, why
    assert props.get('os_glance_importing_to_stores', '') == '', why
    assert image['id'] not in ceph_cluster.rbd_images()
    assert os.listdir(flow.store_dir('local')) == []
    assert os.listdir(flow.staging_dir) == []
    assert ('sparse_rbd_import cannot run here; every import to an RBD '
            'store will fail until this is fixed. Missing: ') in \
        result['glance_log'], why
    for named in MISSING.values():
        assert named in result['glance_log']


def test_import_without_rbd_store_is_left_to_glance(flow, ceph_cluster,
                                                    image_builder):
    source = image_builder.ext4_raw(VIRTUAL, DATA)
    result = flow.run_import('raw', file=source, stores=['local'],
                             extra_args=['--hide', 'nbd'])
    why = glance_flow.explain(result)
    assert result['task']['status'] == 'success', why
    assert result['image']['status'] == 'active', why
    assert result['image']['locations'][0]['metadata'] == {
        'store': 'local'}


def _glance_retries_flow_building():
    # Asked in a child: importing Glance into the test process before
    # Glance 33 breaks the file server thread of later web-download tests.
    code = ('from glance.common import utils; '
            'print(hasattr(utils, "retry_on_db_lock"))')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1] == 'True'


def test_flow_retry_on_locked_database_keeps_rbd_stores(
        flow, ceph_cluster, image_builder):
    source = image_builder.qcow2(VIRTUAL, DATA, compressed=True)
    result = flow.run_import('qcow2', file=source, stores=['ceph', 'local'],
                             extra_args=['--database-locked-once'])
    image, task = result['image'], result['task']
    why = glance_flow.explain(result)
    assert 'database is locked (injected)' in result['stderr'], why
    if not _glance_retries_flow_building():
        # Glance before 33 builds the flow once: the error ends the run
        # (Glance 26 leaves the task processing), before anything is
        # written.
        assert task['status'] in ('failure', 'processing'), why
        assert image['status'] != 'active', why
        assert image['locations'] == [], why
        assert image['id'] not in ceph_cluster.rbd_images()
        return
    assert task['status'] == 'success', why
    assert image['status'] == 'active', why
    assert image['disk_format'] == 'raw'
    stores = {loc['metadata'].get('store') for loc in image['locations']}
    assert stores == {'ceph', 'local'}, why
    assert image['id'] in ceph_cluster.rbd_images()
    # The qcow2 holds this raw disk.
    md5, _sha512 = images.file_digests(image_builder.ext4_raw(VIRTUAL, DATA))
    assert image['checksum'] == md5
    assert 'imported sparse to ceph' in result['glance_log'], why
    ceph_cluster.purge_image(image['id'])
