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

"""The few calls of Glance's images API v2 that ``add-site`` makes.

Connection settings are read as the ``openstack`` client reads them
(openstacksdk's loader: ``--os-cloud`` and clouds.yaml, the ``OS_*``
variables, ``--os-auth-type none --os-endpoint URL``); requests go through
the keystoneauth session it builds.
"""

import json
import sys
import urllib.parse

from glance_sparse_import import errors

JSON_PATCH = 'application/openstack-images-v2.1-json-patch'


class ImageAPIError(errors.SparseImportError):
    """A call to the images API failed; ``status`` is the HTTP status."""

    def __init__(self, message, status=None):
        super(ImageAPIError, self).__init__(message)
        self.status = status


class ImageNotFound(ImageAPIError):
    """The image does not exist (any more)."""


def register_arguments(parser, argv):
    """Add the ``openstack`` client's connection options to ``parser``.

    ``argv`` is the command line, which openstacksdk peeks into to learn
    which authentication plugin's options to offer.
    """
    try:
        import openstack.config
    except ImportError:
        # Then only add-site fails, saying why.
        parser.set_defaults(os_config_loader=None)
        return
    loader = openstack.config.OpenStackConfig()
    loader.register_argparse_arguments(parser, list(argv),
                                       service_keys=['image'])
    parser.set_defaults(os_config_loader=loader)


def from_arguments(args):
    """An ``ImageAPI`` for the parsed options of :func:`register_arguments`.

    :raises ImageAPIError: the settings name no usable image endpoint
    """
    if args.os_config_loader is None:
        raise ImageAPIError('openstacksdk is not installed for %s: add-site '
                            'needs it to reach Glance (pip install '
                            '"glance-sparse-import[add-site]", or the '
                            'distribution\'s python3-openstacksdk)'
                            % sys.executable)
    import openstack.exceptions

    try:
        region = args.os_config_loader.get_one(argparse=args)
        session = region.get_session()
        endpoint = region.get_session_endpoint('image')
    except (openstack.exceptions.SDKException, ValueError) as e:
        raise ImageAPIError('cannot connect to Glance: %s' % e)
    except Exception as e:
        # keystoneauth's errors (no catalog, bad credentials) have no
        # common base outside keystoneauth1.exceptions.
        raise ImageAPIError('cannot connect to Glance: %s: %s'
                            % (type(e).__name__, e))
    if not endpoint:
        raise ImageAPIError('no image endpoint in the catalog for these '
                            'settings')
    return ImageAPI(session, endpoint)


class ImageAPI(object):
    """Images API v2 at ``endpoint`` through a keystoneauth ``session``."""

    def __init__(self, session, endpoint):
        self._session = session
        endpoint = endpoint.rstrip('/')
        if endpoint.endswith('/v2'):
            endpoint = endpoint[:-3]
        self.endpoint = endpoint

    def _call(self, method, path, body=None, content_type=None):
        headers = {'Accept': 'application/json'}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers['Content-Type'] = content_type or 'application/json'
        try:
            resp = self._session.request(
                self.endpoint + path, method, headers=headers, data=data,
                raise_exc=False)
        except Exception as e:
            raise ImageAPIError('%s %s failed: %s: %s'
                                % (method, path, type(e).__name__, e))
        if resp.status_code == 404:
            raise ImageNotFound('%s %s: not found (404)' % (method, path),
                                404)
        if resp.status_code >= 400:
            raise ImageAPIError('%s %s: HTTP %d: %s' % (
                method, path, resp.status_code,
                ' '.join(resp.text.split())[:300]), resp.status_code)
        return resp.json() if resp.content else None

    def get_image(self, image_id):
        """The image as ``GET /v2/images/{id}`` shows it.

        :raises ImageNotFound: no such image
        """
        return self._call('GET', '/v2/images/%s'
                          % urllib.parse.quote(image_id, ''))

    def list_images(self, **filters):
        """Yield every image matching ``filters``, following the pages."""
        path = '/v2/images?' + urllib.parse.urlencode(
            dict(filters, limit=100))
        while path:
            page = self._call('GET', path)
            for image in page.get('images', ()):
                yield image
            path = page.get('next')

    def add_location(self, image_id, url, metadata):
        """Add a location to an image: ``PATCH`` ``add /locations/-``.

        Glance accepts it on an active image only where
        ``show_multiple_locations`` is true.
        :returns: the image as the API answers
        """
        return self._call(
            'PATCH', '/v2/images/%s' % urllib.parse.quote(image_id, ''),
            [{'op': 'add', 'path': '/locations/-',
              'value': {'url': url, 'metadata': metadata}}],
            content_type=JSON_PATCH)
