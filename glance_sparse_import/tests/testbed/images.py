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

"""Realistic disk images built locally, without a download.

A raw file holding a real ext4 filesystem filled with files of this machine
is as sparse as a cloud image: allocated where the filesystem wrote, holes
elsewhere. qemu-img turns it into qcow2 or VMDK; xorriso builds ISOs.
"""

import hashlib
import json
import os
import random
import shutil
import tempfile

from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
GiB = 1024 ** 3

DEFAULT_SOURCE = '/usr/share'


def copy_tree(source, dest, max_bytes):
    """Copy regular files of ``source`` into ``dest``, up to ``max_bytes``.

    Files are taken in sorted order, so the same machine gives the same
    tree; unreadable files, links and special files are skipped. Returns
    the number of bytes copied.
    """
    copied = 0
    for root, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            src = os.path.join(root, name)
            if os.path.islink(src) or not os.path.isfile(src):
                continue
            try:
                size = os.path.getsize(src)
            except OSError:
                continue
            if copied + size > max_bytes:
                continue
            dst = os.path.join(dest, os.path.relpath(src, source))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:
                shutil.copyfile(src, dst)
            except OSError:
                continue
            copied += size
            if copied >= max_bytes:
                return copied
    return copied


def _filled_dir(source, data_bytes, tmp_parent):
    """A temporary copy of ``data_bytes`` of ``source``; caller removes it."""
    tmp = tempfile.mkdtemp(prefix='tree-', dir=tmp_parent)
    copy_tree(source, tmp, data_bytes)
    return tmp


def make_ext4(path, size, data_bytes=None, source=DEFAULT_SOURCE,
              label='testbed'):
    """Build a sparse raw file of ``size`` bytes holding an ext4 filesystem.

    ``data_bytes`` of files from ``source`` are copied in; None puts all of
    ``source`` in (it must fit). Returns ``path``.
    """
    tree = None
    try:
        if data_bytes is not None:
            tree = _filled_dir(source, data_bytes,
                               os.path.dirname(os.path.abspath(path)))
        if os.path.exists(path):
            os.unlink(path)
        procs.run(['truncate', '-s', str(size), path])
        procs.run(['mke2fs', '-q', '-F', '-t', 'ext4', '-L', label,
                   '-E', 'root_owner=0:0', '-d', tree or source, path],
                  timeout=1800)
    finally:
        if tree:
            shutil.rmtree(tree, ignore_errors=True)
    return path


def write_sparse_raw(path, size, extents, seed=0):
    """Build a raw file of ``size`` bytes with data only in ``extents``.

    ``extents`` is ``[(offset, length)]``; each is filled with pseudo-random
    bytes from ``seed``, everything else is a hole. Returns ``path``.
    """
    rnd = random.Random(seed)
    with open(path, 'wb') as f:
        f.truncate(size)
        for offset, length in extents:
            f.seek(offset)
            left = length
            while left:
                n = min(left, 4 * MiB)
                f.write(rnd.randbytes(n))
                left -= n
    return path


def _convert(src, dst, out_format, options=(), compressed=False):
    cmd = ['qemu-img', 'convert', '-f', 'raw', '-O', out_format]
    if compressed:
        cmd.append('-c')
    for option in options:
        cmd += ['-o', option]
    procs.run(cmd + [src, dst], timeout=1800)
    return dst


def _derived(raw, suffix):
    return os.path.splitext(raw)[0] + suffix


def to_qcow2(raw, out=None, compressed=False):
    """qcow2 copy of a raw image, zlib-compressed if asked."""
    out = out or _derived(raw, '.compressed.qcow2' if compressed
                          else '.qcow2')
    return _convert(raw, out, 'qcow2', compressed=compressed)


def to_vmdk(raw, out=None, subformat='streamOptimized'):
    """VMDK copy of a raw image.

    ``streamOptimized`` and ``monolithicSparse`` both pass Glance's
    create-type allow-list.
    """
    out = out or _derived(raw, '.%s.vmdk' % subformat)
    return _convert(raw, out, 'vmdk', options=['subformat=' + subformat])


def make_iso(path, data_bytes=64 * MiB, source=DEFAULT_SOURCE,
             label='TESTBED'):
    """ISO 9660 image (Rock Ridge, Joliet) of files from ``source``.

    Needs xorriso (Debian package ``xorriso``).
    """
    tree = _filled_dir(source, data_bytes,
                       os.path.dirname(os.path.abspath(path)))
    try:
        procs.run(['xorriso', '-as', 'mkisofs', '-quiet', '-R', '-J',
                   '-V', label, '-o', path, tree], timeout=1800)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return path


def qemu_img_info(path, image_format=None):
    """``qemu-img info --output json`` as a dict."""
    cmd = ['qemu-img', 'info', '--output', 'json']
    if image_format:
        cmd += ['-f', image_format]
    return json.loads(procs.run(cmd + [path]))


def file_digests(path, algorithms=('md5', 'sha512')):
    """Hex digests of a file's bytes, in the order of ``algorithms``."""
    hashes = [hashlib.new(a) for a in algorithms]
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(4 * MiB), b''):
            for h in hashes:
                h.update(block)
    return tuple(h.hexdigest() for h in hashes)


def allocated_bytes(path):
    """Bytes a file really occupies on disk."""
    return os.stat(path).st_blocks * 512


class ImageBuilder(object):
    """Builds test images in ``workdir`` once and hands out their paths.

    The same arguments return the same file, so a session can share images
    between tests. Treat the files as read-only.
    """

    def __init__(self, workdir, source=DEFAULT_SOURCE):
        self.workdir = os.path.abspath(workdir)
        self.source = source
        os.makedirs(self.workdir, exist_ok=True)

    def _path(self, *parts):
        return os.path.join(self.workdir, '-'.join(str(p) for p in parts))

    def ext4_raw(self, size, data_bytes):
        path = self._path('ext4', size, data_bytes) + '.raw'
        if not os.path.exists(path):
            make_ext4(path + '.part', size, data_bytes, self.source)
            os.rename(path + '.part', path)
        return path

    def qcow2(self, size, data_bytes, compressed=False):
        path = self._path('ext4', size, data_bytes,
                          'z' if compressed else 'plain') + '.qcow2'
        if not os.path.exists(path):
            to_qcow2(self.ext4_raw(size, data_bytes), path + '.part',
                     compressed)
            os.rename(path + '.part', path)
        return path

    def vmdk(self, size, data_bytes, subformat='streamOptimized'):
        path = self._path('ext4', size, data_bytes, subformat) + '.vmdk'
        if not os.path.exists(path):
            to_vmdk(self.ext4_raw(size, data_bytes), path + '.part',
                    subformat)
            os.rename(path + '.part', path)
        return path

    def iso(self, data_bytes):
        path = self._path('data', data_bytes) + '.iso'
        if not os.path.exists(path):
            make_iso(path + '.part', data_bytes, self.source)
            os.rename(path + '.part', path)
        return path
