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
sizes (not ``size`` up to Glance 22: glance_compat); locations and hashes
live on the image domain object it wraps. This
module is the one place that reaches it, so a Glance change that moves it
breaks here (and in the functional tests), not in a cloud.
"""

import urllib.parse

from oslo_config import cfg

from glance_sparse_import import glance_compat as compat

CONF = cfg.CONF


def _image(action):
    return compat.image_of(action)


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
    compat.set_image_attribute(action, **attrs)


def set_queued(action):
    """Put the image back to ``queued`` after a failed import.

    Also from ``active``, which the plugin sets when it is the last
    writer: a plugin listed after it may still fail the import.

    :raises AttributeError: this Glance's image cannot be moved back
    """
    if action.image_status == 'active':
        compat.reopen_active(action)
    action.set_image_attribute(status='queued')


def _rbd_spec(url):
    """``(fsid, pool, image)`` of an RBD location URL, or None.

    As glance_store reads it: a one-component URL leaves the fsid and pool
    to the store (None here).
    """
    pieces = url[len('rbd://'):].split('/')
    if len(pieces) == 1:
        return None, None, pieces[0]
    if len(pieces) == 4:
        return tuple(urllib.parse.unquote(p) for p in pieces[:3])
    return None


def rbd_image_in_use(url):
    """Whether a location of any image points at the RBD image of ``url``.

    Glance has no query by location, so this reads its database, as its
    own API workers do; deleted locations do not count.
    """
    fsid, pool, name = _rbd_spec(url)
    key = CONF.metadata_encryption_key
    location = compat.image_location_model()
    with compat.db_reader() as session:
        query = session.query(location.value).filter_by(deleted=False)
        if not key:
            # Encrypted values can only be compared once decrypted.
            query = query.filter(
                location.value.like('rbd://%' + name + '%'))
        values = [row.value for row in query]
    for value in values:
        if key:
            value = compat.urlsafe_decrypt(key, value)
        if not value.startswith('rbd://'):
            continue
        spec = _rbd_spec(value)
        if spec is None:
            # Not a URL glance_store reads; assume the worst.
            if name in value:
                return True
            continue
        if (spec[2] == name and spec[1] in (None, pool) and
                spec[0] in (None, fsid)):
            return True
    return False
