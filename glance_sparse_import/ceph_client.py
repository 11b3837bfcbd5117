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

"""A client of a store's Ceph cluster, and letting go of its handles.

Shared by the RBD source (reading a store) and the RBD target (writing
one), so both set the same client options and close in the same order.
"""

try:
    import rados
except ImportError:  # pragma: no cover - callers check before use
    rados = None

# Bounded by the store's rados_connect_timeout, as glance_store's RBD
# driver bounds its own client.
TIMEOUT_OPTIONS = ('rados_osd_op_timeout', 'rados_mon_op_timeout',
                   'client_mount_timeout')


def new_client(store, timeout):
    """An unconnected ``rados.Rados`` for ``store`` (a ``stores.RbdStore``).

    :param timeout: seconds for connecting and every operation; 0 for none
    """
    client = rados.Rados(conffile=store.conf_file, rados_id=store.user)
    if timeout:
        for option in TIMEOUT_OPTIONS:
            client.conf_set(option, str(timeout))
    return client


def close(image, ioctx, client):
    """Close an RBD image, its I/O context and the client, each if not None.

    The image first and the client last, whatever the others raise.
    """
    try:
        if image is not None:
            image.close()
    finally:
        if ioctx is not None:
            ioctx.close()
        if client is not None:
            client.shutdown()
