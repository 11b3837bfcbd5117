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
# Bare-machine check: run the README's two commands where nothing but
# Debian's base system is installed.
#
#   tools/bare-check.sh [--keep] [--tests-only | --demo-only] [-- PYTEST ARGS]
#
# Builds a minimal Debian 12 root with debootstrap (--variant=minbase) in a
# new directory under ${BARE_CHECK_DIR:-/var/tmp}, mounts /proc, /sys, /dev,
# /dev/pts and /dev/shm into it, makes a fresh git clone of this
# repository's HEAD in it with a read-only copy of ../shared beside it (as
# CI has them), and runs tools/run-tests.sh then tools/demo.sh there as
# root, each timed. Everything is unmounted and the root removed at the
# end, also on failure or interruption (--keep leaves the root). Exits
# non-zero when either command failed. Run as root on a Debian 12 host
# with Debian's packages reachable; the test suite alone takes 30-50
# minutes on 2 cores.
set -euo pipefail

keep=0
run_tests=1
run_demo=1
while [ $# -gt 0 ]; do
    if [ "$1" = --keep ]; then
        keep=1
    elif [ "$1" = --tests-only ]; then
        run_demo=0
    elif [ "$1" = --demo-only ]; then
        run_tests=0
    elif [ "$1" = -- ]; then
        shift
        break
    else
        echo "usage: $0 [--keep] [--tests-only|--demo-only] [-- ARGS]" >&2
        exit 2
    fi
    shift
done

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
name=$(basename "$repo")

# Only the host needs these; the root gets nothing but minbase.
for pkg in debootstrap git; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends debootstrap git \
            >/dev/null
        break
    fi
done

work=$(mktemp -d "${BARE_CHECK_DIR:-/var/tmp}/bare-check.XXXXXX")
root=$work/root

cleanup() {
    local rc=$?
    set +e
    # Whatever still runs inside the root (a daemon a failed test left)
    # would keep its mounts busy.
    for proc in /proc/[0-9]*; do
        if [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ]; then
            kill -9 "${proc#/proc/}" 2>/dev/null
        fi
    done
    for mnt in dev/shm dev/pts dev sys proc; do
        if mountpoint -q "$root/$mnt"; then
            umount "$root/$mnt" || umount -l "$root/$mnt"
        fi
    done
    if findmnt -rn -o TARGET | grep -q "^$root"; then
        echo "bare-check: still mounted under $root:" >&2
        findmnt -rn -o TARGET | grep "^$root" >&2
        rc=1
    elif [ "$keep" = 1 ]; then
        echo "bare-check: root kept in $root"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bare-check: debootstrap --variant=minbase bookworm into $root"
SECONDS=0
debootstrap --variant=minbase bookworm "$root" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
echo "bare-check: root built in $SECONDS s"

mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
# The host's network settings, not its software: name servers, the CA
# certificates it adds for a TLS-inspecting proxy (the root's ca-certificates,
# which install-deps.sh installs, takes them in) and pip's site-wide
# settings (the CA bundle pip should trust).
cp /etc/resolv.conf "$root/etc/resolv.conf"
# debootstrap writes no hosts file; Debian's installer writes this one
# (mariadb-install-db needs localhost to resolve).
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$HOSTNAME" >"$root/etc/hosts"
printf '::1\tlocalhost ip6-localhost ip6-loopback\n' >>"$root/etc/hosts"
if [ -d /usr/local/share/ca-certificates ]; then
    cp -r /usr/local/share/ca-certificates/. \
        "$root/usr/local/share/ca-certificates/"
fi
if [ -f /etc/pip.conf ]; then
    cp /etc/pip.conf "$root/etc/pip.conf"
fi

mkdir -p "$root/build"
git clone -q --no-hardlinks "$repo" "$root/build/$name"
echo "bare-check: cloned $(git -C "$root/build/$name" log -1 --format='%h %s')"
cp -r "$shared" "$root/build/shared"
chmod -R a-w "$root/build/shared"

inside() {
    chroot "$root" env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        http_proxy="${http_proxy:-}" https_proxy="${https_proxy:-}" \
        no_proxy="${no_proxy:-}" \
        /bin/bash -c 'cd "$0" && exec "$@"' "/build/$name" "$@"
}

failed=0
if [ "$run_tests" = 1 ]; then
    echo "bare-check: tools/run-tests.sh $*"
    SECONDS=0
    if inside tools/run-tests.sh "$@"; then
        status=passed
    else
        status=failed
        failed=1
    fi
    echo "bare-check: tools/run-tests.sh $status in $SECONDS s"
fi
if [ "$run_demo" = 1 ]; then
    echo "bare-check: tools/demo.sh"
    SECONDS=0
    if inside tools/demo.sh; then
        status=passed
    else
        status=failed
        failed=1
    fi
    echo "bare-check: tools/demo.sh $status in $SECONDS s"
fi
exit "$failed"
