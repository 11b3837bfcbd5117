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

"""Image signature verification, as Glance's location proxy does it.

When an image carries all four ``img_signature*`` properties, stock Glance
builds a cursive verifier (the certificate comes from the key manager,
through castellan, with the request's context) and verifies it over the
data it uploads. The plugin verifies it over the staged data, the bytes
the owner uploaded and signed, before anything reads them as an image.
"""

from cryptography import exceptions as crypto_exception
from cursive import exception as cursive_exception
from cursive import signature_utils
from oslo_log import log as logging
from oslo_utils import units

from glance_sparse_import import errors
from glance_sparse_import import hashing
from glance_sparse_import import native
from glance_sparse_import.sources import raw

LOG = logging.getLogger(__name__)

_CHUNK = 4 * units.Mi


def is_signed(extra_properties):
    """Whether Glance would verify a signature for these properties."""
    return signature_utils.should_create_verifier(extra_properties)


def verify(context, extra_properties, path, image_id):
    """Verify the image signature over the file at ``path``.

    Does nothing when the image is not signed.

    :raises: errors.SignatureError
    """
    if not is_signed(extra_properties):
        return False
    try:
        verifier = signature_utils.get_verifier(
            context=context,
            img_signature_certificate_uuid=extra_properties[
                signature_utils.CERT_UUID],
            img_signature_hash_method=extra_properties[
                signature_utils.HASH_METHOD],
            img_signature=extra_properties[signature_utils.SIGNATURE],
            img_signature_key_type=extra_properties[
                signature_utils.KEY_TYPE])
    except cursive_exception.SignatureVerificationError as e:
        LOG.error('Image %(image)s: cannot verify its signature: %(err)s',
                  {'image': image_id, 'err': e})
        raise errors.SignatureError('Cannot verify the signature: %s' % e)
    # Hashing a whole staged image would hold up the eventlet hub.
    native.call(_feed, verifier, path)
    try:
        verifier.verify()
    except crypto_exception.InvalidSignature:
        LOG.error('Image %s: signature verification failed', image_id)
        raise errors.SignatureError('Signature verification failed')
    LOG.info('Successfully verified signature for image %s', image_id)
    return True


def _feed(verifier, path):
    for piece in _stream(path):
        verifier.update(piece)


def _stream(path):
    """Every byte of the file; holes come from a zero buffer, unread."""
    with raw.RawSource(path, _CHUNK) as source:
        for chunk in source.chunks():
            if chunk.data is None:
                yield from hashing.zero_pieces(chunk.length)
            else:
                yield chunk.data
