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

import sys

from glance_sparse_import.tests.testbed import cli

TABLE = """\
+------------------+----------------------------------------------+
| Property         | Value                                        |
+------------------+----------------------------------------------+
| checksum         | None                                         |
| id               | 5a1f6a5e-1d9c-4a43-9c43-0b2a2a7f4f3e         |
| os_hidden        | False                                        |
| size             | 1048576                                      |
| tags             | []                                           |
| virtual_size     | Not available                                |
| stores           | [{"id": "ceph", "description": "test store", |
|                  | "default": "true"}]                          |
| name             | a | b                                        |
+------------------+----------------------------------------------+
"""


def test_parse_table():
    image = cli.parse_table(TABLE)
    assert image == {
        'checksum': None,
        'id': '5a1f6a5e-1d9c-4a43-9c43-0b2a2a7f4f3e',
        'os_hidden': False,
        'size': 1048576,
        'tags': [],
        'virtual_size': None,
        'stores': [{'id': 'ceph', 'description': 'test store',
                    'default': 'true'}],
        'name': 'a | b',
    }


def test_run_on_pty_gives_a_terminal_stdin():
    result = cli.run_on_pty([sys.executable, '-c',
                             'import sys; print(sys.stdin.isatty())'])
    assert result.returncode == 0
    assert result.stdout.strip() == 'True'


class _TasksAPI(object):
    """``GET /v2/images/<id>/tasks`` answering from a list."""

    def __init__(self, tasks):
        self.tasks = tasks

    def request(self, method, path):
        return 200, {'tasks': list(self.tasks)}


def test_wait_task_tells_tasks_apart_by_id(monkeypatch):
    monkeypatch.setattr(cli.procs, 'bin_path', lambda name: name)
    # An import and the copy right after it, in the same second, the
    # copy listed first: the copy is found by ID, not by created_at.
    tasks = [{'id': 'copy', 'status': 'failure',
              'created_at': '2026-11-29T22:58:18.000000'},
             {'id': 'import', 'status': 'success',
              'created_at': '2026-11-29T22:58:18.000000'}]
    glance = cli.GlanceCLI(_TasksAPI(tasks))
    assert glance.wait_task('img', known={'import'})['id'] == 'copy'
    assert glance.task_ids('img') == {'copy', 'import'}
