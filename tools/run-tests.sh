#!/bin/bash
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
#
# Install everything (Debian packages, tox) and run the whole test suite:
# lint, unit, functional (real Glance flow, real Ceph), end to end (real
# Glance API under uWSGI, real glance CLI), faults (Ceph and Glance failing
# mid-import), consumers (Cinder, Nova, the OpenStack client, download,
# copy-image), the real-image corpus of ../shared/real-images (disk
# images made by other producers) and the documentation build
# (warnings are errors); then the support matrix: each older Glance series
# with its upper constraints, and the older Pythons (README, "Supported
# releases"). Run as root on Debian 12. With arguments, only py3 runs,
# with them passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [ ! -x .venv-tox/bin/tox ]; then
    /usr/bin/python3 -m venv .venv-tox
    .venv-tox/bin/pip install -q -U pip 'tox>=4'
fi
# The support matrix (README, "Supported releases"). GSI_MATRIX_EXTRA adds
# environments that need more than Debian 12 has (.ci/run: the older
# Pythons).
MATRIX=series-2023.1,series-2024.1,series-2025.1,series-2026.1,debian-12
if [ -n "${GSI_MATRIX_EXTRA:-}" ]; then
    MATRIX=$MATRIX,$GSI_MATRIX_EXTRA
fi

if [ $# -gt 0 ]; then
    exec .venv-tox/bin/tox -e py3 -- "$@"
fi
# Installs wait on the network: build every environment at once (sharing
# pip's cache), then run the lanes two at a time, the longest first, so
# that the short ones fill the other slot while py3 runs. Each lane starts
# its own Ceph clusters and Glance APIs.
LANES=py3,real-images,faults,consumers,$MATRIX,docs,pep8
.venv-tox/bin/tox run-parallel --notest --parallel-no-spinner -p all \
    -e "$LANES"
exec .venv-tox/bin/tox run-parallel --parallel-no-spinner -p 2 -e "$LANES"
