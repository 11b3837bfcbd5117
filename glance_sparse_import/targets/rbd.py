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

"""An RBD image written the way glance_store's RBD driver lays it out.

Same name (the image id), pool, order (from ``rbd_store_chunk_size``),
features (``rbd_default_features`` of the cluster's configuration, layering
when unset) and protected ``snap`` snapshot, so Nova and Cinder clone it as
they clone any Glance image. Writes go through librbd's asynchronous API
with a bounded number in flight.
"""

import errno
import math
import urllib.parse

from oslo_log import log as logging

from glance_sparse_import import ceph_client
from glance_sparse_import import errors
from glance_sparse_import import native
from glance_sparse_import.targets import base

try:
    import rados
    import rbd
except ImportError:  # pragma: no cover - checked when a store is used
    rados = rbd = None

LOG = logging.getLogger(__name__)

SNAPSHOT = 'snap'
# librbd removes an image by first adding it to this object and, without
# the fix for Ceph tracker 64800 (16.2.15 lacks it), creates the object on
# first use: impossible in a full pool.
TRASH_OBJECT = 'rbd_trash'


def location_url(fsid, pool, image_name, snapshot=SNAPSHOT):
    """The location URL glance_store records for an RBD image."""
    parts = (fsid, pool, image_name, snapshot)
    return 'rbd://%s/%s/%s/%s' % tuple(urllib.parse.quote(p, '')
                                       for p in parts)


class RbdTarget(base.Target):
    """Write one image into one RBD store.

    ``store`` is a ``stores.RbdStore``. Call ``open`` (creates the image),
    ``write`` any number of times, then ``finish`` (snapshot and protect).
    ``remove`` deletes whatever was created; it is safe at any point and
    more than once. ``in_use(url)``, when given, says whether a Glance
    location points at the RBD image of that location URL; an image left
    by an import that did not finish is replaced only when it says no.
    """

    def __init__(self, store, image_name, size, writes_in_flight=16,
                 op_timeout=0, in_use=None):
        self.store = store
        self.image_name = str(image_name)
        self.size = size
        self.fsid = None
        self.bytes_written = 0
        self._timeout = op_timeout
        # Released by librbd's own threads: a real semaphore, never a
        # green one (see native).
        self._slots = native.threading.BoundedSemaphore(writes_in_flight)
        self._depth = writes_in_flight
        self._error = None
        self._client = None
        self._ioctx = None
        self._image = None
        self._created = False
        self._in_use = in_use

    @property
    def name(self):
        return self.store.name

    @property
    def op_timeout(self):
        """Seconds each Ceph operation may take; 0 for no bound."""
        return self._timeout

    @property
    def url(self):
        """``rbd://fsid/pool/image/snap``; the fsid is known once open."""
        return location_url(self.fsid, self.store.pool, self.image_name)

    def _fail(self, message, exc=None):
        LOG.error('Store %(store)s: %(msg)s%(exc)s',
                  {'store': self.name, 'msg': message,
                   'exc': ': %s' % exc if exc else ''})
        raise errors.StoreError('store %s: %s' % (self.name, message))

    def _connect(self):
        if rados is None:
            self._fail('the rados and rbd Python bindings are not installed')
        client = ceph_client.new_client(self.store, self._timeout)
        try:
            client.connect(timeout=self._timeout or 0)
        except Exception as e:
            client.shutdown()
            self._fail('cannot connect to the Ceph cluster', e)
        return client

    def _open_ioctx(self, client):
        """An I/O context whose writes fail on a full pool, not block.

        As for ``rbd rm``: a full pool (or one over its quota) then fails a
        write at once with ENOSPC (EDQUOT), a close no longer blocks on it
        and leaves no watch behind, and the removal, which frees space,
        goes through. No write is let through a full pool.
        """
        ioctx = client.open_ioctx(self.store.pool)
        full_try = getattr(ioctx, 'set_pool_full_try', None)
        (full_try or ioctx.set_osdmap_full_try)()
        return ioctx

    def _ensure_trash_object(self):
        """Create the pool's trash object, as ``rbd pool init`` now does.

        Otherwise, in a pool where no image was ever removed, a full pool
        makes every removal fail (creating the object needs space).
        """
        try:
            with rados.WriteOpCtx() as op:
                op.new(rados.LIBRADOS_CREATE_IDEMPOTENT)
                self._ioctx.operate_write_op(op, TRASH_OBJECT)
        except Exception as e:
            # Creating the image tells what is wrong, if anything is.
            LOG.debug('Store %(store)s: cannot create %(obj)s in pool '
                      '%(pool)s: %(exc)s',
                      {'store': self.name, 'obj': TRASH_OBJECT,
                       'pool': self.store.pool, 'exc': e})

    def _features(self):
        features = self._client.conf_get('rbd_default_features')
        if features is None or int(features) == 0:
            return rbd.RBD_FEATURE_LAYERING
        return int(features)

    def open(self):
        """Connect and create the (empty, thin) RBD image."""
        self._client = self._connect()
        try:
            self.fsid = self._client.get_fsid()
            self._ioctx = self._open_ioctx(self._client)
            order = int(math.log(self.store.chunk_size, 2))
            try:
                self._create(order)
            except rbd.ImageExists:
                self._remove_stale_image()
                self._create(order)
            # Only now: with the OSD down, creating the image alone waits
            # for the timeout.
            self._ensure_trash_object()
            self._image = rbd.Image(self._ioctx, self.image_name)
        except errors.StoreError:
            self._close()
            raise
        except Exception as e:
            self.remove()
            self._fail('cannot create the RBD image', e)
        LOG.debug('Created RBD image %(name)s in store %(store)s, pool '
                  '%(pool)s, order %(order)d',
                  {'name': self.image_name, 'store': self.name,
                   'pool': self.store.pool, 'order': order})

    def _create(self, order):
        rbd.RBD().create(self._ioctx, self.image_name, self.size, order,
                         old_format=False, features=self._features())
        self._created = True

    def _remove_stale_image(self):
        """Remove an RBD image of our name left by an unfinished import.

        A Glance API killed mid-import leaves its RBD image behind, and
        glance_store would then refuse the next import of that image. We
        hold the image's import lock, so no other import of it is running;
        an image a location points at is data, never removed. One still
        open elsewhere (a live writer, or a killed client whose watch has
        not yet timed out) cannot be removed either.
        """
        exists = ('an RBD image named %s already exists in pool %s'
                  % (self.image_name, self.store.pool))
        if self._in_use is None:
            self._fail(exists)
        if self._in_use(self.url):
            self._fail('%s and a Glance image location points at it'
                       % exists)
        LOG.warning('Store %(store)s: removing RBD image %(name)s in pool '
                    '%(pool)s, left by an import that did not finish; no '
                    'image location points at it',
                    {'store': self.name, 'name': self.image_name,
                     'pool': self.store.pool})
        try:
            remove_image(self._ioctx, self.image_name)
        except rbd.ImageBusy as e:
            self._fail('%s, left by an import that did not finish, and '
                       'another client still uses it; try again later'
                       % exists, e)

    def _completed(self, completion):
        ret = completion.get_return_value()
        if ret < 0 and self._error is None:
            self._error = ret
        self._slots.release()

    def _check(self):
        if self._error is None:
            return
        err = -self._error
        if err == errno.ENOSPC:
            self._fail('write failed: pool %s is full (error %d)'
                       % (self.store.pool, err))
        if err == errno.EDQUOT:
            self._fail('write failed: pool %s is over its quota (error %d)'
                       % (self.store.pool, err))
        if err == errno.ETIMEDOUT:
            self._fail('write failed: no answer from Ceph within %d s '
                       '(error %d)' % (self._timeout, err))
        self._fail('write failed (error %d)' % err)

    def write(self, offset, data):
        """Queue a write of ``data`` (bytes) at ``offset``."""
        self._check()
        self._slots.acquire()
        try:
            self._image.aio_write(data, offset, self._completed)
        except Exception as e:
            self._slots.release()
            self._fail('write failed', e)
        self.bytes_written += len(data)

    def _drain(self):
        for _ in range(self._depth):
            self._slots.acquire()
        for _ in range(self._depth):
            self._slots.release()

    def finish(self):
        """Wait for the writes, then snapshot and protect the image."""
        self._drain()
        self._check()
        try:
            self._image.flush()
            self._image.create_snap(SNAPSHOT)
            self._image.protect_snap(SNAPSHOT)
        except Exception as e:
            self._fail('cannot snapshot the RBD image', e)
        finally:
            self._close()

    def _close(self):
        image, self._image = self._image, None
        ioctx, self._ioctx = self._ioctx, None
        client, self._client = self._client, None
        try:
            if image is not None:
                # Not closed when in-flight writes did not drain.
                self._drain()
                image.close()
        finally:
            ceph_client.close(None, ioctx, client)

    def remove(self):
        """Delete the RBD image and its snapshot, if this target made them."""
        try:
            self._close()
        except Exception as e:
            LOG.warning('Store %(store)s: error closing image %(name)s: '
                        '%(exc)s', {'store': self.name,
                                    'name': self.image_name, 'exc': e})
        if not self._created:
            return
        client = self._connect()
        try:
            with self._open_ioctx(client) as ioctx:
                remove_image(ioctx, self.image_name)
            self._created = False
        finally:
            client.shutdown()
        LOG.info('Removed RBD image %(name)s from store %(store)s',
                 {'name': self.image_name, 'store': self.name})


def remove_image(ioctx, image_name):
    """Unprotect and remove ``snap`` if present, then remove the image."""
    try:
        with rbd.Image(ioctx, image_name) as image:
            for snap in list(image.list_snaps()):
                if snap['name'] != SNAPSHOT:
                    continue
                if image.is_protected_snap(SNAPSHOT):
                    image.unprotect_snap(SNAPSHOT)
                image.remove_snap(SNAPSHOT)
    except rbd.ImageNotFound:
        return
    try:
        rbd.RBD().remove(ioctx, image_name)
    except rbd.ImageNotFound:
        # Also what librbd answers when it cannot move the image to the
        # trash on its way out (a full pool without a trash object).
        if image_name in rbd.RBD().list(ioctx):
            raise errors.StoreError(
                'RBD image %s is still in the pool: librbd could not move '
                'it to the trash to remove it (error 2)' % image_name)
