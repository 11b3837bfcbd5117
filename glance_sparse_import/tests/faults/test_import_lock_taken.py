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

"""Another task takes the image's import lock while our copy runs.

Glance lets a new import take over a lock it considers stale
(``os_glance_import_task``). The import that lost it must stop, remove
what it wrote to Ceph, and leave the image, its locations and its staged
data alone: they belong to the new holder. Glance's real flow, real Ceph.
"""

import os
import threading
import time
import uuid

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import glance_db
from glance_sparse_import.tests.testbed import procs

GiB = 1024 ** 3
MiB = 1024 ** 2


def test_lock_taken_mid_copy(scratch_dir, ceph_cluster, image_builder):
    flow = glance_flow.GlanceFlow(
        os.path.join(scratch_dir, 'glance'), {'ceph': ceph_cluster}, 'ceph',
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})
    db = flow.config.db_path
    # Hashing 32 GiB takes about a minute: an import that went on to the
    # end instead of stopping could not meet the bound below.
    path = image_builder.qcow2(32 * GiB, 64 * MiB)
    image_id = str(uuid.uuid4())
    thief = str(uuid.uuid4())
    outcome = {}

    def run():
        outcome['result'] = flow.run_import('qcow2', file=path,
                                            stores=['ceph'],
                                            image_id=image_id)
        outcome['ended'] = time.monotonic()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        procs.wait_until(lambda: _copying(runner, db, image_id,
                                          ceph_cluster),
                         120, 'the copy did not start',
                         abort=(AssertionError,))
        glance_db.take_import_lock(db, image_id, thief)
        taken = time.monotonic()
    finally:
        runner.join(300)
    result = outcome['result']
    task, image = result['task'], result['image']

    assert task['status'] == 'failure', flow.explain(result)
    assert task['message'] == ('Sparse RBD import failed: another task '
                               'took the import lock of the image')
    # One progress tick, the revert and the flow runner's exit; a minute's
    # hashing is no longer waited for.
    assert outcome['ended'] - taken < 20
    assert image_id not in ceph_cluster.rbd_images()
    # Nothing registered, nothing changed: the new holder owns the image.
    assert image['status'] == 'importing'
    assert image['locations'] == []
    assert image['checksum'] is None
    assert image['extra_properties']['os_glance_import_task'] == thief
    assert os.path.exists(os.path.join(flow.staging_dir, image_id))


def _copying(runner, db, image_id, cluster):
    assert runner.is_alive(), 'the import ended before the copy was seen'
    return (any((t['message'] or '').startswith('Sparse import:')
                for t in glance_db.tasks(db, image_id)) and
            image_id in cluster.rbd_images())
