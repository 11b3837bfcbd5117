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

"""What an operator sees while an import runs, and deleting it midway.

A 6 GiB-virtual image takes several seconds to hash; with
``progress_interval = 1`` the task message must advance during the import.
Deleting a 32 GiB-virtual image while it imports must stop the import
within seconds, not after hashing the rest, and remove its RBD image.
"""

import re
import time

import pytest

from glance_sparse_import.tests.testbed import cli

GiB = 1024 ** 3
MiB = 1024 ** 2
MESSAGE = re.compile(r'Sparse import: (\d+) of (\d+) MiB read, (\d+) MiB '
                     r'hashed, (\d+) MiB written to each of: ceph$')


@pytest.fixture
def glance(glance_api_factory, ceph_cluster):
    api = glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['sparse_rbd_import'],
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})
    return cli.GlanceCLI(api)


def _task(glance, image_id):
    tasks = glance.task_list_for_image(image_id)
    return tasks[0] if tasks else None


def _messages_until_done(glance, image_id, timeout=300):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = _task(glance, image_id)
        if task and task['message'] and (not seen or
                                         seen[-1] != task['message']):
            seen.append(task['message'])
        if task and task['status'] in ('success', 'failure'):
            return task, seen
        time.sleep(0.2)
    raise AssertionError('import did not finish; saw %s; %s'
                         % (seen, glance.explain(image_id)))


def test_task_message_advances(glance, image_builder):
    path = image_builder.qcow2(6 * GiB, 32 * MiB)
    image = glance.image_create_via_import(path, 'qcow2', name='progress')
    task, seen = _messages_until_done(glance, image['id'])
    assert task['status'] == 'success', glance.explain(image['id'])
    progress = [tuple(map(int, m.groups()))
                for m in map(MESSAGE.match, seen) if m]
    assert len(progress) >= 2, seen
    hashed = [p[2] for p in progress]
    assert hashed == sorted(hashed) and hashed[0] < hashed[-1]
    assert all(p[1] == 6 * 1024 for p in progress)
    assert glance.get_image(image['id'])['status'] == 'active'


def test_deleting_the_image_stops_the_import(glance, ceph_cluster,
                                             image_builder):
    # Hashing 32 GiB takes about a minute: an import that ran to the end
    # instead of stopping could not meet the bound below.
    path = image_builder.qcow2(32 * GiB, 32 * MiB)
    image = glance.image_create_via_import(path, 'qcow2', name='cancel')
    deadline = time.monotonic() + 120
    while True:
        task = _task(glance, image['id'])
        if task and MESSAGE.match(task['message'] or ''):
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.2)
    assert image['id'] in ceph_cluster.rbd_images()
    glance.image_delete(image['id'])
    deleted_at = time.monotonic()
    # The image's task list is gone with it; the task itself is not.
    task = glance.wait_task_id(task['id'], timeout=60)
    assert task['status'] == 'failure', (task, glance.api.log_text()[-8000:])
    # One progress tick and the revert.
    assert time.monotonic() - deleted_at < 15
    deadline = time.monotonic() + 30
    while image['id'] in ceph_cluster.rbd_images():
        assert time.monotonic() < deadline, 'RBD image left behind'
        time.sleep(0.5)
