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

"""The measurements of the import benchmark, and tools/bench-import."""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import textwrap
import time

import pytest

from glance_sparse_import.tests.testbed import bench

MiB = 1024 ** 2
GiB = 1024 ** 3

TOOL = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'tools',
                    'bench-import')

SUMMARY = (
    'Image %s imported sparse to a,b: virtual 8589934592, allocated '
    '851443712, written 845152256, zero skipped 6291456 bytes; inspect '
    '0.12s, open 0.05s, copy 14.87s, hash 0.00s, snapshot 0.21s, register '
    '0.09s; 561 MB/s of virtual size')
ID1 = '11111111-2222-3333-4444-555555555555'
ID2 = '66666666-7777-8888-9999-000000000000'


@pytest.mark.parametrize('text,size', [
    ('4096', 4096), ('8G', 8 * GiB), ('750M', 750 * MiB),
    ('1.5GiB', 3 * GiB // 2), ('64k', 64 * 1024), ('2 TB', 2 * 1024 ** 4),
])
def test_parse_size(text, size):
    assert bench.parse_size(text) == size


@pytest.mark.parametrize('text', ['', 'G', '8X', '-1G', '1e9'])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        bench.parse_size(text)


def test_size_label():
    assert bench.size_label(8 * GiB) == '8G'
    assert bench.size_label(750 * MiB) == '750M'
    assert bench.size_label(1536 * MiB) == '1536M'
    assert bench.size_label(1000) == '1000'


def test_hash_floor_grows_with_size():
    small = bench.hash_floor(8 * MiB)
    large = bench.hash_floor(64 * MiB, block_size=1 * MiB)
    assert 0 < small < large


def test_hash_floor_odd_size():
    assert bench.hash_floor(5 * MiB + 123, block_size=1 * MiB) > 0


def test_parse_import_summary_picks_the_image():
    log = '\n'.join([
        '2026-11-27 15:00:00.000 123 INFO glance_sparse_import.plugin '
        '[None req-1 - - - - - -] ' + SUMMARY % ID1,
        '2026-11-27 15:00:01.000 123 INFO glance.api [-] unrelated',
        '2026-11-27 15:00:02.000 123 INFO glance_sparse_import.plugin '
        '[None req-2 - - - - - -] ' + (SUMMARY % ID2).replace(
            'copy 14.87s', 'copy 20.00s'),
    ])
    found = bench.parse_import_summary(log, ID1)
    assert found['line'] == SUMMARY % ID1
    assert found['stores'] == ['a', 'b']
    assert found['virtual'] == 8 * GiB
    assert found['allocated'] == 851443712
    assert found['written'] == 845152256
    assert found['skipped'] == 6291456
    assert list(found['phases']) == ['inspect', 'open', 'copy', 'hash',
                                     'snapshot', 'register']
    assert found['phases']['copy'] == 14.87
    assert found['seconds'] == pytest.approx(15.34)
    assert found['rate'] == 561
    assert bench.parse_import_summary(log)['image'] == ID2
    assert bench.parse_import_summary(log, 'other') is None


class _FakeAPI(object):
    plugins = ['sparse_rbd_import']

    def __init__(self, log_path):
        self.log_path = log_path


def test_wait_for_summary(tmp_path):
    api = _FakeAPI(str(tmp_path / 'glance-api.log'))
    with open(api.log_path, 'w') as f:
        f.write('old line\n')
    offset = os.path.getsize(api.log_path)
    with open(api.log_path, 'a') as f:
        f.write('INFO [-] %s\n' % (SUMMARY % ID1))
    found = bench._wait_for_summary(api, offset, ID1, timeout=0.1)
    assert found['image'] == ID1
    with pytest.raises(bench.BenchError, match='without sparse_rbd_import'):
        bench._wait_for_summary(api, offset, ID2, timeout=0.1)


def test_descendants():
    table = {pid: bench.ProcStat(pid, ppid, 0, 0, 0) for pid, ppid in
             [(10, 1), (11, 10), (12, 10), (13, 11), (14, 13), (20, 1)]}
    assert bench.descendants(table, 10) == {11: 1, 12: 1, 13: 2, 14: 3}
    assert bench.descendants(table, 20) == {}
    assert bench.descendants(table, None) == {}


def test_read_proc_stat_self():
    stat = bench.read_proc_stat(os.getpid())
    assert stat.ppid == os.getppid()
    assert stat.rss > 1 * MiB
    assert bench.read_proc_stat(2 ** 22 + 1) is None


def _wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, 'no %s' % path
        time.sleep(0.02)


def test_sampler_sees_worker_and_helper_memory(tmp_path):
    # master -> worker -> helper; the helper holds 32 MiB from the start,
    # the worker touches 64 MiB once told to.
    flag = str(tmp_path / '%s')
    wait = ('import os, time\n'
            'def wait(name):\n'
            '    while not os.path.exists(%r %% name):\n'
            '        time.sleep(0.02)\n'
            'def say(name):\n'
            '    open(%r %% name, "w").close()\n' % (flag, flag))
    helper = wait + 'b = b"x" * %d\nsay("helper")\nwait("stop")\n' % (
        32 * MiB)
    worker = wait + textwrap.dedent('''\
        import subprocess, sys
        p = subprocess.Popen([sys.executable, '-c', %r])
        wait('go')
        b = b'x' * %d
        say('allocated')
        wait('stop')
        p.wait()
        ''') % (helper, 64 * MiB)
    master = ('import subprocess, sys; '
              'subprocess.run([sys.executable, "-c", %r])' % worker)
    proc = subprocess.Popen([sys.executable, '-c', master])
    try:
        _wait_for(flag % 'helper')
        with bench.ProcessSampler(proc.pid, interval=0.05) as sampler:
            open(flag % 'go', 'w').close()
            _wait_for(flag % 'allocated')
            time.sleep(0.3)
        open(flag % 'stop', 'w').close()
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait()
    assert 60 * MiB <= sampler.worker_growth < 200 * MiB
    assert 60 * MiB <= sampler.worker_retained <= sampler.worker_growth
    assert sampler.helper_peak >= 30 * MiB
    assert sampler.helpers_seen
    assert sampler.samples >= 2
    assert 0 <= sampler.others_cpu <= os.cpu_count()


def _load_tool():
    assert os.path.exists(TOOL), 'tools/bench-import not in this tree'
    loader = importlib.machinery.SourceFileLoader('bench_import', TOOL)
    spec = importlib.util.spec_from_loader('bench_import', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_tool_defaults():
    tool = _load_tool()
    args = tool.parse_args([])
    assert args.sizes == [8 * GiB, 32 * GiB]
    assert args.data == 750 * MiB
    assert args.formats == ['qcow2', 'qcow2-compressed']
    assert args.skip_stock_above == 8 * GiB
    assert args.stores == ['a', 'b', 'c']
    assert args.multi_size == 8 * GiB
    assert args.multi_formats == ['qcow2']
    args = tool.parse_args(['--sizes', '1G,2G', '--stores', 'x'])
    assert args.multi_size == 1 * GiB
    with pytest.raises(SystemExit):
        tool.parse_args(['--formats', 'vhd'])


def _result(seconds, used, growth, stores=('a',)):
    return {'seconds': seconds, 'runs_seconds': [seconds],
            'stores': list(stores), 'stage_seconds': 1.0,
            'rbd_diff_bytes': {s: used for s in stores},
            'worker_rss_growth': growth, 'worker_rss_baseline': 300 * MiB,
            'worker_rss_retained': 5 * MiB,
            'helper_rss_peak': 20 * MiB, 'helpers': ['qemu-nbd'],
            'others_cpu_cores': 0.1, 'checksum': 'c', 'os_hash_value': 'h',
            'size': 8 * GiB,
            'plugin_summary': {'line': SUMMARY % ID1}}


def test_tool_targets_and_table():
    tool = _load_tool()
    report = {
        'started': '2026-11-27T15:00:00', 'wall_seconds': 600.0,
        'machine': {'cpus': 2, 'loadavg_start': [0.1, 0.2, 0.3],
                    'loadavg_end': [1.0, 1.0, 1.0]},
        'versions': {'glance': '33.0.0', 'qemu-img': 'q', 'ceph': 'c'},
        'plugin_source': {'path': '/src', 'commit': None, 'uncommitted': []},
        'floors': {'8G': {'seconds': 15.0, 'others_cpu_cores': 0.0}},
        'images': [{
            'label': '8G qcow2', 'virtual_size': 8 * GiB,
            'allocated_bytes': 800 * MiB, 'floor_seconds': 15.0,
            'stock': _result(120.0, 810 * MiB, 10 * MiB),
            'plugin': _result(18.0, 800 * MiB, 300 * MiB),
            'stock_over_plugin': 120 / 18, 'plugin_over_floor': 1.2,
        }],
        'multi_store': [{
            'label': '8G qcow2', 'stores': ['a', 'b', 'c'],
            'floor_seconds': 15.0,
            'plugin': _result(30.0, 800 * MiB, 100 * MiB, 'abc'),
            'plugin_single_seconds': 18.0, 'plugin_over_single': 30 / 18,
            'plugin_over_floor': 2.0, 'stock': None,
        }],
        'copy_image': [{
            'label': '8G qcow2', 'from': 'a', 'to': ['b'],
            'virtual_size': 8 * GiB, 'import_seconds': 18.0,
            'multi_stores': ['a', 'b', 'c'], 'multi_seconds': 30.0,
            'copy': _result(110.0, 810 * MiB, 20 * MiB, 'b'),
            'copy_over_multi': 110 / 30, 'copy_over_import': 110 / 18,
        }],
    }
    report['errors'] = []
    report['targets'] = tool.check_targets(report)
    met = {c['target']: c['met'] for c in report['targets']}
    assert met == {
        '8G qcow2 plugin/floor': True,
        '8G qcow2 stock/plugin': True,
        '8G qcow2 rbd diff plugin <= stock': True,
        '8G qcow2 checksums and size as stock': True,
        '8G qcow2 plugin worker RSS growth MiB': False,
        '8G qcow2 plugin 3 stores / 1 store': False,
        '8G qcow2 plugin 3 stores worker RSS growth MiB': True,
    }
    text = tool.render(report)
    assert '8G qcow2' in text
    assert SUMMARY % ID1 in text
    assert '800.0/800.0/800.0' in text
    assert 'a -> b' in text and '110.0' in text and '3.67' in text


class _FakeGlance(object):
    """Returns the given image states one poll after the other."""

    def __init__(self, states):
        self.states = list(states)

    def get_image(self, image_id):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def task_list_for_image(self, image_id):
        return []


def _image(stores, importing='', failed='', status='active'):
    return {'status': status, 'stores': stores,
            'os_glance_importing_to_stores': importing,
            'os_glance_failed_import': failed}


def test_wait_copied():
    glance = _FakeGlance([_image('a', importing='b'), _image('a,b')])
    image, _ = bench.wait_copied(glance, ID1, ['b'], 10, 0.01)
    assert image['stores'] == 'a,b'


@pytest.mark.parametrize('state,why', [
    (_image('a', failed='b'), 'failed for stores b'),
    (_image('a', importing='b', status='killed'), 'is killed'),
    (_image('a', importing='b'), 'not in b after 0s'),
])
def test_wait_copied_fails(state, why):
    with pytest.raises(bench.BenchError, match=why):
        bench.wait_copied(_FakeGlance([state]), ID1, ['b'], 0, 0.01)


def test_tool_failed_import():
    tool = _load_tool()
    report = {
        'started': '2026-11-27T15:00:00', 'wall_seconds': 60.0,
        'machine': {'cpus': 2, 'loadavg_start': [0, 0, 0],
                    'loadavg_end': [0, 0, 0]},
        'versions': {'glance': '33.0.0', 'qemu-img': 'q', 'ceph': 'c'},
        'plugin_source': {'path': '/src', 'commit': None, 'uncommitted': []},
        'floors': {'8G': {'seconds': 15.0, 'others_cpu_cores': 0.0}},
        'images': [{
            'label': '8G qcow2', 'virtual_size': 8 * GiB,
            'allocated_bytes': 800 * MiB, 'floor_seconds': 15.0,
            'stock': _result(120.0, 810 * MiB, 10 * MiB), 'plugin': None,
            'stock_over_plugin': None, 'plugin_over_floor': None,
        }],
        'multi_store': [{
            'label': '8G qcow2', 'stores': ['a', 'b'],
            'floor_seconds': 15.0, 'plugin': None,
            'plugin_single_seconds': None, 'plugin_over_single': None,
            'plugin_over_floor': None, 'stock': None,
        }],
        'errors': [{'image': '8G qcow2', 'kind': 'plugin', 'stores': ['a'],
                    'error': 'import of image x ended killed'}],
    }
    report['targets'] = tool.check_targets(report)
    assert [(c['target'], c['met']) for c in report['targets']] == [
        ('8G qcow2 plugin import', False),
        ('8G qcow2 plugin 2 stores', False)]
    text = tool.render(report)
    assert 'import of image x ended killed' in text


class _TasksAPI(object):
    """Answers the image's task list with the given states in turn."""

    def __init__(self, states):
        self.states = list(states)
        self.calls = 0

    def request(self, method, path):
        self.calls += 1
        states = self.states.pop(0) if len(self.states) > 1 else \
            self.states[0]
        return 200, {'tasks': [{'status': s} for s in states]}


def test_wait_tasks_ended():
    api = _TasksAPI([['processing'], ['success', 'processing'],
                    ['success', 'failure']])
    bench.wait_tasks_ended(api, ID1, timeout=30)
    assert api.calls == 3


def _load_compare():
    path = os.path.join(os.path.dirname(TOOL), 'bench-compare')
    loader = importlib.machinery.SourceFileLoader('bench_compare', path)
    spec = importlib.util.spec_from_loader('bench_compare', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_compare_pools_the_runs_of_each_commit():
    tool = _load_compare()

    def report(runs, floor):
        return {'images': [
            {'label': '8G qcow2', 'floor_seconds': floor,
             'plugin': {'seconds': sorted(runs)[1], 'runs_seconds': runs}},
            {'label': '8G qcow2-compressed', 'floor_seconds': floor,
             'plugin': None}]}

    rows = tool.compare([('A', report([15.0, 16.0, 17.0], 12.0)),
                         ('B', report([15.5, 15.0, 16.5], 12.0)),
                         ('B', report([16.0, 17.0, 16.5], 13.0)),
                         ('A', report([16.5, 18.0, 16.0], 13.0))])
    plain, compressed = rows
    assert plain['A_median'] == 16.25 and plain['B_median'] == 16.25
    assert plain['B_over_A'] == 1.0
    assert plain['A_over_floor'] == pytest.approx((16 / 12 + 16.5 / 13) / 2)
    assert compressed['B_over_A'] is None
    text = tool.render(rows, {'A': 'a' * 40, 'B': 'b' * 40})
    assert '8G qcow2-compressed' in text and '1.000' in text
    args = tool.parse_args(['--baseline', 'main', '--', '--sizes', '8G'])
    assert (args.order, args.bench_args) == ('ABBA', ['--sizes', '8G'])
