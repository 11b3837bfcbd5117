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

"""``glance-sparse-import add-site``: copy an active image to more stores.

Run where glance-api runs, with its configuration and Ceph keyrings. The
image's protected ``snap`` in an RBD store that holds it is read once, by
extents; every new RBD store is written in the same pass with
glance_store's layout; md5 and the image's ``os_hash_algo`` are computed
over the virtual size and must equal the image's recorded values before
any copy is registered, as a location with ``{'store': id}``, through the
images API (``PATCH add /locations/-``, which Glance allows on an active
image only with ``show_multiple_locations``). Whatever was written to a
store that does not end up registered is removed.
"""

import argparse
import sys
import urllib.parse

from oslo_config import cfg
from oslo_utils import units

from glance_sparse_import.cmd import common
from glance_sparse_import import copy
from glance_sparse_import import errors
from glance_sparse_import import glance_compat
from glance_sparse_import import hashing
from glance_sparse_import import image_api
from glance_sparse_import import opts
from glance_sparse_import.sources import rbd as rbd_source
from glance_sparse_import import stores
from glance_sparse_import.targets import base as target_base
from glance_sparse_import.targets import rbd as rbd_target
from glance_sparse_import.targets import throttle

CONF = cfg.CONF

IMPORT_LOCK = 'os_glance_import_task'


class SiteResult(object):
    """What happened to one store: ``url`` once added, else ``error``."""

    def __init__(self, store):
        self.store = store
        self.url = None
        self.error = None
        self.written = 0

    def line(self, image_id):
        if self.url:
            return 'image %s: store %s: added %s (%d bytes written)' % (
                image_id, self.store, self.url, self.written)
        return 'image %s: store %s: NOT added: %s' % (
            image_id, self.store, self.error)


def configured_stores():
    """``({name: RbdStore}, {name: type})`` of ``enabled_backends``.

    Read from the option groups: the CLI configures no glance_store
    driver, whose set-up would connect to every cluster.
    """
    rbd = {}
    for name, group in glance_compat.configured_rbd_stores():
        if name is None:
            continue
        rbd[name] = stores.RbdStore(
            name=name, pool=str(group.rbd_store_pool),
            user=str(group.rbd_store_user),
            conf_file=str(group.rbd_store_ceph_conf),
            chunk_size=int(group.rbd_store_chunk_size) * units.Mi,
            connect_timeout=int(group.rados_connect_timeout))
    return rbd, dict(CONF.enabled_backends or {})


def check_stores(names, rbd, kinds):
    """Refuse store names that are not RBD stores of this Glance.

    :raises CommandError: naming every bad store
    """
    if not kinds:
        raise common.CommandError(
            'no enabled_backends in the configuration: add-site needs a '
            'multi-store Glance (give the files glance-api reads)')
    bad = []
    for name in names:
        if name not in kinds:
            bad.append('%s is not a store of this Glance (enabled_backends: '
                       '%s)' % (name, ', '.join(sorted(kinds))))
        elif name not in rbd:
            bad.append('%s is a %s store, not an RBD store'
                       % (name, kinds[name]))
    if bad:
        raise common.CommandError('; '.join(bad))


def parse_rbd_url(url):
    """``(fsid, pool, image, snapshot)`` of an ``rbd://`` location URL."""
    parsed = urllib.parse.urlsplit(url)
    parts = [urllib.parse.unquote(p)
             for p in (parsed.netloc + parsed.path).split('/')]
    if parsed.scheme != 'rbd' or len(parts) != 4 or not all(parts):
        return None
    return tuple(parts)


def check_image(image, names):
    """Refuse an image add-site cannot or must not touch.

    :raises CommandError: not active, locked by an import, already in one
        of ``names``, or its locations not shown
    """
    image_id = image['id']
    if image.get('status') != 'active':
        raise common.CommandError('image %s is %s, not active'
                                  % (image_id, image.get('status')))
    if image.get(IMPORT_LOCK):
        raise common.CommandError(
            'image %s is locked by import task %s: try again when it '
            'ends' % (image_id, image[IMPORT_LOCK]))
    held = set(filter(None, (image.get('stores') or '').split(',')))
    already = sorted(held & set(names))
    if already:
        raise common.CommandError('image %s is already in store(s) %s'
                                  % (image_id, ', '.join(already)))
    if 'locations' not in image:
        raise common.CommandError(
            'the images API does not show locations: use an internal '
            'glance-api endpoint with show_multiple_locations = True')


def source_location(image, rbd):
    """``(RbdStore, pool, name, snapshot, fsid)`` to read the image from.

    The first location of an RBD store of this configuration, whose URL
    names that store's pool.

    :raises CommandError: the image has no such location
    """
    for location in image.get('locations') or ():
        store = rbd.get((location.get('metadata') or {}).get('store'))
        parts = parse_rbd_url(location.get('url') or '')
        if store is None or parts is None:
            continue
        fsid, pool, name, snapshot = parts
        if pool == store.pool:
            return store, pool, name, snapshot, fsid
    raise common.CommandError('image %s has no location in an RBD store of '
                              'this configuration' % image['id'])


def _unchanged(before, after):
    """What differs in ``after`` that add-site must not see change."""
    changed = []
    for key in ('status', 'size', 'checksum', 'os_hash_algo',
                'os_hash_value', IMPORT_LOCK):
        if before.get(key) != after.get(key):
            changed.append('%s %s -> %s' % (key, before.get(key),
                                            after.get(key)))
    return changed


def check_unchanged(before, after):
    """Refuse to register copies of an image that changed during the copy.

    :raises CommandError: an import took the image's lock (named first:
        the one change an operator waits out), or ``after`` differs
    """
    if after.get(IMPORT_LOCK):
        raise common.CommandError(
            'image %s was locked by import task %s during the copy: try '
            'again when it ends' % (before['id'], after[IMPORT_LOCK]))
    changed = _unchanged(before, after)
    if changed:
        raise common.CommandError('image %s changed during the copy: %s'
                                  % (before['id'], '; '.join(changed)))


class SiteAdder(object):
    """Add one image to several RBD stores in one pass over its data."""

    def __init__(self, api, rbd, progress=True):
        self.api = api
        self.rbd = rbd
        self.conf = CONF.sparse_rbd_import
        self.progress = progress
        # A site the copy dropped (a full pool, say) is removed at once,
        # not once the other sites are written; _remove waits for it.
        self._removals = target_base.Removals()

    def _source(self, store, pool, name, snapshot):
        return rbd_source.RbdSource(
            store, pool, name, self.conf.request_size, snapshot=snapshot,
            op_timeout=stores.op_timeout(store, self.conf))

    def _target(self, store, image_id, size, location_urls):
        return rbd_target.RbdTarget(
            store, image_id, size,
            writes_in_flight=self.conf.writes_in_flight,
            op_timeout=stores.op_timeout(store, self.conf),
            # An RBD image of this name that no location points at is what
            # an earlier add-site or import left: replaced.
            in_use=lambda url: url in location_urls)

    def add(self, image_id, names):
        """Copy ``image_id`` to the stores ``names``; return SiteResults.

        :raises CommandError, SparseImportError: nothing was added (every
            store written has been cleaned)
        """
        image = self.api.get_image(image_id)
        check_image(image, names)
        store, pool, name, snapshot, fsid = source_location(image, self.rbd)
        results = {n: SiteResult(n) for n in names}
        urls = {loc['url'] for loc in image['locations']}
        source = self._source(store, pool, name, snapshot)
        targets = []
        registered = set()
        try:
            with source:
                if source.fsid != fsid:
                    raise common.CommandError(
                        'store %s: the cluster\'s fsid is %s, the '
                        'location\'s %s' % (store.name, source.fsid, fsid))
                if source.size != image['size']:
                    raise common.CommandError(
                        'store %s: %s/%s@%s has %d bytes, the image %s'
                        % (store.name, pool, name, snapshot, source.size,
                           image['size']))
                # All of them removed should anything but a StoreError
                # interrupt the opening.
                targets[:] = [self._target(self.rbd[n], image_id,
                                           source.size, urls)
                              for n in names]
                failed = target_base.each(lambda t: t.open(), targets)
                for target, error in failed.items():
                    # Its open has removed what it created.
                    results[target.name].error = str(error)
                targets[:] = [t for t in targets if t not in failed]
                if not targets:
                    raise errors.StoreError('; '.join(
                        r.error for r in results.values()))
                try:
                    written, digests = self._copy(source, targets, image,
                                                  results)
                except errors.SourceError:
                    self._check_exists(image_id)
                    raise
            # First: a source deleted under the copy reads as zeros, which
            # the hashes would only call different data.
            check_unchanged(image, self._check_exists(image_id))
            self._verify(image, written, digests)
            for target in targets:
                result = results[target.name]
                if result.error:
                    continue
                try:
                    self.api.add_location(image_id, target.url,
                                          stores.location_metadata(
                                              target.store))
                except image_api.ImageNotFound:
                    raise common.CommandError('image %s was deleted during '
                                              'the copy' % image_id)
                except image_api.ImageAPIError as e:
                    result.error = 'registration refused: %s' % e
                    self._remove(target, result)
                    continue
                registered.add(target.name)
                result.url = target.url
        except BaseException as e:
            left = [t for t in targets if t.name not in registered]
            for target in left:
                if results[target.name].error is None:
                    results[target.name].error = str(e) or repr(e)
            target_base.each(lambda t: self._remove(t, results[t.name]),
                             left)
            if not registered:
                raise
        self._recheck(image, registered)
        return [results[n] for n in names]

    def _check_exists(self, image_id):
        """The image as the API shows it now.

        :raises CommandError: it was deleted
        """
        try:
            return self.api.get_image(image_id)
        except image_api.ImageNotFound:
            raise common.CommandError('image %s was deleted during the copy'
                                      % image_id)

    def _copy(self, source, targets, image, results):
        """Write every target; return ``(bytes processed, digests)``."""
        algorithms = ['md5']
        if image.get('os_hash_algo'):
            algorithms.append(image['os_hash_algo'])
        hasher = hashing.ParallelHasher(algorithms)
        # [sparse_rbd_import] store_write_rate_limit paces each site's
        # writes as it paces the import's.
        limits = opts.store_write_rate_limits(self.conf,
                                              [t.name for t in targets])
        label = 'add-site %s' % image['id']
        if limits:
            label += ' (limit %s)' % throttle.describe_limits(limits)
        bar = common.ProgressBar(sys.stderr, label)
        feed = hasher
        if self.progress and bar.enabled:
            feed = common.ProgressHasher(hasher, bar, source.size)
        try:
            engine = copy.Copy(
                [throttle.wrap(t, limits.get(t.name, 0)) for t in targets],
                feed,
                self.conf.zero_block_size, tolerate_target_failures=True,
                on_drop=lambda t, _e: self._removals.start(
                    throttle.unwrap(t)))
            stats, failed = engine.run(source)
            failed = {throttle.unwrap(t): e for t, e in failed.items()}
            digests = hasher.hexdigests()
            bar.complete(source.size)
        except BaseException:
            hasher.close()
            raise
        finally:
            bar.close()
        active = [throttle.unwrap(t) for t in engine.active]
        failed.update(target_base.each(lambda t: t.finish(), active))
        for target, error in failed.items():
            results[target.name].error = str(error)
        target_base.each(lambda t: self._remove(t, results[t.name]),
                         failed)
        for target in active:
            if target not in failed:
                results[target.name].written = target.bytes_written
        if not any(results[t.name].error is None for t in targets):
            raise errors.StoreError('every store failed')
        return stats.processed, digests

    @staticmethod
    def _verify(image, size, digests):
        found = {'size': size, 'checksum': digests[0]}
        if len(digests) > 1:
            found['os_hash_value'] = digests[1]
        wrong = ['%s %s, the image records %s' % (k, v, image.get(k))
                 for k, v in sorted(found.items()) if image.get(k) != v]
        if wrong:
            raise errors.InvalidImage('the data read differs from the '
                                      'image: %s' % '; '.join(wrong))

    def _remove(self, target, result):
        removal = self._removals.take(target)
        if not removal.wait():
            result.error = '%s; and the RBD image %s/%s could not be ' \
                'removed: %s' % (result.error, target.store.pool,
                                 target.image_name, removal.error)

    def _recheck(self, image, registered):
        if not registered:
            return
        after = self.api.get_image(image['id'])
        changed = _unchanged(image, after)
        held = set(filter(None, (after.get('stores') or '').split(',')))
        missing = sorted(registered - held)
        if changed or missing:
            raise common.CommandError(
                'image %s after registration: %s' % (image['id'], '; '.join(
                    changed + ['not in store %s' % m for m in missing])))


def _stores_list(text):
    names = []
    for name in text.split(','):
        name = name.strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise argparse.ArgumentTypeError('no store given')
    return names


def _merge_config(args):
    args.config = args.config + (args.site_config or [])


def do_add_site(args):
    if bool(args.image_id) == bool(args.all_images):
        raise common.CommandError('give an IMAGE_ID or --all-images')
    rbd, kinds = configured_stores()
    check_stores(args.stores, rbd, kinds)
    api = image_api.from_arguments(args)
    adder = SiteAdder(api, rbd, progress=not args.quiet)
    if args.image_id:
        jobs = [(args.image_id, args.stores)]
    else:
        jobs = []
        for image in api.list_images(status='active'):
            held = set(filter(None, (image.get('stores') or '').split(',')))
            missing = [n for n in args.stores if n not in held]
            if missing and held & set(rbd):
                jobs.append((image['id'], missing))
    failures = 0
    total = 0
    for image_id, names in jobs:
        total += len(names)
        try:
            results = adder.add(image_id, names)
        except (common.CommandError, errors.SparseImportError) as e:
            failures += len(names)
            for name in names:
                print('image %s: store %s: NOT added: %s'
                      % (image_id, name, e))
            sys.stdout.flush()
            if not args.all_images:
                raise
            continue
        for result in results:
            print(result.line(image_id))
            if result.error:
                failures += 1
        sys.stdout.flush()
    if args.all_images:
        print('%d image(s), %d store copies added, %d failed'
              % (len(jobs), total - failures, failures))
    if failures:
        raise common.CommandError('%d of %d store copies not added'
                                  % (failures, total))


def register(sub, argv):
    """Add the ``add-site`` subcommand to the ``sub`` subparsers."""
    p = sub.add_parser(
        'add-site', help='copy an active image to more RBD stores',
        description='Copy an active image from an RBD store that holds it '
                    'to more RBD stores (DCN sites) in one pass, verify '
                    'size, checksum and os_hash_value against the image, '
                    'then register each copy as a location of its store. '
                    'Run it where glance-api runs: it reads glance-api\'s '
                    'configuration and uses its Ceph keyrings. Glance is '
                    'reached as the openstack client reaches it; the '
                    'endpoint must be an internal one with '
                    'show_multiple_locations = True and the credentials an '
                    'admin\'s. Exits 0 only if every store was added.')
    common.config_options(p, 'site_config')
    p.add_argument('image_id', nargs='?', metavar='IMAGE_ID',
                   help='the image to copy')
    p.add_argument('--stores', required=True, type=_stores_list,
                   metavar='S1[,S2...]',
                   help='the RBD stores (enabled_backends names) to add')
    p.add_argument('--all-images', action='store_true',
                   help='instead of one image, every active image in an '
                        'RBD store that lacks some of --stores')
    p.add_argument('--quiet', action='store_true',
                   help='no progress bar, even on a terminal')
    p.set_defaults(os_config_loader=None)
    if 'add-site' in argv:
        # openstacksdk's loader takes most of a second to import: only
        # for this command.
        image_api.register_arguments(p, argv)
    p.set_defaults(func=do_add_site, preload=_merge_config)
