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

"""The clients: ``openstack image create --import`` (python-openstackclient
on openstacksdk) imports through the plugin like the ``glance`` CLI, and
``glance image-download`` checks what Ceph serves.
"""

import filecmp
import json
import os

from glance_sparse_import.tests.consumers import common
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import procs

SAME = ('checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size',
        'disk_format', 'container_format', 'stores')


def _openstack(api, *args):
    """``openstack ARGS... -f json`` against the API, without Keystone."""
    # The glance CLI's token and URL variables are not for this client.
    env = {k: v for k, v in api.client_env().items()
           if not k.startswith('OS_')}
    result = cli.run_on_pty(
        [procs.bin_path('openstack'), '--os-auth-type', 'none',
         '--os-endpoint', api.url] + list(args) + ['-f', 'json'], env=env,
        timeout=300)
    assert result.returncode == 0, result.output
    return json.loads(result.stdout)


def test_openstack_client_import(plugin_api, glance, imported, test_images,
                                 ceph_cluster):
    kind = 'qcow2-compressed'
    source = test_images(kind)
    by_glance = imported(kind)

    created = _openstack(plugin_api, 'image', 'create', '--import',
                         '--disk-format', 'qcow2', '--container-format',
                         'bare', '--file', source.path, 'consumer-osc')
    task = glance.wait_task(created['id'])
    assert task['status'] == 'success', task
    assert task['type'] == 'api_image_import'
    by_osc = glance.wait_for_status(created['id'])
    shown = _openstack(plugin_api, 'image', 'show', created['id'])

    for key in SAME:
        assert by_osc[key] == by_glance[key], key
    assert by_osc['checksum'] == source.md5
    assert by_osc['os_hash_value'] == source.sha512
    assert by_osc['disk_format'] == 'raw'
    assert shown['checksum'] == source.md5
    assert shown['disk_format'] == 'raw'
    for image in (by_osc, by_glance):
        assert image['direct_url'] == 'rbd://%s/images/%s/snap' % (
            ceph_cluster.fsid, image['id'])


def test_glance_download_is_verified(glance, test_images, ceph_cluster,
                                     scratch_dir):
    source = test_images('qcow2')
    # Its own image: the test damages it.
    image = common.import_image(glance, source)
    out = os.path.join(scratch_dir, 'downloaded')

    glance.run('image-download', '--file', out, image['id'])
    assert filecmp.cmp(out, source.raw, shallow=False)

    # glanceclient hashes what it receives and compares with the image's
    # os_hash_value: a damaged snapshot fails the download.
    common.corrupt_snapshot(ceph_cluster, image['id'])
    result = glance.run('image-download', '--file', out + '.bad',
                        image['id'], check=False)
    assert result.returncode != 0
    assert 'Corrupt image download' in result.output
    assert image['os_hash_value'] in result.output
