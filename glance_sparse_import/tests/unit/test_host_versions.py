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

"""Installing the plugin leaves the host's Glance stack as it was.

The matrix environments install a series' Glance with its upper
constraints, then the plugin with its requirements and no constraints, as
an operator does; pip must not have replaced any of the series' versions.
The one exception is what the install guide has operators add to a
series' Glance environment themselves (``series.OPERATOR_ADDED``).
"""

from importlib import metadata

import pytest

from glance_sparse_import.tests.testbed import series

# What the plugin runs on and must never upgrade or downgrade: Glance,
# the CLI and every requirement of the plugin that Glance shares.
HOST = ('glance', 'glance-store', 'oslo.utils', 'oslo.config', 'oslo.log',
        'oslo.concurrency', 'oslo.db', 'SQLAlchemy', 'taskflow',
        'stevedore', 'cryptography', 'cursive', 'python-glanceclient',
        # What Glance's keystonemiddleware runs on, and add-site's
        # openstacksdk would pull in.
        'keystoneauth1')


def _installed():
    """``{normalized distribution name: version}`` of this environment.

    The first of a name on ``sys.path`` counts, as for an import (a
    distribution's packages may sit behind a virtualenv's own). (Python
    3.9's ``metadata.version`` does not normalize names.)
    """
    found = {}
    for d in metadata.distributions():
        found.setdefault(series.normalize(d.metadata['Name']), d.version)
    return found


@pytest.mark.series_core
def test_glance_is_the_series_release():
    name = series.current()
    version = _installed()['glance']
    assert int(version.split('.')[0]) == series.GLANCE[name], (name, version)


@pytest.mark.series_core
def test_plugin_install_kept_the_series_versions():
    name = series.current()
    pins = series.upper_constraints(name)
    pins.update({series.normalize(d): v for d, v in
                 series.OPERATOR_ADDED.get(name, {}).items()})
    expected = {d: pins[series.normalize(d)] for d in HOST
                if series.normalize(d) in pins}
    installed = _installed()
    assert {d: installed.get(series.normalize(d)) for d in expected} == \
        expected


@pytest.mark.series_core
def test_plugin_is_installed_for_glance():
    dist = metadata.distribution('glance-sparse-import')
    plugins = {(e.group, e.name, e.value) for e in dist.entry_points}
    assert ('glance.image_import.plugins', 'sparse_rbd_import',
            'glance_sparse_import.plugin:get_flow') in plugins
