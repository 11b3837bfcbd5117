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

"""The add-site rows of tools/bench-import: targets and table."""

from glance_sparse_import.tests.testbed import bench_add_site
from glance_sparse_import.tests.unit import test_bench

GiB = test_bench.GiB
MiB = test_bench.MiB


def _row(to, seconds, import_seconds=18.0, copy_seconds=110.0):
    added = None if seconds is None else test_bench._result(
        seconds, 800 * MiB, None, to)
    return {'label': '8G qcow2', 'from': 'a', 'to': list(to),
            'virtual_size': 8 * GiB, 'import_seconds': import_seconds,
            'copy_seconds': copy_seconds, 'add_site': added,
            'over_import': None if seconds is None else
            round(seconds / import_seconds, 3),
            'copy_over_add_site': None if seconds is None else
            round(copy_seconds / seconds, 3)}


def test_targets_and_table():
    tool = test_bench._load_tool()
    report = {
        'started': '2026-12-06T11:00:00', 'wall_seconds': 600.0,
        'machine': {'cpus': 2, 'loadavg_start': [0.1, 0.2, 0.3],
                    'loadavg_end': [1.0, 1.0, 1.0]},
        'versions': {'glance': '33.0.0', 'qemu-img': 'q', 'ceph': 'c'},
        'plugin_source': {'path': '/src', 'commit': None, 'uncommitted': []},
        'floors': {}, 'images': [], 'multi_store': [], 'errors': [],
        'add_site': [_row('b', 20.0), _row('bc', 27.0)],
    }
    report['targets'] = tool.check_targets(report)
    assert [(c['target'], c['value'], c['met'])
            for c in report['targets']] == [
        ('copy-image / 8G qcow2 add-site 1 store(s)', 5.5, True),
        ('8G qcow2 add-site 2 store(s) / 1-store import', 1.5, False)]
    text = tool.render(report)
    assert 'a -> b,c' in text and '27.0' in text and '1.50' in text
    assert '800.0/800.0' in text

    report['add_site'] = [_row('b', None)]
    assert [(c['target'], c['met']) for c in tool.check_targets(report)] \
        == [('8G qcow2 add-site 1 store(s)', False)]


class _API(object):
    url = 'http://127.0.0.1:9292'

    def config_args(self):
        return ['--config-file', 'glance-api.conf']


def test_command_is_the_operators():
    cmd = bench_add_site.add_site_command(_API(), 'ID', ['b', 'c'])
    assert cmd[0].endswith('/glance-sparse-import')
    assert cmd[1:] == ['add-site', '--config-file', 'glance-api.conf',
                       '--os-auth-type', 'none', '--os-endpoint',
                       'http://127.0.0.1:9292', '--quiet', 'ID',
                       '--stores', 'b,c']
