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

"""Direct access to a test bed Glance's sqlite database.

For what no API offers: another task taking an image's import lock, time
passing for a task, a location another tool registered.
"""

import contextlib
import datetime
import sqlite3

LOCK = 'os_glance_import_task'


@contextlib.contextmanager
def _db(path):
    # Glance's own connections wait up to 60 s for a lock; so do we.
    conn = sqlite3.connect(path, timeout=60)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def tasks(path, image_id):
    """``[{id, status, message, updated_at}]`` of an image's tasks."""
    with _db(path) as conn:
        rows = conn.execute(
            'SELECT t.id, t.status, i.message, t.updated_at FROM tasks t '
            'LEFT JOIN task_info i ON i.task_id = t.id '
            'WHERE t.image_id = ? AND NOT t.deleted ORDER BY t.created_at',
            (image_id,)).fetchall()
    return [dict(zip(('id', 'status', 'message', 'updated_at'), r))
            for r in rows]


def import_lock(path, image_id):
    """The task id in the image's ``os_glance_import_task``, or None."""
    with _db(path) as conn:
        row = conn.execute(
            'SELECT value FROM image_properties WHERE image_id = ? AND '
            'name = ? AND NOT deleted', (image_id, LOCK)).fetchone()
    return row[0] if row else None


def take_import_lock(path, image_id, task_id):
    """Make ``task_id`` the holder of the image's import lock."""
    with _db(path) as conn:
        changed = conn.execute(
            'UPDATE image_properties SET value = ? WHERE image_id = ? AND '
            'name = ? AND NOT deleted', (task_id, image_id, LOCK)).rowcount
    if changed != 1:
        raise AssertionError('image %s has no import lock' % image_id)


def age_task(path, task_id, seconds):
    """Move a task's last update ``seconds`` into the past."""
    with _db(path) as conn:
        (updated,) = conn.execute('SELECT updated_at FROM tasks WHERE id = ?',
                                  (task_id,)).fetchone()
        then = datetime.datetime.fromisoformat(updated) - datetime.timedelta(
            seconds=seconds)
        conn.execute('UPDATE tasks SET updated_at = ? WHERE id = ?',
                     (then.strftime('%Y-%m-%d %H:%M:%S.%f'), task_id))


def set_location_urls(path, image_id, url):
    """Point every live location of an image at ``url``."""
    with _db(path) as conn:
        conn.execute('UPDATE image_locations SET value = ? WHERE '
                     'image_id = ? AND NOT deleted', (url, image_id))


def set_image_status(path, image_id, status):
    """Set an image's status, as an operator repairing it would."""
    with _db(path) as conn:
        conn.execute('UPDATE images SET status = ? WHERE id = ?',
                     (status, image_id))


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on the database until the block ends.

    Every other connection's query waits, then fails with sqlite's
    "database is locked", as under a long write elsewhere.
    """
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute('BEGIN EXCLUSIVE')
        yield
    finally:
        conn.close()
