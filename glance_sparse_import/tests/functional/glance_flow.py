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

"""Glance's import flow, configured like a deployment, run per import.

The configuration files are those the test bed writes for a real API; the
import itself runs in ``flow_runner`` (a fresh process per import, since
Glance keeps its configuration in globals).
"""

import json
import os
import subprocess
import sys

from glance_sparse_import.tests.testbed import glance_api
from glance_sparse_import.tests.testbed import procs


class GlanceFlow(object):
    """Configured Glance (database, stores, plugins) without an API server.

    Arguments are those of ``testbed.glance_api.GlanceAPI``.
    """

    def __init__(self, workdir, stores, default_store=None, **kwargs):
        self.config = glance_api.GlanceAPI(workdir, stores, default_store,
                                           **kwargs)
        # The URL only has to be well-formed: nothing listens there.
        self.config.port = 9
        self.config.write_config()
        procs.run([procs.bin_path('glance-manage'), '--config-file',
                   self._conf('glance-api.conf'), 'db_sync'], timeout=120)

    def _conf(self, name):
        return os.path.join(self.config.etc_dir, name)

    @property
    def staging_dir(self):
        return self.config.staging_dir

    def store_dir(self, name):
        return self.config.store_dir(name)

    def run_import(self, disk_format, file=None, uri=None, stores=None,
                   all_stores_must_succeed=None, image_id=None,
                   timeout=600, extra_args=()):
        """Import; return ``{'image': {...}, 'task': {...}}``.

        ``extra_args`` are more options of ``flow_runner``.
        """
        cmd = [sys.executable, '-m',
               'glance_sparse_import.tests.functional.flow_runner',
               '--config-file', self._conf('glance-api.conf'),
               '--config-file', self._conf('glance-image-import.conf'),
               '--disk-format', disk_format]
        if file:
            cmd += ['--file', file]
        else:
            cmd += ['--method', 'web-download', '--uri', uri]
        if stores:
            cmd += ['--stores', ','.join(stores)]
        if all_stores_must_succeed is not None:
            cmd += ['--all-stores-must-succeed',
                    json.dumps(all_stores_must_succeed)]
        if image_id:
            cmd += ['--image-id', image_id]
        cmd += list(extra_args)
        log_start = len(self.log())
        res = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        for line in res.stdout.splitlines():
            if line.startswith('RESULT '):
                result = json.loads(line[len('RESULT '):])
                result['stderr'] = res.stderr
                result['glance_log'] = self.log()[log_start:]
                return result
        raise AssertionError('flow runner failed (%d):\n%s\n%s\n%s' % (
            res.returncode, res.stdout[-3000:], res.stderr[-3000:],
            self.log()[-6000:]))

    def explain(self, result):
        """What :func:`explain` says of a result of :meth:`run_import`."""
        return explain(result)

    def log(self):
        try:
            with open(self.config.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ''


def explain(result, log_chars=8000):
    """The task, the runner's stderr and Glance's log of one import.

    For the message of a failing assertion, so that a failure in CI can be
    explained from its output alone.

    :param result: what :meth:`GlanceFlow.run_import` returned
    """
    return ('task: %s\nimage status: %s\nflow runner stderr:\n%s\n'
            'Glance log of the import (last %d characters):\n%s' % (
                json.dumps(result.get('task'), indent=1, default=str),
                (result.get('image') or {}).get('status'),
                result.get('stderr', '')[-3000:], log_chars,
                result.get('glance_log', '')[-log_chars:]))
