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

"""``glance-sparse-import import``: write an image into an RBD pool.

The image is read as ``inspect`` reads it and written as the plugin
writes a store: same layout, protected snapshot and checksums.
"""

import argparse
import sys
import time
import uuid

from oslo_utils import units

from glance_sparse_import.cmd import common
from glance_sparse_import.cmd import inspect
from glance_sparse_import import stores
from glance_sparse_import.targets import rbd as rbd_target
from glance_sparse_import.targets import throttle

CONF = common.CONF


def do_import(args):
    start = time.monotonic()
    hash_algo = inspect.hash_algorithm(args.hash_algo)
    info = inspect.inspect_image(args.file, args.format)
    store = stores.RbdStore(
        name=args.pool, pool=args.pool, user=args.user,
        conf_file=args.conf, chunk_size=args.chunk_size * units.Mi,
        connect_timeout=-1 if args.timeout is None else args.timeout)
    target = rbd_target.RbdTarget(
        store, args.name or str(uuid.uuid4()), info.size,
        writes_in_flight=CONF.sparse_rbd_import.writes_in_flight,
        # Here 0 means no timeout, as the option says.
        op_timeout=(stores.op_timeout(store, CONF.sparse_rbd_import)
                    if args.timeout is None else args.timeout))
    label = 'import'
    if args.rate_limit:
        label += ' (limit %s)' % throttle.describe(args.rate_limit)
    try:
        target.open()
        stats, extents, checksum, hash_value = inspect.read_image(
            args.file, info, [throttle.wrap(target, args.rate_limit)],
            hash_algo, label)
        target.finish()
    except BaseException:
        _remove(target)
        raise
    result = inspect.summary(info, stats, extents, checksum, hash_algo,
                             hash_value, start)
    result.update(name=target.image_name, pool=store.pool,
                  location=target.url)
    inspect.print_result(result, args.json, sys.stdout)


def _remove(target):
    try:
        target.remove()
    except Exception as e:
        sys.stderr.write('%s: could not remove RBD image %s from pool %s: '
                         '%s\n' % (common.PROG, target.image_name,
                                   target.store.pool, e))


def _chunk_size(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or value > 32 or value & (value - 1):
        raise argparse.ArgumentTypeError(
            'must be a power of two from 1 to 32 (MiB)')
    return value


def _timeout(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError('must be seconds, 0 or more')
    return value


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0:
        raise argparse.ArgumentTypeError('must be MiB/s, 0 or more')
    return value


def add_parser(sub):
    p = sub.add_parser(
        'import', help='write an image into an RBD pool',
        description='Write an image into an RBD pool as the plugin does '
                    '(same checks, image layout, protected snapshot "snap" '
                    'and checksums), then print its location and '
                    'checksums. On failure nothing is left in the pool.')
    inspect.image_arguments(p)
    p.add_argument('--conf', required=True, metavar='CEPH_CONF',
                   help='ceph.conf of the cluster')
    p.add_argument('--pool', required=True, help='RBD pool')
    p.add_argument('--user', default='glance',
                   help='Ceph client id (default: glance, as '
                        'rbd_store_user)')
    p.add_argument('--name',
                   help='RBD image name; a Glance image id if it is to be '
                        'registered (default: a new UUID)')
    p.add_argument('--chunk-size', type=_chunk_size, default=8,
                   metavar='MiB',
                   help='RBD object size, as rbd_store_chunk_size '
                        '(default: 8)')
    p.add_argument('--timeout', type=_timeout, metavar='SECONDS',
                   help='Ceph connect and operation timeout, as '
                        'rados_connect_timeout (default: ceph_op_timeout, '
                        '120)')
    p.add_argument('--rate-limit', type=_rate, default=0, metavar='MiB/s',
                   help='write at most this many MiB per second, as '
                        'store_write_rate_limit does for a store behind a '
                        'WAN link (default: 0, no limit)')
    p.set_defaults(func=do_import)
