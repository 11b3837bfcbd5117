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

"""``glance-sparse-import check``: can the plugin run in this Glance?"""

import json
import sys

from glance_sparse_import.cmd import common
from glance_sparse_import import deployment
from glance_sparse_import import glance_compat
from glance_sparse_import import plugin_order

CONF = common.CONF

PLUGIN_NAMESPACE = 'glance.image_import.plugins'
PLUGIN_NAME = 'sparse_rbd_import'


def load_plugin(args):
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
    warnings = []
    target = plugin_order.conversion_format()
    if target not in (None, 'raw'):
        warnings.append('[image_conversion] output_format = %s: Glance '
                        'stores %s images in every store, so '
                        'sparse_rbd_import stands aside and imports run at '
                        'stock speed; set output_format = raw to use it'
                        % (target, target))
    return ({'list': plugins,
             'order': [{'what': n.key, 'text': n.text, 'problem': n.problem}
                       for n in notes]}, problems, warnings)


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
              'config_files': common.files_read(sources),
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
        raise common.CommandError('the plugin cannot run here: %s' %
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


def add_parser(sub):
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
    common.config_options(p, 'check_config')
    p.add_argument('--json', action='store_true',
                   help='print the result as JSON')
    p.set_defaults(func=do_check, preload=load_plugin)
