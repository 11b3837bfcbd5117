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

"""The deployment facts ``check`` reports, and the tools' plugin lists."""

import pytest

from glance_sparse_import import deployment
from glance_sparse_import.tests import deploy_layouts


def test_every_requirement_has_both_packages():
    names = [r.name for r in deployment.REQUIREMENTS]
    assert names == ['qemu-img', 'qemu-nbd', 'nbd', 'rados', 'rbd']
    for req in deployment.REQUIREMENTS:
        assert req.debian and req.rhel and req.kind in ('program', 'module')
    # RHEL 9 ships qemu-nbd in qemu-img.
    assert deployment.REQUIREMENTS[1].rhel == 'qemu-img'


def test_find_missing_programs(tmp_path):
    missing = deployment.find_missing(path=str(tmp_path))
    assert {'qemu-img', 'qemu-nbd'} <= {m.requirement.name for m in missing}


def test_install_hint():
    qemu_nbd, nbd = deployment.REQUIREMENTS[1], deployment.REQUIREMENTS[2]
    assert deployment.install_hint(qemu_nbd) == \
        'install qemu-utils (Debian, Ubuntu) or qemu-img (RHEL 9)'
    assert deployment.install_hint(nbd, '/usr/bin/python3') == (
        'install python3-libnbd (Debian, Ubuntu, RHEL 9), built for the '
        'Python Glance runs (/usr/bin/python3)')


def test_supported_range_matches_the_series():
    assert (deployment.OLDEST, deployment.NEWEST) == (22, 33)
    assert deployment.SERIES[22] == 'wallaby'
    assert deployment.SERIES[26] == '2023.1'
    assert deployment.supported_range() == 'Glance 22 and 25 to 33'
    assert deployment.LAST_EVENTLET_SERVER == 32


@pytest.mark.parametrize('plugins,keys', [
    (['sparse_rbd_import'], []),
    (['inject_image_metadata', 'sparse_rbd_import'], []),
    (['image_conversion', 'sparse_rbd_import'], ['conversion_before']),
    (['sparse_rbd_import', 'image_conversion'], ['conversion_after']),
    (['image_decompression', 'sparse_rbd_import', 'image_conversion'],
     ['conversion_after']),
    (['image_conversion'], ['absent']),
])
def test_order_notes(plugins, keys):
    notes = deployment.order_notes(plugins)
    assert [n.key for n in notes] == keys
    for note in notes:
        if note.key == 'conversion_after':
            assert note.problem is not deployment.CONVERSION_AFTER_HANDLED
        else:
            assert note.problem is (note.key == 'absent')


@pytest.mark.parametrize('value,start', [
    (30, '30 s'), (0, '0: no timeout'), (-1, '-1: unset')])
def test_describe_timeout(value, start):
    text = deployment.describe_timeout(value, 120)
    assert text.startswith(start)
    assert ('ceph_op_timeout, 120 s' in text) is (value <= 0)


@pytest.mark.parametrize('plugins,sparse,nova_rbd,want', [
    (['sparse_rbd_import'], False, False, ['sparse_rbd_import']),
    (['sparse_rbd_import'], True, False,
     ['sparse_rbd_import', 'image_conversion']),
    (['image_conversion', 'sparse_rbd_import'], True, False,
     ['image_conversion', 'sparse_rbd_import']),
    (['no_op'], False, True, ['no_op', 'image_conversion']),
    (['sparse_rbd_import'], False, True, ['sparse_rbd_import']),
])
def test_tripleo_plugin_list(plugins, sparse, nova_rbd, want):
    # tripleo-heat-templates' force_image_conversion_plugin condition.
    assert deploy_layouts.tripleo_plugins(plugins, sparse, nova_rbd) == want


def test_servers_of_the_installed_glance():
    servers = deployment.servers()
    release = deployment.glance_release()
    eventlet = any(s.startswith('glance-api,') for s in servers)
    # Glance 33 removed its eventlet server (its glance-api only says so).
    assert eventlet is (release.major <= deployment.LAST_EVENTLET_SERVER)
    if release.major >= 30:
        assert any('glance.wsgi.api:application' in s for s in servers)
