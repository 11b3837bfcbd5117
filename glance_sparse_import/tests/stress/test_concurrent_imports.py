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

Not part of the default run (``tox -e stress``): on the sqlite test bed,
one or two of the eight Glance tasks stay ``pending`` for ever. Glance logs
the task going to ``processing`` but the status is never saved and the
task pool's future swallows the error; it has not been established yet
whether stock Glance loses tasks the same way under this load.
"""

import os
import threading

from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import cli
from glance_sparse_import.tests.testbed import images
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
IMPORTS = 8


def _raw_md5(path, workdir):
    raw = os.path.join(workdir, 'expected.raw')
    procs.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', path, raw],
              timeout=300)
    md5 = images.file_digests(raw, ['md5'])[0]
    os.unlink(raw)
    return md5


def test_eight_concurrent_imports(glance_api_factory, ceph_cluster,
                                  image_builder, scratch_dir):
    api = glance_api_factory({'ceph': ceph_cluster}, 'ceph',
                             plugins=['sparse_rbd_import'])
    glance = cli.GlanceCLI(api)
    # Different data sizes give different filesystems, so every image has
    # its own checksum.
    paths = [image_builder.qcow2(512 * MiB, (16 + 2 * i) * MiB,
                                 compressed=bool(i % 2))
             for i in range(IMPORTS)]
    expected = {path: _raw_md5(path, scratch_dir) for path in paths}
    assert len(set(expected.values())) == IMPORTS

    master = procs.read_pid(api.pid_path)
    results, failures = {}, []

    def run(path):
        try:
            image = glance.image_create_via_import(path, 'qcow2',
                                                   name=os.path.basename(path))
            results[path] = glance.wait_for_status(image['id'], timeout=240)
        except Exception as e:  # reported below, with the others
            failures.append(e)

    with bench.ProcessSampler(master) as sampler:
        threads = [threading.Thread(target=run, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures, failures
    for path, image in results.items():
        assert image['status'] == 'active'
        assert image['checksum'] == expected[path]
        assert image['stores'] == 'ceph'
        assert image['id'] in ceph_cluster.rbd_images()
    # 8 imports x (8 reads + 16 writes in flight) x 4 MiB, plus hashing
    # queues: far below what the images would need if held in memory.
    assert sampler.worker_growth < 1024 * MiB, sampler.worker_growth
