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

"""``glance-sparse-import inspect``: read an image as an import would.

Also the reading half of ``import``: the plugin's safety checks, reader,
copy loop and hashing, with the progress bar.
"""

import hashlib
import json
import os
import sys
import time

from oslo_utils import units

from glance_sparse_import.cmd import common
from glance_sparse_import import copy
from glance_sparse_import import glance_compat
from glance_sparse_import import hashing
from glance_sparse_import import inspection
from glance_sparse_import import sources
from glance_sparse_import.targets import null

CONF = common.CONF


class ExtentCounter(object):
    """Pass a source's chunks through, counting runs of data chunks."""

    def __init__(self, source):
        self._source = source
        self.extents = 0

    @property
    def size(self):
        return self._source.size

    def chunks(self):
        end = None
        for chunk in self._source.chunks():
            if chunk.data is not None:
                if chunk.offset != end:
                    self.extents += 1
                end = chunk.offset + chunk.length
            yield chunk


def check_readable(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise common.CommandError('cannot open %s: %s' % (path, e.strerror))
    try:
        if not os.path.isfile(path):
            raise common.CommandError('%s is not a regular file' % path)
    finally:
        os.close(fd)


def detect_format(path):
    """The disk format Glance would find in the file, to use as the claim."""
    try:
        name = str(glance_compat.detect_file_format(path))
    except Exception:
        # inspect_image repeats the detection and says what is wrong.
        return 'raw'
    return 'raw' if name == 'gpt' else name


def hash_algorithm(name):
    name = name or CONF.hashing_algorithm
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        raise common.CommandError('unknown hash algorithm: %s' % name)
    return name


def inspect_image(path, disk_format):
    check_readable(path)
    claimed = disk_format or detect_format(path)
    return inspection.inspect_image(
        path, claimed, inspection.max_virtual_size(CONF),
        python_exec=sys.executable)


def read_image(path, info, targets, hash_algo, label):
    """Copy the image to targets through the plugin's copy loop.

    Returns (stats, extents, checksum, hash_value).
    """
    conf = CONF.sparse_rbd_import
    bar = common.ProgressBar(sys.stderr, label)
    hasher = hashing.ParallelHasher(['md5', hash_algo])
    feed = hasher
    if bar.enabled:
        feed = common.ProgressHasher(hasher, bar, info.size)
    try:
        with sources.open_source(path, info, CONF,
                                 python_exec=sys.executable) as source:
            counter = ExtentCounter(source)
            stats, _failed = copy.copy_image(
                counter, targets, feed, conf.zero_block_size)
        checksum, hash_value = hasher.hexdigests()
        bar.complete(info.size)
    except BaseException:
        hasher.close()
        raise
    finally:
        bar.close()
    return stats, counter.extents, checksum, hash_value


def stored_format(info):
    # Like image_conversion, the plugin keeps raw and iso, converts the rest.
    return info.format if info.format in inspection.RAW_FORMATS else 'raw'


def summary(info, stats, extents, checksum, hash_algo, hash_value, start):
    return {
        'format': info.format,
        'disk_format': stored_format(info),
        'virtual_size': info.virtual_size,
        'size': info.size,
        'file_size': info.actual_size,
        'allocated_extents': extents,
        'allocated_bytes': stats.allocated,
        'written_bytes': stats.written,
        'zero_skipped_bytes': stats.zero_skipped,
        'checksum': checksum,
        'os_hash_algo': hash_algo,
        'os_hash_value': hash_value,
        'seconds': round(time.monotonic() - start, 3),
    }


LABELS = [
    ('name', 'RBD image'),
    ('pool', 'pool'),
    ('location', 'location'),
    ('format', 'format'),
    ('disk_format', 'disk format in Glance'),
    ('virtual_size', 'virtual size'),
    ('size', 'size'),
    ('file_size', 'file size'),
    ('allocated_extents', 'allocated extents'),
    ('allocated_bytes', 'allocated bytes'),
    ('written_bytes', 'bytes written'),
    ('zero_skipped_bytes', 'zero bytes skipped'),
    ('checksum', 'checksum (md5)'),
    ('os_hash_algo', 'os_hash_algo'),
    ('os_hash_value', 'os_hash_value'),
    ('seconds', 'seconds'),
]


def print_result(result, as_json, out):
    if as_json:
        json.dump(result, out, indent=2, sort_keys=True)
        out.write('\n')
        return
    width = max(len(label) for _key, label in LABELS) + 1
    for key, label in LABELS:
        if key not in result:
            continue
        value = result[key]
        if key.endswith(('_size', '_bytes')) or key == 'size':
            value = _bytes(value)
        out.write('%-*s  %s\n' % (width, label + ':', value))


def _bytes(value):
    if value is None:
        return 'unknown'
    if value < units.Ki:
        return '%d' % value
    for unit, name in ((units.Gi, 'GiB'), (units.Mi, 'MiB'),
                       (units.Ki, 'KiB')):
        if value >= unit:
            return '%d (%.2f %s)' % (value, value / unit, name)


def do_inspect(args):
    start = time.monotonic()
    hash_algo = hash_algorithm(args.hash_algo)
    info = inspect_image(args.file, args.format)
    stats, extents, checksum, hash_value = read_image(
        args.file, info, [null.NullTarget('inspect')], hash_algo, 'inspect')
    print_result(summary(info, stats, extents, checksum, hash_algo,
                         hash_value, start), args.json, sys.stdout)


def image_arguments(p):
    """The arguments of every subcommand that reads an image file."""
    p.add_argument('file', metavar='FILE', help='the disk image')
    p.add_argument(
        '--format', metavar='FMT',
        help='the disk_format the image claims (raw, qcow2, vmdk, vhd, '
             'vhdx, vdi, iso); checked like Glance checks it. Default: '
             'the format found in the file.')
    p.add_argument(
        '--hash-algo', metavar='ALGO',
        help='multihash algorithm; default: hashing_algorithm '
             '(sha512 unless configured)')
    p.add_argument('--json', action='store_true',
                   help='print the result as JSON')


def add_parser(sub):
    p = sub.add_parser(
        'inspect', help='check and read an image, import nothing',
        description='Run the safety checks, read the image once and print '
                    'its format, sizes, allocated extents, the bytes an '
                    'import would write and the checksums Glance would '
                    'record.')
    image_arguments(p)
    p.set_defaults(func=do_inspect)
