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

"""Build small, real disk images for tests with qemu-img, mke2fs, xorriso."""

import json
import os
import subprocess

from glance_sparse_import.tests.testbed import programs

MiB = 1024 * 1024


def run(*cmd):
    """Run ``cmd``; return stdout as bytes, raise RuntimeError on failure.

    A program that is not installed fails naming its Debian package.
    """
    try:
        result = subprocess.run(cmd, capture_output=True)
    except FileNotFoundError as e:
        if e.filename != cmd[0]:
            raise
        raise programs.MissingProgram(programs.missing_message(cmd[0]))
    if result.returncode:
        raise RuntimeError('%s failed: %s' % (
            ' '.join(cmd), result.stderr.decode(errors='replace')))
    return result.stdout


def make_tree(path):
    """A directory with random, text, zero-filled and sparse files."""
    os.makedirs(path)
    with open(os.path.join(path, 'random.bin'), 'wb') as f:
        f.write(os.urandom(3 * MiB))
    with open(os.path.join(path, 'text.txt'), 'w') as f:
        f.write('glance sparse import\n' * 50000)
    with open(os.path.join(path, 'zeros.bin'), 'wb') as f:
        f.write(bytes(2 * MiB))
    with open(os.path.join(path, 'sparse.bin'), 'wb') as f:
        f.truncate(8 * MiB)
        f.seek(4 * MiB)
        f.write(os.urandom(64 * 1024))
    return path


def make_ext4(path, size, tree):
    """An ext4 file system holding tree, in a sparse raw file."""
    with open(path, 'wb') as f:
        f.truncate(size)
    run('mke2fs', '-q', '-F', '-t', 'ext4', '-d', tree, path)
    return path


def make_iso(path, tree):
    """An ISO 9660 file system (Rock Ridge, Joliet) holding tree."""
    run('xorriso', '-as', 'mkisofs', '-quiet', '-R', '-J', '-o', path, tree)
    return path


def convert(src, dst, fmt, *options, compress=False):
    """Convert the raw file src to fmt; options are -o values."""
    cmd = ['qemu-img', 'convert', '-f', 'raw', '-O', fmt]
    if compress:
        cmd.append('-c')
    for option in options:
        cmd += ['-o', option]
    run(*(cmd + [src, dst]))
    return dst


def to_raw(path, qemu_format, dst):
    """What qemu-img convert -O raw makes of path."""
    run('qemu-img', 'convert', '-f', qemu_format, '-O', 'raw', path, dst)
    with open(dst, 'rb') as f:
        return f.read()


def zero_ranges(path, qemu_format):
    """[(start, end)] that qemu-img map reports as reading zeros."""
    out = run('qemu-img', 'map', '-f', qemu_format, '--output=json', path)
    return [(e['start'], e['start'] + e['length'])
            for e in json.loads(out) if e['zero']]


def data_ranges(path):
    """[(start, end)] of the data extents of a file (SEEK_DATA/SEEK_HOLE)."""
    ranges = []
    with open(path, 'rb') as f:
        fd, end, pos = f.fileno(), os.fstat(f.fileno()).st_size, 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            pos = os.lseek(fd, start, os.SEEK_HOLE)
            ranges.append((start, pos))
    return ranges


def hole_ranges(path):
    """[(start, end)] of the holes of a file."""
    holes = []
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        while offset < size:
            try:
                data = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                data = size
            if data > offset:
                holes.append((offset, data))
            if data >= size:
                break
            offset = os.lseek(fd, data, os.SEEK_HOLE)
    finally:
        os.close(fd)
    return holes
