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

"""Which target stores are RBD, and how glance_store configured them.

The configured store objects are read rather than the option groups: inside
the API worker the option groups of a backend do not always resolve (its
``rbd_store_chunk_size`` reads as None), while the store object carries the
pool, user, ceph.conf and chunk size exactly as glance_store uses them.
"""

import collections

from oslo_config import cfg
from oslo_log import log as logging

from glance_sparse_import import glance_compat as compat

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

RbdStore = collections.namedtuple(
    'RbdStore', 'name pool user conf_file chunk_size connect_timeout')
RbdStore.__doc__ = """One RBD store; ``name`` is None for single-store Glance.
"""


def _from_store(name, store):
    timeout = compat.rados_connect_timeout(store)
    return RbdStore(name=name, pool=str(store.pool), user=str(store.user),
                    conf_file=str(store.conf_file),
                    chunk_size=int(store.chunk_size),
                    connect_timeout=timeout)


def rbd_store(name):
    """Return the ``RbdStore`` for a target store name, or None.

    ``name`` is a backend of ``enabled_backends``, or None for Glance without
    multi-store, whose ``default_store`` is then what counts. An RBD store
    that glance_store cannot configure is None too: Glance then fails it
    the way it fails any store.
    """
    if not is_rbd(name):
        return None
    if name is not None:
        try:
            # glance_store configures RBD stores anew for every call, and
            # connects to the cluster to learn its fsid.
            store = compat.get_rbd_store(name)
        except (KeyError, compat.GlanceStoreException) as e:
            LOG.warning('RBD store %(store)s is not available, leaving it '
                        'to Glance: %(err)s', {'store': name, 'err': e})
            return None
        return _from_store(name, store)
    return _from_store(None, compat.get_rbd_store(None))


def is_rbd(name):
    """Whether the target store ``name`` is RBD, from the configuration.

    Needs neither glance_store nor Ceph, so it answers even where the
    plugin cannot run.
    """
    if CONF.enabled_backends:
        return name is not None and CONF.enabled_backends.get(name) == 'rbd'
    return name is None and CONF.glance_store.default_store == 'rbd'


def op_timeout(store, conf):
    """The store's Ceph timeout; ``conf.ceph_op_timeout`` when it has none.

    ``conf`` is the ``[sparse_rbd_import]`` group. A ``rados_connect_timeout``
    of 0 counts as none: glance_store up to 4.6 defaults it to 0 and
    ignores it, and Ceph reads a timeout of 0 as no timeout.
    """
    if store.connect_timeout <= 0:
        return conf.ceph_op_timeout
    return store.connect_timeout


def location_metadata(store):
    """Location metadata glance_store returns for this store."""
    return {'store': store.name} if store.name else {}
