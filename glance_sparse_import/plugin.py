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

"""The ``sparse_rbd_import`` plugin of Glance's image import flow.

Glance builds one ``_ImportToStore`` task per target store *after* it has
built the plugins, from the very list it passed them as ``backend``.
``get_flow`` takes the RBD stores out of that list, so Glance never uploads
to them; ``_SparseRbdImport`` then does, reading the staged image once with
extent awareness, and owns what Glance would have done for those stores:
the importing and failed store lists, ``all_stores_must_succeed``, setting
the image ``active`` when it is the last writer, and removing its data when
the flow fails.
"""

import os
import time

from glance.common import exception as glance_exception
from glance.common.scripts import utils as script_utils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units
from taskflow.patterns import linear_flow as lf
from taskflow import task
from taskflow.types import failure

from glance_sparse_import import copy
from glance_sparse_import import errors
from glance_sparse_import import file_target
from glance_sparse_import import glance_image
from glance_sparse_import import hashing
from glance_sparse_import import inspection
from glance_sparse_import import opts
from glance_sparse_import import rbd_target
from glance_sparse_import import sources
from glance_sparse_import import stores as rbd_stores

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
opts.register_opts(CONF)

# Formats stock Glance stores as they are: image_conversion leaves raw and
# iso alone and converts everything else to raw/bare.
_KEPT_FORMATS = ('raw', 'iso')


class _SparseRbdImport(task.Task):

    default_provides = 'file_path'

    def __init__(self, task_id, task_type, task_repo, action_wrapper,
                 stores, other_stores, all_stores_must_succeed):
        self.task_id = task_id
        self.task_type = task_type
        self.task_repo = task_repo
        self.action_wrapper = action_wrapper
        self.image_id = action_wrapper.image_id
        self.stores = stores
        self.other_stores = other_stores
        self.all_stores_must_succeed = all_stores_must_succeed
        self._targets = []
        self._registered = []
        self._raw_file = None
        super(_SparseRbdImport, self).__init__(
            name='%s-SparseRbdImport-%s' % (task_type, task_id))

    @property
    def _store_names(self):
        return [s.name for s in self.stores]

    def execute(self, file_path):
        try:
            return self._execute(file_path)
        except errors.SparseImportError as e:
            # Glance's executor puts the text of an UploadException in the
            # task message; anything else becomes "Internal Error".
            raise glance_exception.UploadException(
                'Sparse RBD import failed: %s' % e)

    def _execute(self, file_path):
        conf = CONF.sparse_rbd_import
        src_path = file_path.split('file://')[-1]
        timer = _PhaseTimer()

        with self.action_wrapper as action:
            _check_not_deleted(action)
            claimed_format = action.image_disk_format
            hash_algo = glance_image.hashing_algorithm(action)

        info = inspection.inspect_image(
            src_path, claimed_format, inspection.max_virtual_size(CONF),
            python_exec=CONF.wsgi.python_interpreter)
        timer.lap('inspect')

        targets = self._open_targets(info.size, conf)
        outputs = list(targets)
        if self.other_stores and info.format not in _KEPT_FORMATS:
            self._raw_file = file_target.RawFileTarget(
                '%s.raw' % src_path, info.size)
            self._raw_file.open()
            outputs.append(self._raw_file)
        timer.lap('open')

        hasher = hashing.ParallelHasher(['md5', hash_algo])
        try:
            with sources.open_source(src_path, info, conf) as source:
                stats, failed = copy.copy_image(
                    source, outputs, hasher, conf.zero_block_size,
                    tolerate_target_failures=not self.all_stores_must_succeed,
                    progress=self._progress)
            timer.lap('copy')
            checksum, hash_value = hasher.hexdigests()
            timer.lap('hash')
        except BaseException:
            hasher.close()
            raise
        if self._raw_file in failed:
            raise failed[self._raw_file]
        for target in targets:
            if target not in failed:
                self._finish(target, failed)
        timer.lap('snapshot')

        good = [t for t in targets if t not in failed]
        bad = [t.store for t in failed if t is not self._raw_file]
        self._register(good, bad, checksum, hash_algo, hash_value, info)
        timer.lap('register')

        LOG.info('Image %(image)s imported sparse to %(stores)s: '
                 'virtual %(virtual)d, allocated %(allocated)d, written '
                 '%(written)d, zero skipped %(skipped)d bytes; %(phases)s; '
                 '%(rate).0f MB/s of virtual size',
                 {'image': self.image_id,
                  'stores': ','.join(str(t.name) for t in good),
                  'virtual': stats.virtual_size,
                  'allocated': stats.allocated, 'written': stats.written,
                  'skipped': stats.zero_skipped, 'phases': timer,
                  'rate': stats.virtual_size / max(timer.total, 1e-6) / 1e6})

        if self._raw_file is not None:
            self._raw_file.finish()
            # The converted file replaces the staged one, as image_conversion
            # does; _DeleteFromFS removes what we return.
            os.remove(src_path)
            return 'file://%s' % self._raw_file.path
        return file_path

    def _open_targets(self, size, conf):
        for store in self.stores:
            timeout = store.connect_timeout
            if timeout < 0:
                timeout = conf.ceph_op_timeout
            target = rbd_target.RbdTarget(
                store, self.image_id, size,
                writes_in_flight=conf.writes_in_flight, op_timeout=timeout)
            self._targets.append(target)
            try:
                target.open()
            except errors.StoreError:
                if self.all_stores_must_succeed:
                    raise
                self._targets.remove(target)
                self._mark_failed([store])
        if not self._targets:
            raise errors.StoreError('no target store could be opened')
        return list(self._targets)

    def _finish(self, target, failed):
        try:
            target.finish()
        except errors.StoreError as e:
            if self.all_stores_must_succeed:
                raise
            failed[target] = e

    def _mark_failed(self, stores):
        names = [s.name for s in stores]
        with self.action_wrapper as action:
            action.remove_importing_stores(names)
            action.add_failed_stores(names)

    def _register(self, good, bad, checksum, hash_algo, hash_value, info):
        for target in self._targets:
            if target not in good:
                _remove_quietly(target)
        if not good:
            raise errors.StoreError('the import failed in every target store')
        set_active = (not self.all_stores_must_succeed or
                      not self.other_stores)
        with self.action_wrapper as action:
            _check_not_deleted(action)
            glance_image.record_upload(
                action,
                [(t.url, rbd_stores.location_metadata(t.store))
                 for t in good],
                checksum, hash_algo, hash_value,
                size=info.size, virtual_size=info.virtual_size,
                converted=info.format not in _KEPT_FORMATS)
            action.remove_importing_stores([t.name for t in good] +
                                           [s.name for s in bad])
            action.add_failed_stores([s.name for s in bad])
            if set_active:
                action.set_image_attribute(status='active')
        self._registered = good

    def _progress(self, stats, targets):
        task_obj = script_utils.get_task(self.task_repo, self.task_id)
        if task_obj is None or task_obj.status != 'processing':
            raise glance_exception.TaskAbortedError()
        self.action_wrapper.assert_task_lock()
        task_obj.message = ('Sparse import: %(done)d of %(total)d MiB '
                            'processed, %(written)d MiB written to %(n)d '
                            'store(s)' %
                            {'done': stats.processed // units.Mi,
                             'total': stats.virtual_size // units.Mi,
                             'written': stats.written // units.Mi,
                             'n': len([t for t in targets
                                       if t is not self._raw_file])})
        self.task_repo.save(task_obj)

    def revert(self, result, **kwargs):
        we_failed = isinstance(result, failure.Failure)
        if we_failed:
            LOG.error('Sparse import of image %(image)s failed: %(err)s',
                      {'image': self.image_id,
                       'err': result.exception_str})
        for target in self._targets:
            if target not in self._registered:
                _remove_quietly(target)
        if self._raw_file is not None:
            self._raw_file.remove()
        try:
            with self.action_wrapper as action:
                for target in self._registered:
                    # Glance's location proxy deletes the RBD image too.
                    action.remove_location_for_store(target.name)
                action.set_image_attribute(status='queued')
                action.remove_importing_stores(self._store_names)
                if we_failed:
                    # The stores after us will not run either.
                    action.remove_importing_stores(self.other_stores)
                    action.add_failed_stores(self._store_names +
                                             self.other_stores)
        except Exception as e:
            LOG.warning('Could not update image %(image)s while reverting '
                        'its sparse import: %(err)s',
                        {'image': self.image_id, 'err': e})
            for target in self._registered:
                _remove_quietly(target)


def _check_not_deleted(action):
    if action.image_status == 'deleted':
        raise glance_exception.ImportTaskError(
            'Image has been deleted, aborting import.')


def _remove_quietly(target):
    try:
        target.remove()
    except Exception as e:
        LOG.error('Could not remove RBD image %(name)s from store '
                  '%(store)s: %(err)s',
                  {'name': target.image_name, 'store': target.name,
                   'err': e})


class _PhaseTimer(object):
    """Seconds spent per phase, for the import summary."""

    def __init__(self):
        self._start = self._last = time.monotonic()
        self.phases = []

    def lap(self, name):
        now = time.monotonic()
        self.phases.append((name, now - self._last))
        self._last = now

    @property
    def total(self):
        return self._last - self._start

    def __str__(self):
        return ', '.join('%s %.2fs' % p for p in self.phases)


def get_flow(**kwargs):
    """Return the plugin's flow, taking its RBD stores from Glance's list.

    :param task_id: Task ID
    :param task_type: Type of the task
    :param task_repo: Task repo
    :param action_wrapper: An api_image_import.ImportActionWrapper
    :param import_req: The import request
    :param backend: The list of target stores Glance will upload to; the
                    RBD stores are removed from it in place.
    """
    task_type = kwargs.get('task_type')
    flow = lf.Flow(task_type)
    stores = kwargs.get('backend')
    if stores is None:
        # Without Glance's own list there is nothing we can take over.
        LOG.warning('sparse_rbd_import: no target store list; not used')
        return flow
    ours = [s for s in (rbd_stores.rbd_store(n) for n in stores) if s]
    if not ours:
        return flow
    for store in ours:
        stores.remove(store.name)
    import_req = kwargs.get('import_req') or {}
    action_wrapper = kwargs['action_wrapper']
    names = [s.name for s in ours]
    with action_wrapper as action:
        action.add_importing_stores(names)
        action.remove_failed_stores(names)
    LOG.debug('sparse_rbd_import takes stores %s of image %s', names,
              action_wrapper.image_id)
    return flow.add(_SparseRbdImport(
        kwargs.get('task_id'), task_type, kwargs.get('task_repo'),
        action_wrapper, ours, list(stores),
        import_req.get('all_stores_must_succeed', True)))
