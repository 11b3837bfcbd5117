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
# Make (or update) a virtualenv with Glance, the plugin and the test tools:
#   tools/setup-venv.sh DIR
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-demo}
tools/install-deps.sh
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install -q -U pip
# Glance is the host, not a requirement of the package: today's from PyPI,
# as in tox.ini's default environments.
"$venv/bin/pip" install -q glance -r requirements.txt \
    -r test-requirements.txt -e .
"$venv/bin/python" tools/link-system-bindings.py
