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

"""Eight imports at once through the real API: all active, all correct.

The Glance workers' memory must stay bounded: each import holds at most
its configured requests and writes in flight, whatever the image size.

Glance runs on MariaDB here, as in production: on the sqlite database of
the other tests, stock Glance and the plugin alike lose one or two of the
eight imports to "database is locked" (see testbed/mariadb.py).
"""

import os
import threading

import pytest

from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import fixtures
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
GiB = 1024 ** 3
IMPORTS = 8
# What the Glance workers together may grow by with IMPORTS imports in
# flight. The images hold more data (1216 MiB), so an import that kept its
# image in memory would fail.
WORKER_GROWTH_LIMIT = 1024 * MiB


def _data_bytes(i):
    return (96 + 16 * i) * MiB


def _raw_md5(path, workdir):
    raw = os.path.join(workdir, 'expected.raw')
    procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path, raw],
              timeout=300)
    md5 = images.file_digests(raw, ['md5'])[0]
    os.unlink(raw)
    return md5


@pytest.fixture(scope='module')
def load_images(image_builder):
    """``{path: md5 of its raw data}`` of IMPORTS different qcow2 images."""
    # Different data sizes give different filesystems, so every image has
    # its own checksum; every other image is compressed.
    paths = [image_builder.qcow2(GiB, _data_bytes(i), compressed=bool(i % 2))
             for i in range(IMPORTS)]
    with fixtures.temp_dir('load') as workdir:
        expected = {path: _raw_md5(path, workdir) for path in paths}
    assert len(set(expected.values())) == IMPORTS
    return expected


def _import_concurrently(api, paths, timeout=300):
    """Import every path at once through the CLI; sample the workers.

    Returns ``({path: image}, [exception], ProcessSampler)``.
    """
    glance = cli.GlanceCLI(api)
    results, failures = {}, []

    def run(path):
        try:
            image = glance.image_create_via_import(path, 'qcow2',
                                                   name=os.path.basename(path))
            results[path] = glance.wait_for_status(image['id'],
                                                   timeout=timeout)
        except Exception as e:  # reported by the caller, with the others
            failures.append(e)

    with bench.ProcessSampler(procs.read_pid(api.pid_path)) as sampler:
        threads = [threading.Thread(target=run, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print('%s: %d imports in %.1f s, worker RSS %d MiB before, peak growth '
          '%d MiB, helpers peak %d MiB' % (
              ','.join(api.plugins), len(paths), sampler.elapsed,
              (sampler.worker_baseline or 0) // MiB,
              sampler.worker_growth // MiB, sampler.helper_peak // MiB))
    return results, failures, sampler


def _assert_all_imported(results, failures, expected, cluster):
    assert not failures, failures
    assert len(results) == len(expected)
    for path, image in results.items():
        assert image['status'] == 'active'
        assert image['checksum'] == expected[path]
        assert image['stores'] == 'ceph'
        assert image['id'] in cluster.rbd_images()


def test_eight_concurrent_imports(glance_api_factory, ceph_cluster,
                                  mariadb_server, load_images):
    api = glance_api_factory({'ceph': ceph_cluster}, 'ceph',
                             plugins=['sparse_rbd_import'],
                             database=mariadb_server.create_database())
    results, failures, sampler = _import_concurrently(api, list(load_images))
    _assert_all_imported(results, failures, load_images, ceph_cluster)
    assert sum(map(_data_bytes, range(IMPORTS))) > WORKER_GROWTH_LIMIT
    assert sampler.worker_growth < WORKER_GROWTH_LIMIT, sampler.worker_growth


def test_eight_concurrent_imports_stock(glance_api_factory, ceph_cluster,
                                        mariadb_server, load_images):
    """The baseline: stock Glance under the same load."""
    api = glance_api_factory({'ceph': ceph_cluster}, 'ceph',
                             plugins=['image_conversion'],
                             database=mariadb_server.create_database())
    results, failures, sampler = _import_concurrently(api, list(load_images))
    _assert_all_imported(results, failures, load_images, ceph_cluster)
    assert sampler.worker_growth < WORKER_GROWTH_LIMIT, sampler.worker_growth
