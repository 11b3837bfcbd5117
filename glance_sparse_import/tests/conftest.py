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

"""Shared pytest fixtures; skipped tests count as failures."""

import pytest

# pytest_plugins is refused outside the root conftest; import instead.
from glance_sparse_import.tests.testbed.fixtures import ceph_cluster  # noqa
from glance_sparse_import.tests.testbed.fixtures import ceph_cluster2  # noqa
from glance_sparse_import.tests.testbed.fixtures import ceph_cluster3  # noqa
from glance_sparse_import.tests.testbed.fixtures import file_server  # noqa
from glance_sparse_import.tests.testbed.fixtures import glance_api_factory  # noqa
from glance_sparse_import.tests.testbed.fixtures import image_builder  # noqa
from glance_sparse_import.tests.testbed.fixtures import mariadb_server  # noqa
from glance_sparse_import.tests.testbed.fixtures import module_glance_api_factory  # noqa
from glance_sparse_import.tests.testbed.fixtures import scratch_dir  # noqa
from glance_sparse_import.tests.testbed.fixtures import stock_cli  # noqa
from glance_sparse_import.tests.testbed.fixtures import stock_glance  # noqa


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # The README promises the whole suite runs on a machine its commands
    # prepared: a test that cannot run there (a program missing, say) is a
    # failure that says why, never a quiet skip.
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, 'wasxfail'):
        reason = (report.longrepr[2] if isinstance(report.longrepr, tuple)
                  else str(report.longrepr))
        report.outcome = 'failed'
        report.longrepr = ('skipped, and skips fail in this project (a test '
                           'that needs something the README does not '
                           'install belongs in a tox environment of its '
                           'own): %s' % reason)
