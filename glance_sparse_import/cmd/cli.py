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

"""The ``glance-sparse-import`` command, for use without Glance.

``inspect`` tells what an import of a file would find, write and record;
``import`` writes it into an RBD pool as the ``sparse_rbd_import`` plugin
does. Both run the plugin's own safety checks, reader, copy loop and
hashing, so what they print is what the plugin would do with that file.
"""

import argparse
import glob
import hashlib
import json
import logging
import os
import signal
import sys
import time
import uuid

from oslo_config import cfg
from oslo_utils import units
import pbr.version

from glance_sparse_import.cmd import add_site
from glance_sparse_import import copy
from glance_sparse_import import deployment
from glance_sparse_import import errors
from glance_sparse_import import glance_compat
from glance_sparse_import import hashing
from glance_sparse_import import inspection
from glance_sparse_import import opts
from glance_sparse_import import plugin_order
from glance_sparse_import import rbd_target
from glance_sparse_import import sources
from glance_sparse_import import stores

CONF = cfg.CONF
PROG = 'glance-sparse-import'

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Seconds between progress bar updates.
PROGRESS_INTERVAL = 0.5
# Zero runs are handed to the hashers in pieces of this size when a progress
# bar is shown (see _ProgressHasher).
PROGRESS_PIECE = 4 * units.Mi


class CommandError(Exception):
    """A failure worth one line on stderr, not a traceback."""


class _Discard(object):
    """A target that takes writes and keeps nothing, for ``inspect``."""

    name = 'inspect'

    def write(self, offset, data):
        pass


class _ExtentCounter(object):
    """Pass a source's chunks through, counting runs of data chunks."""

    def __init__(self, source):
        self._source = source
        self.extents = 0

    @property
    def size(self):
        return self._source.size

    def chunks(self):
        end = None
        for chunk in self._source.chunks():
            if chunk.data is not None:
                if chunk.offset != end:
                    self.extents += 1
                end = chunk.offset + chunk.length
            yield chunk


class _ProgressBar(object):
    """A one-line progress bar, drawn only on a terminal."""

    WIDTH = 30

    def __init__(self, stream, label):
        self._stream = stream
        self._label = label
        self._start = time.monotonic()
        self._drawn = False
        self.enabled = stream.isatty()

    def draw(self, done, total):
        fraction = done / total if total else 1.0
        filled = int(self.WIDTH * fraction)
        elapsed = max(time.monotonic() - self._start, 1e-6)
        self._stream.write('\r%s [%s%s] %3d%% %d/%d MiB %.0f MB/s ' % (
            self._label, '#' * filled, ' ' * (self.WIDTH - filled),
            fraction * 100, done // units.Mi, total // units.Mi,
            done / elapsed / 1e6))
        self._stream.flush()
        self._drawn = True

    def complete(self, total):
        """Show the final state, if the bar was shown at all."""
        if self._drawn:
            self.draw(total, total)

    def close(self):
        if self._drawn:
            self._stream.write('\n')
            self._stream.flush()
            self._drawn = False


class _ProgressHasher(object):
    """Feed a ParallelHasher and draw the progress of the hashing.

    Hashing every byte of the virtual size is most of the time an import
    takes, and the hasher queues a zero run as one item, however long: fed
    whole, the copy would end at once and the hashing go on unseen. Fed in
    pieces, its bounded queues keep the bar close to the hashing.
    """

    def __init__(self, hasher, bar, total):
        self._hasher = hasher
        self._bar = bar
        self._total = total
        self._done = 0
        self._next = time.monotonic() + PROGRESS_INTERVAL

    def update(self, data):
        self._hasher.update(data)
        self._advance(len(data))

    def update_zeros(self, length):
        while length > 0:
            n = min(length, PROGRESS_PIECE)
            self._hasher.update_zeros(n)
            self._advance(n)
            length -= n

    def _advance(self, n):
        self._done += n
        if time.monotonic() >= self._next:
            self._bar.draw(self._done, self._total)
            self._next = time.monotonic() + PROGRESS_INTERVAL


def _configure(sources):
    """Parse the configuration as Glance's services do.

    ``sources`` are ``(option, path)`` pairs in command line order, option
    '--config-file' or '--config-dir': oslo.config reads them in that
    order, a directory's ``*.conf`` files sorted by name, later values
    overriding earlier ones.
    """
    opts.register_opts(CONF)
    args = [item for source in sources for item in source]
    try:
        CONF(args=args, project='glance', prog=PROG,
             default_config_files=[], default_config_dirs=[])
    except cfg.Error as e:
        raise CommandError('bad configuration: %s' % e)


def _files_read(sources):
    """The files the configuration came from, in the order read."""
    files = []
    for option, path in sources:
        if option == '--config-dir':
            files.extend(sorted(glob.glob(os.path.join(path, '*.conf'))))
        else:
            files.append(path)
    return files


def _check_readable(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise CommandError('cannot open %s: %s' % (path, e.strerror))
    try:
        if not os.path.isfile(path):
            raise CommandError('%s is not a regular file' % path)
    finally:
        os.close(fd)


def _detect_format(path):
    """The disk format Glance would find in the file, to use as the claim."""
    try:
        name = str(glance_compat.detect_file_format(path))
    except Exception:
        # inspect_image repeats the detection and says what is wrong.
        return 'raw'
    return 'raw' if name == 'gpt' else name


def _hash_algorithm(name):
    name = name or CONF.hashing_algorithm
    try:
        hashlib.new(name)
    except (ValueError, TypeError):
        raise CommandError('unknown hash algorithm: %s' % name)
    return name


def _inspect_image(path, disk_format):
    _check_readable(path)
    claimed = disk_format or _detect_format(path)
    return inspection.inspect_image(
        path, claimed, inspection.max_virtual_size(CONF),
        python_exec=sys.executable)


def _read_image(path, info, targets, hash_algo, label):
    """Copy the image to targets through the plugin's copy loop.

    Returns (stats, extents, checksum, hash_value).
    """
    conf = CONF.sparse_rbd_import
    bar = _ProgressBar(sys.stderr, label)
    hasher = hashing.ParallelHasher(['md5', hash_algo])
    feed = hasher
    if bar.enabled:
        feed = _ProgressHasher(hasher, bar, info.size)
    try:
        with sources.open_source(path, info, CONF,
                                 python_exec=sys.executable) as source:
            counter = _ExtentCounter(source)
            stats, _failed = copy.copy_image(
                counter, targets, feed, conf.zero_block_size)
        checksum, hash_value = hasher.hexdigests()
        bar.complete(info.size)
    except BaseException:
        hasher.close()
        raise
    finally:
        bar.close()
    return stats, counter.extents, checksum, hash_value


def _stored_format(info):
    # Like image_conversion, the plugin keeps raw and iso, converts the rest.
    return info.format if info.format in inspection.RAW_FORMATS else 'raw'


def _summary(info, stats, extents, checksum, hash_algo, hash_value, start):
    return {
        'format': info.format,
        'disk_format': _stored_format(info),
        'virtual_size': info.virtual_size,
        'size': info.size,
        'file_size': info.actual_size,
        'allocated_extents': extents,
        'allocated_bytes': stats.allocated,
        'written_bytes': stats.written,
        'zero_skipped_bytes': stats.zero_skipped,
        'checksum': checksum,
        'os_hash_algo': hash_algo,
        'os_hash_value': hash_value,
        'seconds': round(time.monotonic() - start, 3),
    }


_LABELS = [
    ('name', 'RBD image'),
    ('pool', 'pool'),
    ('location', 'location'),
    ('format', 'format'),
    ('disk_format', 'disk format in Glance'),
    ('virtual_size', 'virtual size'),
    ('size', 'size'),
    ('file_size', 'file size'),
    ('allocated_extents', 'allocated extents'),
    ('allocated_bytes', 'allocated bytes'),
    ('written_bytes', 'bytes written'),
    ('zero_skipped_bytes', 'zero bytes skipped'),
    ('checksum', 'checksum (md5)'),
    ('os_hash_algo', 'os_hash_algo'),
    ('os_hash_value', 'os_hash_value'),
    ('seconds', 'seconds'),
]


def _print(result, as_json, out):
    if as_json:
        json.dump(result, out, indent=2, sort_keys=True)
        out.write('\n')
        return
    width = max(len(label) for _key, label in _LABELS) + 1
    for key, label in _LABELS:
        if key not in result:
            continue
        value = result[key]
        if key.endswith(('_size', '_bytes')) or key == 'size':
            value = _bytes(value)
        out.write('%-*s  %s\n' % (width, label + ':', value))


def _bytes(value):
    if value is None:
        return 'unknown'
    if value < units.Ki:
        return '%d' % value
    for unit, name in ((units.Gi, 'GiB'), (units.Mi, 'MiB'),
                       (units.Ki, 'KiB')):
        if value >= unit:
            return '%d (%.2f %s)' % (value, value / unit, name)


def do_inspect(args):
    start = time.monotonic()
    hash_algo = _hash_algorithm(args.hash_algo)
    info = _inspect_image(args.file, args.format)
    stats, extents, checksum, hash_value = _read_image(
        args.file, info, [_Discard()], hash_algo, 'inspect')
    _print(_summary(info, stats, extents, checksum, hash_algo, hash_value,
                    start), args.json, sys.stdout)


def do_import(args):
    start = time.monotonic()
    hash_algo = _hash_algorithm(args.hash_algo)
    info = _inspect_image(args.file, args.format)
    store = stores.RbdStore(
        name=args.pool, pool=args.pool, user=args.user,
        conf_file=args.conf, chunk_size=args.chunk_size * units.Mi,
        connect_timeout=-1 if args.timeout is None else args.timeout)
    target = rbd_target.RbdTarget(
        store, args.name or str(uuid.uuid4()), info.size,
        writes_in_flight=CONF.sparse_rbd_import.writes_in_flight,
        # Here 0 means no timeout, as the option says.
        op_timeout=(stores.op_timeout(store, CONF.sparse_rbd_import)
                    if args.timeout is None else args.timeout))
    try:
        target.open()
        stats, extents, checksum, hash_value = _read_image(
            args.file, info, [target], hash_algo, 'import')
        target.finish()
    except BaseException:
        _remove(target)
        raise
    result = _summary(info, stats, extents, checksum, hash_algo, hash_value,
                      start)
    result.update(name=target.image_name, pool=store.pool,
                  location=target.url)
    _print(result, args.json, sys.stdout)


def _remove(target):
    try:
        target.remove()
    except Exception as e:
        sys.stderr.write('%s: could not remove RBD image %s from pool %s: '
                         '%s\n' % (PROG, target.image_name,
                                   target.store.pool, e))


def _chunk_size(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or value > 32 or value & (value - 1):
        raise argparse.ArgumentTypeError(
            'must be a power of two from 1 to 32 (MiB)')
    return value


def _timeout(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError('must be seconds, 0 or more')
    return value


PLUGIN_NAMESPACE = 'glance.image_import.plugins'
PLUGIN_NAME = 'sparse_rbd_import'


def _load_plugin(args):
    """Load the plugin as Glance does, before the configuration is parsed.

    As in Glance, the modules it imports register command line options,
    which oslo.config refuses once it has parsed the command line.
    """
    from stevedore import named

    failures = []

    def load_failed(manager, entry_point, error):
        failures.append('%s: %s' % (type(error).__name__, error))

    manager = named.NamedExtensionManager(
        PLUGIN_NAMESPACE, names=[PLUGIN_NAME],
        on_load_failure_callback=load_failed)
    glance_compat.problems()
    args.loaded = bool(manager.names())
    args.load_errors = failures


def _glance_report():
    release = deployment.glance_release()
    problems, warnings = [], []
    supported = deployment.supported_range()
    if release.status == 'absent':
        problems.append('Glance is not installed for %s' % sys.executable)
    elif release.status == 'older':
        problems.append('Glance %s is older than the supported range (%s)'
                        % (release.version, supported))
    elif release.status == 'untested':
        warnings.append('Glance %s is between the supported releases (%s): '
                        'not tested; the plugin detects what it needs, '
                        'and fails every import when something is missing'
                        % (release.version, supported))
    elif release.status == 'newer':
        warnings.append('Glance %s is newer than the supported range (%s): '
                        'not tested' % (release.version, supported))
    return {'version': release.version, 'series': release.series,
            'status': release.status, 'supported': supported,
            'servers': deployment.servers()}, problems, warnings


def _plugins_report():
    """The configured plugin list and what its order means."""
    try:
        plugins = glance_compat.configured_import_plugins()
    except Exception as e:
        return None, [], ['image_import_plugins not read: %s' % e]
    notes = deployment.order_notes(plugins)
    problems = [n.text for n in notes if n.problem]
    unsafe = plugin_order.unchecked_conversion(plugin_order.split(plugins))
    if unsafe:
        problems.append('missing: ' + unsafe)
    return ({'list': plugins,
             'order': [{'what': n.key, 'text': n.text, 'problem': n.problem}
                       for n in notes]}, problems, [])


def _stores_report():
    """Every configured RBD store's thin provisioning and timeout."""
    try:
        stores_found = glance_compat.configured_rbd_stores()
    except Exception as e:
        return [], ['RBD stores not read: %s' % e], []
    bound = CONF.sparse_rbd_import.ceph_op_timeout
    reports, problems, warnings = [], [], []
    for name, group in stores_found:
        label = name or '[glance_store] (single store)'
        timeout = int(group.rados_connect_timeout)
        thin = bool(group.rbd_thin_provisioning)
        reports.append({
            'name': name, 'pool': group.rbd_store_pool,
            'user': group.rbd_store_user,
            'ceph_conf': group.rbd_store_ceph_conf,
            'rbd_thin_provisioning': thin,
            'rados_connect_timeout': timeout,
            'timeout': deployment.describe_timeout(timeout, bound)})
        if not thin:
            warnings.append(
                'store %s: rbd_thin_provisioning is off: the plugin writes '
                'sparse, but glance_store writes every zero of copy-image '
                'and plain uploads' % label)
    if not stores_found:
        problems.append('no RBD store is configured (enabled_backends, or '
                        '[glance_store] default_store): give every file '
                        'Glance reads')
    return reports, problems, warnings


def _requirements_report(path=None):
    missing = deployment.find_missing(path)
    report = [{'name': m.requirement.name, 'kind': m.requirement.kind,
               'reason': m.reason, 'purpose': m.requirement.purpose,
               'debian': m.requirement.debian, 'rhel': m.requirement.rhel}
              for m in missing]
    problems = ['%s (%s, %s: %s) is missing: %s' % (
        m.requirement.name, m.requirement.kind, m.requirement.purpose,
        m.reason, deployment.install_hint(m.requirement, sys.executable))
        for m in missing]
    return report, problems


def do_check(args):
    """Say whether the plugin loads and what it lacks here."""
    sources = args.config
    failures = args.load_errors
    problems = []
    warnings = []
    if not args.loaded:
        problems.append('the plugin does not load: %s' %
                        ('; '.join(failures) or 'no entry point'))
    glance, found, warned = _glance_report()
    problems += found
    warnings += warned
    requirements, found = _requirements_report()
    problems += found
    modules = {r.name for r in deployment.REQUIREMENTS if r.kind == 'module'}
    internals = [p for p in glance_compat.problems()
                 if p.split(' (')[0] not in
                 {'Python module %s' % m for m in modules}]
    problems += ['Glance internal missing: %s' % p for p in internals]
    plugins = stores_found = None
    if sources:
        plugins, found, warned = _plugins_report()
        problems += found
        warnings += warned
        stores_found, found, warned = _stores_report()
        problems += found
        warnings += warned
    report = {'loaded': args.loaded, 'load_errors': failures,
              'config_files': _files_read(sources),
              'glance': glance, 'missing': internals,
              'requirements_missing': requirements,
              'fallbacks': glance_compat.describe(),
              'plugins': plugins, 'stores': stores_found,
              'enabled': (None if plugins is None else
                          deployment.PLUGIN_NAME in plugins['list']),
              'problems': problems, 'warnings': warnings,
              'ok': not problems}
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print_check(report)
    if problems:
        raise CommandError('the plugin cannot run here: %s' %
                           '; '.join(problems))


def _print_check(report):
    print('plugin %s (%s): %s' % (
        PLUGIN_NAME, PLUGIN_NAMESPACE,
        'loads' if report['loaded'] else 'does NOT load'))
    for failure in report['load_errors']:
        print('  load error: %s' % failure)
    glance = report['glance']
    if glance['version']:
        print('Glance %s (%s): %s' % (
            glance['version'], glance['series'] or 'unknown series',
            {'supported': 'supported (%s)' % glance['supported'],
             'older': 'NOT supported, older than %s' % glance['supported'],
             'newer': 'newer than %s, not tested' % glance['supported']
             }[glance['status']]))
    for server in glance['servers']:
        print('  server: %s' % server)
    for what, choice in sorted(report['fallbacks'].items()):
        print('%s: %s' % (what, choice))
    if report['config_files']:
        print('configuration read, in order: %s' %
              ', '.join(report['config_files']))
    plugins = report['plugins']
    if plugins is None:
        print('image_import_plugins: not read (give the files or the '
              'directory Glance reads with --config-file or --config-dir)')
    else:
        print('image_import_plugins = %s' % plugins['list'])
        for note in plugins['order']:
            print('  order: %s' % note['text'])
    for store in report['stores'] or ():
        print('RBD store %s: pool %s, rbd_thin_provisioning %s, '
              'rados_connect_timeout %s' % (
                  store['name'] or '[glance_store]', store['pool'],
                  store['rbd_thin_provisioning'], store['timeout']))
    for warning in report['warnings']:
        print('warning: %s' % warning)
    if report['ok']:
        print('OK: imports to RBD stores will use the plugin' +
              (' (see the warnings above)' if report['warnings'] else ''))
    else:
        print('NOT OK: imports to RBD stores will fail or bypass the '
              'plugin:')
        for problem in report['problems']:
            print('  - %s' % problem)


def _config_source(option):
    def tag(path):
        return (option, path)
    return tag


def _config_options(parser, dest):
    """--config-file and --config-dir, kept in command line order."""
    parser.add_argument(
        '--config-file', action='append', dest=dest,
        type=_config_source('--config-file'), metavar='PATH',
        help='a configuration file Glance reads (glance-api.conf, '
             'glance-image-import.conf, ...); repeat for several, in the '
             'order Glance is given them. Default: none, built-in '
             'defaults.')
    parser.add_argument(
        '--config-dir', action='append', dest=dest,
        type=_config_source('--config-dir'), metavar='DIR',
        help='a directory whose *.conf files Glance reads, in name order '
             '(glance.conf.d of RHOSO and Kolla), as Glance\'s '
             '--config-dir')


def build_parser(argv=None):
    # No abbreviations: --conf of import would be ambiguous here.
    parser = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description='Inspect a disk image, or import it into a Ceph RBD '
                    'pool, exactly as the sparse_rbd_import Glance plugin '
                    'would.')
    _config_options(parser, 'config')
    parser.add_argument('--debug', action='store_true',
                        help='log what the plugin modules log, in detail')
    parser.add_argument('--version', action='version',
                        version=pbr.version.VersionInfo(
                            'glance-sparse-import').version_string())
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    def common(p):
        p.add_argument('file', metavar='FILE', help='the disk image')
        p.add_argument(
            '--format', metavar='FMT',
            help='the disk_format the image claims (raw, qcow2, vmdk, vhd, '
                 'vhdx, vdi, iso); checked like Glance checks it. Default: '
                 'the format found in the file.')
        p.add_argument(
            '--hash-algo', metavar='ALGO',
            help='multihash algorithm; default: hashing_algorithm '
                 '(sha512 unless configured)')
        p.add_argument('--json', action='store_true',
                       help='print the result as JSON')

    p = sub.add_parser(
        'inspect', help='check and read an image, import nothing',
        description='Run the safety checks, read the image once and print '
                    'its format, sizes, allocated extents, the bytes an '
                    'import would write and the checksums Glance would '
                    'record.')
    common(p)
    p.set_defaults(func=do_inspect)

    p = sub.add_parser(
        'import', help='write an image into an RBD pool',
        description='Write an image into an RBD pool as the plugin does '
                    '(same checks, image layout, protected snapshot "snap" '
                    'and checksums), then print its location and '
                    'checksums. On failure nothing is left in the pool.')
    common(p)
    p.add_argument('--conf', required=True, metavar='CEPH_CONF',
                   help='ceph.conf of the cluster')
    p.add_argument('--pool', required=True, help='RBD pool')
    p.add_argument('--user', default='glance',
                   help='Ceph client id (default: glance, as '
                        'rbd_store_user)')
    p.add_argument('--name',
                   help='RBD image name; a Glance image id if it is to be '
                        'registered (default: a new UUID)')
    p.add_argument('--chunk-size', type=_chunk_size, default=8,
                   metavar='MiB',
                   help='RBD object size, as rbd_store_chunk_size '
                        '(default: 8)')
    p.add_argument('--timeout', type=_timeout, metavar='SECONDS',
                   help='Ceph connect and operation timeout, as '
                        'rados_connect_timeout (default: ceph_op_timeout, '
                        '120)')
    p.set_defaults(func=do_import)

    p = sub.add_parser(
        'check', help='check the plugin can run in this Glance',
        description='Load the plugin the way Glance does (stevedore, '
                    'namespace glance.image_import.plugins); report the '
                    'Glance release and its servers, the Glance internals '
                    'the plugin lacks and the fallbacks it uses, the '
                    'programs and Python bindings missing with the '
                    'packages that provide them, and, from the '
                    'configuration Glance reads (every --config-file and '
                    '--config-dir it is given, in the same order), the '
                    'import plugin list and its order and every RBD '
                    'store\'s thin provisioning and timeout. Exits 1, '
                    'naming the cause, unless imports to RBD stores will '
                    'use the plugin.')
    _config_options(p, 'check_config')
    p.add_argument('--json', action='store_true',
                   help='print the result as JSON')
    p.set_defaults(func=do_check, preload=_load_plugin)
    add_site.register(sub, sys.argv[1:] if argv is None else argv)
    return parser


def _on_sigterm(signum, frame):
    # Unwinds like Ctrl-C, so a partial RBD image is removed.
    raise KeyboardInterrupt()


def main(argv=None):
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # What the plugin would log for Glance's operator goes to stderr; the
    # error line at the end is the short summary.
    logging.basicConfig(
        stream=sys.stderr,
        format=('%(levelname)s %(name)s: %(message)s' if args.debug
                else '%(levelname)s: %(message)s'),
        level=logging.DEBUG if args.debug else logging.WARNING)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args.config = ((args.config or []) +
                       (getattr(args, 'check_config', None) or []))
        if getattr(args, 'preload', None):
            args.preload(args)
        _configure(args.config)
        args.func(args)
    except (CommandError, errors.SparseImportError) as e:
        sys.stderr.write('%s: error: %s\n' % (PROG, e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write('%s: interrupted\n' % PROG)
        return EXIT_INTERRUPTED
    return 0


if __name__ == '__main__':
    sys.exit(main())
