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

"""Configuration options of the sparse_rbd_import plugin."""

from oslo_config import cfg
from oslo_config import types
from oslo_utils import units

GROUP = 'sparse_rbd_import'

sparse_rbd_import_opts = [
    cfg.IntOpt('request_size',
               default=4 * units.Mi,
               min=64 * units.Ki,
               max=64 * units.Mi,
               help="""
Largest read request, in bytes, sent to the staged image, and largest write
sent to Ceph. Data extents are split into requests of at most this size.
"""),
    cfg.IntOpt('requests_in_flight',
               default=8,
               min=1,
               max=64,
               help="""
Read requests kept in flight against qemu-nbd. More than one lets qemu
decompress compressed qcow2 clusters on several threads. Together with
``request_size`` and ``writes_in_flight`` this bounds the memory one import
uses, whatever the image size.
"""),
    cfg.IntOpt('writes_in_flight',
               default=8,
               min=1,
               max=256,
               help="""
Asynchronous RBD writes kept in flight per target store. librbd holds a copy
of each write until the OSDs acknowledge it, so an import to N stores keeps
up to N * ``writes_in_flight`` * ``request_size`` bytes (32 MiB per store
with the defaults) in the API worker.
"""),
    cfg.IntOpt('zero_block_size',
               default=64 * units.Ki,
               min=4 * units.Ki,
               help="""
Granularity, in bytes, of zero detection inside allocated extents. Blocks of
this size that hold only zeros are not written to Ceph (they still count in
the checksums). Must divide ``request_size``.
"""),
    cfg.IntOpt('max_virtual_size',
               default=0,
               min=0,
               help="""
Largest virtual size, in bytes, an imported image may have. 0 means Glance's
``image_size_cap``, which stock Glance applies to the converted raw image.
"""),
    cfg.IntOpt('qemu_address_space_limit',
               default=2048,
               min=256,
               help="""
Address space limit, in MiB, for the qemu-nbd process that reads non-raw
staged images. qemu runs under process limits because the staged file is
untrusted input.
"""),
    cfg.IntOpt('ceph_op_timeout',
               default=120,
               min=0,
               help="""
Timeout, in seconds, for Ceph monitor and OSD operations and for connecting,
used for a target store whose ``rados_connect_timeout`` is unset: -1, or 0,
glance_store's default up to 4.6 (2023.1, 2023.2), which it ignores there. A
full or unreachable cluster blocks writes instead of failing them; this bound
turns that into a clean import failure. 0 disables the bound.
"""),
    cfg.Opt('store_write_rate_limit',
            type=types.Dict(value_type=types.Float(min=0)),
            default={},
            help="""
Write rate limits, in MiB/s, per target store, for stores behind a WAN link
(the edge sites of a DCN cloud): ``STORE:MiB_PER_S`` pairs separated by
commas, STORE a name of ``enabled_backends`` (``glance_store`` for Glance
without multi-store), e.g. ``edge1:100,edge2:40``. A store not listed, or
listed with 0, is not limited.
One import reads the image once and writes all its stores in the same pass,
so a limited store paces the whole import: the other stores of the same
import go no faster. The import task's message shows the limits in force.
"""),
    cfg.IntOpt('progress_interval',
               default=10,
               min=1,
               help="""
Seconds between updates of the import task's message (``glance task-show``)
with the bytes read, hashed and written. At the same interval the import
checks that its task is still processing, that it still holds the image's
import lock and that the image was not deleted, and stops otherwise.
"""),
]


# The key of store_write_rate_limit for Glance without multi-store.
SINGLE_STORE_KEY = 'glance_store'


def store_write_rate_limit(conf, store_name):
    """The write rate limit of a store, in MiB/s; 0 for none.

    :param conf: the ``[sparse_rbd_import]`` group
    :param store_name: a name of ``enabled_backends``, or None for Glance
                       without multi-store
    """
    limits = conf.store_write_rate_limit or {}
    return limits.get(store_name or SINGLE_STORE_KEY, 0)


def store_write_rate_limits(conf, store_names):
    """The stores among ``store_names`` that are limited, with their limits.

    :param conf: the ``[sparse_rbd_import]`` group
    :param store_names: names of ``enabled_backends`` (None for Glance
                        without multi-store)
    :returns: ``{store name: MiB/s}``, the unlimited stores left out
    """
    limits = {}
    for name in store_names:
        rate = store_write_rate_limit(conf, name)
        if rate:
            limits[name] = rate
    return limits


def register_opts(conf):
    conf.register_opts(sparse_rbd_import_opts, group=GROUP)


def list_opts():
    """Options for oslo-config-generator."""
    return [(GROUP, sparse_rbd_import_opts)]
