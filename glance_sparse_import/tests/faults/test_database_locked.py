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

"""The database is locked while the copy runs.

A progress tick that cannot read the task or save its message (sqlite's
"database is locked" here, a lost connection on MySQL) must not fail the
import: it is skipped and logged, and the next tick tries again. Glance's
real flow and real Ceph; Glance waits only 1 s for a lock.
"""

import os
import threading
import uuid

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import glance_db
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

GiB = 1024 ** 3
MiB = 1024 ** 2
SKIPPED = 'progress check skipped after a database error'


def test_locked_database_skips_progress_ticks(scratch_dir, ceph_cluster,
                                              image_builder):
    workdir = os.path.join(scratch_dir, 'glance')
    db = os.path.join(workdir, 'glance.sqlite')
    flow = glance_flow.GlanceFlow(
        workdir, {'ceph': ceph_cluster}, 'ceph',
        database='sqlite:///%s?timeout=1' % db,
        extra_conf={'sparse_rbd_import': {'progress_interval': 1}})
    path = image_builder.qcow2(4 * GiB, 64 * MiB)
    image_id = str(uuid.uuid4())
    outcome = {}

    def run():
        outcome['result'] = flow.run_import('qcow2', file=path,
                                            stores=['ceph'],
                                            image_id=image_id)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        procs.wait_until(lambda: _copying(runner, db, image_id), 120,
                         'the copy did not start', abort=(AssertionError,))
        with glance_db.locked(db):
            # Held until a tick has met the lock, not for a set time.
            procs.wait_until(lambda: _skipped(runner, flow), 120,
                             'no progress tick met the lock',
                             abort=(AssertionError,))
    finally:
        runner.join(600)
    result = outcome['result']
    task, image = result['task'], result['image']
    assert task['status'] == 'success', flow.explain(result)
    assert image['status'] == 'active'
    # The qcow2 holds exactly this raw disk.
    md5, sha512 = images.file_digests(image_builder.ext4_raw(4 * GiB,
                                                             64 * MiB))
    assert (image['checksum'], image['os_hash_value']) == (md5, sha512)
    assert image_id in ceph_cluster.rbd_images()
    ceph_cluster.purge_image(image_id)


def _copying(runner, db, image_id):
    assert runner.is_alive(), 'the import ended before the copy was seen'
    return any((t['message'] or '').startswith('Sparse import:')
               for t in glance_db.tasks(db, image_id))


def _skipped(runner, flow):
    assert runner.is_alive(), (
        'the import ended while the database was locked:\n%s'
        % flow.log()[-6000:])
    return SKIPPED in flow.log()
