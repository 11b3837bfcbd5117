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

"""Glance's taskflow executor builds its import flow with the plugin in it.

This needs no Ceph, so it runs on every interpreter a series supports:
glance_store's RBD driver gets its cluster's fsid from ``ceph_stub``, the
only stand-in; the database, the task and image repositories, stevedore's
plugin loading and ``api_image_import.get_flow`` are Glance's own.
"""

import os

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import ceph
from glance_sparse_import.tests.testbed import series

OURS = '_SparseRbdImport'


@pytest.fixture(scope='module')
def glance(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('flow-building'))
    # Never started: only its configuration is written for glance_store.
    cluster = ceph.CephCluster(os.path.join(work, 'ceph'))
    flow = glance_flow.GlanceFlow(os.path.join(work, 'glance'),
                                  {'ceph': cluster, 'local': None}, 'ceph',
                                  plugins=['sparse_rbd_import'])
    source = os.path.join(work, 'staged.raw')
    with open(source, 'wb') as f:
        f.truncate(1024 ** 2)
    return flow, source


def _store_of(atom_name):
    """Store of ``api_image_import-STORE-ImportToStore-TASK``."""
    return atom_name.split('-')[1]


# The series environments import through real Ceph as well: one case there.
@pytest.mark.parametrize('stores', [
    ['ceph'], series.core(['ceph', 'local']), ['local']])
def test_glance_builds_the_plugin_into_its_flow(glance, stores):
    flow, source = glance
    log_start = len(flow.log())
    result = flow.run_import('raw', file=source, stores=stores,
                             extra_args=['--build-only'])
    log = flow.log()[log_start:]
    # stevedore logs a plugin that fails to load and goes on without it.
    assert "Could not load 'sparse_rbd_import'" not in log
    atoms = result['atoms']
    ours = [name for cls, name in atoms if cls == OURS]
    uploads = [name for cls, name in atoms if cls == '_ImportToStore']
    others = [s for s in stores if s != 'ceph']
    # Glance uploads to the file store; the RBD store is the plugin's.
    assert [_store_of(name) for name in uploads] == others, atoms
    if 'ceph' in stores:
        assert len(ours) == 1, atoms
        assert "sparse_rbd_import takes stores ['ceph']" in log
    else:
        assert ours == [], atoms
    props = result['image']['extra_properties']
    assert props.get('os_glance_importing_to_stores', '') == \
        ','.join(others)
    assert result['image']['status'] == 'importing'
