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

"""A castellan key manager keeping certificates in a directory.

It stands in for Barbican, and only for storage: cursive fetches the
certificate through castellan's ``key_manager.API()`` as it does in a
cloud, and verifies the signature with it. Enable it in glance-api.conf
(``BACKEND`` being ``DirectoryKeyManager`` of this module)::

    [key_manager]
    backend = BACKEND
    [testbed_key_manager]
    directory = /path/to/certificates

Each certificate is ``<directory>/<uuid>.der``.
"""

import os
import uuid

from castellan.common import exception
from castellan.common.objects import x_509
from castellan.key_manager import key_manager
from oslo_config import cfg

_OPTS = [cfg.StrOpt('directory', help='Where the certificates are.')]


class DirectoryKeyManager(key_manager.KeyManager):
    """X.509 certificates only, one DER file each."""

    def __init__(self, configuration):
        configuration.register_opts(_OPTS, group='testbed_key_manager')
        self._dir = configuration.testbed_key_manager.directory

    def _path(self, managed_object_id):
        # Never a path outside the directory, whatever the property says.
        return os.path.join(self._dir,
                            '%s.der' % uuid.UUID(managed_object_id))

    def store(self, context, managed_object, expiration=None):
        if not isinstance(managed_object, x_509.X509):
            raise exception.KeyManagerError('only certificates')
        object_id = str(uuid.uuid4())
        with open(self._path(object_id), 'wb') as f:
            f.write(managed_object.get_encoded())
        return object_id

    def get(self, context, managed_object_id, metadata_only=False):
        try:
            with open(self._path(managed_object_id), 'rb') as f:
                return x_509.X509(f.read())
        except (ValueError, FileNotFoundError):
            raise exception.ManagedObjectNotFoundError(
                uuid=managed_object_id)

    def delete(self, context, managed_object_id, force=False):
        try:
            os.unlink(self._path(managed_object_id))
        except (ValueError, FileNotFoundError):
            raise exception.ManagedObjectNotFoundError(
                uuid=managed_object_id)

    def create_key(self, context, algorithm, length, name=None,
                   expiration=None):
        raise NotImplementedError()

    def create_key_pair(self, context, algorithm, length, expiration=None,
                        name=None):
        raise NotImplementedError()

    def list(self, context, object_type=None, metadata_only=False):
        raise NotImplementedError()

    def add_consumer(self, context, managed_object_id, consumer_data):
        raise NotImplementedError()

    def remove_consumer(self, context, managed_object_id, consumer_data):
        raise NotImplementedError()


def store_certificate(directory, der):
    """Store a DER certificate in ``directory``; return its UUID."""
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    conf.register_opts(_OPTS, group='testbed_key_manager')
    conf.set_override('directory', directory, group='testbed_key_manager')
    return DirectoryKeyManager(conf).store(None, x_509.X509(der))
