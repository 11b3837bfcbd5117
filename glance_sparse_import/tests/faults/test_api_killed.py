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

"""The Glance API killed (SIGKILL) in the middle of an import.

Nothing reverts the import: the image stays ``importing``, its import lock
names a task that stays ``processing``, and a half-written RBD image named
after the image stays in the pool. Stock Glance 33 then refuses every new
import of the image (a glance-direct import needs ``uploading``) and no API
resets it. Once an operator has put it back to ``uploading`` and the lock
has expired (60 minutes without a task update, simulated here), Glance
hands the lock to the next import, and the plugin replaces the leftover
RBD image: the import succeeds. Real API under uWSGI, real Ceph.
"""

import json
import os
import time

import pytest

from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import glance_db
from glance_sparse_import.tests.testbed import procs

GiB = 1024 ** 3
MiB = 1024 ** 2


@pytest.fixture
def api(glance_api_factory, ceph_cluster):
    return glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['sparse_rbd_import'],
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})


def _rbd_id(cluster, name):
    info = json.loads(cluster.rbd('info', '--format', 'json',
                                  '%s/%s' % (cluster.pool, name)))
    return info['id']


def _watchers(cluster, name):
    status = json.loads(cluster.rbd('status', '--format', 'json',
                                    '%s/%s' % (cluster.pool, name)))
    return status['watchers']


def test_next_import_after_api_killed(api, ceph_cluster, image_builder):
    glance = cli.GlanceCLI(api)
    path = image_builder.qcow2(6 * GiB, 32 * MiB)
    image = glance.image_create_via_import(path, 'qcow2', name='killed')
    image_id = image['id']

    def copying():
        tasks = glance.task_list_for_image(image_id)
        return (tasks and (tasks[0]['message'] or '').startswith(
            'Sparse import:') and image_id in ceph_cluster.rbd_images())

    procs.wait_until(copying, 120, 'the copy did not start')
    api.kill()
    killed = time.monotonic()
    stale_id = _rbd_id(ceph_cluster, image_id)

    api.start()
    image = glance.get_image(image_id)
    (old_task,) = glance.task_list_for_image(image_id)
    assert image['status'] == 'importing'
    assert old_task['status'] == 'processing'
    assert glance_db.import_lock(api.db_path, image_id) == old_task['id']
    assert os.path.exists(os.path.join(api.staging_dir, image_id))
    body = {'method': {'name': 'glance-direct'}}
    path_import = '/v2/images/%s/import' % image_id
    status, text = api.request('POST', path_import, body)
    assert status == 409 and 'needs to be staged' in str(text), text

    # The operator's repair, then the lock expiring; Glance busts it.
    glance_db.set_image_status(api.db_path, image_id, 'uploading')
    status, text = api.request('POST', path_import, body)
    assert status == 409 and 'active task' in str(text), text
    glance_db.age_task(api.db_path, old_task['id'], 61 * 60)
    # A killed client keeps its watch until Ceph times it out (30 s).
    procs.wait_until(lambda: not _watchers(ceph_cluster, image_id), 60,
                     'the killed API still watches the RBD image')
    watch_gone = time.monotonic() - killed
    status, text = api.request('POST', path_import, body)
    assert status == 202, text

    image = glance.wait_for_status(image_id, timeout=120)
    assert image['size'] == 6 * GiB
    assert image['checksum'] and image['os_hash_value']
    assert _rbd_id(ceph_cluster, image_id) != stale_id
    tasks = {t['id']: t for t in glance.task_list_for_image(image_id)}
    assert tasks[old_task['id']]['status'] == 'failure'
    assert tasks[old_task['id']]['message'] == 'Expired lock preempted'
    assert 'left by an import that did not finish' in api.log_text()
    assert watch_gone < 45
