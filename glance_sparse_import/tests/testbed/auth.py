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
fails on ``tasks.owner NOT NULL``; this filter stands in for Keystone.
"""

from glance.api.middleware import context
import glance.context

PROJECT_ID = 'c0ffee00000000000000000000000001'
USER_ID = 'c0ffee00000000000000000000000002'
ROLES = ['admin', 'member', 'reader']


class FixedContext(context.BaseContextMiddleware):

    def process_request(self, req):
        req.context = glance.context.RequestContext(
            user_id=USER_ID, project_id=PROJECT_ID, roles=ROLES,
            auth_token=req.headers.get('X-Auth-Token'))


def filter_factory(global_conf, **local_conf):
    return FixedContext
