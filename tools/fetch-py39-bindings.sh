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
# Fetch Python 3.9 builds of the rados, rbd and nbd bindings into
# .cache/bindings-py39, which tools/link-system-bindings.py links into a
# Python 3.9 virtualenv. Debian 12 builds them for 3.11 only; Debian 11's
# (bullseye: Ceph 14.2, libnbd 1.6) are for 3.9 and load against Debian
# 12's librados2, librbd1 and libnbd0. apt reads a private sources list
# naming the mirror the system's apt uses, and keeps its lists and cache
# in a private folder: the system's apt configuration is never changed.
# Idempotent: does nothing when the bindings are there.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/bindings-py39
PACKAGES=(python3-rados/bullseye python3-rbd/bullseye python3-libnbd/bullseye)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

[ -d "$DEST" ] && exit 0

# The mirror the system's apt uses for its own release.
. /etc/os-release
mirrors=$(apt-get indextargets --no-release-info --format '$(REPO_URI)' \
    'Target-Of: deb' 'Identifier: Packages' "Release: $VERSION_CODENAME")
mirror=${mirrors%%$'\n'*}
if [ -z "$mirror" ]; then
    echo "fetch-py39-bindings: no $VERSION_CODENAME source in apt's" \
        "configuration" >&2
    exit 1
fi

mkdir -p .cache
work=$(mktemp -d "$PWD/.cache/bindings-py39.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=$KEYRING] $mirror bullseye main" > "$work/sources.list"
# Root keeps the downloads: apt's _apt user cannot enter the private folder.
APT=(-q -o Dir::Etc::SourceList="$work/sources.list"
     -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$work/lists"
     -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
echo "fetch-py39-bindings: ${PACKAGES[*]} from $mirror"
apt-get "${APT[@]}" update >/dev/null
(cd "$work/debs" && apt-get "${APT[@]}" download "${PACKAGES[@]}" >/dev/null)
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
    basename "$deb" >> "$work/root/usr/lib/python3/dist-packages/DEBS"
done
# A run in parallel may have finished first.
mv -T "$work/root/usr/lib/python3/dist-packages" "$DEST" 2>/dev/null ||
    [ -d "$DEST" ]
