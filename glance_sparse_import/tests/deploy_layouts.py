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

"""Glance's configuration as each deployment tool writes it.

Each function writes, under a root directory standing for ``/``, the files
a tool renders for a Glance API with one RBD store and the plugin named as
the install guide (doc/source/install) says, in the tool's own syntax:

* TripleO 17.1: puppet-glance through puppet-openstacklib's ini_setting
  (``key=value``; ``image_import_plugins`` joined into ``[a,b]``), with
  tripleo-heat-templates forcing ``image_conversion`` after the list when
  ``GlanceSparseUploadEnabled`` is true;
* RHOSO 18: glance-operator's ``00-config.conf`` (its template rendered
  for an RBD external API) and ``customServiceConfig`` as
  ``02-config.conf``, in ``glance.conf.d`` only;
* Kolla-Ansible: its ``glance-api.conf.j2`` for a Ceph backend, with the
  operator's override merged, and the operator's
  ``glance-image-import.conf`` copied into ``glance.conf.d``;
* Debian 12's packaged Glance: ``glance-api.conf`` alone, which is all its
  ``glance-api`` service is given.

Each returns a ``Layout``: the files written and the arguments Glance's
server is started with, which ``glance-sparse-import check`` takes too.
"""

import collections
import os

Layout = collections.namedtuple('Layout', 'files args')

PLUGIN = 'sparse_rbd_import'
CEPH_CONF = '/etc/ceph/ceph.conf'


def _write(root, path, text):
    full = os.path.join(root, path.lstrip('/'))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as f:
        f.write(text)
    return full


def _python_list(items):
    return '[%s]' % ', '.join("'%s'" % i for i in items)


# --- TripleO (tripleo-heat-templates, puppet-tripleo, puppet-glance) -------

def tripleo_plugins(import_plugins, sparse_upload=False, nova_rbd=False):
    """The list tripleo-heat-templates hands puppet-glance.

    ``image_conversion`` is appended unless present (list_concat_unique)
    when GlanceSparseUploadEnabled is true, or with an RBD backend and
    NovaEnableRbdBackend while the list is the default ``['no_op']``.
    """
    force = sparse_upload or (nova_rbd and import_plugins == ['no_op'])
    if force and 'image_conversion' not in import_plugins:
        return list(import_plugins) + ['image_conversion']
    return list(import_plugins)


def _puppet_value(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def tripleo(root, import_plugins=(PLUGIN,), sparse_upload=False,
            thin_extra_config=False, nova_rbd=False, timeout=None,
            ceph_conf=CEPH_CONF):
    """glance-api.conf and glance-image-import.conf of TripleO 17.1.

    ``import_plugins`` is GlanceImageImportPlugins, ``sparse_upload``
    GlanceSparseUploadEnabled, ``thin_extra_config`` the ExtraConfig
    ``glance::backend::rbd::rbd_thin_provisioning: true``; ``timeout`` a
    ``glance::backend::rbd::rados_connect_timeout``; ``ceph_conf`` the
    ceph.conf of the cluster (every layout takes it, to be loaded against
    a test cluster).
    """
    plugins = tripleo_plugins(list(import_plugins), sparse_upload, nova_rbd)
    # puppet-glance: sprintf('[%s]', join(any2array($plugins), ',')).
    rendered = '[%s]' % ','.join(plugins)
    backend = {
        'rbd_store_ceph_conf': ceph_conf,
        'rbd_store_user': 'openstack',
        'rbd_store_pool': 'images',
        'store_description': 'RBD store',
    }
    thin = sparse_upload or thin_extra_config
    if thin:
        backend['rbd_thin_provisioning'] = True
    if timeout is not None:
        backend['rados_connect_timeout'] = timeout
    # ini_setting adds each setting at the end of its section of the file
    # the package installed, whose lines are comments.
    api = ['[DEFAULT]',
           '#',
           '# From glance.api',
           '#',
           'enabled_backends=default_backend:rbd',
           'enabled_import_methods=[web-download,glance-direct]',
           'show_image_direct_url=true',
           'show_multiple_locations=%s' % _puppet_value(nova_rbd),
           'node_staging_uri=file:///var/lib/glance/staging',
           '',
           '[database]',
           'connection=mysql+pymysql://glance:secret@192.0.2.10/glance'
           '?read_default_file=/etc/my.cnf.d/tripleo.cnf'
           '&read_default_group=tripleo',
           '',
           '[default_backend]']
    api += ['%s=%s' % (k, _puppet_value(v)) for k, v in backend.items()]
    api += ['',
            '[glance_store]',
            '#',
            '# From glance.store',
            '#',
            'default_backend=default_backend',
            '',
            '[paste_deploy]',
            'flavor=keystone',
            '']
    files = [
        _write(root, '/etc/glance/glance-api.conf', '\n'.join(api)),
        _write(root, '/etc/glance/glance-image-import.conf', '\n'.join([
            '[image_conversion]',
            'output_format=raw',
            '',
            '[image_import_opts]',
            'image_import_plugins=%s' % rendered,
            '',
            '[inject_metadata_properties]',
            ''])),
    ]
    # The glance_api container also reads the package's
    # /usr/share/glance/glance-api-dist.conf first; it sets neither the
    # stores nor the plugins.
    args = []
    for path in files:
        args += ['--config-file', path]
    return Layout(files, args)


# --- RHOSO 18 (openstack-k8s-operators/glance-operator) --------------------

_RHOSO_DB = ('mysql+pymysql://glance_1a2b:secret@openstack.openstack.svc'
             '/glance?read_default_file=/etc/my.cnf')


def _rhoso_defaults(image_conversion):
    """templates/common/config/00-config.conf, rendered for an API.

    Rendered with caching and quotas off, memcached without TLS, no
    notifications transport and, for ``image_conversion``, the operator's
    choice for the external API of a split layout with an RBD backend.
    """
    if image_conversion:
        plugins = ("\nimage_import_plugins = ['image_conversion']\n"
                   "[image_conversion]\noutput_format = raw\n")
    else:
        plugins = "\nimage_import_plugins = ['no_op']\n"
    return '''[DEFAULT]
verbose=True
show_image_direct_url=true
show_multiple_locations=true
enabled_import_methods=[web-download,glance-direct]
bind_host=localhost
bind_port=9293
workers=3
# enable log rotation in oslo config by default
max_logfile_count=1
max_logfile_size_mb=20
log_rotation_type=size
log_file = /var/log/glance/glance-default-external-api.log
enabled_backends=default_backend:file
use_keystone_limits = false

[database]
connection = %(db)s
max_retries = -1
db_max_retries = -1

[file]
filesystem_store_datadir = /var/lib/glance/images

[glance_store]
default_backend=default_backend

[keystone_authtoken]
www_authenticate_uri=https://keystone-public-openstack.apps.example.com
auth_url=https://keystone-internal.openstack.svc:5000
auth_type = password
username = glance
password = secret
project_domain_name = Default
user_domain_name = Default
project_name = service

memcached_servers = memcached-0.memcached.openstack.svc:11211
memcache_pool_dead_retry = 10
memcache_pool_conn_get_timeout = 2


service_type = image
region_name = regionOne

[service_user]
auth_type = password
password = secret

[oslo_messaging_notifications]
driver=noop

[oslo_middleware]
enable_proxy_headers_parsing=True

[paste_deploy]
flavor = keystone

[os_glance_staging_store]
filesystem_store_datadir = /var/lib/glance/os_glance_staging_store/

[os_glance_tasks_store]
filesystem_store_datadir = /var/lib/glance/os_glance_tasks_store/

[oslo_limit]
auth_url=https://keystone-internal.openstack.svc:5000
auth_type = password
username=glance
password = secret
system_scope = all
user_domain_id = default
endpoint_region_name = regionOne

[os_brick]
lock_path = /var/locks/openstack/os-brick

[oslo_concurrency]
lock_path = /var/lib/glance/tmp

[oslo_policy]
enforce_new_defaults = true
enforce_scope = true

[image_import_opts]
%(plugins)s
[key_manager]
backend = barbican

[barbican]
auth_endpoint=https://keystone-internal.openstack.svc:5000
barbican_region_name = regionOne

''' % {'plugins': plugins, 'db': _RHOSO_DB}


def rhoso_custom_service_config(plugins=(PLUGIN,), thin=True, timeout=None,
                                ceph_conf=CEPH_CONF):
    """The GlanceAPI ``customServiceConfig`` the RHOSO guide gives."""
    lines = ['[DEFAULT]',
             'enabled_backends = default_backend:rbd',
             '[glance_store]',
             'default_backend = default_backend',
             '[default_backend]',
             'rbd_store_ceph_conf = %s' % ceph_conf,
             'store_description = "RBD backend"',
             'rbd_store_pool = images',
             'rbd_store_user = openstack']
    if thin:
        lines.append('rbd_thin_provisioning = True')
    if timeout is not None:
        lines.append('rados_connect_timeout = %d' % timeout)
    if plugins is not None:
        lines += ['[image_import_opts]',
                  'image_import_plugins = %s' % _python_list(plugins)]
    return '\n'.join(lines) + '\n'


def rhoso(root, plugins=(PLUGIN,), thin=True, timeout=None,
          image_conversion=True, ceph_conf=CEPH_CONF):
    """/etc/glance/glance.conf.d of a RHOSO 18 glance-api pod.

    ``plugins`` None leaves the list out of customServiceConfig.
    """
    confd = '/etc/glance/glance.conf.d'
    files = [
        _write(root, confd + '/00-config.conf',
               _rhoso_defaults(image_conversion)),
        _write(root, confd + '/02-config.conf',
               rhoso_custom_service_config(plugins, thin, timeout,
                                           ceph_conf)),
        # customServiceConfigSecrets: none given, the file is empty.
        _write(root, confd + '/03-config.conf', ''),
    ]
    return Layout(files, ['--config-dir', os.path.join(root,
                                                       confd.lstrip('/'))])


# --- Kolla-Ansible ---------------------------------------------------------

def kolla(root, plugins=(PLUGIN,), thin=True, ceph_conf=CEPH_CONF):
    """glance-api.conf and glance.conf.d of Kolla's glance_api container.

    glance-api.conf is ansible/roles/glance/templates/glance-api.conf.j2
    for glance_backend_ceph with the default glance_ceph_backends, and
    ``rbd_thin_provisioning`` merged in from the operator's
    /etc/kolla/config/glance/glance-api.conf; glance-image-import.conf is
    the operator's file, copied when
    glance_enable_interoperable_image_import is true.
    """
    rbd = ['[rbd]',
           'rbd_store_user = glance',
           'rbd_store_pool = images',
           'rbd_store_ceph_conf = %s' % ceph_conf]
    if thin:
        rbd.append('rbd_thin_provisioning = True')
    api = '\n'.join([
        '[DEFAULT]',
        'debug = False',
        'log_file = /var/log/kolla/glance/glance-api.log',
        'worker_self_reference_url = http://192.0.2.11:9292',
        'bind_host = 192.0.2.11',
        'bind_port = 9292',
        'workers = 2',
        'enabled_backends = file:file, rbd:rbd',
        'transport_url = rabbit://openstack:secret@192.0.2.11:5672//',
        '',
        '[database]',
        'connection = mysql+pymysql://glance:secret@192.0.2.10:3306/glance',
        'connection_recycle_time = 10',
        'max_pool_size = 1',
        'max_retries = -1',
        '',
        '[paste_deploy]',
        'flavor = keystone',
        '',
        '[glance_store]',
        'default_backend = "rbd"',
        '',
        '[file]',
        'filesystem_store_datadir = /var/lib/glance/images/',
        ''] + rbd + [
        '',
        '[os_glance_tasks_store]',
        'filesystem_store_datadir = /var/lib/glance/tasks_work_dir',
        '',
        '[os_glance_staging_store]',
        'filesystem_store_datadir = /var/lib/glance/staging',
        ''])
    files = [
        _write(root, '/etc/glance/glance-api.conf', api),
        _write(root, '/etc/glance/glance.conf.d/glance-image-import.conf',
               '[image_import_opts]\nimage_import_plugins = %s\n'
               % _python_list(plugins)),
    ]
    # glance-api (or uWSGI) is started without arguments: oslo.config
    # finds /etc/glance/glance-api.conf and /etc/glance/glance.conf.d.
    return Layout(files, [
        '--config-file', files[0],
        '--config-dir', os.path.dirname(files[1])])


# --- Debian 12 packages ----------------------------------------------------

def debian(root, plugins=(PLUGIN,), thin=True, import_conf_plugins=None,
           ceph_conf=CEPH_CONF):
    """/etc/glance/glance-api.conf of Debian's glance-api package.

    Its init script starts ``glance-api --config-file
    /etc/glance/glance-api.conf``: the plugin list must be in that file.
    ``plugins`` None leaves it out; ``import_conf_plugins`` puts a list in
    the glance-image-import.conf the package also installs, which that
    service never reads.
    """
    lines = ['[DEFAULT]',
             'enabled_backends = ceph:rbd',
             '',
             '[glance_store]',
             'default_backend = ceph',
             '',
             '[ceph]',
             'rbd_store_pool = images',
             'rbd_store_user = glance',
             'rbd_store_ceph_conf = %s' % ceph_conf,
             'rados_connect_timeout = 60']
    if thin:
        lines.append('rbd_thin_provisioning = True')
    if plugins is not None:
        lines += ['',
                  '[image_import_opts]',
                  'image_import_plugins = %s' % _python_list(plugins)]
    path = _write(root, '/etc/glance/glance-api.conf',
                  '\n'.join(lines) + '\n')
    files = [path]
    if import_conf_plugins is not None:
        files.append(_write(
            root, '/etc/glance/glance-image-import.conf',
            '[image_import_opts]\nimage_import_plugins = %s\n'
            % _python_list(import_conf_plugins)))
    return Layout(files, ['--config-file', path])
