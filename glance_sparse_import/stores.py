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

import glance_store
from glance_store import backend as single_backend
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

RbdStore = collections.namedtuple(
    'RbdStore', 'name pool user conf_file chunk_size connect_timeout')
RbdStore.__doc__ = """One RBD store; ``name`` is None for single-store Glance.
"""


def _from_store(name, store):
    timeout = int(store.store_conf.rados_connect_timeout)
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
    if CONF.enabled_backends:
        if name is None or CONF.enabled_backends.get(name) != 'rbd':
            return None
        try:
            # glance_store configures RBD stores anew for every call, and
            # connects to the cluster to learn its fsid.
            store = glance_store.get_store_from_store_identifier(name)
        except (KeyError, glance_store.exceptions.GlanceStoreException) as e:
            LOG.warning('RBD store %(store)s is not available, leaving it '
                        'to Glance: %(err)s', {'store': name, 'err': e})
            return None
        return _from_store(name, store)
    if name is not None or CONF.glance_store.default_store != 'rbd':
        return None
    return _from_store(None, single_backend.get_store_from_scheme('rbd'))


def op_timeout(store, conf):
    """The store's Ceph timeout; ``conf.ceph_op_timeout`` when it has none.

    ``conf`` is the ``[sparse_rbd_import]`` group.
    """
    if store.connect_timeout < 0:
        return conf.ceph_op_timeout
    return store.connect_timeout


def location_metadata(store):
    """Location metadata glance_store returns for this store."""
    return {'store': store.name} if store.name else {}
