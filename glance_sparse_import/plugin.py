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

Glance builds its store upload tasks *after* it has built the plugins, from
the very list it passed them as ``backend``. ``get_flow`` takes the RBD
stores out of that list, so Glance never uploads to them; ``_SparseRbdImport``
then does, reading the staged image once with extent awareness and writing
every RBD store at once, each through its own cluster connection. It owns
what Glance would have done for those stores: the importing and failed
store lists, ``all_stores_must_succeed``, setting the image ``active`` when
it is the last writer, and removing its data when the flow fails. Stores it
does not own (file, swift, ...) are left to Glance, which uploads them from
the staged file; when the staged image is not raw, the raw bytes replace it
there so that they get exactly the data the RBD stores got. The same
is done when a plugin listed after ours reads the staged data (as
``image_conversion`` does), so that it finds the raw image stock
``image_conversion`` would have left (see ``plugin_order``).
"""

import collections
import os
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units
from taskflow.patterns import linear_flow as lf
from taskflow import task
from taskflow.types import failure

from glance_sparse_import import copy
from glance_sparse_import import db_errors
from glance_sparse_import import errors
from glance_sparse_import import glance_compat as compat
from glance_sparse_import import glance_image
from glance_sparse_import import hashing
from glance_sparse_import import inspection
from glance_sparse_import import native
from glance_sparse_import import opts
from glance_sparse_import import plugin_order
from glance_sparse_import import quotas
from glance_sparse_import import signature
from glance_sparse_import import sources
from glance_sparse_import import staging
from glance_sparse_import import store_policy
from glance_sparse_import import stores as rbd_stores
from glance_sparse_import.targets import base as target_base
from glance_sparse_import.targets import file as file_target
from glance_sparse_import.targets import rbd as rbd_target
from glance_sparse_import.targets import throttle

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
opts.register_opts(CONF)
# Glance imports this module at its first import after start-up (it has no
# earlier hook for import plugins): say there what will fail.
if compat.problems():
    LOG.error('sparse_rbd_import cannot run here; every import to an RBD '
              'store will fail until this is fixed. Missing: %s',
              '; '.join(compat.problems()))
else:
    LOG.info('sparse_rbd_import loaded; Glance runs under %s: copies, '
             'hashing and Ceph calls run on native threads', native.server())

# Formats stock Glance stores as they are: image_conversion leaves raw and
# iso alone and converts everything else to raw/bare.
_KEPT_FORMATS = ('raw', 'iso')


class _SparseRbdImport(task.Task):

    default_provides = 'file_path'

    def __init__(self, task_id, task_type, task_repo, action_wrapper,
                 stores, other_stores, all_stores_must_succeed,
                 others_in_parallel=False, context=None,
                 stage_raw=False):
        self.task_id = task_id
        self.context = context
        self.task_type = task_type
        self.task_repo = task_repo
        self.action_wrapper = action_wrapper
        self.image_id = action_wrapper.image_id
        self.stores = stores
        self.other_stores = other_stores
        self.all_stores_must_succeed = all_stores_must_succeed
        # Glance's rules for a failed store; the raw file, when there is
        # one, is a required member.
        self._policy = store_policy.StorePolicy(
            all_stores_must_succeed, others=bool(other_stores))
        # Store name -> write rate limit (MiB/s) of the limited stores.
        self._limits = {}
        self.others_in_parallel = others_in_parallel
        # A later plugin reads the staged file: leave the raw bytes there.
        self.stage_raw = stage_raw
        # Every target opened; those dropped (already cleaned up and in
        # the failed list) and those registered on the image.
        self._targets = []
        self._dropped = []
        self._registered = []
        # Stores the copy dropped are removed at once, not once the
        # others are written; _drop waits for them.
        self._removals = target_base.Removals()
        self._raw_file = None
        self._hasher = None
        self._staged_path = None
        super(_SparseRbdImport, self).__init__(
            name='%s-SparseRbdImport-%s' % (task_type, task_id))

    @property
    def _store_names(self):
        return [s.name for s in self.stores]

    @property
    def _sets_active(self):
        """Whether the image goes active when our stores are written.

        As Glance's serial uploads: the last store when every store must
        succeed, else the first one. Glance's parallel upload activates the
        image itself on its first success, and fails on an image already
        active, so it must find it ``importing``.
        """
        if self.all_stores_must_succeed:
            return not self.other_stores
        return not self.others_in_parallel

    def _live(self):
        return [t for t in self._targets if t not in self._dropped]

    def execute(self, file_path):
        try:
            return self._execute(file_path)
        except errors.SparseImportError as e:
            # Glance's executor puts the text of an UploadException in the
            # task message; anything else becomes "Internal Error".
            raise compat.UploadException(
                'Sparse RBD import failed: %s' % e)

    def _execute(self, file_path):
        conf = CONF.sparse_rbd_import
        src_path = staging.staged_path(file_path)
        self._staged_path = src_path
        timer = _PhaseTimer()

        with self.action_wrapper as action:
            _check_not_deleted(action)
            # Not in get_flow: Glance's quota check and download task fail
            # the import before us with the shortened store list, and
            # would leave ours listed as importing.
            action.add_importing_stores(self._store_names)
            action.remove_failed_stores(self._store_names)
            claimed_format = compat.image_disk_format(action)
            hash_algo = glance_image.hashing_algorithm(action)
            extra_properties = compat.image_extra_properties(action)

        # What the owner signed is what they uploaded: verify it before
        # anything reads it as an image.
        signature.verify(self.context, extra_properties, src_path,
                         self.image_id)
        info = inspection.inspect_image(
            src_path, claimed_format, inspection.max_virtual_size(CONF),
            python_exec=CONF.wsgi.python_interpreter)
        converted = info.format not in _KEPT_FORMATS
        quotas.check(self.context, self.image_id, info.size)
        timer.lap('inspect')

        self._open_targets(info.size, conf)
        outputs = self._live()
        if (self.other_stores or self.stage_raw) and converted:
            self._raw_file = file_target.RawFileTarget(
                '%s.raw' % src_path, info.size)
            self._raw_file.open()
            self._policy.require(self._raw_file)
            outputs.append(self._raw_file)
        timer.lap('open')

        stats = checksum = hash_value = None
        if outputs:
            stats, checksum, hash_value = self._copy(
                src_path, info, outputs, hash_algo, conf)
            timer.lap('copy')
            self._finish_targets()
            timer.lap('snapshot')

        good = self._live()
        if not good and not self.other_stores:
            raise errors.StoreError('the import failed in every target store')
        if good:
            # As Glance after an upload: another import may have used the
            # quota meanwhile.
            quotas.check(self.context, self.image_id, info.size)
        self._register(good, checksum, hash_algo, hash_value, info,
                       converted)
        timer.lap('register')

        if good:
            LOG.info('Image %(image)s imported sparse to %(stores)s: '
                     'virtual %(virtual)d, allocated %(allocated)d, written '
                     '%(written)d, zero skipped %(skipped)d bytes; '
                     '%(phases)s; %(rate).0f MB/s of virtual size'
                     '%(limits)s',
                     {'image': self.image_id,
                      'stores': ','.join(str(t.name) for t in good),
                      'virtual': stats.virtual_size,
                      'allocated': stats.allocated,
                      'written': stats.written,
                      'skipped': stats.zero_skipped, 'phases': timer,
                      'rate': stats.virtual_size / max(timer.total, 1e-6) /
                      1e6, 'limits': self._describe_limits()})

        if self._raw_file is not None:
            self._raw_file.finish()
            # Glance uploads the other stores from the staging URI, as
            # file_path or as the URI it built its tasks with, and later
            # plugins read file_path; all must see the raw bytes, so they
            # replace the staged file.
            os.replace(self._raw_file.path, src_path)
        return file_path

    def _open_targets(self, size, conf):
        for store in self.stores:
            self._targets.append(rbd_target.RbdTarget(
                store, self.image_id, size,
                writes_in_flight=conf.writes_in_flight,
                op_timeout=rbd_stores.op_timeout(store, conf),
                in_use=glance_image.rbd_image_in_use))
        # In parallel, so unreachable clusters cost one timeout, not one
        # each.
        failed = target_base.each(lambda t: t.open(), self._targets)
        self._policy.check(failed)
        # A failed open has already removed what it created.
        self._dropped.extend(failed)
        self._mark_failed(failed)

    def _copy(self, src_path, info, outputs, hash_algo, conf):
        hasher = self._hasher = hashing.ParallelHasher(['md5', hash_algo])
        rbd_outputs = [t for t in outputs if t is not self._raw_file]
        self._limits = opts.store_write_rate_limits(
            conf, [t.name for t in rbd_outputs])
        job = copy.Copy(
            [throttle.wrap(t, self._limits.get(t.name, 0))
             if t is not self._raw_file else t for t in outputs],
            hasher, conf.zero_block_size, policy=self._policy,
            on_drop=lambda t, _e: self._removals.start(throttle.unwrap(t)))

        def data_pass(cancelled):
            def check():
                if cancelled.is_set():
                    raise errors.Cancelled('the copy was cancelled')

            with sources.open_source(src_path, info, conf) as source:
                stats, failed = job.run(source, cancelled)
            # Hashing the zero runs goes on well after the last read.
            return stats, failed, hasher.hexdigests(progress=check,
                                                    interval=0.1)

        def tick():
            try:
                self._progress(job.stats,
                               [throttle.unwrap(t) for t in job.active])
            except BaseException:
                # Let the copy stop at once rather than wait for the
                # hash threads to take what it queues.
                hasher.abandon()
                raise

        try:
            # The data pass runs on OS threads; this thread (a greenthread
            # under glance-api) reports progress and notices a cancelled
            # import meanwhile, with Glance's database session.
            stats, failed, (checksum, hash_value) = native.supervise(
                data_pass, tick, conf.progress_interval,
                'sparse-import-%s' % self.image_id)
        except errors.StoreError:
            native.call(hasher.close)
            # A required output or every output failed. Without a raw file
            # to write, the other stores can still take the staged file.
            if not self._policy.may_lose_every_target():
                raise
            self._drop(self._live())
            return None, None, None
        except BaseException:
            native.call(hasher.close)
            raise
        # The raw file is required: had it failed, the copy would have
        # raised.
        self._drop([throttle.unwrap(t) for t in failed])
        return stats, checksum, hash_value

    def _finish_targets(self):
        failed = target_base.each(lambda t: t.finish(), self._live())
        self._policy.check(failed)
        self._drop(list(failed))

    def _remove_quietly(self, target):
        # The next import of the image removes what is left.
        removal = self._removals.take(target)
        if removal.wait():
            return
        LOG.error('Could not remove RBD image %(name)s from store '
                  '%(store)s: %(err)s. It stays in pool %(pool)s until the '
                  'next import of this image removes it',
                  {'name': target.image_name, 'store': target.name,
                   'err': removal.error, 'pool': target.store.pool})

    def _drop(self, targets):
        """Give up on ``targets``: remove their data, list them failed."""
        targets = [t for t in targets if t not in self._dropped]
        if not targets:
            return
        self._dropped.extend(targets)
        target_base.each(self._remove_quietly, targets)
        self._mark_failed(targets)

    def _mark_failed(self, targets):
        if not targets:
            return
        names = [t.name for t in targets]
        LOG.warning('Image %(image)s: not imported to store(s) %(stores)s; '
                    'all_stores_must_succeed is false, going on',
                    {'image': self.image_id, 'stores': ','.join(names)})
        with self.action_wrapper as action:
            action.remove_importing_stores(names)
            action.add_failed_stores(names)

    def _register(self, good, checksum, hash_algo, hash_value, info,
                  converted):
        with self.action_wrapper as action:
            _check_not_deleted(action)
            if good:
                glance_image.record_locations(
                    action,
                    [(t.url, rbd_stores.location_metadata(t.store))
                     for t in good],
                    checksum, hash_algo, hash_value)
            if good or self._raw_file is not None:
                glance_image.record_data(action, info.size,
                                         info.virtual_size, converted)
            if good:
                action.remove_importing_stores([t.name for t in good])
                if self._sets_active:
                    action.set_image_attribute(status='active')
        self._registered = good

    def _progress(self, stats, targets):
        """Report progress; stop if the import was cancelled or taken over.

        A transient database error (a lost connection, a lock wait that
        timed out) skips this tick: the next one asks again, and the import
        goes on meanwhile.

        :raises TaskAbortedError: the task is no longer processing
        :raises SparseImportError: another task took the import lock
        """
        # Let os_glance_importing_to_stores shrink as stores fail, not
        # only when the copy ends.
        targets = list(targets)
        self._drop([t for t in self._live() if t not in targets])
        try:
            self._check_and_report(stats, targets)
        except Exception as e:
            if not db_errors.is_transient(e):
                raise
            LOG.warning('Image %(image)s: progress check skipped after a '
                        'database error, trying again at the next one: '
                        '%(err)s',
                        {'image': self.image_id, 'err': e})

    def _check_and_report(self, stats, targets):
        task_obj = compat.get_task(self.task_repo, self.task_id)
        if task_obj is None or task_obj.status != 'processing':
            raise compat.TaskAbortedError()
        try:
            self.action_wrapper.assert_task_lock()
        except compat.TaskAbortedError:
            # Glance would only say "Internal Error".
            raise errors.SparseImportError(
                'another task took the import lock of the image')
        if stats is None:
            # The source is still opening.
            return
        # One pass writes the same bytes to every store still in it.
        stores = [str(t.name) for t in targets if t is not self._raw_file]
        task_obj.message = ('Sparse import: %(read)d of %(total)d MiB '
                            'read, %(hashed)d MiB hashed, %(written)d MiB '
                            'written to each of: %(stores)s%(limits)s' %
                            {'read': stats.processed // units.Mi,
                             'hashed': self._hasher.bytes_done // units.Mi,
                             'total': stats.virtual_size // units.Mi,
                             'written': stats.written // units.Mi,
                             'stores': ', '.join(stores),
                             'limits': self._describe_limits()})
        self.task_repo.save(task_obj)

    def _describe_limits(self):
        """The write rate limits in force, for messages; '' for none."""
        if not self._limits:
            return ''
        return '; write rate limit: %s (paces the whole pass)' % (
            throttle.describe_limits(self._limits))

    def revert(self, result, **kwargs):
        if isinstance(result, failure.Failure):
            LOG.error('Sparse import of image %(image)s failed: %(err)s',
                      {'image': self.image_id,
                       'err': result.exception_str})
        target_base.each(self._remove_quietly, [t for t in self._live()
                                                if t not in self._registered])
        if self._raw_file is not None:
            self._raw_file.remove()
        try:
            with self.action_wrapper as action:
                if self._staged_path is not None:
                    # As image_conversion: a failed import leaves the image
                    # queued, so nothing will use the staged data again.
                    # Not once another task holds the lock: it is theirs.
                    _unlink_quietly(self._staged_path)
                for target in self._registered:
                    # Glance's location proxy deletes the RBD image too.
                    action.remove_location_for_store(target.name)
                # Active when we were the last writer and a plugin listed
                # after ours failed the import.
                glance_image.set_queued(action)
                # As image_conversion: every store of the request failed,
                # including those after us that will never run.
                names = self._store_names + self.other_stores
                action.remove_importing_stores(names)
                action.add_failed_stores(names)
        except Exception as e:
            LOG.warning('Could not update image %(image)s while reverting '
                        'its sparse import: %(err)s',
                        {'image': self.image_id, 'err': e})
            target_base.each(self._remove_quietly, self._registered)


def _check_not_deleted(action):
    if action.image_status == 'deleted':
        raise compat.ImportTaskError(
            'Image has been deleted, aborting import.')


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        LOG.warning('Could not remove staged data %(path)s: %(err)s',
                    {'path': path, 'err': e.strerror})


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


class _Refuse(task.Task):
    """Fail the import: the plugin cannot run on this deployment.

    Stands in for the plugin when Glance or the host lacks something it
    needs, so that images meant for RBD fail to import instead of being
    stored there unconverted by Glance.
    """

    def __init__(self, task_type, task_id, action_wrapper, stores,
                 problems):
        self.action_wrapper = action_wrapper
        self.stores = stores
        self.problems = problems
        self._staged_path = None
        super(_Refuse, self).__init__(
            name='%s-SparseRbdImportRefused-%s' % (task_type, task_id))

    def execute(self, file_path):
        try:
            self._staged_path = staging.staged_path(file_path)
        except Exception as e:
            # Only for the cleanup: the message is what matters.
            LOG.warning('Staged data of image %(image)s left in place: '
                        '%(err)s', {'image': self.action_wrapper.image_id,
                                    'err': e})
        raise compat.UploadException(
            'sparse_rbd_import cannot run on this Glance deployment; '
            'missing: %s' % '; '.join(self.problems))

    def revert(self, result, **kwargs):
        # As our import task: the image goes back to queued and every
        # store of the request is failed.
        try:
            with self.action_wrapper as action:
                if self._staged_path is not None:
                    _unlink_quietly(self._staged_path)
                action.set_image_attribute(status='queued')
                action.remove_importing_stores(self.stores)
                action.add_failed_stores(self.stores)
        except Exception as e:
            LOG.warning('Could not update image %(image)s after refusing '
                        'its import: %(err)s',
                        {'image': self.action_wrapper.image_id, 'err': e})


# task_id -> names of the RBD stores get_flow took from Glance's list.
# Glance 33 builds the flow again, with the list already shortened, when
# SQLite says "database is locked"; the retry takes the same stores again.
_TAKEN = collections.OrderedDict()
_TAKEN_KEPT = 256
_TAKEN_LOCK = threading.Lock()


def _take_rbd_stores(task_id, stores):
    """Remove the RBD store names from ``stores``; return them all.

    Includes those a previous call for ``task_id`` already removed.
    """
    with _TAKEN_LOCK:
        taken = list(_TAKEN.get(task_id, ()))
        for name in list(stores):
            if rbd_stores.is_rbd(name):
                stores.remove(name)
                if name not in taken:
                    taken.append(name)
        if taken and task_id is not None:
            _TAKEN[task_id] = taken
            _TAKEN.move_to_end(task_id)
            while len(_TAKEN) > _TAKEN_KEPT:
                _TAKEN.popitem(last=False)
    return taken


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
    try:
        return _get_flow(**kwargs)
    except Exception as e:
        # stevedore would log this and Glance import without us, storing
        # the image unconverted: fail the import instead.
        LOG.exception('sparse_rbd_import could not build its flow')
        stores = kwargs.get('backend') or []
        with _TAKEN_LOCK:
            taken = list(_TAKEN.get(kwargs.get('task_id'), ()))
        named = taken + [n for n in stores if n not in taken]
        if not any(rbd_stores.is_rbd(n) for n in named):
            raise
        return lf.Flow(kwargs.get('task_type')).add(_Refuse(
            kwargs.get('task_type'), kwargs.get('task_id'),
            kwargs['action_wrapper'], named,
            ['a flow it can build (%s: %s)' % (type(e).__name__, e)]))


def _get_flow(**kwargs):
    task_type = kwargs.get('task_type')
    task_id = kwargs.get('task_id')
    flow = lf.Flow(task_type)
    stores = kwargs.get('backend')
    if stores is None:
        # Without Glance's own list there is nothing we can take over.
        LOG.warning('sparse_rbd_import: no target store list; not used')
        return flow
    action_wrapper = kwargs['action_wrapper']
    problems = compat.problems()
    if problems:
        if any(rbd_stores.is_rbd(n) for n in stores):
            LOG.error('sparse_rbd_import cannot run here, failing the '
                      'import of image %(image)s. Missing: %(problems)s',
                      {'image': action_wrapper.image_id,
                       'problems': '; '.join(problems)})
            flow.add(_Refuse(task_type, task_id, action_wrapper,
                             list(stores), problems))
        return flow
    order = plugin_order.configured()
    unsafe = plugin_order.unchecked_conversion(order)
    if unsafe and any(rbd_stores.is_rbd(n) for n in stores):
        LOG.error('sparse_rbd_import refuses the import of image '
                  '%(image)s. Missing: %(problem)s',
                  {'image': action_wrapper.image_id, 'problem': unsafe})
        return flow.add(_Refuse(task_type, task_id, action_wrapper,
                                list(stores), [unsafe]))
    if plugin_order.stand_aside():
        return flow
    names = _take_rbd_stores(task_id, stores)
    ours = [s for s in (rbd_stores.rbd_store(n) for n in names) if s]
    # A store glance_store cannot configure goes back to Glance, which
    # fails it the way it fails any store.
    stores.extend(n for n in names if n not in [s.name for s in ours])
    if not ours:
        return flow
    import_req = kwargs.get('import_req') or {}
    names = [s.name for s in ours]
    others_in_parallel = _glance_uploads_in_parallel(import_req, stores)
    plugin_order.warn_once(order)
    LOG.debug('sparse_rbd_import takes stores %(ours)s of image %(image)s; '
              'Glance uploads %(others)s%(how)s',
              {'ours': names, 'image': action_wrapper.image_id,
               'others': stores or 'none',
               'how': ' in parallel' if others_in_parallel else ''})
    return flow.add(_SparseRbdImport(
        task_id, task_type, kwargs.get('task_repo'),
        action_wrapper, ours, list(stores),
        import_req.get('all_stores_must_succeed', True),
        others_in_parallel, context=kwargs.get('context'),
        stage_raw=order.stage_raw))


def _glance_uploads_in_parallel(import_req, stores):
    """Whether Glance will upload ``stores`` with its parallel import.

    Glance decides after the plugins are built, from the same (shortened)
    list, so asking it the same question now gives the same answer.
    """
    method = (import_req.get('method') or {}).get('name')
    return compat.uploads_in_parallel(method, stores)
