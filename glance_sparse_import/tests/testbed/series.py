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

"""The OpenStack series a test environment stands for.

Each tox environment of the matrix sets ``GSI_SERIES``; the series' upper
constraints are ``../shared/upper-constraints/SERIES.txt`` beside the
repository. The newest series has none: it is today's PyPI.
"""

import os
import re

# Series -> Glance major version.
GLANCE = {
    'wallaby': 22,
    '2023.1': 26,
    '2024.1': 28,
    '2025.1': 30,
    '2026.1': 32,
    '2026.2': 33,
    # Debian 12's own packages (tools/fetch-debian-glance.sh).
    'debian-12': 25,
}
# Series whose versions are a distribution's packages, not PyPI's.
DISTRIBUTION = {'debian-12': os.path.join('.cache', 'debian-glance',
                                          'PINS')}
# What the install guide has operators add to a series' Glance environment
# beyond its upper constraints: series -> {distribution: version}.
# Wallaby's Glance 22 and oslo.utils 4.8 have no format inspector.
OPERATOR_ADDED = {
    'wallaby': {'oslo.utils': '7.4.0'},
}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
CONSTRAINTS_DIR = os.path.join(os.path.dirname(ROOT), 'shared',
                               'upper-constraints')


def current():
    """The series named by ``GSI_SERIES``; ValueError when unknown."""
    name = os.environ.get('GSI_SERIES', '')
    if name not in GLANCE:
        raise ValueError('GSI_SERIES=%r: set it to one of %s (tox.ini does)'
                         % (name, ', '.join(sorted(GLANCE))))
    return name


def newest():
    """The newest series: today's PyPI, without upper constraints."""
    return max(GLANCE, key=GLANCE.get)


def normalize(name):
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r'[-_.]+', '-', name).lower()


def upper_constraints(name):
    """``{normalized distribution: version}`` pinned for series ``name``.

    Empty for the newest series, which has no file.
    """
    path = os.path.join(CONSTRAINTS_DIR, '%s.txt' % name)
    if name in DISTRIBUTION:
        path = os.path.join(ROOT, DISTRIBUTION[name])
    elif name == newest():
        return {}
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            match = re.match(r'([A-Za-z0-9._-]+)===([^;\s]+)(?:;(.*))?$',
                             line)
            if match and _marker_applies(match.group(3)):
                pins[normalize(match.group(1))] = match.group(2)
    return pins


def _marker_applies(marker):
    if not marker:
        return True
    from packaging import markers
    return markers.Marker(marker).evaluate()


def core(*values, **kwargs):
    """A ``pytest.param`` that every series runs (marked series_core)."""
    import pytest
    return pytest.param(*values, marks=pytest.mark.series_core, **kwargs)
