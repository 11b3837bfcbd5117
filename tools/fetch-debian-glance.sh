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
# Fetch Debian 12's own packaged Glance (glance-api, python3-glance: 25.1,
# Zed, with Debian's security backports) and every package it depends on
# that this system lacks, and unpack them into .cache/debian-glance/root
# without installing anything: the debian-12 tox environment (a
# virtualenv of /usr/bin/python3 that sees the system's packages) reads
# them through a .pth file (tools/link-debian-glance.py). apt resolves
# against the system's own sources and installed packages and downloads
# into a private folder; no maintainer script runs and the system's
# packages and configuration are not changed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/debian-glance
PACKAGES=(glance-api python3-glance python3-glanceclient
          python3-openstackclient uwsgi-core uwsgi-plugin-python3)

[ -d "$DEST/root" ] && exit 0

mkdir -p .cache
work=$(mktemp -d "$PWD/.cache/debian-glance.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/archives/partial"
echo "fetch-debian-glance: ${PACKAGES[*]} and their dependencies"
download() {
    apt-get -q -y -o Dir::Cache::archives="$work/archives" \
        -o APT::Sandbox::User=root install --download-only \
        --no-install-recommends "${PACKAGES[@]}" >/dev/null
}
# Package lists missing or out of date (a machine whose packages were all
# installed long ago): refresh them once.
download || { apt-get update -qq && download; }
mkdir "$work/out"
for deb in "$work"/archives/*.deb; do
    dpkg-deb -x "$deb" "$work/out/root"
    basename "$deb" >> "$work/out/DEBS"
done
rm -rf "$DEST"
mv -T "$work/out" "$DEST"
