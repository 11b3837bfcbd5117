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

"""Record an upload on the Glance image, as ``ImageProxy.set_data`` does.

``_ImportActions.set_image_attribute`` only allows status, formats and
sizes; locations and hashes live on the image domain object it wraps. This
module is the one place that reaches it, so a Glance change that moves it
breaks here (and in the functional tests), not in a cloud.
"""

from oslo_config import cfg

CONF = cfg.CONF


def _image(action):
    return action._image


def hashing_algorithm(action):
    """The multihash algorithm stock Glance would use for this image."""
    return _image(action).os_hash_algo or CONF.hashing_algorithm


def record_locations(action, locations, checksum, hash_algo, hash_value):
    """Add ``locations`` [(url, metadata)] and the checksums of their data.

    Appending goes through Glance's location proxy, which checks the URL
    against its store.
    """
    image = _image(action)
    for url, metadata in locations:
        image.locations.append({'url': url, 'metadata': metadata,
                                'status': 'active'})
    image.checksum = checksum
    image.os_hash_algo = hash_algo
    image.os_hash_value = hash_value


def record_data(action, size, virtual_size, converted):
    """Set the attributes of the raw data, as image_conversion does.

    ``converted`` makes the image disk_format raw and container_format
    bare. Glance's own uploads to the other stores compare the size with
    the staged file, so this is needed even when no RBD store succeeded.
    """
    attrs = {'size': size}
    if virtual_size:
        # As set_data: an ISO without a volume size records none.
        attrs['virtual_size'] = virtual_size
    if converted:
        attrs.update(disk_format='raw', container_format='bare')
    action.set_image_attribute(**attrs)
