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

"""Every Glance, glance_store and oslo internal the plugin touches.

The plugin runs inside Glance's API worker and needs more of Glance than
its plugin interface: its exceptions, task and quota helpers, database
models, the image domain object behind ``_ImportActions``, its format
inspector and some of its options, and the configured glance_store RBD
store objects. Those differ between Glance 22 (Wallaby) and today. This
module is the only one that names them, so the next Glance release changes
one file; the rest of the plugin uses what it exports.

Fallbacks are chosen by what is present, never by version numbers:

* format inspector: ``oslo_utils.imageutils.format_inspector`` with
  ``InspectWrapper.formats`` (oslo.utils 7.4+); else Glance's own
  ``glance.common.format_inspector`` with ``detect_file_format`` (Glance
  26 to 29, and distribution builds of older Glance that carry the 2024
  backports), used as that Glance's ``image_conversion`` uses it; else
  oslo.utils 7.3's, without ``formats``; else none, and every import is
  refused (Glance 22 to 25 as released: oslo.utils 7.4 goes into their
  environment).
* ``[image_format] vmdk_allowed_types`` (Glance 23.1+): else that
  option's default, ``streamOptimized`` and ``monolithicSparse``.
* ``_ImportActions.image_disk_format`` and ``image_extra_properties``
  (Glance 25+): else the same attributes of the image the action wraps.
* ``_ImportActions.set_image_attribute`` accepting ``size`` (Glance 23+,
  found by calling it on a stand-in image): else ``size`` is set on the
  image the action wraps, as Glance 22's own ``ImageProxy.set_data``
  does.
* ``[image_format] gpt_safety_checks_nonfatal`` (Glance 30+): else
  Glance 30's default, ``['mbr']``; only oslo.utils' inspector knows GPT.
* the RBD store's ``store_conf`` (glance_store 5.0+): else the option group
  glance_store 4.x reads itself.
* ``glance.db.sqlalchemy.api.session_for_read`` (Glance 31+): else
  ``get_session()``.
* ``glance.async_.flows.parallel_api_image_import`` (Glance 33+): else
  Glance uploads its stores one after the other.

Glance options the plugin reads, registered here: ``image_size_cap``,
``hashing_algorithm``, ``metadata_encryption_key``, ``[wsgi]
python_interpreter``, ``[image_format] vmdk_allowed_types`` (and the GPT
option above); glance_store's ``enabled_backends`` and ``[glance_store]
default_store``; ``[image_import_opts] image_import_plugins`` for the check.

A missing internal never stops this module (or the plugin) from importing:
stevedore would swallow the error and Glance would import without the
plugin. ``problems()`` lists what is missing instead; ``plugin.get_flow``
then fails every import that names an RBD store with that list.
"""

import contextlib
import importlib
import importlib.util
import threading
import types

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

# What the plugin cannot run without, as (what, why) pairs.
_PROBLEMS = []


def _missing(what, error):
    _PROBLEMS.append((what, str(error) or type(error).__name__))


def _import(name, what=None):
    try:
        return importlib.import_module(name)
    except Exception as e:  # any error: the module may fail half-way
        if what is not False:
            _missing(what or name, e)
        return None


def _attr(module, name, what=None):
    """``module.name``, or None recorded as missing (unless what=False)."""
    if module is not None and hasattr(module, name):
        return getattr(module, name)
    if module is not None and what is not False:
        _missing(what or '%s.%s' % (module.__name__, name),
                 'not in this release')
    return None


def _import_opt(name, module, group=None, required=True):
    try:
        CONF.import_opt(name, module, group=group)
        return True
    except (ImportError, cfg.NoSuchOptError, cfg.NoSuchGroupError) as e:
        if required:
            _missing('option [%s] %s' % (group or 'DEFAULT', name), e)
        return False


# --- Glance ----------------------------------------------------------------

_exception = _import('glance.common.exception')


class _Placeholder(Exception):
    """Stands for a Glance exception this Glance does not have."""


UploadException = (_attr(_exception, 'UploadException') or
                   _Placeholder)
TaskAbortedError = _attr(_exception, 'TaskAbortedError') or _Placeholder
ImportTaskError = _attr(_exception, 'ImportTaskError') or _Placeholder
StorageQuotaFull = _attr(_exception, 'StorageQuotaFull') or _Placeholder

_api_common = _import('glance.api.common')
_check_quota = _attr(_api_common, 'check_quota')
_crypt = _import('glance.common.crypt')
_urlsafe_decrypt = _attr(_crypt, 'urlsafe_decrypt')


class _Deferred(object):
    """Glance modules looked up on first use.

    Importing them starts Glance's database and thread pool machinery,
    which the command line tool does not need; inside Glance they are
    already imported.
    """

    def __init__(self):
        self._loaded = False
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True
        return self

    def _load(self):
        self.script_utils = _import('glance.common.scripts.utils')
        self.get_task = _attr(self.script_utils, 'get_task')
        self.db = _import('glance.db')
        self.db_get_api = _attr(self.db, 'get_api')
        db_api = _import('glance.db.sqlalchemy.api')
        self.session_for_read = _attr(db_api, 'session_for_read',
                                      what=False)
        self.get_session = _attr(db_api, 'get_session', what=False)
        if db_api is not None and not (self.session_for_read or
                                       self.get_session):
            _missing('glance.db.sqlalchemy.api.session_for_read or '
                     'get_session', 'not in this release')
        self.ImageLocation = _attr(_import('glance.db.sqlalchemy.models'),
                                   'ImageLocation')
        # The parallel store upload: Glance 33 and later.
        self.parallel_api_image_import = _import(
            'glance.async_.flows.parallel_api_image_import', what=False)
        api_image_import = _import('glance.async_.flows.api_image_import')
        actions = _attr(api_image_import, '_ImportActions')
        for name in _ACTIONS if actions else ():
            _attr(actions, name, 'glance.async_.flows.api_image_import.'
                  '_ImportActions.' + name)
        wrapper = _attr(api_image_import, 'ImportActionWrapper')
        _attr(wrapper, 'assert_task_lock',
              'ImportActionWrapper.assert_task_lock')
        self.action_reads = actions is not None and all(
            hasattr(actions, name) for name in _ACTION_READS)
        self.sets_size = _sets_size(actions)


def _sets_size(actions):
    """Whether ``actions.set_image_attribute`` accepts ``size``.

    Glance up to 22 allows only status, formats and virtual_size: it
    raises AttributeError before setting anything. Called on a stand-in
    image, not on one of Glance's.
    """
    if actions is None or not hasattr(actions, 'set_image_attribute'):
        return False
    probe = actions.__new__(actions)
    probe._image = types.SimpleNamespace()
    try:
        probe.set_image_attribute(size=0)
    except AttributeError:
        return False
    return getattr(probe._image, 'size', None) == 0


_deferred = _Deferred()

# What the plugin calls on the action of an ImportActionWrapper.
_ACTIONS = ('image_status',
            'add_importing_stores', 'remove_importing_stores',
            'add_failed_stores', 'remove_failed_stores',
            'set_image_attribute', 'remove_location_for_store')
# Read from the wrapped image where the action lacks them (Glance < 25).
_ACTION_READS = ('image_disk_format', 'image_extra_properties')

# Glance's limits for qemu-img info; the same values as every Glance since
# they were introduced if a release moves them.
_async_utils = _import('glance.async_.utils', what=False)
QEMU_IMG_PROC_LIMITS = (
    getattr(_async_utils, 'QEMU_IMG_PROC_LIMITS', None) or
    processutils.ProcessLimits(cpu_time=2, address_space=units.Gi))

for _opt, _group in (('image_size_cap', None), ('hashing_algorithm', None),
                     ('metadata_encryption_key', None),
                     ('python_interpreter', 'wsgi')):
    _import_opt(_opt, 'glance.common.config', group=_group)
_HAS_VMDK_OPTION = _import_opt('vmdk_allowed_types', 'glance.common.config',
                               group='image_format', required=False)
# The option's default from Glance 23.1, for Glance without it.
_VMDK_ALLOWED_DEFAULT = ('streamOptimized', 'monolithicSparse')
_HAS_GPT_OPTION = _import_opt('gpt_safety_checks_nonfatal',
                              'glance.common.config', group='image_format',
                              required=False)
# Glance 30's default, for Glance without the option.
_GPT_NONFATAL_DEFAULT = ('mbr',)


def get_task(task_repo, task_id):
    """The task ``task_id``, or None when it no longer exists."""
    return _deferred.load().get_task(task_repo, task_id)


def check_quota(context, size, image_id):
    """Glance's legacy ``user_storage_quota`` check for ``size`` bytes.

    :raises StorageQuotaFull: the owner's quota would be exceeded
    """
    _check_quota(context, size, _deferred.load().db_get_api(),
                 image_id=image_id)


def urlsafe_decrypt(key, value):
    """A location value decrypted with ``metadata_encryption_key``."""
    return _urlsafe_decrypt(key, value)


@contextlib.contextmanager
def db_reader():
    """A database session of Glance's API worker, for reading."""
    glance = _deferred.load()
    if glance.session_for_read is not None:
        with glance.session_for_read() as session:
            yield session
        return
    session = glance.get_session()
    try:
        yield session
    finally:
        session.close()


def image_location_model():
    """Glance's SQLAlchemy model of image locations."""
    return _deferred.load().ImageLocation


def image_of(action):
    """The image domain object an ``_ImportActions`` wraps.

    ``set_image_attribute`` allows only some attributes; locations and
    hashes are set on this object, as ``ImageProxy.set_data`` does.
    """
    return action._image


def image_disk_format(action):
    """The disk_format the image claims."""
    if _deferred.load().action_reads:
        return action.image_disk_format
    return image_of(action).disk_format


def image_extra_properties(action):
    """A copy of the image's extra properties, as a dict."""
    if _deferred.load().action_reads:
        return action.image_extra_properties
    return dict(image_of(action).extra_properties)


def set_image_attribute(action, **attrs):
    """``action.set_image_attribute(**attrs)``, ``size`` included.

    Where Glance refuses ``size`` there (up to 22), it is set on the
    wrapped image, as that Glance's ``ImageProxy.set_data`` sets it; the
    action saves the image on leaving the wrapper either way.
    """
    if 'size' in attrs and not _deferred.load().sets_size:
        image_of(action).size = attrs.pop('size')
    if attrs:
        action.set_image_attribute(**attrs)


def domain_image(action):
    """The ``glance.domain.Image`` under the proxies of an action's image.

    Every Glance proxy layer keeps the object it wraps as ``base``.
    """
    image = image_of(action)
    while hasattr(image, 'base'):
        image = image.base
    return image


def reopen_active(action):
    """Move an ``active`` image back to ``importing``, unchecked.

    Glance's domain model has no way from ``active`` to ``queued``, which
    a revert after the image went active needs. It keeps the status in
    ``Image._status`` and, loading an image, sets any status without a
    check; the same is done here, so the ordinary ``importing`` to
    ``queued`` transition (which clears ``size`` and ``virtual_size``)
    can follow. Saving then updates the row only while it is still
    ``active``.

    :raises AttributeError: this Glance's image keeps no ``_status``
    """
    image = domain_image(action)
    if image.status != 'active':
        return
    if not hasattr(image, '_status'):
        raise AttributeError('glance.domain.Image has no _status')
    image._status = 'importing'


def vmdk_allowed_types():
    """The VMDK create-types allowed, as Glance 23.1+ configures."""
    if _HAS_VMDK_OPTION:
        return list(CONF.image_format.vmdk_allowed_types)
    return list(_VMDK_ALLOWED_DEFAULT)


def gpt_nonfatal_checks():
    """The GPT safety checks that only warn, as Glance 30+ configures."""
    if _HAS_GPT_OPTION:
        return list(CONF.image_format.gpt_safety_checks_nonfatal)
    return list(_GPT_NONFATAL_DEFAULT)


def configured_import_plugins():
    """``[image_import_opts] image_import_plugins``.

    :raises ImportError, cfg.Error: Glance has no such option
    """
    CONF.import_opt('image_import_plugins',
                    'glance.async_.flows.api_image_import',
                    group='image_import_opts')
    return list(CONF.image_import_opts.image_import_plugins)


def conversion_output_format():
    """``[image_conversion] output_format`` (what image_conversion makes).

    :raises ImportError, cfg.Error: Glance has no such option
    """
    CONF.import_opt('output_format',
                    'glance.async_.flows.plugins.image_conversion',
                    group='image_conversion')
    return CONF.image_conversion.output_format


@contextlib.contextmanager
def _quiet(*names):
    """Keep the loggers ``names`` to critical messages meanwhile."""
    loggers = [logging.getLogger(name).logger for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _import_enabled_backends():
    """Register ``enabled_backends`` from the Glance module defining it.

    ``glance.common.config`` in Glance 33 (2026.2), ``glance.common.wsgi``
    in the earlier releases (Wallaby's 22 to 2026.1's 32).
    """
    error = None
    for module in ('glance.common.config', 'glance.common.wsgi'):
        try:
            CONF.import_opt('enabled_backends', module)
            return
        except cfg.NoSuchOptError as e:
            error = e
    raise error


def configured_rbd_stores():
    """The RBD stores the configuration names, with their option groups.

    Registers glance_store's options as Glance does, without configuring
    the stores (which would connect to Ceph).

    :returns: a list of ``(name, group)``; name None for single-store Glance
    :raises ImportError, cfg.Error: Glance or glance_store lacks the options
    """
    _import_enabled_backends()
    backends = CONF.enabled_backends or {}
    with _quiet('stevedore', 'glance_store'):
        # glance_store loads every driver for its options and logs those
        # whose libraries are absent (cinder without os-brick...).
        if backends:
            importlib.import_module('glance_store.multi_backend') \
                .register_store_opts(CONF)
        else:
            importlib.import_module('glance_store.backend') \
                .register_opts(CONF)
    if backends:
        return [(name, getattr(CONF, name))
                for name, kind in backends.items() if kind == 'rbd']
    if CONF.glance_store.default_store == 'rbd':
        return [(None, CONF.glance_store)]
    return []


_CONVERSION_MODULE = 'glance.async_.flows.plugins.image_conversion'
# What Glance's image_conversion says when it refuses a backing file: in
# every release with its 2022-2024 safety fixes (23.1+, wallaby-eom), not
# in Glance 22.1.1 as released.
_CONVERSION_CHECK = "'backing-filename' in metadata"


def conversion_checks_images():
    """Whether Glance's ``image_conversion`` refuses unsafe images.

    Read from its source, without importing it: Glance 22.1.1 converts a
    qcow2 with a backing file (reading that file) where later releases
    refuse it. A plugin after it sees only its raw output.

    :returns: True or False; None when this Glance has no image_conversion
    """
    try:
        spec = importlib.util.find_spec(_CONVERSION_MODULE)
    except ImportError:
        return None
    if spec is None or not spec.origin:
        return None
    try:
        with open(spec.origin) as f:
            return _CONVERSION_CHECK in f.read()
    except OSError:
        return None


def uploads_in_parallel(method, stores):
    """Whether Glance uploads ``stores`` with its parallel import."""
    parallel = _deferred.load().parallel_api_image_import
    if parallel is None:
        return False
    return parallel.should_use_parallel_store_import(
        method, stores)


# --- format inspector --------------------------------------------------------

class UnsafeImage(Exception):
    """The format inspector's safety checks failed.

    ``failures`` maps a check's name to its reason.
    """

    def __init__(self, failures):
        super(UnsafeImage, self).__init__(
            'Safety checks failed: %s' % ','.join(failures))
        self.failures = failures


def _inspector_module():
    """The format inspector to use, and its description.

    oslo.utils' when it can tell every format a file matches (7.4+);
    else the one Glance itself uses on releases that carry their own
    (26 to 29), so the checks are those of that Glance's image_conversion;
    else oslo.utils 7.3's, which refuses a file matching two formats.
    """
    oslo = _import('oslo_utils.imageutils.format_inspector', what=False)
    has_wrapper = oslo is not None and hasattr(oslo, 'InspectWrapper')
    if has_wrapper and hasattr(oslo.InspectWrapper, 'formats'):
        return oslo, 'oslo_utils.imageutils.format_inspector'
    own = _import('glance.common.format_inspector', what=False)
    if own is not None and hasattr(own, 'detect_file_format'):
        return own, 'glance.common.format_inspector'
    if has_wrapper:
        return oslo, ('oslo_utils.imageutils.format_inspector (no '
                      'InspectWrapper.formats)')
    _missing('a format inspector, so Glance\'s format safety checks '
             'cannot run and no image is imported without them',
             'neither oslo_utils.imageutils.format_inspector (oslo.utils '
             '>= 7.3) nor glance.common.format_inspector with '
             'detect_file_format is installed; install oslo.utils >= 7.4 '
             'into Glance\'s environment (pip install "oslo.utils>=7.4"; '
             'it was seen to coexist with Glance 22 to 29) or use a Glance '
             'build with the 2024 format inspector backports')
    return None, None


_fi, INSPECTOR = _inspector_module()
_HAS_FORMATS = (_fi is not None and hasattr(_fi, 'InspectWrapper') and
                hasattr(_fi.InspectWrapper, 'formats'))
_LEGACY = _fi is not None and not hasattr(_fi, 'InspectWrapper')

ImageFormatError = getattr(_fi, 'ImageFormatError', _Placeholder)
# Glance 26 has no ISO inspector: an ISO is seen as raw there.
HAS_ISO_INSPECTOR = 'iso' in getattr(_fi, 'ALL_FORMATS', {})
# ISO 9660 and UDF: the standard identifier of the first volume
# descriptor, which follows the 32 KiB system area.
_ISO_IDENTIFIER_OFFSET = 32 * units.Ki + 1
_ISO_IDENTIFIERS = (b'CD001', b'NSR02', b'NSR03')


def iso_volume(path):
    """Whether the file at ``path`` starts like an ISO 9660 or UDF volume.

    For inspectors without an ISO inspector, which see an ISO as raw.

    :returns: ``(is_iso, volume_size)``; the size in bytes of an ISO 9660
              primary volume (space size times logical block size, both
              little-endian halves), else None
    :raises OSError: the file cannot be read
    """
    with open(path, 'rb') as f:
        f.seek(_ISO_IDENTIFIER_OFFSET - 1)
        descriptor = f.read(2 * units.Ki)
    identifier = descriptor[1:6]
    if identifier not in _ISO_IDENTIFIERS:
        return False, None
    if identifier != b'CD001' or len(descriptor) < 130:
        return True, None
    blocks = int.from_bytes(descriptor[80:84], 'little')
    block_size = int.from_bytes(descriptor[128:130], 'little')
    return True, (blocks * block_size) or None


def detect_file_format(path):
    """The inspector that matches the file at ``path``.

    :raises ImageFormatError: the file is no valid image, or matches more
                              than one format
    """
    return _fi.detect_file_format(path)


def detect_file_formats(path):
    """Every format the file at ``path`` matches.

    A list of inspectors: the raw one alone when nothing else matched.
    Inspectors that cannot say more than one (oslo.utils 7.3, Glance's
    own) raise ImageFormatError for several matches, or (Glance 26) give
    the first.

    :raises ImageFormatError: the file is no valid image, or matches more
                              than one format where only one can be told
    """
    if not _HAS_FORMATS:
        return [_fi.detect_file_format(path)]
    with open(path, 'rb') as f:
        wrapper = _fi.InspectWrapper(f)
        try:
            while wrapper.formats is None and wrapper.read(64 * units.Ki):
                pass
        finally:
            wrapper.close()
    return list(wrapper.formats)


def safety_check(inspector):
    """Run the inspector's safety checks.

    :raises UnsafeImage: a check failed
    :raises ImageFormatError: the checks could not be made
    """
    if _LEGACY:
        # Glance 26 to 29 only say whether every check passed.
        if not inspector.safety_check():
            raise UnsafeImage({str(inspector): 'safety check failed'})
        return
    try:
        inspector.safety_check()
    except _fi.SafetyCheckFailed as e:
        raise UnsafeImage(dict(e.failures))


def inspector_name(inspector):
    """The format an inspector stands for ('raw', 'qcow2', 'gpt'...)."""
    return getattr(inspector, 'NAME', None) or str(inspector)


class _Feed(object):
    """What InspectWrapper reads: the piece StreamDetector.eat() was given.

    It has no close(): InspectWrapper would call it.
    """

    piece = b''

    def read(self, size):
        return self.piece


class StreamDetector(object):
    """Detect the format of a stream fed piece by piece.

    As the format inspector's ``InspectWrapper``: ``decided`` turns true
    once every inspector has seen enough (or ``close()`` was called);
    ``result()`` then returns the inspector that matched, raw if none did.
    """

    def __init__(self):
        self._closed = False
        if _LEGACY:
            self._inspectors = {name: cls() for name, cls in
                                _fi.ALL_FORMATS.items()}
        else:
            self._feed = _Feed()
            self._wrapper = _fi.InspectWrapper(self._feed)

    def eat(self, piece):
        if not _LEGACY:
            self._feed.piece = piece
            try:
                self._wrapper.read(len(piece))
            finally:
                self._feed.piece = b''
            return
        for name, inspector in list(self._inspectors.items()):
            try:
                inspector.eat_chunk(piece)
            except ImageFormatError:
                # As detect_file_format: this format does not match.
                del self._inspectors[name]

    @property
    def decided(self):
        if self._closed:
            return True
        if _LEGACY:
            return all(i.complete for n, i in self._inspectors.items()
                       if n != 'raw')
        if _HAS_FORMATS:
            return self._wrapper.formats is not None
        try:
            return self._wrapper.format is not None
        except ImageFormatError:
            return True

    def close(self):
        self._closed = True
        if not _LEGACY:
            self._wrapper.close()

    def result(self):
        """The matching inspector.

        :raises ImageFormatError: more than one format matched
        """
        if not _LEGACY:
            return self._wrapper.format
        matches = [i for n, i in self._inspectors.items()
                   if n != 'raw' and i.complete and i.format_match]
        if len(matches) > 1:
            raise ImageFormatError('Multiple formats detected: %s' %
                                   ','.join(str(i) for i in matches))
        return matches[0] if matches else self._inspectors['raw']


# --- glance_store ----------------------------------------------------------

glance_store = _import('glance_store')
_gs_backend = _import('glance_store.backend')
_gs_exceptions = _import('glance_store.exceptions')
GlanceStoreException = (_attr(_gs_exceptions, 'GlanceStoreException') or
                        _Placeholder)
_attr(glance_store, 'get_store_from_store_identifier')
_attr(_gs_backend, 'get_store_from_scheme')


def get_rbd_store(name):
    """The configured glance_store store of a backend (None: single store).

    :raises GlanceStoreException, KeyError: the store cannot be configured
    """
    if name is None:
        return _gs_backend.get_store_from_scheme('rbd')
    return glance_store.get_store_from_store_identifier(name)


def rbd_store_options(store):
    """The option group a configured RBD store reads.

    glance_store 5.0+ keeps it as ``store_conf``; 4.x reads the backend's
    group (multi-store) or ``[glance_store]``.
    """
    conf = getattr(store, 'store_conf', None)
    if conf is not None:
        return conf
    group = getattr(store, 'backend_group', None)
    if group:
        return getattr(store.conf, group)
    return store.conf.glance_store


def rados_connect_timeout(store):
    """The store's ``rados_connect_timeout`` in seconds; <= 0 means unset.

    glance_store up to 4.6 defaults it to 0 and ignores it (it is
    deprecated there); from 4.7 the default is -1 and glance_store applies
    it as the Ceph client's op and mount timeouts.
    """
    return int(rbd_store_options(store).rados_connect_timeout)


# --- bindings from the distribution ----------------------------------------

for _binding, _package in (('rados', 'python3-rados'), ('rbd', 'python3-rbd'),
                           ('nbd', 'python3-libnbd')):
    if _import(_binding, what=False) is None:
        _missing('Python module %s' % _binding,
                 'install %s for this interpreter' % _package)


def problems():
    """What the plugin needs and this deployment lacks.

    :returns: a list of ``'what (why)'`` strings, empty when it can run
    """
    _deferred.load()
    return ['%s (%s)' % p for p in _PROBLEMS]


def describe():
    """The fallbacks in use, as ``{internal: choice}`` for the check."""
    glance = _deferred.load()
    return {
        'format inspector': INSPECTOR or 'missing',
        'ISO inspector': 'yes' if HAS_ISO_INSPECTOR else
                         'no (the ISO 9660 descriptor is read)',
        '[image_format] vmdk_allowed_types':
            'option' if _HAS_VMDK_OPTION else 'default %s' %
            ','.join(_VMDK_ALLOWED_DEFAULT),
        'image disk_format and extra properties':
            '_ImportActions' if glance.action_reads else 'the image',
        'image size':
            'set_image_attribute' if glance.sets_size else
            'set on the image (set_image_attribute refuses size)',
        '[image_format] gpt_safety_checks_nonfatal':
            'option' if _HAS_GPT_OPTION else 'default %s' %
            ','.join(_GPT_NONFATAL_DEFAULT),
        'database session':
            'session_for_read' if glance.session_for_read else
            'get_session' if glance.get_session else 'missing',
        'image_conversion refuses unsafe images':
            {True: 'yes', False: 'no (list sparse_rbd_import before it)',
             None: 'no image_conversion'}[conversion_checks_images()],
        'parallel store upload':
            'yes' if glance.parallel_api_image_import else 'no',
    }
