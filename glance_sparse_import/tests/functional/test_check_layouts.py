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

"""``glance-sparse-import check`` on what each deployment tool writes.

The layouts (tests/deploy_layouts.py) are the files TripleO, RHOSO,
Kolla-Ansible and Debian render, read with the arguments their Glance
server is started with; the command runs installed, as an operator runs
it, through Glance's real option registration and oslo.config.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from glance_sparse_import.cmd import common
from glance_sparse_import import deployment
from glance_sparse_import.tests import deploy_layouts
from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import programs


def run_check(args, env=None):
    res = subprocess.run(
        [procs.bin_path('glance-sparse-import'), 'check', '--json'] + args,
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=120, env=env)
    return res, json.loads(res.stdout)


def _assert_ok(res, report):
    assert res.returncode == 0, res.stdout + res.stderr
    assert report['ok'] and report['problems'] == []
    assert report['enabled'] is True


def test_rhoso_conf_d(tmp_path):
    layout = deploy_layouts.rhoso(str(tmp_path))
    assert not os.path.exists(tmp_path / 'etc/glance/glance-api.conf')
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    # 02-config.conf (customServiceConfig) overrides the operator's
    # ['image_conversion'] and file backend of 00-config.conf.
    assert [os.path.basename(f) for f in report['config_files']] == [
        '00-config.conf', '02-config.conf', '03-config.conf']
    assert report['plugins']['list'] == ['sparse_rbd_import']
    [store] = report['stores']
    assert store['name'] == 'default_backend'
    assert store['pool'] == 'images' and store['user'] == 'openstack'
    assert store['rbd_thin_provisioning'] is True
    assert report['glance']['status'] == 'supported'
    assert report['glance']['servers']


def test_rhoso_without_plugin_list_names_the_cause(tmp_path):
    layout = deploy_layouts.rhoso(str(tmp_path), plugins=None)
    res, report = run_check(layout.args)
    assert res.returncode == common.EXIT_ERROR
    assert report['plugins']['list'] == ['image_conversion']
    assert 'sparse_rbd_import is not listed' in res.stderr


def test_rhoso_timeout_zero_is_no_timeout(tmp_path):
    layout = deploy_layouts.rhoso(str(tmp_path), timeout=0)
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    [store] = report['stores']
    assert store['rados_connect_timeout'] == 0
    assert store['timeout'].startswith('0: no timeout')
    assert 'ceph_op_timeout, 120 s' in store['timeout']


def test_kolla_conf_d(tmp_path):
    layout = deploy_layouts.kolla(str(tmp_path))
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    assert [s['name'] for s in report['stores']] == ['rbd']
    assert report['stores'][0]['rbd_thin_provisioning'] is True


def test_kolla_without_thin_provisioning_warns(tmp_path):
    layout = deploy_layouts.kolla(str(tmp_path), thin=False)
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    assert any('rbd_thin_provisioning is off' in w
               for w in report['warnings'])


def test_debian_glance_api_conf(tmp_path):
    layout = deploy_layouts.debian(str(tmp_path))
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    assert report['stores'][0]['timeout'].startswith('60 s')


def test_debian_never_reads_glance_image_import_conf(tmp_path):
    # The list where the other tools put it is not enabled on Debian.
    layout = deploy_layouts.debian(str(tmp_path), plugins=None,
                                   import_conf_plugins=['sparse_rbd_import'])
    res, report = run_check(layout.args)
    assert res.returncode == common.EXIT_ERROR
    assert report['plugins']['list'] == []
    assert 'sparse_rbd_import is not listed' in res.stderr


def test_tripleo_extra_config_thin_provisioning(tmp_path):
    layout = deploy_layouts.tripleo(str(tmp_path), thin_extra_config=True)
    with open(layout.files[1]) as f:
        assert 'image_import_plugins=[sparse_rbd_import]\n' in f.read()
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    assert report['stores'][0]['rbd_thin_provisioning'] is True


def test_tripleo_sparse_upload_forces_conversion_after(tmp_path):
    layout = deploy_layouts.tripleo(str(tmp_path), sparse_upload=True)
    res, report = run_check(layout.args)
    assert report['plugins']['list'] == ['sparse_rbd_import',
                                         'image_conversion']
    [note] = report['plugins']['order']
    assert note['what'] == 'conversion_after'
    # Whether that order works is the plugin's to say; check reports it.
    assert report['ok'] is deployment.CONVERSION_AFTER_HANDLED
    assert res.returncode == (0 if deployment.CONVERSION_AFTER_HANDLED
                              else common.EXIT_ERROR)
    if not deployment.CONVERSION_AFTER_HANDLED:
        assert 'image_conversion runs after' in res.stderr


def test_tripleo_conversion_before_costs_a_conversion(tmp_path):
    layout = deploy_layouts.tripleo(
        str(tmp_path), ['image_conversion', 'sparse_rbd_import'],
        sparse_upload=True)
    res, report = run_check(layout.args)
    _assert_ok(res, report)
    [note] = report['plugins']['order']
    assert note['what'] == 'conversion_before' and not note['problem']


def test_file_then_dir_order_is_glance_s(tmp_path):
    # The directory read last overrides the file, as in Glance.
    layout = deploy_layouts.rhoso(str(tmp_path / 'r'), plugins=None,
                                  image_conversion=False)
    extra = tmp_path / 'import.conf'
    extra.write_text("[image_import_opts]\n"
                     "image_import_plugins = ['sparse_rbd_import']\n")
    res, report = run_check(['--config-file', str(extra)] + layout.args)
    assert report['plugins']['list'] == ['no_op']
    res, report = run_check(layout.args + ['--config-file', str(extra)])
    _assert_ok(res, report)


def test_missing_config_dir_is_an_error(tmp_path):
    res = subprocess.run(
        [procs.bin_path('glance-sparse-import'), 'check', '--config-dir',
         str(tmp_path / 'absent')], capture_output=True, text=True,
        timeout=120)
    assert res.returncode == common.EXIT_ERROR
    assert 'bad configuration' in res.stderr


def test_missing_program_names_its_packages(tmp_path):
    layout = deploy_layouts.rhoso(str(tmp_path / 'root'))
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    # qemu-img only: no qemu-nbd on this PATH.
    os.symlink(programs.require('qemu-img'), bin_dir / 'qemu-img')
    env = dict(os.environ, PATH=str(bin_dir))
    res, report = run_check(layout.args, env=env)
    assert res.returncode == common.EXIT_ERROR
    assert [r['name'] for r in report['requirements_missing']] == [
        'qemu-nbd']
    assert 'qemu-nbd (program' in res.stderr
    assert 'qemu-utils (Debian, Ubuntu) or qemu-img (RHEL 9)' in res.stderr


@pytest.mark.parametrize('module,package', [
    ('nbd', 'python3-libnbd'), ('rados', 'python3-rados'),
    ('rbd', 'python3-rbd')])
def test_missing_binding_names_its_package(tmp_path, module, package):
    layout = deploy_layouts.rhoso(str(tmp_path))
    blocker = textwrap.dedent('''
        import sys

        class Blocker(object):
            def find_spec(self, name, path=None, target=None):
                if name == %r:
                    raise ImportError('blocked: ' + name)

        sys.meta_path.insert(0, Blocker())
        from glance_sparse_import.cmd import cli
        sys.exit(cli.main(['check', '--json'] + sys.argv[1:]))
    ''' % module)
    res = subprocess.run([sys.executable, '-c', blocker] + layout.args,
                         capture_output=True, text=True, timeout=120)
    report = json.loads(res.stdout)
    assert res.returncode == common.EXIT_ERROR
    # The rbd binding imports rados: without rados, both are missing.
    assert module in [r['name'] for r in report['requirements_missing']]
    assert '%s (module' % module in res.stderr
    assert 'install %s (Debian, Ubuntu, RHEL 9)' % package in res.stderr


# Glance's own start-up reading of a layout: its parse_args, then
# glance_store's RBD driver configured from the store's section against a
# test cluster (which connects to learn the fsid). No file store is made,
# so nothing is created outside the test's directory.
_GLANCE_LOADS = '''
import json
import sys

from oslo_config import cfg

from glance.async_.flows import api_image_import  # noqa: the plugin list
from glance.common import config
import glance_store
from glance_store._drivers import rbd

CONF = cfg.CONF
config.parse_args(args=sys.argv[1:])
glance_store.register_store_opts(CONF)
stores = {}
for name, kind in CONF.enabled_backends.items():
    if kind == 'rbd':
        store = rbd.Store(CONF, backend=name)
        store.configure()
        stores[name] = {'pool': store.pool, 'user': store.user,
                        'thin': store.thin_provisioning,
                        'url_prefix': store.url_prefix}
print(json.dumps({'plugins': CONF.image_import_opts.image_import_plugins,
                  'stores': stores}))
'''


@pytest.mark.parametrize('tool', ['rhoso', 'kolla', 'tripleo', 'debian'])
def test_glance_reads_what_check_reports(tmp_path, ceph_cluster, tool):
    render = getattr(deploy_layouts, tool)
    kwargs = {'thin_extra_config': True} if tool == 'tripleo' else {}
    layout = render(str(tmp_path), ceph_conf=ceph_cluster.conf_path,
                    **kwargs)
    res = subprocess.run([sys.executable, '-c', _GLANCE_LOADS] + layout.args,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    glance = json.loads(res.stdout.strip().splitlines()[-1])
    _res, report = run_check(layout.args)
    assert glance['plugins'] == report['plugins']['list']
    assert sorted(glance['stores']) == sorted(
        s['name'] for s in report['stores'])
    for store in report['stores']:
        seen = glance['stores'][store['name']]
        assert seen['thin'] is store['rbd_thin_provisioning'] is True
        assert (seen['pool'], seen['user']) == (store['pool'], store['user'])
        assert seen['url_prefix'].startswith('rbd://')
