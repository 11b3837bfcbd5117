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

"""The plugin in the plugin lists deployment tools write, through the API.

TripleO's ``GlanceSparseUploadEnabled`` appends ``image_conversion`` after
the plugins the operator lists; others put it first, or unpack archives
before. With each list a compressed qcow2 import must end as stock
Glance's (``image_conversion`` alone) does: ``active``, task ``success``,
the same checksum, multihash, sizes, disk format and Ceph bytes, no more
data in Ceph than stock leaves; a hostile image must fail with nothing in
Ceph, the image ``queued`` where the plugin refused it, as stock where
``image_conversion`` did. Where ``image_conversion`` makes no safety checks
(Glance 22 as released imports the hostile image), the plugin refuses every
import of a list that runs it first, saying which list to use. One Ceph
cluster and one API per list serve the whole module; every series runs it.
"""

import os

import pytest

from glance_sparse_import import glance_compat
from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

pytestmark = pytest.mark.series_core

MiB = 1024 ** 2
GiB = 1024 ** 3
KEYS = ('checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size',
        'disk_format', 'container_format')
TWICE = 'runs image_conversion before sparse_rbd_import'
LISTS = {
    # TripleO with GlanceSparseUploadEnabled.
    'ours-then-conversion': ['sparse_rbd_import', 'image_conversion'],
    'conversion-then-ours': ['image_conversion', 'sparse_rbd_import'],
    'unpack-ours-conversion': ['image_decompression', 'sparse_rbd_import',
                               'image_conversion'],
    # A metadata plugin between: it never reads the staged data.
    'ours-metadata-conversion': ['sparse_rbd_import', 'inject_image_metadata',
                                 'image_conversion'],
}
# What inject_image_metadata adds, for every caller.
INJECT = {'inject_metadata_properties': {'inject': 'order_test:injected',
                                         'ignore_user_roles': ''}}


@pytest.fixture(scope='module')
def source(image_builder):
    """A compressed qcow2 of 1 GiB virtual size, as cloud images are."""
    return image_builder.qcow2(GiB, 32 * MiB, compressed=True)


def _api(factory, cluster, plugins, mariadb):
    # One worker: the warning is logged once per process. Its threads
    # (the import, the requests polling it) write one database at once:
    # on sqlite that fails now and then with "database is locked" in
    # Glance's own flow (seen in .ci/run), so MariaDB, as in production.
    extra = INJECT if 'inject_image_metadata' in plugins else None
    return factory({'ceph': cluster}, 'ceph', plugins=plugins, workers=1,
                   extra_import_conf=extra,
                   database=mariadb.create_database())


def _export_md5(cluster, image_id, workdir):
    path = os.path.join(workdir, image_id + '.export')
    cluster.rbd('export', '--no-progress', 'images/%s@snap' % image_id, path)
    try:
        return images.file_digests(path, ['md5'])[0]
    finally:
        os.unlink(path)


def _import(glance, path, name):
    image = glance.image_create_via_import(path, 'qcow2', name=name,
                                           check=False)
    if isinstance(image, cli.CLIResult):
        # The CLI may print the image and then report the failed task.
        image = cli.parse_table(image.output)
    task = glance.wait_task(image['id'], timeout=300)
    return glance.get_image(image['id']), task


@pytest.fixture(scope='module')
def hostile(image_builder, tmp_path_factory):
    """A qcow2 with a backing file: Glance must refuse it."""
    base = image_builder.qcow2(64 * MiB, 8 * MiB)
    overlay = str(tmp_path_factory.mktemp('hostile') / 'overlay.qcow2')
    procs.run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'qcow2', '-b',
               base, overlay])
    return overlay


@pytest.fixture(scope='module')
def stock(ceph_cluster, mariadb_server, module_glance_api_factory, source,
          hostile, tmp_path_factory):
    """What stock Glance (image_conversion alone) makes of the images."""
    api = _api(module_glance_api_factory, ceph_cluster, ['image_conversion'],
               mariadb_server)
    image, task = _import(cli.GlanceCLI(api), source, 'stock')
    assert task['status'] == 'success', task
    refused, refused_task = _import(cli.GlanceCLI(api), hostile,
                                    'stock-hostile')
    # Glance 22.1.1's image_conversion converts it, backing file and all.
    assert refused_task['status'] == (
        'failure' if _conversion_checks() else 'success'), refused_task
    workdir = str(tmp_path_factory.mktemp('stock'))
    return {
        'image': image,
        'refused': refused,
        'refused_task_message': refused_task['message'],
        'used': ceph_cluster.rbd_used_bytes(image['id'], snap='snap'),
        'md5': _export_md5(ceph_cluster, image['id'], workdir),
    }


def _conversion_checks():
    checks = glance_compat.conversion_checks_images()
    assert checks is not None, 'this Glance has no image_conversion'
    return checks


def _refused_unchecked(plugins, glance, image, task, ceph_cluster):
    """Whether the plugin refused the list: conversion first, unchecked.

    Then the task says which list to use, and nothing reached Ceph.
    """
    if (_conversion_checks() or plugins.index('image_conversion') >
            plugins.index('sparse_rbd_import')):
        return False
    assert task['status'] == 'failure', glance.explain(image['id'])
    assert task['message'].startswith(
        'sparse_rbd_import cannot run on this Glance deployment; missing: '
        'a safe plugin order'), task['message']
    assert ("list sparse_rbd_import before image_conversion: "
            "image_import_plugins = ['sparse_rbd_import', "
            "'image_conversion']") in task['message']
    assert image['status'] == 'queued'
    assert image['checksum'] is None
    assert image['os_glance_failed_import'] == 'ceph'
    assert image['id'] not in ceph_cluster.rbd_images()
    glance.image_delete(image['id'])
    return True


@pytest.fixture(scope='module', params=sorted(LISTS))
def ordered(request, ceph_cluster, mariadb_server,
            module_glance_api_factory):
    """``(plugin list, API)``, one API per list for the module."""
    plugins = LISTS[request.param]
    return plugins, _api(module_glance_api_factory, ceph_cluster, plugins,
                         mariadb_server)


def test_import_matches_stock(ordered, stock, ceph_cluster, source,
                              scratch_dir):
    plugins, api = ordered
    glance = cli.GlanceCLI(api)
    image, task = _import(glance, source, 'ordered')
    if _refused_unchecked(plugins, glance, image, task, ceph_cluster):
        return

    assert task['status'] == 'success', glance.explain(image['id'])
    assert image['status'] == 'active'
    for key in KEYS:
        assert image[key] == stock['image'][key], key
    assert image['virtual_size'] == images.qemu_img_info(
        source)['virtual-size']
    assert image['stores'] == 'ceph'
    assert image['os_glance_importing_to_stores'] == ''
    assert image['os_glance_failed_import'] == ''
    if 'inject_image_metadata' in plugins:
        assert image['order_test'] == 'injected'
    assert _export_md5(ceph_cluster, image['id'], scratch_dir) == \
        stock['md5'] == image['checksum']
    used = ceph_cluster.rbd_used_bytes(image['id'], snap='snap')
    assert used <= stock['used']
    # The plugin wrote Ceph, not Glance's upload.
    summary = bench.parse_import_summary(api.log_text(), image['id'])
    assert summary and summary['stores'] == ['ceph']
    assert summary['written'] < summary['virtual']
    assert 'Image format mismatch' not in api.log_text()
    assert os.listdir(api.staging_dir) == []
    # Only where the conversion is done twice does the log say so.
    warned = api.log_text().count(TWICE)
    if plugins.index('image_conversion') < plugins.index('sparse_rbd_import'):
        assert warned == 1
        assert ("image_import_plugins = ['sparse_rbd_import', "
                "'image_conversion']") in api.log_text()
    else:
        assert warned == 0
    glance.image_delete(image['id'])


def test_hostile_image_refused(ordered, stock, ceph_cluster, hostile):
    plugins, api = ordered
    glance = cli.GlanceCLI(api)
    shown, task = _import(glance, hostile, 'hostile')
    if _refused_unchecked(plugins, glance, shown, task, ceph_cluster):
        return

    assert task['status'] == 'failure', glance.explain(shown['id'])
    assert shown['checksum'] is None
    assert shown['id'] not in ceph_cluster.rbd_images()
    assert bench.parse_import_summary(api.log_text(), shown['id']) is None
    if plugins.index('sparse_rbd_import') < plugins.index('image_conversion'):
        # Refused by the plugin, which reverts as Glance 33's
        # image_conversion does.
        assert task['message'].startswith('Sparse RBD import failed: ')
        assert shown['status'] == 'queued'
        assert shown['os_glance_failed_import'] == 'ceph'
        assert shown['os_glance_importing_to_stores'] == ''
    else:
        # Refused by image_conversion before the plugin ran: as stock
        # (Glance 26's leaves the image importing; 33's puts it back to
        # queued), or queued where stock left it importing (seen on
        # Glance 28 in .ci/run, 2026-12-06): the state a failed import
        # should leave.
        assert task['message'] == stock['refused_task_message']
        assert shown['status'] in (stock['refused']['status'], 'queued')
        assert 'ceph' not in shown['os_glance_importing_to_stores']
    glance.image_delete(shown['id'])
