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

"""The command line: parsing, the progress bar, the extent counter."""

import hashlib
import io
import json
import random
import subprocess

import pytest

from glance_sparse_import.cmd import check
from glance_sparse_import.cmd import cli
from glance_sparse_import.cmd import common
from glance_sparse_import.cmd import inspect
from glance_sparse_import import hashing
from glance_sparse_import import inspection
from glance_sparse_import import opts
from glance_sparse_import.sources.base import Chunk
from glance_sparse_import.targets import null
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2


def run_cli(*args):
    return subprocess.run([procs.bin_path('glance-sparse-import')] +
                          list(args), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_installed_help():
    res = run_cli('--help')
    assert res.returncode == 0, res.stderr
    assert 'inspect' in res.stdout and 'import' in res.stdout
    for command in ('inspect', 'import'):
        res = run_cli(command, '--help')
        assert res.returncode == 0, res.stderr
    assert '--chunk-size' in res.stdout and '--timeout' in res.stdout


@pytest.mark.parametrize('args', [
    [],
    ['inspect'],
    ['import', 'f.raw', '--pool', 'images'],
    ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--chunk-size', '3'],
    ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--chunk-size', '64'],
    ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--timeout', '-1'],
    ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--rate-limit', '-5'],
    ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--rate-limit', 'x'],
])
def test_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as e:
        cli.build_parser().parse_args(args)
    assert e.value.code == common.EXIT_USAGE


def test_chunk_size_and_timeout():
    args = cli.build_parser().parse_args(
        ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--chunk-size',
         '16', '--timeout', '0'])
    assert (args.chunk_size, args.timeout, args.user) == (16, 0, 'glance')
    assert args.rate_limit == 0


def test_rate_limit():
    args = cli.build_parser().parse_args(
        ['import', 'f.raw', '--conf', 'c', '--pool', 'p', '--rate-limit',
         '12.5'])
    assert args.rate_limit == 12.5


def test_unknown_hash_algorithm(tmp_path):
    path = tmp_path / 'disk.raw'
    path.write_bytes(b'x' * 4096)
    res = run_cli('inspect', '--hash-algo', 'nope', str(path))
    assert res.returncode == common.EXIT_ERROR
    assert res.stderr == 'glance-sparse-import: error: unknown hash ' \
        'algorithm: nope\n'


def test_not_a_file(tmp_path):
    res = run_cli('inspect', str(tmp_path))
    assert res.returncode == common.EXIT_ERROR
    assert 'is not a regular file' in res.stderr


def test_bad_config_file(tmp_path):
    conf = tmp_path / 'broken.conf'
    conf.write_text('no section\n')
    res = run_cli('--config-file', str(conf), 'inspect', str(conf))
    assert res.returncode == common.EXIT_ERROR
    assert 'glance-sparse-import: error: bad configuration' in res.stderr


class _Source(object):

    def __init__(self, chunks, size):
        self._chunks = chunks
        self.size = size

    def chunks(self):
        return iter(self._chunks)


def test_extent_counter_merges_contiguous_data():
    data = bytes([1]) * 4
    counter = inspect.ExtentCounter(_Source([
        Chunk(0, 4, data), Chunk(4, 4, data), Chunk(8, 8, None),
        Chunk(16, 4, data), Chunk(20, 4, None), Chunk(24, 4, data),
        Chunk(28, 4, data)], 32))
    assert counter.size == 32
    assert len(list(counter.chunks())) == 7
    assert counter.extents == 3


class _Terminal(io.StringIO):

    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    assert not common.ProgressBar(io.StringIO(), 'x').enabled
    out = _Terminal()
    bar = common.ProgressBar(out, 'inspect')
    assert bar.enabled
    bar.draw(25 * MiB, 100 * MiB)
    bar.complete(100 * MiB)
    bar.close()
    text = out.getvalue()
    assert text.startswith('\rinspect [#######  ')
    assert ' 25% 25/100 MiB ' in text
    assert '100% 100/100 MiB' in text and text.endswith('\n')


def test_progress_bar_not_drawn_is_not_closed():
    out = _Terminal()
    bar = common.ProgressBar(out, 'inspect')
    bar.complete(1)
    bar.close()
    assert out.getvalue() == ''


class _Bar(object):

    def __init__(self):
        self.drawn = []

    def draw(self, done, total):
        self.drawn.append((done, total))


def test_progress_hasher_feeds_zeros_in_pieces(monkeypatch):
    monkeypatch.setattr(common, 'PROGRESS_INTERVAL', 0)
    hasher = hashing.ParallelHasher(['md5', 'sha1'])
    bar = _Bar()
    feed = common.ProgressHasher(hasher, bar, 11 * MiB)
    data = random.Random(2).randbytes(MiB)
    feed.update(data)
    feed.update_zeros(10 * MiB)
    md5, sha1 = hasher.hexdigests()
    whole = data + bytes(10 * MiB)
    assert (md5, sha1) == (hashlib.md5(whole).hexdigest(),
                           hashlib.sha1(whole).hexdigest())
    assert bar.drawn == [(MiB, 11 * MiB), (5 * MiB, 11 * MiB),
                         (9 * MiB, 11 * MiB), (11 * MiB, 11 * MiB)]


def test_read_image_draws_progress(tmp_path, monkeypatch):
    opts.register_opts(common.CONF)
    path = str(tmp_path / 'disk.raw')
    data = random.Random(1).randbytes(3 * MiB)
    with open(path, 'wb') as f:
        f.truncate(16 * MiB)
        f.seek(5 * MiB)
        f.write(data)
    monkeypatch.setattr(common, 'PROGRESS_INTERVAL', 0)
    monkeypatch.setattr(inspect.sys, 'stderr', _Terminal())
    info = inspection.inspect_image(path, 'raw', 1024 ** 4)
    stats, extents, md5, sha = inspect.read_image(
        path, info, [null.NullTarget('inspect')], 'sha512', 'inspect')
    assert (extents, stats.allocated, stats.written) == (1, 3 * MiB, 3 * MiB)
    with open(path, 'rb') as f:
        whole = f.read()
    assert md5 == hashlib.md5(whole).hexdigest()
    assert sha == hashlib.sha512(whole).hexdigest()
    drawn = inspect.sys.stderr.getvalue()
    assert '100% 16/16 MiB' in drawn and drawn.endswith('\n')


_RBD_STORE = """[DEFAULT]
enabled_backends = ceph:rbd
[ceph]
rbd_store_pool = images
"""


@pytest.mark.parametrize('plugins,ok', [
    ("['inject_image_metadata', 'sparse_rbd_import']", True),
    ("['image_conversion']", False)])
def test_check(tmp_path, plugins, ok):
    conf = tmp_path / 'glance-image-import.conf'
    conf.write_text('[image_import_opts]\nimage_import_plugins = %s\n'
                    % plugins)
    api = tmp_path / 'glance-api.conf'
    api.write_text(_RBD_STORE)
    res = run_cli('--config-file', str(api), '--config-file', str(conf),
                  'check', '--json')
    report = json.loads(res.stdout)
    # Loaded through stevedore from the installed entry point, with
    # nothing of Glance missing; on an interpreter other than the
    # distribution's, its bindings are.
    assert report['loaded'] is True
    assert report['load_errors'] == []
    assert report['missing'] == []
    assert all(r['kind'] == 'module'
               for r in report['requirements_missing'])
    ok = ok and not report['requirements_missing']
    assert report['enabled'] is (plugins != "['image_conversion']")
    assert report['ok'] is ok
    assert res.returncode == (0 if ok else common.EXIT_ERROR), res.stderr
    assert report['fallbacks']['format inspector']
    assert report['config_files'] == [str(api), str(conf)]


def test_check_options_after_the_command(tmp_path):
    (tmp_path / '10.conf').write_text(_RBD_STORE)
    (tmp_path / '20.conf').write_text(
        "[image_import_opts]\nimage_import_plugins = ['sparse_rbd_import']\n")
    res = run_cli('check', '--config-dir', str(tmp_path), '--json')
    report = json.loads(res.stdout)
    assert report['enabled'] is True
    assert [s['name'] for s in report['stores']] == ['ceph']


def test_check_text_without_configuration():
    res = run_cli('check')
    lines = res.stdout.splitlines()
    assert lines[0] == ('plugin sparse_rbd_import '
                        '(glance.image_import.plugins): loads')
    assert any(line.startswith('image_import_plugins: not read')
               for line in lines)
    if res.returncode:
        assert res.returncode == common.EXIT_ERROR
        assert any(line.startswith('NOT OK') for line in lines)
        assert 'the plugin cannot run here: ' in res.stderr
    else:
        assert lines[-1] == \
            'OK: imports to RBD stores will use the plugin'


@pytest.mark.parametrize('version,status,problem', [
    ('21.1.0', 'older', True), ('22.1.1', 'supported', False),
    ('24.2.0', 'untested', False), ('25.1.0', 'supported', False),
    ('26.1.0', 'supported', False), ('33.0.0', 'supported', False),
    ('34.0.0', 'newer', False)])
def test_check_glance_release(monkeypatch, version, status, problem):
    monkeypatch.setattr(check.deployment.importlib.metadata, 'version',
                        lambda name: version)
    glance, problems, warnings = check._glance_report()
    assert glance['status'] == status
    assert bool(problems) is problem
    # Out of range is never silent.
    assert bool(problems or warnings) is (status != 'supported')
    if problems:
        assert version in problems[0]
        assert 'Glance 22 and 25 to 33' in problems[0]
