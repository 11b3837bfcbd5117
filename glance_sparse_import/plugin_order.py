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

"""Where ``sparse_rbd_import`` sits in ``image_import_plugins``.

Glance runs the import plugins in the order of ``[image_import_opts]
image_import_plugins``, each on the staged file the one before left, and
uploads to its stores after the last one. Deployment tools choose that
order for the operator (TripleO's ``GlanceSparseUploadEnabled`` appends
``image_conversion`` after the plugins listed), so the plugin must give
stock Glance's result in any order:

* a plugin after ours that reads the staged data (``image_conversion``
  inspects it against ``disk_format``, Glance 26's runs ``qemu-img info``
  on it) must find the raw bytes the RBD stores got, labelled raw, as
  after stock ``image_conversion``: the plugin then leaves the staged file
  raw (sparse, the same bytes), so ``image_conversion`` has nothing to do;
* a converting plugin before ours has already written a full raw file in
  staging: the import is exact but the conversion is done twice. That
  costs time, not correctness; it is logged once per process, with the
  list that avoids it. Except where Glance's ``image_conversion`` makes
  no safety checks (Glance 22 as released converts a qcow2 with a backing
  file): ours would see only its raw output, so that order is refused.
"""

import collections
import threading

from oslo_log import log as logging

from glance_sparse_import import glance_compat as compat

LOG = logging.getLogger(__name__)

NAME = 'sparse_rbd_import'
# Glance's plugins that only change metadata: they never read the staged
# data, so they may run anywhere.
METADATA_ONLY = ('inject_image_metadata', 'no_op')
# Plugins that write a converted copy of the whole image into staging.
CONVERTERS = ('image_conversion',)
# Plugins that unpack an archive: they must run before anything inspects
# the disk image, ours included.
UNPACKERS = ('image_decompression',)

_warned = False
_warned_format = False
_warned_lock = threading.Lock()


class Order(collections.namedtuple('Order', ['plugins', 'before',
                                             'after'])):
    """The configured plugin list, split around ours.

    ``plugins`` is the whole list; ``before`` and ``after`` the plugins
    that run before and after ours (both empty when ours is not listed).
    """

    @property
    def stage_raw(self):
        """Whether a later plugin reads the staged data.

        Then the staged file must hold the raw bytes, as it would after
        stock ``image_conversion``.
        """
        return any(p not in METADATA_ONLY for p in self.after)

    @property
    def converted_before(self):
        """The converting plugins that run before ours."""
        return [p for p in self.before if p in CONVERTERS]

    def recommended(self):
        """The same plugins, ours before the first converter.

        Unpackers stay first; every other plugin keeps its place.
        """
        first = [p for p in self.plugins if p != NAME]
        converters = [i for i, p in enumerate(first) if p in CONVERTERS]
        at = converters[0] if converters else len(first)
        return first[:at] + [NAME] + first[at:]


def split(plugins):
    """The :class:`Order` of a plugin list (the first ``NAME`` counts)."""
    plugins = list(plugins)
    if NAME not in plugins:
        return Order(plugins, [], [])
    at = plugins.index(NAME)
    return Order(plugins, plugins[:at], plugins[at + 1:])


def configured():
    """The :class:`Order` of this Glance's ``image_import_plugins``.

    An unreadable option (no Glance, a test harness) counts as ours alone.
    """
    try:
        plugins = compat.configured_import_plugins()
    except Exception as e:
        LOG.debug('image_import_plugins not readable (%s); assuming '
                  'sparse_rbd_import alone', e)
        plugins = [NAME]
    return split(plugins)


def conversion_format():
    """The format ``image_conversion`` converts to, if it is listed.

    None when it is not listed; ``'raw'`` when its option cannot be read.
    """
    if not any(p in CONVERTERS for p in configured().plugins):
        return None
    try:
        return compat.conversion_output_format()
    except Exception as e:
        LOG.debug('[image_conversion] output_format not readable (%s); '
                  'assuming raw', e)
        return 'raw'


def stand_aside():
    """Whether to leave the RBD stores to stock Glance, and say why once.

    With ``[image_conversion] output_format`` other than raw, stock Glance
    stores the converted image (qcow2, vmdk) in every store, RBD ones
    included; the plugin writes raw only, so it would store something else
    than stock does. It then takes no store, and logs once per process
    what the setting costs.
    """
    global _warned_format
    target = conversion_format()
    if target in (None, 'raw'):
        return False
    with _warned_lock:
        first, _warned_format = not _warned_format, True
    if first:
        LOG.warning('[image_conversion] output_format = %s: image_conversion '
                    'converts every image to %s and Glance stores that in '
                    'every store, so sparse_rbd_import stands aside and '
                    'imports run at stock speed. Nova and Cinder clone '
                    'only raw images from RBD: set output_format = raw to '
                    'use sparse_rbd_import', target, target)
    return True


def unchecked_conversion(order):
    """Why this order cannot run safely here, or None.

    A converting plugin before ours that makes none of Glance's safety
    checks (``glance_compat.conversion_checks_images``) hands ours only
    its raw output: a hostile image would already have been read.
    """
    converters = order.converted_before
    if not converters or compat.conversion_checks_images() is not False:
        return None
    return ('a safe plugin order: image_import_plugins = %(plugins)s runs '
            '%(conv)s before sparse_rbd_import, and this Glance\'s '
            '%(conv)s does not refuse unsafe images (a qcow2 with a backing '
            'file is converted, reading that file), so sparse_rbd_import '
            'would only see its output; list sparse_rbd_import before '
            '%(conv)s: image_import_plugins = %(fixed)s'
            % {'plugins': _render(order.plugins),
               'conv': ', '.join(converters),
               'fixed': _render(order.recommended())})


def warn_once(order):
    """Log, once per process, what this plugin order costs.

    :returns: whether this call logged the warning
    """
    global _warned
    converters = order.converted_before
    if not converters:
        return False
    with _warned_lock:
        if _warned:
            return False
        _warned = True
    LOG.warning('image_import_plugins = %(plugins)s runs %(conv)s before '
                'sparse_rbd_import: every image is first converted by '
                'qemu-img into a raw file in staging, which '
                'sparse_rbd_import then reads again. Imports are exact, but '
                'the conversion is done twice. List sparse_rbd_import '
                'before %(conv)s: image_import_plugins = %(fixed)s',
                {'plugins': _render(order.plugins),
                 'conv': ', '.join(converters),
                 'fixed': _render(order.recommended())})
    return True


def _render(plugins):
    return '[%s]' % ', '.join("'%s'" % p for p in plugins)


def _reset_warning():
    """Forget the warning was logged (for tests)."""
    global _warned, _warned_format
    with _warned_lock:
        _warned = _warned_format = False
