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

"""Paste filter giving every request a fixed project, user and roles.

Glance's unauthenticated flavor leaves the project empty, and an import then
fails on ``tasks.owner NOT NULL``; this filter stands in for Keystone's
``auth_token`` middleware, as far as Glance relies on it:

- the request context carries the caller's token, which Glance forwards
  when it proxies an import to the API node holding the staged data, and
  when ``glance-download`` reads an image from another region;
- the context carries a service catalog (the filter's ``service_catalog``
  option, JSON in the form of ``auth_token``'s ``X-Service-Catalog``
  header), where ``glance-download`` looks up the other region's Glance;
- ``[keystone_authtoken] auth_url`` exists, as ``auth_token`` registers it
  with its ``password`` plugin: Glance builds its proxy client on it.
"""

import json

from glance.api.middleware import context
import glance.context
from keystoneauth1 import loading
from oslo_config import cfg

PROJECT_ID = 'c0ffee00000000000000000000000001'
USER_ID = 'c0ffee00000000000000000000000002'
ROLES = ['admin', 'member', 'reader']

cfg.CONF.register_opts(
    loading.get_auth_plugin_conf_options('password'),
    group='keystone_authtoken')


class FixedContext(context.BaseContextMiddleware):

    service_catalog = None

    def process_request(self, req):
        req.context = glance.context.RequestContext(
            user_id=USER_ID, project_id=PROJECT_ID, roles=ROLES,
            auth_token=req.headers.get('X-Auth-Token'),
            service_catalog=self.service_catalog)


def filter_factory(global_conf, **local_conf):
    catalog = local_conf.get('service_catalog')
    if not catalog:
        return FixedContext

    class WithCatalog(FixedContext):
        service_catalog = json.loads(catalog)

    return WithCatalog
