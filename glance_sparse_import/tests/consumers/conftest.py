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

"""Fixtures of the consumer tests: one Glance API for the whole session.

Starting a Glance API costs seconds; the consumers only read what the
plugin wrote, so they share one, with the plugin, two RBD stores on two
clusters (``ceph``, the default, and ``ceph2``) and a file store
(``file1``). Tests that change an image (copy-image, a damaged snapshot)
import their own.
"""

import os

import pytest

from glance_sparse_import.tests.consumers import common
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import glance_api


@pytest.fixture(scope='session')
def test_images(image_builder):
    """``test_images(kind)``: the :class:`~.common.TestImage` of a kind."""
    made = {}
    with fixtures.temp_dir('consumer-images') as workdir:

        def get(kind):
            if kind not in made:
                made[kind] = common.build(kind, image_builder, workdir)
            return made[kind]

        yield get


@pytest.fixture(scope='session')
def plugin_api(ceph_cluster, ceph_cluster2, mariadb_server):
    """Glance with sparse_rbd_import, stores ceph, ceph2 and file1.

    On MariaDB: on sqlite, a task's status update that meets another
    write (here the task list the tests poll, which soft-deletes expired
    tasks) fails at once with "database is locked" and loses the import
    or copy (see testbed/mariadb.py).
    """
    with fixtures.temp_dir('consumer-glance') as workdir:
        api = glance_api.GlanceAPI(
            os.path.join(workdir, 'api'),
            {'ceph': ceph_cluster, 'ceph2': ceph_cluster2, 'file1': None},
            'ceph', database=mariadb_server.create_database())
        with api:
            try:
                yield api
            finally:
                _delete_images(api)


def _delete_images(api):
    # Through the API, so Glance removes the data from every store.
    status, body = api.request('GET', '/v2/images?limit=1000')
    assert status == 200, body
    for image in body['images']:
        api.request('DELETE', '/v2/images/%s' % image['id'])


@pytest.fixture(scope='session')
def glance(plugin_api):
    return cli.GlanceCLI(plugin_api)


@pytest.fixture(scope='session')
def imported(glance, test_images):
    """``imported(kind)``: the image of a kind, imported to ``ceph``.

    Imported once for the session with the glance CLI and returned as the
    API shows it; tests must not change it.
    """
    made = {}

    def get(kind):
        if kind not in made:
            made[kind] = common.import_image(glance, test_images(kind))
        return made[kind]

    return get
