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

"""A throwaway MariaDB server, for Glance under concurrent writers.

On the sqlite database of the other tests, eight concurrent imports lose
one or two, with stock Glance as with the plugin: oslo.db opens every
transaction with a deferred ``BEGIN``, and a transaction that has read
and then writes while another connection writes gets "database is locked"
at once (sqlite never waits there, whatever its busy timeout). Glance
retries some of its writes; the others fail the import or, for the task's
first status update, leave the task ``pending`` for ever (the task pool
drops the error). Production Glance runs on MySQL or MariaDB.

The server listens only on a Unix socket in its own directory and runs
as the current user; root connects without a password.
"""

import os
import subprocess
import uuid

import pymysql

from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import programs


def _mariadbd():
    return programs.require('mariadbd')


class MariaDBError(Exception):
    """The server did not start or a statement failed."""


class MariaDB(object):
    """``mariadbd`` with its data, socket and log in ``workdir``."""

    def __init__(self, workdir, buffer_pool_mib=64):
        self.workdir = os.path.abspath(workdir)
        self.data_dir = os.path.join(self.workdir, 'data')
        self.socket_path = os.path.join(self.workdir, 'mysqld.sock')
        self.pid_path = os.path.join(self.workdir, 'mysqld.pid')
        self.log_path = os.path.join(self.workdir, 'mysqld.log')
        self.buffer_pool_mib = buffer_pool_mib
        self._proc = None

    def __repr__(self):
        return '<MariaDB %s>' % self.socket_path

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self, timeout=60):
        """Initialise the data directory if needed; serve; wait."""
        os.makedirs(self.workdir, exist_ok=True)
        if not os.path.isdir(os.path.join(self.data_dir, 'mysql')):
            procs.run(['mariadb-install-db', '--no-defaults',
                       '--datadir=%s' % self.data_dir, '--user=root',
                       '--auth-root-authentication-method=normal',
                       '--skip-test-db'], timeout=120)
        self._proc = subprocess.Popen(
            [_mariadbd(), '--no-defaults', '--user=root',
             '--skip-networking', '--datadir=%s' % self.data_dir,
             '--socket=%s' % self.socket_path,
             '--pid-file=%s' % self.pid_path,
             '--log-error=%s' % self.log_path,
             '--innodb-buffer-pool-size=%dM' % self.buffer_pool_mib,
             # Throwaway data: no fsync per commit.
             '--innodb-flush-log-at-trx-commit=0',
             '--max-connections=500'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            procs.wait_until(self._ready, timeout,
                             'MariaDB at %s did not start' % self.socket_path,
                             abort=(MariaDBError,))
        except (MariaDBError, TimeoutError) as e:
            self.stop()
            raise MariaDBError('%s\n--- %s ---\n%s' % (
                e, self.log_path, self._log_tail()))

    def stop(self, timeout=60):
        """Stop the server and wait for it to exit; keep the files."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _ready(self):
        if self._proc.poll() is not None:
            raise MariaDBError('mariadbd exited %d' % self._proc.returncode)
        self.execute('SELECT 1')
        return True

    def _log_tail(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()[-4000:]
        except OSError:
            return ''

    def execute(self, statement):
        """Run one statement as root."""
        conn = pymysql.connect(unix_socket=self.socket_path, user='root')
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def create_database(self, prefix='glance'):
        """Create an empty database; return its SQLAlchemy URL."""
        name = '%s_%s' % (prefix, uuid.uuid4().hex[:12])
        self.execute('CREATE DATABASE %s CHARACTER SET utf8mb4' % name)
        return ('mysql+pymysql://root@localhost/%s?unix_socket=%s'
                '&charset=utf8mb4' % (name, self.socket_path))
