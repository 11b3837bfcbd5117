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

"""One import under each server the installed Glance offers.

Up to Glance 32 (2026.1) that is uWSGI and Glance's own eventlet
``glance-api``, which monkey-patches ``threading`` and is what RHOSO, Kolla,
RDO, TripleO and Debian run; Glance 33 has only the WSGI application. Every
series lane runs these (``series_core``); test_eventlet_server.py has the
long checks under the eventlet server.
"""

import os

import pytest

from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import glance_api
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import series

MiB = 1024 ** 2
GiB = 1024 ** 3
# What the plugin logs when Glance first loads it (native.server()).
SERVER_LOGGED = {'uwsgi': 'native threads', 'eventlet': 'eventlet'}


def _layouts():
    for server in glance_api.available_servers():
        yield series.core(server, False, id=server)
        if server == 'eventlet':
            yield series.core(server, True, id='eventlet-conf.d')


@pytest.mark.parametrize('server,config_dir', list(_layouts()))
def test_import(glance_api_factory, ceph_cluster, image_builder, scratch_dir,
                server, config_dir):
    """One compressed qcow2, byte for byte; the server named in the log.

    The eventlet server is started as TripleO and RDO start it (a
    ``--config-file`` per file) and as RHOSO and Kolla do (``--config-dir``
    over a conf.d directory); uWSGI reads only a config directory.
    """
    glance = cli.GlanceCLI(glance_api_factory(
        {'ceph': ceph_cluster}, 'ceph', plugins=['sparse_rbd_import'],
        server=server, config_dir=config_dir, workers=1))
    path = image_builder.qcow2(1 * GiB, 64 * MiB, compressed=True)
    raw = image_builder.ext4_raw(1 * GiB, 64 * MiB)
    image = glance.image_create_via_import(path, 'qcow2', name=server)
    shown = glance.wait_for_status(image['id'], timeout=300)
    digests = images.file_digests(raw)
    assert (shown['checksum'], shown['os_hash_value']) == digests
    assert shown['size'] == shown['virtual_size'] == 1 * GiB
    exported = os.path.join(scratch_dir, 'export.raw')
    ceph_cluster.rbd('export', '--no-progress',
                     'images/%s@snap' % image['id'], exported)
    assert images.file_digests(exported) == digests
    assert glance.wait_task(image['id'])['status'] == 'success'
    glance.api.wait_for_log('Glance runs under %s' % SERVER_LOGGED[server])


@pytest.mark.series_core
def test_servers_of_this_glance():
    """Glance 33 removed the eventlet server; every release before has it."""
    servers = glance_api.available_servers()
    if glance_api.glance_major() <= glance_api.LAST_EVENTLET_GLANCE:
        assert servers == ['uwsgi', 'eventlet']
    else:
        assert servers == ['uwsgi']
