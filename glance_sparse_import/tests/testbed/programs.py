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

"""Which Debian package provides each program the tree runs.

tests/unit/test_programs.py finds every program the plugin, the test bed,
the tests and tools/ run and fails when one is missing here or its package
is not installed by tools/install-deps.sh, so a new program must be mapped
(and its package installed) before it can land.
"""

import os
import shutil

# Program -> the Debian 12 package that ships it (or one that depends on
# the package that ships it).
DEBIAN = {
    # Test clusters.
    'ceph': 'ceph-common',
    'ceph-authtool': 'ceph-common',
    'rados': 'ceph-common',
    'rbd': 'ceph-common',
    'monmaptool': 'ceph-base',
    'ceph-mon': 'ceph-mon',
    'ceph-osd': 'ceph-osd',
    'ceph-mgr': 'ceph-mgr',
    # The plugin and the test images.
    'qemu-img': 'qemu-utils',
    'qemu-io': 'qemu-utils',
    'qemu-nbd': 'qemu-utils',
    'mke2fs': 'e2fsprogs',
    'xorriso': 'xorriso',
    'sgdisk': 'gdisk',
    'openssl': 'openssl',
    'truncate': 'coreutils',
    'pgrep': 'procps',
    # Glance's database in the load tests.
    'mariadbd': 'mariadb-server-core',
    'mariadb-install-db': 'mariadb-server-core',
    # pbr reads the version from git; bench-import records the commit.
    'git': 'git',
    # Building and reading the RPM (tests/functional/test_rpm.py).
    'rpmbuild': 'rpm',
    'rpm': 'rpm',
    'rpm2cpio': 'rpm2cpio',
    # Virtualenvs are made with the system interpreter.
    'python3': 'python3',
    # Package management in tools/.
    'apt-get': 'apt',
    'dpkg-query': 'dpkg',
    # tools/fetch-py39-bindings.sh unpacks Debian 11's bindings.
    'dpkg-deb': 'dpkg',
    'mv': 'coreutils',
    # Shell scripts in tools/.
    'dirname': 'coreutils',
    'basename': 'coreutils',
    'bash': 'bash',
    # tools/bare-check.sh, on the host (it installs debootstrap and git
    # itself), and env and bash in the root it builds.
    'debootstrap': 'debootstrap',
    'chroot': 'coreutils',
    'env': 'coreutils',
    'mount': 'mount',
    'umount': 'mount',
    'mountpoint': 'util-linux',
    'findmnt': 'util-linux',
    'cp': 'coreutils',
    'chmod': 'coreutils',
    'mkdir': 'coreutils',
    'mktemp': 'coreutils',
    'readlink': 'coreutils',
    'rm': 'coreutils',
    'tail': 'coreutils',
    'grep': 'grep',
}

# Packages every Debian 12 system has (Essential or Priority required: what
# ``debootstrap --variant=minbase`` installs).
BASE = frozenset([
    'apt', 'base-files', 'base-passwd', 'bash', 'bsdutils', 'coreutils',
    'dash', 'debconf', 'debianutils', 'diffutils', 'dpkg', 'findutils',
    'grep', 'gzip', 'hostname', 'init-system-helpers', 'libc-bin', 'login',
    'mawk', 'mount', 'ncurses-base', 'ncurses-bin', 'passwd', 'perl-base',
    'sed', 'sysvinit-utils', 'tar', 'util-linux',
])

# Console scripts that pip installs into the virtualenvs (requirements
# files, tox), never from Debian.
VENV = frozenset([
    'glance', 'glance-api', 'glance-manage', 'glance-sparse-import',
    'uwsgi', 'pip', 'python', 'tox', 'pytest', 'flake8', 'sphinx-build',
    'oslo-config-generator',
    # python-openstackclient, in the consumers environment.
    'openstack',
])

# Programs no Debian 12 package provides -> where they come from. Only a
# tox environment outside tools/run-tests.sh's default run may use them
# (the README says so); test_programs.py keeps them out of install-deps.sh.
NOT_DEBIAN = {
    'python3.9': 'pyenv (tools/find-python); only .ci/run adds the '
                 'py39-* environments (GSI_MATRIX_EXTRA)',
    'python3.10': 'pyenv (tools/find-python); only .ci/run adds the '
                  'py310-2026.1 environment (GSI_MATRIX_EXTRA)',
}

# Debian puts some daemons in /usr/sbin, which a non-login PATH may lack.
SBIN = ('/usr/sbin', '/sbin')


class MissingProgram(RuntimeError):
    """A program the tests need is not installed."""


def package_of(program):
    """Debian package that provides ``program`` (a name or a path)."""
    return DEBIAN.get(os.path.basename(program))


def missing_message(program):
    """Say which package to install for ``program``."""
    package = package_of(program)
    if package is None:
        return ('%s not found, and no Debian package is known for it '
                '(add it to glance_sparse_import/tests/testbed/programs.py)'
                % program)
    return ('%s not found: install the Debian package %s '
            '(tools/install-deps.sh installs it)' % (program, package))


def which(program):
    """Path of ``program`` on PATH or in /usr/sbin, /sbin; None if absent."""
    path = os.pathsep.join([os.environ.get('PATH', os.defpath)] +
                           list(SBIN))
    return shutil.which(program, path=path)


def require(program):
    """Path of ``program``; raise MissingProgram naming its package."""
    found = which(program)
    if found is None:
        raise MissingProgram(missing_message(program))
    return found
