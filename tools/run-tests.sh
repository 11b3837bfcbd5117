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
# copy-image) and the documentation build
# (warnings are errors). Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if [ ! -x .venv-tox/bin/tox ]; then
    /usr/bin/python3 -m venv .venv-tox
    .venv-tox/bin/pip install -q -U pip 'tox>=4'
fi
exec .venv-tox/bin/tox -e pep8,py3,faults,consumers,docs -- "$@"
