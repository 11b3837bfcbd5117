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

"""What a Glance deployment must provide, as ``check`` reports it.

The facts here are those of the deployment tools and distributions the
install guides cover (doc/source/install): which Glance releases the
plugin supports, which servers each release offers, which programs and
Python bindings the plugin needs and which package provides each on
Debian/Ubuntu and on RHEL 9, and what each position of the plugin in
``image_import_plugins`` means.

Nothing here imports Glance, a binding or the plugin's flow: every answer
is read from package metadata, the file system or ``PATH``.
"""

import collections
import importlib
import importlib.metadata
import importlib.util
import os
import shutil

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

PLUGIN_NAME = 'sparse_rbd_import'

# Glance releases the plugin supports, by major version, and their series.
# Xena and Yoga (23, 24) are between them, untested. Zed (25) is tested
# as Debian 12 packages it (the debian-12 test lane).
SERIES = {
    22: 'wallaby', 25: 'zed',
    26: '2023.1', 27: '2023.2', 28: '2024.1', 29: '2024.2',
    30: '2025.1', 31: '2025.2', 32: '2026.1', 33: '2026.2',
}
OLDEST = min(SERIES)
NEWEST = max(SERIES)


def supported_range():
    """The supported releases in words: 'Glance 22 and 26 to 33'."""
    majors = sorted(SERIES)
    runs = [[majors[0], majors[0]]]
    for major in majors[1:]:
        if major == runs[-1][1] + 1:
            runs[-1][1] = major
        else:
            runs.append([major, major])
    words = ['%d' % a if a == b else '%d to %d' % (a, b) for a, b in runs]
    return 'Glance ' + ' and '.join(words)


# Glance's own eventlet server, the ``glance-api`` program, exists up to
# this release (2026.1); Glance 33 removed it. The plugin runs under it and
# under any WSGI server.
LAST_EVENTLET_SERVER = 32

Requirement = collections.namedtuple(
    'Requirement', 'name kind purpose debian rhel')
Requirement.__doc__ = """A program or Python module the plugin needs.

``kind`` is 'program' (looked up on PATH) or 'module' (imported);
``debian`` and ``rhel`` name the package providing it on Debian/Ubuntu
and on RHEL 9.
"""

REQUIREMENTS = (
    Requirement('qemu-img', 'program',
                'inspects and checks every staged image but raw and ISO',
                'qemu-utils', 'qemu-img'),
    # RHEL 9 ships qemu-nbd in the qemu-img package.
    Requirement('qemu-nbd', 'program',
                'serves qcow2, vmdk, vhd, vhdx and vdi images to the '
                'plugin with their extents', 'qemu-utils', 'qemu-img'),
    Requirement('nbd', 'module', 'libnbd binding, reads from qemu-nbd',
                'python3-libnbd', 'python3-libnbd'),
    Requirement('rados', 'module', 'Ceph binding, connects to the cluster',
                'python3-rados', 'python3-rados'),
    Requirement('rbd', 'module', 'Ceph binding, writes RBD images',
                'python3-rbd', 'python3-rbd'),
)

Missing = collections.namedtuple('Missing', 'requirement reason')


def find_missing(path=None):
    """The requirements this interpreter and ``PATH`` lack.

    :param path: the PATH to search for programs (default: the
                 environment's)
    :returns: a list of ``Missing``
    """
    missing = []
    for req in REQUIREMENTS:
        if req.kind == 'program':
            if shutil.which(req.name, path=path) is None:
                missing.append(Missing(req, 'not found on PATH'))
            continue
        try:
            importlib.import_module(req.name)
        except Exception as e:  # a binding for another Python fails oddly
            missing.append(Missing(req, '%s: %s' % (type(e).__name__, e)))
    return missing


def install_hint(req, python=None):
    """The packages to install for ``req``, on each distribution."""
    if req.debian == req.rhel:
        hint = 'install %s (Debian, Ubuntu, RHEL 9)' % req.debian
    else:
        hint = 'install %s (Debian, Ubuntu) or %s (RHEL 9)' % (req.debian,
                                                               req.rhel)
    if req.kind == 'module' and python:
        hint += ', built for the Python Glance runs (%s)' % python
    return hint


Release = collections.namedtuple('Release', 'version major series status')
Release.__doc__ = """The installed Glance.

``status`` is 'supported', 'untested' (in the range, but not one of
``SERIES``), 'older', 'newer' or 'absent'.
"""


def glance_release():
    """The Glance installed for this interpreter, as a ``Release``."""
    try:
        version = importlib.metadata.version('glance')
    except importlib.metadata.PackageNotFoundError:
        return Release(None, None, None, 'absent')
    try:
        major = int(version.split('.')[0])
    except ValueError:
        return Release(version, None, None, 'older')
    if major < OLDEST:
        status = 'older'
    elif major > NEWEST:
        status = 'newer'
    elif major in SERIES:
        status = 'supported'
    else:
        status = 'untested'
    return Release(version, major, SERIES.get(major), status)


def _glance_dir():
    spec = importlib.util.find_spec('glance')
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _console_scripts():
    try:
        dist = importlib.metadata.distribution('glance')
    except importlib.metadata.PackageNotFoundError:
        return set()
    return {ep.name for ep in dist.entry_points
            if ep.group in ('console_scripts', 'wsgi_scripts')}


def servers():
    """The ways the installed Glance can serve its API.

    :returns: a list of descriptions, empty without Glance
    """
    top = _glance_dir()
    if top is None:
        return []
    scripts = _console_scripts()
    major = glance_release().major
    found = []
    # Glance 33 keeps a glance-api program that only says it was removed.
    if (os.path.isfile(os.path.join(top, 'cmd', 'api.py')) and
            major is not None and major <= LAST_EVENTLET_SERVER):
        found.append('glance-api, its own eventlet server (Glance %d and '
                     'older; the plugin runs under it)'
                     % LAST_EVENTLET_SERVER)
    if 'glance-wsgi-api' in scripts:
        found.append('glance-wsgi-api, the WSGI script (uWSGI, mod_wsgi)')
    if os.path.isfile(os.path.join(top, 'wsgi', 'api.py')):
        found.append('glance.wsgi.api:application, the WSGI module '
                     '(uWSGI, mod_wsgi)')
    return found


OrderNote = collections.namedtuple('OrderNote', 'key text problem')
OrderNote.__doc__ = """What one plugin's place in the list means.

``problem`` is True when imports are known not to come out as stock
Glance's with it.
"""

# Whether this release of the plugin handles image_conversion listed after
# it (TripleO's list): it leaves the raw bytes in staging, labelled raw, so
# image_conversion has nothing to convert (plugin_order.py).
CONVERSION_AFTER_HANDLED = True


def order_notes(plugins):
    """What the order of ``plugins`` (``image_import_plugins``) means.

    :returns: a list of ``OrderNote``, one per plugin worth a word
    """
    if PLUGIN_NAME not in plugins:
        return [OrderNote('absent', '%s is not listed: Glance imports '
                          'without it' % PLUGIN_NAME, True)]
    ours = plugins.index(PLUGIN_NAME)
    notes = []
    if 'image_conversion' in plugins[:ours]:
        notes.append(OrderNote(
            'conversion_before',
            'image_conversion runs before %s: every non-raw image is first '
            'converted by qemu-img into a raw file of its full virtual size '
            'in staging, which the plugin then reads; imports are exact but '
            'pay that conversion. Without image_conversion the plugin '
            'converts in its own pass.' % PLUGIN_NAME, False))
    if 'image_conversion' in plugins[ours + 1:]:
        if CONVERSION_AFTER_HANDLED:
            text = ('image_conversion runs after %s (the list TripleO '
                    'writes with GlanceSparseUploadEnabled): handled; the '
                    'plugin leaves the raw image in staging, so '
                    'image_conversion has nothing to convert' % PLUGIN_NAME)
        else:
            text = ('image_conversion runs after %s (the list TripleO '
                    'writes with GlanceSparseUploadEnabled): not handled by '
                    'this release of the plugin; list image_conversion '
                    'before it, or leave it out' % PLUGIN_NAME)
        notes.append(OrderNote('conversion_after', text,
                               not CONVERSION_AFTER_HANDLED))
    return notes


StoreReport = collections.namedtuple(
    'StoreReport', 'name pool thin_provisioning timeout')


def describe_timeout(value, ceph_op_timeout):
    """``rados_connect_timeout`` in words, with the plugin's bound."""
    if value > 0:
        return '%d s (glance_store and the plugin)' % value
    if value == 0:
        what = '0: no timeout in glance_store'
    else:
        what = '%d: unset, librados defaults (no limit on operations)' % value
    return ('%s; the plugin bounds its Ceph waits by [sparse_rbd_import] '
            'ceph_op_timeout, %d s' % (what, ceph_op_timeout))
