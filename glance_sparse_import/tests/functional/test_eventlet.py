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

"""The data pass in a process eventlet has monkey-patched, as glance-api.

A child process patches everything the way Glance's eventlet server does,
then copies a qcow2 through qemu-nbd into a real RBD image with librbd's
asynchronous writes and the hash threads, supervised from a greenthread as
the plugin does. A heartbeat greenthread measures how long the hub is kept
from running: a blocking call on the hub's thread shows as a long gap, a
green lock released by librbd's thread as a hang.
"""

import json
import subprocess
import sys

from glance_sparse_import.tests.testbed import images

MiB = 1024 ** 2
GiB = 1024 ** 3

CHILD = r'''
import eventlet
eventlet.monkey_patch()

import hashlib, json, sys, time

from oslo_config import cfg

from glance_sparse_import import copy, errors, hashing, inspection, native
from glance_sparse_import import opts, sources, stores
from glance_sparse_import.targets import rbd as rbd_target

path, conf_file, pool, image_name, cancel_after = sys.argv[1:6]
cancel_after = float(cancel_after)
conf = cfg.ConfigOpts()
opts.register_opts(conf)
conf([])
gaps = []

def heartbeat():
    last = time.monotonic()
    while True:
        eventlet.sleep(0.02)
        now = time.monotonic()
        gaps.append(now - last)
        last = now

beat = eventlet.spawn(heartbeat)
eventlet.sleep(0.1)
info = inspection.inspect_image(path, 'qcow2', 1 << 40,
                                python_exec=sys.executable)
store = stores.RbdStore(name='ceph', pool=pool, user='admin',
                        conf_file=conf_file, chunk_size=8 * 1024 * 1024,
                        connect_timeout=60)
target = rbd_target.RbdTarget(store, image_name, info.size,
                              writes_in_flight=8, op_timeout=60)
native.call(target.open)
hasher = hashing.ParallelHasher(['md5', 'sha512'])
job = copy.Copy([target], hasher, 64 * 1024)
ticks = []
started = time.monotonic()

def data_pass(cancelled):
    with sources.open_source(path, info, conf.sparse_rbd_import,
                             python_exec=sys.executable) as source:
        stats, failed = job.run(source, cancelled)
    return stats, hasher.hexdigests()

def tick():
    ticks.append(time.monotonic() - started)
    if cancel_after and ticks[-1] >= cancel_after:
        hasher.abandon()
        raise errors.SparseImportError('cancelled by the test')

result = {'green': native.green()}
try:
    stats, digests = native.supervise(data_pass, tick, 0.2, 'test-copy')
    native.call(target.finish)
    result.update(digests=digests, written=stats.written)
except errors.SparseImportError as e:
    result['error'] = str(e)
    native.call(hasher.close)
    native.call(target.remove)
result.update(seconds=time.monotonic() - started, ticks=len(ticks),
              max_gap=max(gaps))
beat.kill()
print(json.dumps(result))
'''


def _run_child(path, cluster, image_name, cancel_after=0):
    out = subprocess.run(
        [sys.executable, '-c', CHILD, path, cluster.conf_path, cluster.pool,
         image_name, str(cancel_after)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
        check=False)
    assert out.returncode == 0, out.stderr.decode()[-4000:]
    return json.loads(out.stdout.decode().splitlines()[-1])


def test_copy_under_eventlet_is_exact_and_leaves_the_hub_free(
        ceph_cluster, image_builder, scratch_dir):
    path = image_builder.qcow2(1 * GiB, 96 * MiB, compressed=True)
    name = 'eventlet-copy'
    try:
        result = _run_child(path, ceph_cluster, name)
        assert result['green'] is True
        assert 'error' not in result, result
        raw = scratch_dir + '/raw'
        subprocess.run(['qemu-img', 'convert', '-O', 'raw', path, raw],
                       check=True)
        assert result['digests'] == list(images.file_digests(raw))
        exported = scratch_dir + '/export'
        ceph_cluster.rbd('export', '--no-progress',
                         '%s/%s@snap' % (ceph_cluster.pool, name), exported)
        assert images.file_digests(exported, ['md5'])[0] == (
            result['digests'][0])
        # Supervised from the greenthread all along, and the hub never
        # held up for long (librbd, libnbd and hashlib run elsewhere).
        assert result['ticks'] >= 2, result
        assert result['max_gap'] < 0.5, result
    finally:
        if name in ceph_cluster.rbd_images():
            ceph_cluster.purge_image(name)


def test_cancel_under_eventlet_stops_and_removes(ceph_cluster,
                                                 image_builder):
    # 64 GiB of zeros take over a minute to hash: stopping must not wait.
    path = image_builder.qcow2(64 * GiB, 32 * MiB)
    name = 'eventlet-cancel'
    try:
        result = _run_child(path, ceph_cluster, name, cancel_after=1.0)
        assert result['error'] == 'cancelled by the test', result
        assert result['seconds'] < 5, result
        assert result['max_gap'] < 0.5, result
        assert name not in ceph_cluster.rbd_images()
    finally:
        if name in ceph_cluster.rbd_images():
            ceph_cluster.purge_image(name)
