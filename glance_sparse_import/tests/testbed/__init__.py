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

"""Real Ceph, a real Glance API and the real glance CLI, for tests.

``ceph.CephCluster`` and ``glance_api.GlanceAPI`` own a directory each and
pick free ports, so several can run at once; ``cli.GlanceCLI`` drives the
``glance`` command next to the running interpreter; ``images`` builds test
images from local files. pytest fixtures are in ``fixtures``.
"""
