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
# Demo: install what is needed, then import an 8 GiB-virtual cloud image
# into a throwaway Ceph through a throwaway Glance API with
# sparse_rbd_import, and verify it. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-venv.sh .venv-demo
exec .venv-demo/bin/python tools/demo.py "$@"
