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

"""Size limits and quotas, through Glance's real import flow and real Ceph.

Stock Glance enforces ``image_size_cap`` and ``user_storage_quota`` while
it uploads the (converted, raw) data to a store: the plugin, which does that
upload, must refuse the same raw sizes, before creating anything in Ceph.
The unified limits (``use_keystone_limits``) are enforced by Glance's own
``get_flow`` before any plugin runs; Keystone's registered limits come from
oslo.limit's fixture.
"""

import json

import pytest

from glance_sparse_import.tests.functional import glance_flow

MiB = 1024 ** 2
PREFIX = 'Sparse RBD import failed: '


@pytest.fixture(scope='module')
def flow(ceph_cluster, tmp_path_factory):
    # The plugin's own virtual size cap is out of the way: the raw size is
    # what is checked here.
    return glance_flow.GlanceFlow(
        str(tmp_path_factory.mktemp('quotas')), {'ceph': ceph_cluster},
        'ceph', plugins=['sparse_rbd_import'],
        extra_conf={'DEFAULT': {'image_size_cap': 48 * MiB,
                                'user_storage_quota': '32MB'},
                    'sparse_rbd_import': {'max_virtual_size': 1024 * MiB}})


@pytest.fixture(scope='module')
def limits_flow(ceph_cluster, tmp_path_factory):
    # user_storage_quota is ignored under unified limits, as in Glance.
    return glance_flow.GlanceFlow(
        str(tmp_path_factory.mktemp('limits')), {'ceph': ceph_cluster},
        'ceph', plugins=['sparse_rbd_import'],
        extra_conf={'DEFAULT': {'use_keystone_limits': True,
                                'user_storage_quota': '1MB'},
                    'oslo_limit': {'endpoint_id': 'glance'}})


def _limits(**overrides):
    limits = {'image_size_total': 1000, 'image_stage_total': 1000,
              'image_count_total': 100, 'image_count_uploading': 100}
    limits.update(overrides)
    return ['--keystone-limits', json.dumps(limits)]


def _assert_refused(result, ceph_cluster, log, failed='ceph'):
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    assert 'Internal Error' not in task['message']
    assert image['status'] == 'queued'
    assert image['locations'] == [] and image['checksum'] is None
    props = image['extra_properties']
    assert props.get('os_glance_failed_import', '') == failed
    assert props.get('os_glance_importing_to_stores', '') == ''
    assert image['id'] not in ceph_cluster.rbd_images()
    assert 'Created RBD image %s' % image['id'] not in log
    return task['message']


def _import(flow, path, **kwargs):
    log_start = len(flow.log())
    result = flow.run_import('qcow2', file=path, stores=['ceph'], **kwargs)
    return result, flow.log()[log_start:]


def test_image_size_cap_on_raw_size(flow, ceph_cluster, image_builder):
    # 8 MiB staged, 64 MiB raw: stock refuses the upload of the raw file.
    path = image_builder.qcow2(64 * MiB, 8 * MiB)
    result, log = _import(flow, path)
    message = _assert_refused(result, ceph_cluster, log)
    assert message == PREFIX + (
        'Image size %d exceeds the image_size_cap of %d bytes'
        % (64 * MiB, 48 * MiB))


def test_user_storage_quota_on_raw_size(flow, ceph_cluster, image_builder):
    path = image_builder.qcow2(40 * MiB, 8 * MiB)
    result, log = _import(flow, path)
    message = _assert_refused(result, ceph_cluster, log)
    assert message == PREFIX + (
        'user_storage_quota exceeded: The size of the data %d will exceed '
        'the limit. %d bytes remaining.' % (40 * MiB, 32 * MiB))


def test_under_the_limits(flow, ceph_cluster, image_builder):
    path = image_builder.qcow2(16 * MiB, 8 * MiB)
    result, _log = _import(flow, path)
    image = result['image']
    try:
        assert result['task']['status'] == 'success', result['task']
        assert image['status'] == 'active'
        assert image['size'] == 16 * MiB
    finally:
        ceph_cluster.purge_image(image['id'])


def test_unified_limit_refused_before_the_plugin(limits_flow, ceph_cluster,
                                                 image_builder):
    path = image_builder.qcow2(64 * MiB, 8 * MiB)
    result, log = _import(limits_flow, path,
                          extra_args=_limits(image_size_total=1))
    # Glance's own refusal: the failed list stays as it was.
    message = _assert_refused(result, ceph_cluster, log, failed='')
    assert 'image_size_total' in message
    assert 'Sparse import' not in message


def test_unified_limits_replace_user_storage_quota(limits_flow, ceph_cluster,
                                                   image_builder):
    path = image_builder.qcow2(16 * MiB, 8 * MiB)
    result, _log = _import(limits_flow, path, extra_args=_limits())
    image = result['image']
    try:
        assert result['task']['status'] == 'success', result['task']
        assert image['status'] == 'active'
    finally:
        ceph_cluster.purge_image(image['id'])
