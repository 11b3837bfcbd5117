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

"""copy-image of the plugin's images, through the real API.

Glance runs no import plugin for copy-image: glance_store reads the image
from its location and writes it to the new stores, and Glance compares the
size, os_hash_value and checksum of what it wrote with those the plugin
recorded. Every kind the plugin imports must copy cleanly, with the same
bytes, to another RBD store (another cluster) and to a file store.
"""

import filecmp
import os

from glance_sparse_import.tests.consumers import common

TARGETS = ('ceph2', 'file1')


def _wait_imported(glance, source, image_id):
    task = glance.wait_task(image_id)
    assert task['status'] == 'success', (source, task)
    return glance.wait_for_status(image_id)


def _import(glance, source):
    return _wait_imported(glance, source,
                          common.api_import(glance.api, source))


def test_copy_every_kind(glance, plugin_api, ceph_cluster2, test_images):
    kinds = [k[0] for k in common.KINDS]
    sources = [test_images(kind) for kind in kinds]
    # Their own images, as a copy adds stores to them. The imports, then
    # the copies, run at once (Glance is on MariaDB).
    ids = [common.api_import(glance.api, source) for source in sources]
    shown = [_wait_imported(glance, source, image_id)
             for source, image_id in zip(sources, ids)]
    imports = [glance.task_ids(image['id']) for image in shown]
    for image in shown:
        common.api_call_import(glance.api, image['id'], 'copy-image',
                               TARGETS)

    for source, image, known in zip(sources, shown, imports):
        task = glance.wait_task(image['id'], known)
        assert task['status'] == 'success', (source, task)
        copied = glance.get_image(image['id'])
        assert copied['status'] == 'active'
        assert sorted(copied['stores'].split(',')) == [
            'ceph', 'ceph2', 'file1']
        assert copied['os_glance_failed_import'] == ''
        for key in ('checksum', 'os_hash_value', 'size', 'disk_format'):
            assert copied[key] == image[key], (source, key)
        assert copied['checksum'] == source.md5
        assert copied['os_hash_value'] == source.sha512
        md5, size, _beyond = common.RBDReader(ceph_cluster2).digest(
            'images', image['id'], source.size, snapshot='snap')
        assert (md5, size) == (source.md5, source.size), source
        assert filecmp.cmp(os.path.join(plugin_api.store_dir('file1'),
                                        image['id']),
                           source.raw, shallow=False), source


def test_copy_checks_the_recorded_hashes(glance, plugin_api, ceph_cluster,
                                         test_images):
    """Ceph serving other bytes than the plugin hashed fails the copy."""
    source = test_images('raw')
    image = _import(glance, source)
    common.corrupt_snapshot(ceph_cluster, image['id'])

    known = glance.task_ids(image['id'])
    common.api_call_import(glance.api, image['id'], 'copy-image', TARGETS)
    task = glance.wait_task(image['id'], known)

    assert task['status'] == 'failure', glance.explain(image['id'])
    assert task['type'] == 'api_image_import'
    assert task['input']['import_req']['method']['name'] == 'copy-image'
    assert 'os_hash_value of uploaded data is different' in task['message']
    after = glance.get_image(image['id'])
    assert after['status'] == 'active'
    assert after['stores'] == 'ceph'
    assert after['checksum'] == source.md5
