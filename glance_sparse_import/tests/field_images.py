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

"""Images as they come from the field, made with real qemu and xorriso.

A qcow2 left dirty by a crash, a hybrid ISO, a VHDX whose log needs
replaying: each the way its producer leaves it, not a hand-edited header.
"""

import os
import shutil
import struct
import subprocess

MiB = 1024 * 1024

# Debian package of each program the images need.
PACKAGES = {'qemu-img': 'qemu-utils', 'qemu-io': 'qemu-utils',
            'xorriso': 'xorriso'}


def run(*cmd, ok=(0,)):
    if shutil.which(cmd[0]) is None:
        raise AssertionError('%s is missing: install the Debian package %s'
                             % (cmd[0], PACKAGES.get(cmd[0], cmd[0])))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode not in ok:
        raise AssertionError('%s failed (%d): %s' % (
            ' '.join(cmd), result.returncode, result.stderr[-2000:]))
    return result


def dirty_qcow2(path):
    """A qcow2 whose writer died with lazy refcounts on (dirty bit set).

    Guest bytes: 0x3c over [0, 2 MiB), 0x3d over [8 MiB, 9 MiB) of 64 MiB.
    """
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on',
        path, '64M')
    # abort: qemu-io dies by SIGABRT without flushing its refcounts.
    subprocess.run(['qemu-io', '-c', 'write -P 0x3c 0 2M',
                    '-c', 'write -P 0x3d 8M 1M', '-c', 'abort', path],
                   capture_output=True)
    return path


def qcow2_check(path):
    """qemu-img check's exit code for path."""
    return run('qemu-img', 'check', '-f', 'qcow2', path, ok=(0, 1, 2, 3)
               ).returncode


def first_l2_past_end(src, dst):
    """Copy src, pointing the first data cluster past the end of the file."""
    shutil.copy(src, dst)
    with open(dst, 'r+b') as f:
        header = f.read(48)
        l1_offset = struct.unpack('>Q', header[40:48])[0]
        f.seek(l1_offset)
        l2_offset = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
        f.seek(l2_offset)
        f.write(struct.pack('>Q', (1 << 63) | (1 << 40)))
    return dst


def hybrid_iso(path, workdir, gpt=False):
    """An ISO 9660 with an EFI partition appended, as installers ship.

    xorriso writes an MBR (or, with gpt, a GPT) in the ISO's system area.
    """
    tree = os.path.join(workdir, 'iso-tree')
    os.makedirs(tree, exist_ok=True)
    with open(os.path.join(tree, 'random.bin'), 'wb') as f:
        f.write(os.urandom(MiB))
    with open(os.path.join(tree, 'README'), 'w') as f:
        f.write('hybrid ISO test\n')
    efi = os.path.join(workdir, 'efi.img')
    with open(efi, 'wb') as f:
        f.write(b'EFI' * 1000)
        f.truncate(512 * 1024)
    cmd = ['xorriso', '-as', 'mkisofs', '-quiet', '-o', path,
           '-append_partition', '2', '0xef', efi]
    if gpt:
        cmd.append('-appended_part_as_gpt')
    run(*(cmd + [tree]))
    return path


def iso_with_qcow2_header(iso, dst, qcow2):
    """Copy iso with a qcow2 header in its system area: two formats."""
    shutil.copy(iso, dst)
    with open(qcow2, 'rb') as src, open(dst, 'r+b') as f:
        f.write(src.read(512))
    return dst


def vhdx_needing_log_replay(path):
    """A VHDX whose metadata log was written but never replayed.

    The write of the block allocation table after its log entry fails
    (blkdebug), as when a host dies between the two: qemu then refuses to
    open it read-only until the log is replayed.
    """
    run('qemu-img', 'create', '-q', '-f', 'vhdx', path, '64M')
    bat = _vhdx_bat_offset(path)
    run('qemu-io', '--image-opts', '-c', 'write -P 0x11 0 1M',
        'driver=vhdx,file.driver=blkdebug,file.image.filename=%s,'
        'file.inject-error.0.event=pwritev,file.inject-error.0.sector=%d,'
        'file.inject-error.0.errno=5' % (path.replace(',', ',,'),
                                         bat // 512),
        ok=(0, 1))
    return path


def _vhdx_bat_offset(path):
    bat_guid = bytes.fromhex('6677c22d23f600429d64115e9bfd4a08')
    with open(path, 'rb') as f:
        f.seek(192 * 1024)
        table = f.read(64 * 1024)
    count = struct.unpack('<I', table[8:12])[0]
    for i in range(count):
        entry = table[16 + 32 * i:48 + 32 * i]
        if entry[:16] == bat_guid:
            return struct.unpack('<Q', entry[16:24])[0]
    raise AssertionError('no BAT region in %s' % path)
