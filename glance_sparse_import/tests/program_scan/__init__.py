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

"""Find every external program the source tree runs.

Python files (python_calls), shell scripts (shell) and tox.ini's
``allowlist_externals``. A command that cannot be followed to a literal
program is reported too, so every command stays readable by this scan.

A use is ``Use(program, where)``: ``program`` is a program name, ``venv:X``
for a console script of the virtualenv, ``python`` for the interpreter, or
``?SOURCE`` when the command cannot be followed.
"""

import collections
import configparser
import os
import re

from glance_sparse_import.tests.program_scan import python_calls
from glance_sparse_import.tests.program_scan import shell

Use = collections.namedtuple('Use', 'program where')

SKIP_DIRS = frozenset(['.git', '.tox', 'build', 'dist', '__pycache__',
                       '.eggs', '.pytest_cache', 'node_modules'])


def source_files(root):
    """(relative path, kind) of the tree's Python and shell files."""
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and
                         not d.startswith('.venv') and
                         not d.endswith('.egg-info') and
                         (d == '.ci' or not d.startswith('.')))
        for name in sorted(files):
            path = os.path.join(top, name)
            kind = _kind(path)
            if kind:
                yield os.path.relpath(path, root), kind


def _kind(path):
    if path.endswith('.py'):
        return 'python'
    if path.endswith('.sh'):
        return 'shell'
    try:
        with open(path, 'rb') as f:
            first = f.readline(200)
    except OSError:
        return None
    if not first.startswith(b'#!'):
        return None
    if b'python' in first:
        return 'python'
    if re.search(rb'\b(ba)?sh\b', first):
        return 'shell'
    return None


# A command the scan cannot follow (a program chosen at run time) says
# what it may run on its first line: ``# runs: python3.9, python3.10``
# (``venv:X`` for a program of the tests' virtualenv).
RUNS = re.compile(r'#\s*runs:\s*([\w.+/:-]+(?:\s*,\s*[\w.+/:-]+)*)')


def scan(root):
    """Every Use of a program in the tree under ``root``, sorted."""
    found = set()
    python = []
    lines = {}
    for rel, kind in source_files(root):
        with open(os.path.join(root, rel), encoding='utf-8') as f:
            text = f.read()
        lines[rel] = text.splitlines()
        if kind == 'python':
            python.append((rel, text))
        else:
            found.update(shell.scan(text, rel))
    found.update(python_calls.scan(python))
    found.update(scan_tox(os.path.join(root, 'tox.ini')))
    return sorted(Use(*u) for u in _declared(found, lines))


def _declared(found, lines):
    """Replace commands that cannot be followed by what their line says."""
    for program, where in found:
        if program.startswith('?'):
            rel, _, line = where.rpartition(':')
            text = lines.get(rel, [])
            match = (RUNS.search(text[int(line) - 1])
                     if line.isdigit() and int(line) <= len(text) else None)
            if match:
                for name in match.group(1).split(','):
                    yield name.strip(), where
                continue
        yield program, where


def scan_tox(path):
    """{(program, where)} tox runs outside the virtualenvs.

    Its ``allowlist_externals`` and the interpreters of ``base_python``
    (``{env:NAME:DEFAULT}`` counts as DEFAULT).
    """
    if not os.path.exists(path):
        return set()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    uses = set()
    for section in parser.sections():
        where = 'tox.ini [%s]' % section
        value = parser.get(section, 'allowlist_externals', fallback='')
        for word in value.split():
            uses.add((os.path.basename(word) if word.startswith('/')
                      else word, where))
        for key in ('base_python', 'basepython'):
            value = parser.get(section, key, fallback='').strip()
            if value:
                uses.add((_interpreter(value), where))
    return uses


def _interpreter(value):
    env = re.match(r'^\{env:\w+(?::([^{}]*))?\}$', value)
    if env:
        return env.group(1) or '?' + value
    if value.startswith('{'):
        return '?' + value
    return value


def shell_installs(text):
    """Debian packages a shell script installs (see shell.installs)."""
    return shell.installs(text)
