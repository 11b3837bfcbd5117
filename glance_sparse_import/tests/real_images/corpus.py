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

"""The corpus of real disk images beside the checkout, as SOURCES.md has it.

``../shared/real-images/`` relative to the repository root: images made by
other producers, copied unchanged, with ``SOURCES.md`` naming for each the
disk format Glance is told and its virtual size. Nothing is copied into the
repository; compressed files are decompressed into a scratch directory.
"""

import bz2
import collections
import gzip
import os
import re
import shutil

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ROOT = os.path.join(os.path.dirname(REPO), 'shared', 'real-images')
SOURCES = os.path.join(ROOT, 'SOURCES.md')

Entry = collections.namedtuple(
    'Entry', 'name path disk_format virtual_size description negative')
Entry.__doc__ = """One image of the corpus.

name: its path under the corpus, as SOURCES.md lists it.
disk_format: the disk_format Glance is told.
virtual_size: what SOURCES.md says qemu-img reports, in bytes.
description: SOURCES.md's format column.
negative: whether it is in negative/ (must be refused).
"""

_FORMAT = re.compile(r'→ `(\w+)`')
_BYTES = re.compile(r'\((\d+)\)')
_UNITS = {'B': 1, 'KiB': 1024, 'MiB': 1024 ** 2, 'GiB': 1024 ** 3}


def entries():
    """Every image of the summary table of SOURCES.md, in its order.

    :raises AssertionError: the corpus or SOURCES.md is missing
    """
    if not os.path.isfile(SOURCES):
        raise AssertionError(
            'the real-image corpus is missing: expected %s beside the '
            'checkout (../shared/real-images relative to the repository '
            'root)' % SOURCES)
    found = []
    with open(SOURCES) as f:
        for line in f:
            if not line.startswith('| '):
                continue
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if len(cells) < 5 or not os.path.isfile(
                    os.path.join(ROOT, cells[0])):
                continue
            found.append(_entry(cells))
    return found


def _entry(cells):
    name, description, size = cells[0], cells[2], cells[4]
    match = _FORMAT.search(description)
    # negative/ rows name the format first and no Glance format.
    disk_format = (match.group(1) if match
                   else description.split()[0].lower())
    exact = _BYTES.search(size)
    if exact:
        virtual_size = int(exact.group(1))
    else:
        number, unit = size.split()[:2]
        virtual_size = int(float(number) * _UNITS[unit])
    return Entry(name, os.path.join(ROOT, name), disk_format, virtual_size,
                 description, name.startswith('negative/'))


def files_on_disk():
    """Names of every image file under the corpus, SOURCES.md aside."""
    names = []
    for base, dirs, files in os.walk(ROOT):
        for name in files:
            rel = os.path.relpath(os.path.join(base, name), ROOT)
            if rel != 'SOURCES.md':
                names.append(rel)
    return sorted(names)


def decompressed(entry, workdir):
    """Path of the image as producers wrote it: decompressed if stored so.

    A compressed file is decompressed once into workdir; others are used
    where they are (read-only).
    """
    opener = {'.bz2': bz2.open, '.gz': gzip.open}.get(
        os.path.splitext(entry.name)[1])
    if opener is None:
        return entry.path
    dest = os.path.join(workdir, os.path.basename(
        os.path.splitext(entry.name)[0]))
    if not os.path.exists(dest):
        with opener(entry.path, 'rb') as src, open(dest + '.part',
                                                   'wb') as out:
            shutil.copyfileobj(src, out, 4 * 1024 * 1024)
        os.rename(dest + '.part', dest)
    return dest
