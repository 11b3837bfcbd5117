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

"""The images API calls of add-site, over a recording fake session."""

import argparse
import json
import os

import pytest

from glance_sparse_import import image_api


class Response(object):

    def __init__(self, status, body=None):
        self.status_code = status
        self.text = '' if body is None else json.dumps(body)
        self.content = self.text.encode()

    def json(self):
        return json.loads(self.text)


class Session(object):

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls = []

    def request(self, url, method, headers, data, raise_exc):
        assert raise_exc is False
        self.calls.append((method, url, headers, data))
        return self.responses.pop(0)


def test_get_and_endpoint_forms():
    for endpoint in ('http://glance:9292', 'http://glance:9292/',
                     'http://glance:9292/v2', 'http://glance:9292/v2/'):
        session = Session(Response(200, {'id': 'a b'}))
        api = image_api.ImageAPI(session, endpoint)
        assert api.get_image('a b') == {'id': 'a b'}
        assert session.calls[0][:2] == (
            'GET', 'http://glance:9292/v2/images/a%20b')


def test_add_location_is_a_json_patch():
    session = Session(Response(200, {'id': 'x'}))
    image_api.ImageAPI(session, 'http://g').add_location(
        'x', 'rbd://f/images/x/snap', {'store': 'edge2'})
    method, url, headers, data = session.calls[0]
    assert (method, url) == ('PATCH', 'http://g/v2/images/x')
    assert headers['Content-Type'] == \
        'application/openstack-images-v2.1-json-patch'
    assert json.loads(data) == [
        {'op': 'add', 'path': '/locations/-',
         'value': {'url': 'rbd://f/images/x/snap',
                   'metadata': {'store': 'edge2'}}}]


def test_errors():
    api = image_api.ImageAPI(Session(Response(404), Response(403, {
        'message': 'It is not allowed to add locations if locations are '
                   'invisible.'})), 'http://g')
    with pytest.raises(image_api.ImageNotFound) as e:
        api.get_image('x')
    assert e.value.status == 404
    with pytest.raises(image_api.ImageAPIError) as e:
        api.add_location('x', 'rbd://f/p/x/snap', {'store': 's'})
    assert e.value.status == 403
    assert 'HTTP 403' in str(e.value)
    assert 'locations are invisible' in str(e.value)


def test_list_images_follows_pages():
    session = Session(
        Response(200, {'images': [{'id': 'a'}],
                       'next': '/v2/images?marker=a&status=active'}),
        Response(200, {'images': [{'id': 'b'}]}))
    api = image_api.ImageAPI(session, 'http://g')
    assert [i['id'] for i in api.list_images(status='active')] == ['a', 'b']
    assert session.calls[0][1] == \
        'http://g/v2/images?status=active&limit=100'
    assert session.calls[1][1] == \
        'http://g/v2/images?marker=a&status=active'


def test_connection_options_as_the_openstack_client(monkeypatch):
    for name in list(os.environ):
        if name.startswith('OS_'):
            monkeypatch.delenv(name)
    argv = ['--os-auth-type', 'none', '--os-endpoint', 'http://g:9292']
    parser = argparse.ArgumentParser()
    image_api.register_arguments(parser, argv)
    api = image_api.from_arguments(parser.parse_args(argv))
    assert api.endpoint == 'http://g:9292'
