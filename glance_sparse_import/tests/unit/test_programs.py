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

"""Every program the tree runs is installed by tools/install-deps.sh.

The README promises that its two commands work on a bare Debian 12
machine; a program a test, the test bed, tools/ or the plugin runs that
install-deps.sh does not install breaks that promise only on machines that
lack it, so these tests read the tree instead of the machine: every
program must be mapped to its Debian package (testbed/programs.py) and that
package installed by install-deps.sh (or by the script that uses it).
"""

import collections
import os
import shutil
import subprocess

from glance_sparse_import.tests import program_scan
from glance_sparse_import.tests.testbed import programs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SYSTEM_PATH = '/usr/bin:/usr/sbin:/bin:/sbin'

_scanned = []


def _uses():
    if not _scanned:
        _scanned.append(program_scan.scan(ROOT))
    return _scanned[0]


def _by_program(uses):
    found = collections.defaultdict(list)
    for use in uses:
        found[use.program].append(use.where)
    return found


def _debian_uses():
    """{program name or path: [where]} of programs from Debian."""
    return _by_program(u for u in _uses() if not u.program.startswith(
        ('venv:', 'script:', '?')) and u.program != 'python' and
        os.path.basename(u.program) not in programs.NOT_DEBIAN)


def _installs(rel):
    """Packages the shell script ``rel`` installs (none for other files)."""
    path = os.path.join(ROOT, rel)
    if not os.path.isfile(path):
        return set()
    with open(path) as f:
        return program_scan.shell_installs(f.read())


def _listed():
    return _installs(os.path.join('tools', 'install-deps.sh'))


def test_scan_finds_the_known_programs():
    # The scan follows wrappers (procs.run, disk_images.run, Cluster._run,
    # run_on_pty), prlimit'ed commands and shell substitutions.
    found = _by_program(_uses())
    for program in ('ceph-mgr', 'ceph-mon', 'qemu-img', 'qemu-nbd',
                    'xorriso', 'sgdisk', 'mariadbd', 'pgrep', 'dpkg-query',
                    'venv:uwsgi', 'venv:glance'):
        assert program in found, program
    assert any(where.startswith('glance_sparse_import/sources/nbd.py:')
               for where in found['qemu-nbd']), found['qemu-nbd']


def test_every_command_is_readable():
    unknown = ['%s: cannot tell which program %s is' % (u.where, u.program[1:])
               for u in _uses() if u.program.startswith('?')]
    assert not unknown, (
        'write these commands so that tests/program_scan can follow them '
        'to a literal program name, or end their first line with a '
        'comment "# runs: PROGRAM[, PROGRAM]":\n' + '\n'.join(unknown))


def test_every_program_is_mapped():
    unmapped = ['%s (%s)' % (program, ', '.join(sorted(where)))
                for program, where in sorted(_debian_uses().items())
                if programs.package_of(program) is None]
    assert not unmapped, (
        'map these programs to their Debian package in '
        'glance_sparse_import/tests/testbed/programs.py DEBIAN and install '
        'it in tools/install-deps.sh:\n' + '\n'.join(unmapped))


def test_no_stale_mapping():
    used = {os.path.basename(p) for p in _debian_uses()}
    stale = sorted(set(programs.DEBIAN) - used)
    assert not stale, 'nothing runs these any more: %s' % stale


def test_programs_outside_debian_are_used():
    used = {os.path.basename(u.program) for u in _uses()}
    assert not set(programs.NOT_DEBIAN) - used
    assert not set(programs.NOT_DEBIAN) & set(programs.DEBIAN)


def test_virtualenv_programs_are_known():
    unknown = ['%s (%s)' % (program, ', '.join(sorted(where)))
               for program, where in sorted(_by_program(_uses()).items())
               if program.startswith('venv:') and
               program[len('venv:'):] not in programs.VENV]
    assert not unknown, (
        'not a console script the virtualenvs install (programs.VENV): %s'
        % unknown)


def test_scripts_exist():
    missing = [u for u in _uses() if u.program.startswith('script:') and
               not os.path.isfile(os.path.join(ROOT, u.program[7:]))]
    assert not missing


def test_install_deps_installs_every_package():
    listed = _listed()
    wrong = []
    for program, where in sorted(_debian_uses().items()):
        package = programs.package_of(program)
        if package is None or package in programs.BASE or package in listed:
            continue
        # A script may install what only it needs (tools/bare-check).
        own = [w for w in where
               if package in _installs(w.rsplit(':', 1)[0])]
        if not own or len(own) < len(where):
            wrong.append('%s comes from the Debian package %s, which '
                         'tools/install-deps.sh does not install (used in '
                         '%s)' % (program, package,
                                  ', '.join(sorted(set(where) - set(own)))))
    assert not wrong, '\n'.join(wrong)


def test_install_deps_reads_its_list():
    # The list the other tests read is the one the script installs.
    listed = _listed()
    assert {'ceph-mon', 'ceph-mgr', 'qemu-utils', 'git'} <= listed
    assert not _installs(os.path.join('tools', 'run-tests.sh'))


def _dpkg_packages(paths):
    """{path: package shipping it} (merged /usr tried both ways)."""
    # One name may be asked for both ways (/bin/bash and bash, found as
    # /usr/bin/bash): a candidate stands for every path it came from.
    candidates = collections.defaultdict(set)
    for path in paths:
        for c in (path, os.path.realpath(path)):
            candidates[c].add(path)
            if c.startswith('/usr/'):
                candidates[c[len('/usr'):]].add(path)
    # One query: dpkg-query -S reads every package's file list.
    out = subprocess.run(['dpkg-query', '-S'] + sorted(candidates),
                         capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        package, _, shipped = line.partition(': ')
        if shipped in candidates and ',' not in package:
            for path in candidates[shipped]:
                found.setdefault(path, package.split(':')[0])
    return found


def _depends(package):
    out = subprocess.run(['dpkg-query', '-W', '-f=${Pre-Depends},${Depends}',
                          package], capture_output=True, text=True).stdout
    return {d.strip().split()[0].split(':')[0]
            for alt in out.split(',') for d in alt.split('|') if d.strip()}


def test_mapping_agrees_with_this_machine():
    # On a machine the README's commands prepared every program the tests
    # run is installed, from the package the map names.
    needed = _listed() | programs.BASE
    wrong = []
    paths = {}
    for program in sorted(_debian_uses()):
        if programs.package_of(program) not in needed:
            continue
        # Debian's directories only: pyenv's shims may come first on PATH.
        path = (program if program.startswith('/')
                else shutil.which(program, path=SYSTEM_PATH))
        if path is None or not os.path.exists(path):
            wrong.append(programs.missing_message(program))
        else:
            paths[path] = program
    shipped = _dpkg_packages(paths)
    for path, program in sorted(paths.items()):
        package = programs.package_of(program)
        got = shipped.get(path)
        if got != package and got not in _depends(package):
            wrong.append('%s is shipped by %s, not by %s or a dependency '
                         'of it' % (path, got, package))
    assert not wrong, '\n'.join(wrong)


def test_scan_follows_wrappers_and_shell(tmp_path):
    (tmp_path / 'mod.py').write_text(
        'import subprocess\n'
        'import sys\n'
        'from other import make\n'
        'def go(cmd, timeout=1):\n'
        '    return subprocess.run(cmd, timeout=timeout)\n'
        'def use(path):\n'
        '    cmd = ["newtool", "-x"]\n'
        '    go(cmd + [path])\n'
        '    go([sys.executable, "-m", "prlimit", "--", "limited"])\n'
        '    subprocess.Popen(make())\n')
    (tmp_path / 'x.sh').write_text(
        '#!/bin/bash\n'
        'LIST=(\n  not-a-program # comment\n)\n'
        'f() { echo; }\n'
        'foo 2>&1 | bar >&2\n'
        'x=$(baz "$(qux)" $(( 1 + 2 )))\n'
        'if [ -x "$v/bin/pip" ]; then exec "$v/bin/pip"; fi\n'
        'f\n'
        'chroot "$root" env -i A=1 /bin/sh -c true\n'
        'apt-get install -y pkg-one pkg-two >/dev/null\n'
        '"$python" -c pass  # runs: python3.9, python3.10\n')
    (tmp_path / 'tox.ini').write_text(
        '[testenv:old]\nbase_python = {env:OLD_PYTHON:python3.8}\n'
        'allowlist_externals = bash\n')
    found = {u.program: u.where for u in program_scan.scan(str(tmp_path))}
    assert found == {
        'newtool': 'mod.py:8', 'limited': 'mod.py:9', 'python': 'mod.py:9',
        '?make()': 'mod.py:10', 'foo': 'x.sh:6', 'bar': 'x.sh:6',
        'baz': 'x.sh:7', 'qux': 'x.sh:7', 'venv:pip': 'x.sh:8',
        'chroot': 'x.sh:10', 'env': 'x.sh:10', '/bin/sh': 'x.sh:10',
        'apt-get': 'x.sh:11', 'python3.9': 'x.sh:12',
        'python3.10': 'x.sh:12', 'python3.8': 'tox.ini [testenv:old]',
        'bash': 'tox.ini [testenv:old]'}
    assert program_scan.shell_installs(
        (tmp_path / 'x.sh').read_text()) == {'pkg-one', 'pkg-two'}
