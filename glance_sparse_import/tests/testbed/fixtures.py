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

"""pytest fixtures for the test bed.

Every directory is a fresh temporary one, removed at teardown unless the
environment sets ``TESTBED_KEEP=1`` (for reading logs after a failure).
"""

import contextlib
import os
import shutil
import tempfile

import pytest

from glance_sparse_import.tests.testbed import ceph
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import glance_api
from glance_sparse_import.tests.testbed import http_server
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import mariadb


@contextlib.contextmanager
def temp_dir(prefix):
    """A fresh directory, removed on exit unless TESTBED_KEEP=1."""
    path = tempfile.mkdtemp(prefix='testbed-%s-' % prefix)
    try:
        yield path
    finally:
        if os.environ.get('TESTBED_KEEP') == '1':
            print('testbed: kept %s' % path)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(name, **kwargs):
    with temp_dir(name) as workdir:
        with ceph.CephCluster(workdir, name=name, **kwargs) as cluster:
            yield cluster


@pytest.fixture(scope='session')
def ceph_cluster():
    """A Ceph cluster shared by the session, with an ``images`` pool.

    Tests must delete what they write (the glance_api_factory teardown does
    it for images of the APIs it made): memstore holds data in RAM.
    """
    with running_cluster('ceph') as cluster:
        yield cluster


@pytest.fixture(scope='session')
def ceph_cluster2():
    """A second, independent cluster, for multi-store tests."""
    with running_cluster('ceph2') as cluster:
        yield cluster


@pytest.fixture(scope='session')
def ceph_cluster3():
    """A third independent cluster, for DCN tests (three edge sites)."""
    with running_cluster('ceph3') as cluster:
        yield cluster


@pytest.fixture(scope='session')
def mariadb_server():
    """A :class:`~.mariadb.MariaDB` shared by the session.

    ``mariadb_server.create_database()`` gives an API its own database.
    """
    with temp_dir('mariadb') as workdir:
        with mariadb.MariaDB(workdir) as server:
            yield server


@pytest.fixture
def scratch_dir():
    """A fresh directory for one test, removed afterwards."""
    with temp_dir('scratch') as path:
        yield path


@pytest.fixture(scope='session')
def image_builder():
    """An :class:`~.images.ImageBuilder` shared by the session."""
    with temp_dir('images') as workdir:
        yield images.ImageBuilder(workdir)


@contextlib.contextmanager
def api_factory():
    """Make Glance APIs: ``factory(stores, default_store=None, **kwargs)``.

    Arguments are those of :class:`~.glance_api.GlanceAPI`, less
    ``workdir``. Each API is started; on exit it is stopped and the RBD
    images of its Glance images are removed from the clusters.
    """
    made = []
    with temp_dir('glance') as workdir:

        def factory(stores, default_store=None, **kwargs):
            api = glance_api.GlanceAPI(
                os.path.join(workdir, 'api%d' % len(made)), stores,
                default_store, **kwargs)
            made.append(api)
            api.start()
            return api

        try:
            yield factory
        finally:
            errors = []
            for api in made:
                try:
                    _teardown_api(api)
                except Exception as e:
                    api.stop()
                    errors.append(e)
            if errors:
                raise errors[0]


@pytest.fixture
def glance_api_factory():
    """An :func:`api_factory` for one test."""
    with api_factory() as factory:
        yield factory


@pytest.fixture(scope='module')
def module_glance_api_factory():
    """An :func:`api_factory` whose APIs serve every test of a module."""
    with api_factory() as factory:
        yield factory


def _teardown_api(api):
    ids = set()
    if api.running:
        for query in ('', '&os_hidden=true'):
            try:
                status, body = api.request(
                    'GET', '/v2/images?limit=1000' + query)
            except OSError:
                break
            if status == 200:
                ids |= {i['id'] for i in body['images']}
    api.stop()
    clusters = {id(c): c for c in (api.stores[n] for n in api.rbd_stores())}
    for cluster in clusters.values():
        for name in set(cluster.rbd_images()) & ids:
            cluster.purge_image(name)


@pytest.fixture
def stock_glance(glance_api_factory, ceph_cluster):
    """Stock Glance with one thin RBD store ``ceph``.

    Only ``image_conversion`` (to raw) is enabled, not sparse_rbd_import.
    """
    return glance_api_factory({'ceph': ceph_cluster}, 'ceph',
                              plugins=['image_conversion'])


@pytest.fixture
def stock_cli(stock_glance):
    """A :class:`~.cli.GlanceCLI` bound to ``stock_glance``."""
    return cli.GlanceCLI(stock_glance)


@pytest.fixture
def file_server(image_builder):
    """A :class:`~.http_server.FileServer` over the image builder's files."""
    with http_server.FileServer(image_builder.workdir) as server:
        yield server


__all__ = ['ceph_cluster', 'ceph_cluster2', 'ceph_cluster3',
           'mariadb_server', 'scratch_dir',
           'image_builder', 'glance_api_factory',
           'module_glance_api_factory', 'stock_glance', 'stock_cli',
           'file_server', 'temp_dir', 'running_cluster']
