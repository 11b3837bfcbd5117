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

"""The RPM of packaging/rpm, built with Debian's rpm tools.

Built as RHEL 9 would lay it out (site-packages of Python 3.9) from an
sdist of the checkout, then read back with ``rpm`` and ``rpm2cpio``: its
metadata, its Requires against requirements.txt, and its files against
the package's modules and entry points.
"""

import configparser
import os
import re
import subprocess
import sys

import pytest

from glance_sparse_import.tests.testbed import procs
from glance_sparse_import.tests.testbed import programs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SPEC = os.path.join(ROOT, 'packaging', 'rpm',
                    'python-glance-sparse-import.spec')
SITELIB = '/usr/lib/python3.9/site-packages'
MODULE = 'glance_sparse_import'


def _version():
    """The version pbr gives the checkout."""
    res = subprocess.run([sys.executable, 'setup.py', '--version'],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    return res.stdout.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def rpm_file(tmp_path_factory):
    top = tmp_path_factory.mktemp('rpm')
    version = _version()
    subprocess.run([sys.executable, 'setup.py', '-q', 'sdist', '-d',
                    str(top / 'src')], cwd=ROOT, capture_output=True,
                   check=True, timeout=120)
    programs.require('rpmbuild')
    # The bindings and Glance are RHEL's: nothing to check them against
    # here (--nodeps). The build interpreter is this one, which has pbr.
    env = dict(os.environ, PATH=os.pathsep.join([
        os.path.dirname(sys.executable), os.environ.get('PATH', '')]))
    procs.run(['rpmbuild', '-bb', '--nodeps',
               '--define', '_topdir %s' % top,
               '--define', '_sourcedir %s' % (top / 'src'),
               '--define', 'upstream_version %s' % version,
               '--define', '__python3 %s' % sys.executable,
               '--define', 'python3_sitelib %s' % SITELIB,
               SPEC], timeout=300, env=env)
    built = os.listdir(top / 'RPMS' / 'noarch')
    assert built == ['python3-glance-sparse-import-%s-1.noarch.rpm'
                     % version]
    return str(top / 'RPMS' / 'noarch' / built[0]), version


def _query(path, *args):
    return procs.run(['rpm', '-qp'] + list(args) + [path], timeout=60)


def _cpio_files(path):
    """{name: bytes} of the RPM's payload (cpio "newc", as rpm2cpio gives)."""
    data = subprocess.run(['rpm2cpio', path], capture_output=True,
                          check=True, timeout=60).stdout
    files, pos = {}, 0
    while True:
        header = data[pos:pos + 110]
        assert header[:6] in (b'070701', b'070702'), header[:6]
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        size, name_size = fields[6], fields[11]
        name_start = pos + 110
        name = data[name_start:name_start + name_size - 1].decode()
        pos = (name_start + name_size + 3) & ~3
        if name == 'TRAILER!!!':
            return files
        files['/' + name.lstrip('./')] = data[pos:pos + size]
        pos = (pos + size + 3) & ~3


def test_metadata(rpm_file):
    path, version = rpm_file
    out = _query(path, '--qf', '%{NAME}|%{VERSION}|%{ARCH}|%{LICENSE}')
    setup = configparser.ConfigParser()
    setup.read(os.path.join(ROOT, 'setup.cfg'))
    assert out.split('|') == ['python3-glance-sparse-import', version,
                              'noarch', setup['metadata']['license']]


def _requires(path):
    requires = {}
    for line in _query(path, '--requires').splitlines():
        name, _, floor = line.partition(' >= ')
        requires[name.strip()] = floor.strip() or None
    return requires


def test_requires_the_distribution_packages(rpm_file):
    requires = _requires(rpm_file[0])
    for name in ('qemu-img', 'python3-libnbd', 'python3-rados',
                 'python3-rbd'):
        assert name in requires, name
    # Glance 22 (Wallaby), the oldest release the plugin supports.
    assert requires['python3-glance'] == '1:22.0.0'


def test_requires_floors_are_requirements_txt(rpm_file):
    requires = _requires(rpm_file[0])
    with open(os.path.join(ROOT, 'requirements.txt')) as f:
        lines = [line.split('#')[0].strip() for line in f]
    for line in filter(None, lines):
        name, floor = re.match(r'([A-Za-z0-9_.-]+)>=([0-9.]+)$',
                               line).groups()
        rpm_name = 'python3-' + re.sub(r'[._]', '-', name.lower())
        assert rpm_name in requires, rpm_name
        # RDO gives some packages an epoch ("2:9.1.0").
        assert requires[rpm_name].split(':')[-1] == floor, rpm_name


def test_files(rpm_file):
    path, version = rpm_file
    files = _cpio_files(path)
    package = os.path.join(ROOT, MODULE)
    modules = set()
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = [d for d in dirnames
                       if d not in ('tests', '__pycache__')]
        for name in filenames:
            if name.endswith('.py'):
                modules.add(os.path.relpath(os.path.join(dirpath, name),
                                            ROOT))
    shipped = {name[len(SITELIB) + 1:] for name in files
               if name.startswith(SITELIB + '/' + MODULE + '/') and
               name.endswith('.py')}
    assert shipped == modules
    # No tests in the package.
    assert not [n for n in files if '/%s/tests/' % MODULE in n]
    [entry_points] = [n for n in files if n.startswith(
        '%s/%s-%s-' % (SITELIB, MODULE, version)) and
        n.endswith('.egg-info/entry_points.txt')]
    eps = configparser.ConfigParser()
    eps.read_string(files[entry_points].decode())
    assert eps['console_scripts']['glance-sparse-import'] == \
        'glance_sparse_import.cmd.cli:main'
    assert eps['glance.image_import.plugins']['sparse_rbd_import'] == \
        'glance_sparse_import.plugin:get_flow'
    assert eps['oslo.config.opts']['glance_sparse_import'] == \
        'glance_sparse_import.opts:list_opts'
    script = files['/usr/bin/glance-sparse-import'].decode()
    assert script.startswith('#!/usr/bin/python3\n')
    assert 'glance_sparse_import.cmd.cli' in script
    doc = '/usr/share/doc/python3-glance-sparse-import-%s/' % version
    with open(os.path.join(ROOT, 'etc',
                           'glance-sparse-import.conf.sample'), 'rb') as f:
        assert files[doc + 'glance-sparse-import.conf.sample'] == f.read()
    assert doc + 'README.rst' in files
