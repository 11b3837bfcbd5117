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

"""Read the protected snapshot of an image in an RBD store by its extents.

The source of ``add-site``: the ``<pool>/<image>@snap`` that glance_store
(or the plugin) wrote, opened read-only. Allocated extents come from
librbd's ``diff_iterate`` from the beginning of time, by whole objects: fast
with the object-map and fast-diff features, correct without them (librbd
then lists each object's snapshots).
"""

from oslo_log import log as logging

from glance_sparse_import import ceph_client
from glance_sparse_import import errors
from glance_sparse_import.sources.base import Chunk
from glance_sparse_import.sources.base import requests

try:
    import rados
    import rbd
except ImportError:  # pragma: no cover - checked when a source is opened
    rados = rbd = None

LOG = logging.getLogger(__name__)

SNAPSHOT = 'snap'


def merge_extents(extents):
    """Sort ``(offset, length)`` extents and join those that touch."""
    merged = []
    for offset, length in sorted(extents):
        if merged and offset <= merged[-1][0] + merged[-1][1]:
            start, n = merged[-1]
            merged[-1] = (start, max(n, offset + length - start))
        elif length:
            merged.append((offset, length))
    return merged


class RbdSource(object):
    """A source reading ``pool/image_name@snapshot`` of one Ceph cluster.

    ``store`` is a ``stores.RbdStore`` (ceph.conf, user, timeout); ``pool``
    and ``image_name`` are those of the image's location. ``fsid``, once
    open, is the cluster's. Errors are ``SourceError`` naming the store.
    """

    def __init__(self, store, pool, image_name, request_size,
                 snapshot=SNAPSHOT, op_timeout=0):
        self.store = store
        self.pool = pool
        self.image_name = image_name
        self.snapshot = snapshot
        self.size = None
        self.fsid = None
        self._request_size = request_size
        self._timeout = op_timeout
        self._client = None
        self._ioctx = None
        self._image = None

    def _fail(self, message, exc=None):
        LOG.error('Source store %(store)s: %(msg)s%(exc)s',
                  {'store': self.store.name, 'msg': message,
                   'exc': ': %s' % exc if exc else ''})
        raise errors.SourceError('source store %s: %s'
                                 % (self.store.name, message))

    def __enter__(self):
        if rados is None:
            self._fail('the rados and rbd Python bindings are not installed')
        what = '%s/%s@%s' % (self.pool, self.image_name, self.snapshot)
        client = ceph_client.new_client(self.store, self._timeout)
        self._client = client
        try:
            try:
                client.connect(timeout=self._timeout or 0)
            except Exception as e:
                self._fail('cannot connect to the Ceph cluster', e)
            self.fsid = client.get_fsid()
            try:
                self._ioctx = client.open_ioctx(self.pool)
            except rados.ObjectNotFound:
                self._fail('no pool %s' % self.pool)
            try:
                self._image = rbd.Image(self._ioctx, self.image_name,
                                        snapshot=self.snapshot,
                                        read_only=True)
            except rbd.ImageNotFound:
                self._fail('no RBD image %s' % what)
            if not self._image.is_protected_snap(self.snapshot):
                self._fail('snapshot %s is not protected: not an image '
                           'Glance stored' % what)
            self.size = self._image.size()
        except errors.SourceError:
            self.close()
            raise
        except Exception as e:
            self.close()
            self._fail('cannot open %s' % what, e)
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        image, self._image = self._image, None
        ioctx, self._ioctx = self._ioctx, None
        client, self._client = self._client, None
        ceph_client.close(image, ioctx, client)

    def extents(self):
        """The allocated ``(offset, length)`` extents, merged, in order."""
        found = []

        def collect(offset, length, exists):
            # From the beginning of time an extent that does not exist
            # reads as zeros.
            if exists:
                found.append((offset, length))

        try:
            self._image.diff_iterate(0, self.size, None, collect,
                                     whole_object=True)
        except Exception as e:
            self._fail('cannot list the allocated extents', e)
        return [(offset, min(length, self.size - offset))
                for offset, length in merge_extents(found)
                if offset < self.size]

    def chunks(self):
        """Yield Chunks covering ``[0, size)``, zero runs as data None."""
        offset = 0
        for start, length in self.extents():
            if start > offset:
                yield Chunk(offset, start - offset, None)
            for pos, n in requests(start, start + length,
                                   self._request_size):
                yield Chunk(pos, n, self._read(pos, n))
            offset = start + length
        if offset < self.size:
            yield Chunk(offset, self.size - offset, None)

    def _read(self, offset, length):
        try:
            data = self._image.read(offset, length)
        except Exception as e:
            self._fail('read failed at byte %d' % offset, e)
        if len(data) != length:
            self._fail('short read at byte %d: %d of %d bytes'
                       % (offset, len(data), length))
        return data
