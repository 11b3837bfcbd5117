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

"""A real Glance API, served by uWSGI or by Glance's eventlet server.

Everything lives in one work directory: configuration, sqlite database,
staging area, file stores and logs. Binaries come from the virtualenv of the
running interpreter.

Up to 2026.1 (Glance 32) Glance also ships its own eventlet server,
``glance-api``, which monkey-patches ``threading``; RHOSO, Kolla, RDO,
TripleO and Debian run that one. ``server='eventlet'`` starts it as they do:
``glance-api --config-file glance-api.conf --config-file
glance-image-import.conf`` (TripleO, RDO) or, with ``config_dir``,
``glance-api --config-dir DIR`` over a conf.d directory (RHOSO, Kolla).
"""

import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from glance_sparse_import.tests.testbed import ceph as ceph_bed
from glance_sparse_import.tests.testbed import procs

PASTE_INI = """\
[composite:glance-api]
paste.composite_factory = glance.api:root_app_factory
/: api
/healthcheck: healthcheck

[pipeline:api]
pipeline = http_proxy_to_wsgi versionnegotiation testbedauth rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory

[filter:versionnegotiation]
paste.filter_factory = \
glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:testbedauth]
paste.filter_factory = glance_sparse_import.tests.testbed.auth:filter_factory
service_catalog = %(catalog)s
"""


def wsgi_application():
    """uWSGI's option naming the installed Glance's WSGI application.

    Glance 30 and later have the module ``glance.wsgi.api``; before 32 the
    ``glance-wsgi-api`` script builds the same application, and Glance 26
    to 29 have only that script.
    """
    try:
        found = importlib.util.find_spec('glance.wsgi.api') is not None
    except ImportError:
        # No glance.wsgi package at all.
        found = False
    if found:
        return {'module': 'glance.wsgi.api:application'}
    script = procs.bin_path('glance-wsgi-api')
    if not os.path.exists(script):
        raise GlanceAPIError('this Glance has neither glance.wsgi.api nor '
                             '%s' % script)
    return {'wsgi-file': script}


# The last Glance major version with the eventlet ``glance-api`` server
# (2026.1); Glance 33 removed it.
LAST_EVENTLET_GLANCE = 32
SERVERS = ('uwsgi', 'eventlet')


def glance_major():
    """Major version of the installed Glance."""
    return int(importlib.metadata.version('glance').split('.')[0])


def available_servers():
    """The servers the installed Glance can run under, uWSGI first."""
    if glance_major() <= LAST_EVENTLET_GLANCE:
        return list(SERVERS)
    return ['uwsgi']


class GlanceAPIError(Exception):
    """The API did not start or answered unexpectedly."""


class _Exited(GlanceAPIError):
    pass


def _ini(sections):
    """Render ``[(section, {option: value})]`` as ini text."""
    out = []
    for section, options in sections:
        out.append('[%s]' % section)
        for key, value in options.items():
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            out.append('%s = %s' % (key, value))
        out.append('')
    return '\n'.join(out)


class GlanceAPI(object):
    """Glance API under uWSGI or Glance's own eventlet server.

    :param workdir: directory owned by this API (created if missing)
    :param stores: ``{name: store}``, where a store is a
        :class:`~.ceph.CephCluster` (an RBD store on its ``images`` pool) or
        a directory path or None (a file store; None puts it in workdir)
    :param default_store: name of the default store
    :param plugins: ``image_import_plugins``
    :param image_conversion: also enable the stock ``image_conversion``
        plugin (to raw); implied when ``plugins`` names it
    :param thin_provisioning: ``rbd_thin_provisioning`` of RBD stores
    :param multistore: ``enabled_backends`` when true, else the legacy
        ``[glance_store] stores`` with a single store of each type
    :param extra_conf: ``{section: {option: value}}`` merged into
        glance-api.conf
    :param extra_import_conf: the same for glance-image-import.conf
    :param database: SQLAlchemy URL of an empty database (such as
        :meth:`~.mariadb.MariaDB.create_database` gives), or of the
        database of another API (several API nodes); None makes a sqlite
        file in workdir
    :param region: region of this API in the service catalog
    :param remote_regions: ``{region: Glance URL}`` of other regions, also
        in the catalog (``glance-download`` reads from them)
    :param server: ``'uwsgi'`` or ``'eventlet'`` (Glance's ``glance-api``,
        up to Glance 32)
    :param config_dir: with the eventlet server, read the configuration
        from a conf.d directory (``--config-dir``) as RHOSO and Kolla lay
        it out, instead of ``--config-file`` per file
    """

    def __init__(self, workdir, stores, default_store=None,
                 plugins=('sparse_rbd_import',), image_conversion=False,
                 thin_provisioning=True, multistore=True,
                 rbd_chunk_size=8, rados_connect_timeout=60, workers=2,
                 debug=True, extra_conf=None, extra_import_conf=None,
                 database=None, region='RegionOne', remote_regions=None,
                 server='uwsgi', config_dir=False):
        if server not in SERVERS:
            raise ValueError('server %r: one of %s' % (server, SERVERS))
        if config_dir and server != 'eventlet':
            raise ValueError('config_dir needs the eventlet server')
        self.server = server
        self.config_dir = config_dir
        self.workdir = os.path.abspath(workdir)
        self.stores = dict(stores)
        if not self.stores:
            raise ValueError('at least one store is needed')
        self.default_store = default_store or next(iter(self.stores))
        plugins = list(plugins)
        if image_conversion and 'image_conversion' not in plugins:
            plugins.insert(0, 'image_conversion')
        self.plugins = plugins
        self.thin_provisioning = thin_provisioning
        self.multistore = multistore
        self.rbd_chunk_size = rbd_chunk_size
        self.rados_connect_timeout = rados_connect_timeout
        self.workers = workers
        self.debug = debug
        self.extra_conf = extra_conf or {}
        self.extra_import_conf = extra_import_conf or {}
        self.etc_dir = os.path.join(self.workdir, 'etc')
        self.staging_dir = os.path.join(self.workdir, 'staging')
        self.log_path = os.path.join(self.workdir, 'glance-api.log')
        # What the server writes outside Glance's log (uWSGI's own log,
        # the eventlet server's stderr).
        self.server_log_path = os.path.join(self.workdir, '%s.log' % server)
        self.uwsgi_log_path = self.server_log_path
        # The pid of uWSGI's master or of glance-api's parent: its workers
        # are its children.
        self.pid_path = os.path.join(self.workdir, '%s.pid' % server)
        self.db_path = os.path.join(self.workdir, 'glance.sqlite')
        # Wait for a lock up to 60 s, not sqlite's 5, under load (which
        # does not cover every lock: see mariadb.py).
        self.database = database or 'sqlite:///%s?timeout=60' % self.db_path
        self.region = region
        self.remote_regions = dict(remote_regions or {})
        self.port = None
        self._proc = None

    def __repr__(self):
        return '<GlanceAPI %s under %s>' % (self.url, self.server)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    # Configuration

    def rbd_stores(self):
        """Names of the RBD stores."""
        return [n for n, s in self.stores.items()
                if isinstance(s, ceph_bed.CephCluster)]

    def store_dir(self, name):
        """Data directory of a file store."""
        path = self.stores[name]
        return path or os.path.join(self.workdir, 'stores', name)

    def _rbd_options(self, cluster):
        return {
            'rbd_store_pool': cluster.pool,
            'rbd_store_ceph_conf': cluster.conf_path,
            'rbd_store_user': 'admin',
            'rbd_store_chunk_size': self.rbd_chunk_size,
            'rbd_thin_provisioning': self.thin_provisioning,
            'rados_connect_timeout': self.rados_connect_timeout,
        }

    def _api_sections(self):
        default = {
            'debug': self.debug,
            'log_file': self.log_path,
            'worker_self_reference_url': self.url,
            'enabled_import_methods':
                '[glance-direct,web-download,copy-image]',
            'show_image_direct_url': True,
        }
        if self.server == 'eventlet':
            default.update({'bind_host': '127.0.0.1',
                            'bind_port': self.port,
                            'workers': self.workers})
        sections = [
            ('DEFAULT', default),
            ('database', {'connection': self.database}),
            ('paste_deploy', {'config_file': os.path.join(
                self.etc_dir, 'glance-api-paste.ini')}),
            # Glance proxies an import to the node holding the staged data
            # with a keystoneauth token client built on this URL; it only
            # calls that node's absolute URL, so no Keystone is needed.
            ('keystone_authtoken', {'auth_url': 'http://127.0.0.1:9/v3'}),
            ('oslo_concurrency', {'lock_path': os.path.join(
                self.workdir, 'locks')}),
            # Under uWSGI sys.executable is uwsgi; Glance's prlimit'ed
            # qemu-img calls need a real python.
            ('wsgi', {'python_interpreter': sys.executable}),
        ]
        if self.multistore:
            default['enabled_backends'] = ', '.join(
                '%s:%s' % (n, 'rbd' if n in self.rbd_stores() else 'file')
                for n in self.stores)
            sections.append(('glance_store',
                             {'default_backend': self.default_store}))
            sections.append(('os_glance_staging_store',
                             {'filesystem_store_datadir': self.staging_dir}))
            sections.append(('os_glance_tasks_store', {
                'filesystem_store_datadir':
                    os.path.join(self.workdir, 'tasks')}))
            for name, store in self.stores.items():
                if name in self.rbd_stores():
                    options = self._rbd_options(store)
                else:
                    options = {'filesystem_store_datadir':
                               self.store_dir(name)}
                options['store_description'] = 'test store %s' % name
                sections.append((name, options))
        else:
            sections.append(('glance_store', self._legacy_store_options()))
            default['node_staging_uri'] = 'file://' + self.staging_dir
        return self._merge(sections, self.extra_conf)

    def _legacy_store_options(self):
        rbd = self.rbd_stores()
        files = [n for n in self.stores if n not in rbd]
        if len(rbd) > 1 or len(files) > 1:
            raise ValueError('legacy stores allow one store of each type')
        options = {
            'stores': ','.join((['rbd'] if rbd else []) +
                               (['file'] if files else [])),
            'default_store': ('rbd' if self.default_store in rbd
                              else 'file'),
        }
        if rbd:
            options.update(self._rbd_options(self.stores[rbd[0]]))
        if files:
            options['filesystem_store_datadir'] = self.store_dir(files[0])
        return options

    def _import_sections(self):
        sections = [
            ('image_import_opts', {'image_import_plugins': '[%s]' % ', '.join(
                "'%s'" % p for p in self.plugins)}),
            # web-download refuses loopback hosts unless listed, and allows
            # only ports 80 and 443 by default.
            ('import_filtering_opts', {
                'allowed_schemes': '[http]',
                'allowed_hosts': '[127.0.0.1, localhost]',
                'allowed_ports': '[]',
            }),
        ]
        if 'image_conversion' in self.plugins:
            sections.append(('image_conversion', {'output_format': 'raw'}))
        return self._merge(sections, self.extra_import_conf)

    @staticmethod
    def _merge(sections, extra):
        sections = [(name, dict(options)) for name, options in sections]
        known = dict(sections)
        for name, options in extra.items():
            if name in known:
                known[name].update(options)
            else:
                sections.append((name, dict(options)))
        return sections

    def _uwsgi_ini(self):
        options = {
            'http': '127.0.0.1:%d' % self.port,
            # Without these three, staging a chunked upload fails with
            # 500 "unable to receive chunked part".
            'http-chunked-input': True,
            'http-auto-chunked': True,
            'chunked-input-limit': 16777216,
            'http-timeout': 3600,
            'add-header': 'Connection: close',
            'buffer-size': 65535,
            'home': sys.prefix,
            'master': True,
            'processes': self.workers,
            'enable-threads': True,
            'lazy-apps': True,
            # Exit when Glance fails to load instead of answering 500.
            'need-app': True,
            'die-on-term': True,
            'worker-reload-mercy': 10,
            'pidfile': self.pid_path,
            'env': 'OS_GLANCE_CONFIG_DIR=%s' % self.etc_dir,
        }
        options.update(wsgi_application())
        return _ini([('uwsgi', options)])

    def write_config(self):
        """(Re)write every configuration file from the attributes."""
        for path in (self.etc_dir, self.staging_dir,
                     os.path.join(self.workdir, 'home')):
            os.makedirs(path, exist_ok=True)
        for name in self.stores:
            if name not in self.rbd_stores():
                os.makedirs(self.store_dir(name), exist_ok=True)
        files = {
            'glance-api.conf': _ini(self._api_sections()),
            'glance-image-import.conf': _ini(self._import_sections()),
            'glance-api-paste.ini': PASTE_INI % {
                'catalog': json.dumps(self.service_catalog())},
        }
        if self.server == 'uwsgi':
            files['uwsgi.ini'] = self._uwsgi_ini()
        if self.config_dir:
            # RHOSO's and Kolla's layout: no glance-api.conf, every file in
            # one directory, read in name order.
            os.makedirs(self.conf_d, exist_ok=True)
            files[os.path.join(self.conf_d, '00-config.conf')] = files.pop(
                'glance-api.conf')
            files[os.path.join(self.conf_d, '02-config.conf')] = files.pop(
                'glance-image-import.conf')
        for name, text in files.items():
            with open(os.path.join(self.etc_dir, name), 'w') as f:
                f.write(text)

    @property
    def conf_d(self):
        """The conf.d directory of a ``config_dir`` API."""
        return os.path.join(self.etc_dir, 'glance.conf.d')

    def config_args(self):
        """How Glance's services are told where the configuration is."""
        if self.config_dir:
            return ['--config-dir', self.conf_d]
        args = []
        for name in ('glance-api.conf', 'glance-image-import.conf'):
            args += ['--config-file', os.path.join(self.etc_dir, name)]
        return args

    def service_catalog(self):
        """The catalog the auth filter gives every request context."""
        endpoints = dict(self.remote_regions)
        endpoints[self.region] = self.url
        # The form auth_token passes on (Keystone v2), where
        # glance-download looks up '<interface>URL' by region.
        return [{'type': 'image', 'name': 'glance', 'endpoints': [
            {'region': region, 'publicURL': url, 'internalURL': url,
             'adminURL': url} for region, url in endpoints.items()]}]

    # Life cycle

    def start(self, timeout=90):
        """Configure, sync the database, serve; wait until it answers."""
        port_chosen = self.port is not None
        for attempt in range(3):
            if not port_chosen:
                self.port = procs.free_port()
            self.write_config()
            # db_sync is idempotent; a sqlite file needs it only once.
            if (not self.database.startswith('sqlite:') or
                    not os.path.exists(self.db_path)):
                procs.run([procs.bin_path('glance-manage')] +
                          self.config_args() + ['db_sync'], timeout=120)
            try:
                log_offset = os.path.getsize(self.uwsgi_log_path)
            except OSError:
                log_offset = 0
            self._spawn()
            try:
                procs.wait_until(self._ready, timeout,
                                 'Glance API at %s did not start' % self.url,
                                 abort=(_Exited,))
                return
            except (_Exited, TimeoutError) as e:
                self.stop()
                log = self._read(self.uwsgi_log_path, log_offset)
                # The port may be taken between choosing and binding it.
                if (port_chosen or attempt == 2 or
                        'Address already in use' not in log):
                    raise GlanceAPIError(
                        '%s\n--- %s ---\n%s\n--- glance-api.log ---\n%s'
                        % (e, os.path.basename(self.server_log_path),
                           log[-4000:], self.log_text()[-4000:]))

    def _spawn(self):
        if self.server == 'uwsgi':
            cmd = [procs.bin_path('uwsgi'), '--ini',
                   os.path.join(self.etc_dir, 'uwsgi.ini')]
        else:
            cmd = [procs.bin_path('glance-api')] + self.config_args()
        with open(self.server_log_path, 'ab') as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        if self.server == 'eventlet':
            with open(self.pid_path, 'w') as f:
                f.write('%d\n' % self._proc.pid)

    def _ready(self):
        if self._proc.poll() is not None:
            raise _Exited('%s exited %d' % (self.server,
                                            self._proc.returncode))
        return self.request('GET', '/versions', timeout=5)[0] == 200

    def stop(self, timeout=30):
        """Stop the server and every process it started; wait for them."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            # A paused server would take SIGTERM only once continued.
            try:
                os.killpg(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # Seen now and then with the eventlet server; say so
                # where a failing test's output shows it.
                with open(self.server_log_path, 'a') as log:
                    log.write('testbed: %s did not exit within %d s of '
                              'SIGTERM; killed\n' % (self.server, timeout))
        # Workers and their children (qemu-img, qemu-nbd) share the session
        # started for the server; leave nothing behind.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        try:
            os.unlink(self.pid_path)
        except FileNotFoundError:
            pass

    def kill(self):
        """SIGKILL the server, its workers and their children (a crash)."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait()
        self.stop()

    def pause(self):
        """SIGSTOP the server, its workers and their children."""
        os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self):
        """SIGCONT what :meth:`pause` stopped."""
        os.killpg(self._proc.pid, signal.SIGCONT)

    def restart(self, timeout=90):
        """Stop and start again on the same port, rereading attributes."""
        self.stop()
        self.start(timeout)

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    # Clients

    def client_env(self):
        """Environment for the ``glance`` CLI talking to this API."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env.update({
            'OS_IMAGE_URL': self.url,
            'OS_AUTH_TOKEN': 'testbed',
            'OS_IMAGE_API_VERSION': '2',
            # glanceclient caches schemas under ~/.glanceclient.
            'HOME': os.path.join(self.workdir, 'home'),
        })
        return env

    def request(self, method, path, body=None, headers=None, timeout=30):
        """Plain HTTP call; return ``(status, parsed JSON or text)``."""
        data = None
        headers = dict(headers or {})
        headers.setdefault('X-Auth-Token', 'testbed')
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault('Content-Type', 'application/json')
        req = urllib.request.Request(self.url + path, data=data,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode(errors='replace')
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def log_text(self):
        """Glance's log so far."""
        return self._read(self.log_path)

    @staticmethod
    def _read(path, offset=0):
        try:
            with open(path, 'rb') as f:
                f.seek(offset)
                return f.read().decode(errors='replace')
        except OSError:
            return ''

    def wait_for_log(self, text, timeout=30):
        """Wait until ``text`` appears in Glance's log."""
        procs.wait_until(lambda: text in self.log_text(), timeout,
                         '%r not in %s' % (text, self.log_path))
