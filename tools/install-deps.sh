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
# Install the Debian packages the project and its tests need. Run as root on
# Debian 12. Idempotent: when everything is installed it changes nothing and
# does not touch the network.
set -euo pipefail

#
# Every program the tree runs must come from a package listed here (or from
# Debian's base system): glance_sparse_import/tests/unit/test_programs.py
# finds them and fails otherwise; testbed/programs.py maps them.
PACKAGES=(
    # Test clusters: one monitor and one memstore OSD each, a manager for
    # the pool-quota test, monmaptool (ceph-base) and the CLIs.
    ceph-mon ceph-osd ceph-mgr ceph-base ceph-common
    # The bindings exist only as distribution packages.
    python3-rados python3-rbd python3-libnbd libnbd-bin
    # qemu-img, qemu-nbd and qemu-io.
    qemu-utils
    # Glance's database in the load tests (sqlite loses tasks under
    # concurrent writers): the server binaries, no system service, and
    # my_print_defaults for mariadb-install-db.
    mariadb-server-core mariadb-client-core
    # Signing test images.
    openssl
    # Test images: mke2fs -d for ext4, xorriso for ISO 9660, sgdisk for GPT.
    e2fsprogs xorriso gdisk
    # pgrep: no qemu-nbd left behind.
    procps
    # pbr takes the version from git; bench-import records the commit.
    git
    # The RPM of packaging/rpm, built and read back by the tests: rpmbuild
    # and rpm (rpm), and rpm2cpio for its payload.
    rpm rpm2cpio
    # Virtualenvs, and a compiler for uWSGI, which PyPI ships as source.
    python3 python3-venv python3-dev build-essential ca-certificates
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
