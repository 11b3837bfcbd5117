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

"""Run one image import through Glance's own task machinery, in process.

Configured from real glance-api.conf and glance-image-import.conf files,
this does what the import API call does (create the image, stage the data,
take the import lock, create the ``api_image_import`` task) and then runs
the task with Glance's taskflow executor, which builds the flow with the
installed ``api_image_import.get_flow`` and the plugins it names. It prints
the resulting image and task as JSON. Each run is its own process because
Glance and glance_store keep their configuration in globals.
"""

import argparse
import importlib
import json
import os
import shutil
import sys
import traceback
import uuid

import glance.async_
import glance_store
from oslo_config import cfg
from oslo_log import log as logging

CONF = cfg.CONF


def _setup(config_files):
    from glance.common import config
    from glance.common import wsgi_app

    config.set_config_defaults()
    # As under uWSGI: native threads, not eventlet.
    glance.async_.set_threadpool_model('native')
    CONF([], project='glance', prog='glance-api',
         default_config_files=config_files)
    logging.setup(CONF, 'glance')
    reserved = wsgi_app.RESERVED_STORES
    if CONF.enabled_backends:
        glance_store.register_store_opts(CONF, reserved_stores=reserved)
        glance_store.create_multi_stores(CONF, reserved_stores=reserved)
    else:
        glance_store.register_opts(CONF)
        glance_store.create_stores(CONF)


def _staging_path(image_id):
    from glance.common import store_utils
    if CONF.enabled_backends:
        _sep, staging_dir = store_utils.get_dir_separator()
        return '%s/%s' % (staging_dir[len('file://'):], image_id)
    return '%s/%s' % (CONF.node_staging_uri[len('file://'):], image_id)


def _image_dict(image):
    return {'id': image.image_id, 'status': image.status,
            'size': image.size, 'virtual_size': image.virtual_size,
            'checksum': image.checksum, 'os_hash_algo': image.os_hash_algo,
            'os_hash_value': image.os_hash_value,
            'disk_format': image.disk_format,
            'container_format': image.container_format,
            'locations': [{'url': loc['url'], 'metadata': loc['metadata']}
                          for loc in image.locations],
            'extra_properties': dict(image.extra_properties)}


def _hide(names):
    """Make modules or attributes (``module:attr``) missing.

    As on a host or a Glance without them; before the plugin is imported.
    """
    for name in names:
        module, _sep, attr = name.partition(':')
        if attr:
            delattr(importlib.import_module(module), attr)
        else:
            sys.modules[module] = None


def _database_locked_once():
    """The first import lock update of the flow fails as SQLite does.

    Glance 33 builds the flow again on "database is locked"; the first use
    of the action wrapper comes after the plugins are built, so the retry
    calls them a second time with the same store list.
    """
    import sqlite3

    from glance.async_.flows import api_image_import
    from sqlalchemy import exc as sqlalchemy_exc

    wrapper = api_image_import.ImportActionWrapper
    enter = wrapper.__enter__
    raised = []

    def locked_once(self):
        if not raised:
            raised.append(True)
            sys.stderr.write('flow_runner: database is locked (injected)\n')
            raise sqlalchemy_exc.OperationalError(
                'UPDATE images', {},
                sqlite3.OperationalError('database is locked'))
        return enter(self)
    wrapper.__enter__ = locked_once


def _atoms(flow):
    """``[[class name, atom name], ...]`` of a flow, depth first."""
    found = []
    for node, _meta in flow.iter_nodes():
        if hasattr(node, 'iter_nodes'):
            found.extend(_atoms(node))
        else:
            found.append([type(node).__name__, node.name])
    return found


def run(args):
    from glance import context as glance_context
    from glance import gateway as glance_gateway

    _hide(args.hide)
    _setup(args.config_file)
    if args.database_locked_once:
        _database_locked_once()
    if args.keystone_limits is not None:
        # Keystone's registered limits, through oslo.limit's own fixture;
        # Glance's enforcement code runs unchanged.
        from oslo_limit import fixture as limit_fixture
        limit_fixture.LimitFixture(args.keystone_limits, {}).setUp()
    ctx = glance_context.RequestContext(
        project_id=uuid.uuid4().hex, user_id=uuid.uuid4().hex,
        roles=['admin', 'member'], is_admin=True,
        auth_token=args.auth_token)
    gateway = glance_gateway.Gateway()
    image_repo = gateway.get_repo(ctx)
    image = gateway.get_image_factory(ctx).new_image(
        name='functional', disk_format=args.disk_format,
        container_format='bare',
        extra_properties=dict(p.split('=', 1) for p in args.property),
        **({'image_id': args.image_id} if args.image_id else {}))
    image_repo.add(image)

    method = {'name': args.method}
    if args.method == 'glance-direct':
        if args.stage_symlink:
            os.symlink(os.path.abspath(args.file),
                       _staging_path(image.image_id))
        else:
            shutil.copyfile(args.file, _staging_path(image.image_id))
        image = image_repo.get(image.image_id)
        image.status = 'uploading'
        image.size = os.path.getsize(args.file)
        image_repo.save(image, from_state='queued')
    else:
        method['uri'] = args.uri
    body = {'method': method}
    if args.all_stores_must_succeed is not None:
        body['all_stores_must_succeed'] = args.all_stores_must_succeed
    stores = args.stores.split(',') if args.stores else [None]

    task = gateway.get_task_factory(ctx).new_task(
        task_type='api_image_import', owner=ctx.owner,
        task_input={'image_id': image.image_id, 'import_req': body,
                    'backend': stores},
        image_id=image.image_id, user_id=ctx.user_id,
        request_id=ctx.request_id)
    image = image_repo.get(image.image_id)
    image_repo.set_property_atomic(image, 'os_glance_import_task',
                                   task.task_id)
    task_repo = gateway.get_task_repo(ctx)
    task_repo.add(task)
    # Round-trip the input through the database, as the API worker does.
    task = task_repo.get(task.task_id)
    executor = gateway.get_task_executor_factory(ctx).new_task_executor(ctx)
    if args.build_only:
        # What the executor runs, built as it builds it, and not run.
        flow = executor._get_flow(task)
        image = image_repo.get(image.image_id)
        return {'image': _image_dict(image), 'atoms': _atoms(flow),
                'backend': stores}
    try:
        task.run(executor)
    except Exception:
        # The API worker's pool thread only logs this too; the outcome is
        # in the task and the image.
        traceback.print_exc()

    task = task_repo.get(task.task_id)
    image = image_repo.get(image.image_id)
    return {'image': _image_dict(image),
            'task': {'status': task.status, 'message': task.message}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--config-file', action='append', required=True)
    parser.add_argument('--file', help='image to stage (glance-direct)')
    parser.add_argument('--uri', help='URL to import (web-download)')
    parser.add_argument('--method', default='glance-direct')
    parser.add_argument('--disk-format', required=True)
    parser.add_argument('--stores', help='comma-separated target stores')
    parser.add_argument('--image-id')
    parser.add_argument('--all-stores-must-succeed', type=json.loads)
    parser.add_argument('--property', action='append', default=[],
                        help='KEY=VALUE, an extra property of the image')
    parser.add_argument('--stage-symlink', action='store_true',
                        help='stage a symbolic link to --file, not a copy')
    parser.add_argument('--keystone-limits', type=json.loads,
                        help='JSON {resource: limit}: registered limits')
    parser.add_argument('--auth-token', help="the request's token")
    parser.add_argument('--hide', action='append', default=[],
                        metavar='MODULE[:ATTR]',
                        help='make a module or attribute missing')
    parser.add_argument('--database-locked-once', action='store_true',
                        help='fail the first flow-building database '
                             'update with SQLite "database is locked"')
    parser.add_argument('--build-only', action='store_true',
                        help='build the flow with Ceph stand-ins; do not '
                        'run it')
    args = parser.parse_args(argv)
    if args.build_only:
        from glance_sparse_import.tests.functional import ceph_stub
        ceph_stub.install()
    result = run(args)
    sys.stdout.write('RESULT ' + json.dumps(result) + '\n')


if __name__ == '__main__':
    main()
