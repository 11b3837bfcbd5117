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

"""Secrets and the staging area, through Glance's real flow and real Ceph.

The stores use a ceph.conf naming a keyring with a real cephx key (the test
cluster does not require cephx, so librados loads the key without needing
it), and the request carries a token. Neither may reach the Glance log
(debug on) or a task message, whether the import succeeds or fails, nor
may the host paths. A staged file that is a symbolic link is refused, and
neither it nor its target is touched.
"""

import hashlib
import os
import re
import uuid

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
PREFIX = 'Sparse RBD import failed: '


@pytest.fixture(scope='module')
def secrets(ceph_cluster, tmp_path_factory):
    """(ceph.conf path with a keyring, the key, a token)."""
    work = str(tmp_path_factory.mktemp('secrets'))
    key = procs.run(['ceph-authtool', '--gen-print-key']).strip()
    keyring = os.path.join(work, 'ceph.client.admin.keyring')
    with open(keyring, 'w') as f:
        f.write('[client.admin]\n\tkey = %s\n' % key)
    with open(ceph_cluster.conf_path) as f:
        conf = re.sub(r'(?m)^keyring = .*$', 'keyring = %s' % keyring,
                      f.read())
    conf_path = os.path.join(work, 'ceph.conf')
    with open(conf_path, 'w') as f:
        f.write(conf)
    return conf_path, key, 'gAAAAA' + uuid.uuid4().hex * 4


@pytest.fixture(scope='module')
def flow(ceph_cluster, secrets, tmp_path_factory):
    conf_path = secrets[0]
    return glance_flow.GlanceFlow(
        str(tmp_path_factory.mktemp('isolation')),
        {'ceph': ceph_cluster, 'broken': ceph_cluster}, 'ceph',
        plugins=['sparse_rbd_import'],
        extra_conf={'ceph': {'rbd_store_ceph_conf': conf_path},
                    'broken': {'rbd_store_ceph_conf': conf_path,
                               'rbd_store_pool': 'no-such-pool'}})


def _backing_file(builder, work):
    path = os.path.join(work, 'overlay.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b',
               builder.qcow2(64 * MiB, 8 * MiB), path])
    return path


@pytest.mark.parametrize('case', ['active', 'hostile', 'ceph-error'])
def test_no_secret_in_log_or_task(flow, ceph_cluster, image_builder,
                                  scratch_dir, secrets, case):
    conf_path, key, token = secrets
    store = 'broken' if case == 'ceph-error' else 'ceph'
    path = (_backing_file(image_builder, scratch_dir) if case == 'hostile'
            else image_builder.qcow2(64 * MiB, 8 * MiB))
    log_start = len(flow.log())
    result = flow.run_import('qcow2', file=path, stores=[store],
                             extra_args=['--auth-token', token])
    image, task = result['image'], result['task']
    try:
        if case == 'active':
            assert task['status'] == 'success', task
            assert image['status'] == 'active'
        else:
            assert task['status'] == 'failure', task
            assert task['message'].startswith(PREFIX), task['message']
            assert image['status'] == 'queued'
        log = flow.log()[log_start:]
        # The store was used: its configuration was read.
        assert image['id'] in log
        key_body = key.rstrip('=')
        for text in (log, result['stderr'], task['message'] or ''):
            assert key_body not in text
            assert token not in text
        for text in (task['message'] or '',):
            assert conf_path not in text
            assert scratch_dir not in text
            assert flow.staging_dir not in text
    finally:
        if case == 'active':
            ceph_cluster.purge_image(image['id'])


def _digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_symlink_in_staging_refused(flow, ceph_cluster, image_builder,
                                    scratch_dir):
    target = os.path.join(scratch_dir, 'elsewhere.raw')
    with open(image_builder.ext4_raw(64 * MiB, 8 * MiB), 'rb') as src, \
            open(target, 'wb') as dst:
        dst.write(src.read())
    before = _digest(target)
    image_id = str(uuid.uuid4())
    log_start = len(flow.log())
    result = flow.run_import('raw', file=target, stores=['ceph'],
                             image_id=image_id,
                             extra_args=['--stage-symlink'])
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    assert task['message'] == (
        PREFIX + 'The staged image is not a regular file')
    assert image['status'] == 'queued'
    assert image['locations'] == [] and image['checksum'] is None
    props = image['extra_properties']
    assert props['os_glance_failed_import'] == 'ceph'
    assert props.get('os_glance_importing_to_stores', '') == ''
    assert image_id not in ceph_cluster.rbd_images()
    log = flow.log()[log_start:]
    assert 'Created RBD image %s' % image_id not in log
    # Neither read through (nothing written) nor deleted.
    assert _digest(target) == before
    link = os.path.join(flow.staging_dir, image_id)
    assert os.path.islink(link) and os.readlink(link) == target
    os.unlink(link)
