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

"""The RBD source reads a protected snapshot of a real cluster exactly."""

import os
import uuid

import pytest

from glance_sparse_import import errors
from glance_sparse_import.sources import rbd as rbd_source
from glance_sparse_import import stores
from glance_sparse_import.tests.functional.test_sources import read_all

MiB = 1024 ** 2
SIZE = 64 * MiB + 12345
REQUEST = 4 * MiB
# (offset, bytes) written into the image; the rest is never written.
WRITES = [(0, b'boot' * 1024), (9 * MiB - 3, os.urandom(2 * MiB + 7)),
          (40 * MiB, bytes(MiB)), (SIZE - 5000, os.urandom(5000))]


def _store(cluster):
    return stores.RbdStore(name='site', pool=cluster.pool, user='admin',
                           conf_file=cluster.conf_path,
                           chunk_size=8 * MiB, connect_timeout=30)


@pytest.fixture
def rbd_image(ceph_cluster, scratch_dir):
    """An image of SIZE bytes with WRITES, its raw copy; (name, raw)."""
    name = 'source-%s' % uuid.uuid4()
    raw = os.path.join(scratch_dir, 'raw')
    with open(raw, 'wb') as f:
        f.truncate(SIZE)
        for offset, data in WRITES:
            f.seek(offset)
            f.write(data)
    spec = '%s/%s' % (ceph_cluster.pool, name)
    ceph_cluster.rbd('import', '--no-progress', '--object-size', '8M',
                     raw, spec)
    ceph_cluster.rbd('snap', 'create', spec + '@snap')
    yield name, raw
    ceph_cluster.purge_image(name)


def test_reads_the_snapshot_by_extents(ceph_cluster, rbd_image):
    name, raw = rbd_image
    spec = '%s/%s' % (ceph_cluster.pool, name)
    ceph_cluster.rbd('snap', 'protect', spec + '@snap')
    # Written after the snapshot: the source must not see it.
    ceph_cluster.rbd('bench', '--io-type', 'write', '--io-size', '1M',
                     '--io-total', '2M', '--io-pattern', 'seq', spec)
    with rbd_source.RbdSource(_store(ceph_cluster), ceph_cluster.pool,
                              name, REQUEST) as source:
        assert source.size == SIZE
        assert source.fsid == ceph_cluster.fsid
        extents = source.extents()
        data, zero_runs = read_all(source, REQUEST)
    with open(raw, 'rb') as f:
        assert data == f.read()
    # Only objects holding data are read: 0 and 1 (joined), not 5 (the
    # zeros rbd import skips are never written), and the last, short one.
    assert extents == [(0, 16 * MiB), (64 * MiB, SIZE - 64 * MiB)]
    assert (16 * MiB, 64 * MiB) in zero_runs


def test_unprotected_or_missing_snapshot(ceph_cluster, rbd_image):
    name, _raw = rbd_image
    store = _store(ceph_cluster)
    source = rbd_source.RbdSource(store, ceph_cluster.pool, name, REQUEST)
    with pytest.raises(errors.SourceError, match='is not protected'):
        source.__enter__()
    source = rbd_source.RbdSource(store, ceph_cluster.pool, name + 'x',
                                  REQUEST)
    with pytest.raises(errors.SourceError, match='no RBD image'):
        source.__enter__()
    source = rbd_source.RbdSource(store, 'nopool', name, REQUEST)
    with pytest.raises(errors.SourceError, match='no pool nopool'):
        source.__enter__()


def test_merge_extents():
    assert rbd_source.merge_extents(
        [(8, 4), (0, 4), (4, 4), (20, 1), (20, 0), (30, 0)]) == \
        [(0, 12), (20, 1)]
