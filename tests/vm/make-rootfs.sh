#!/usr/bin/env bash
# Builds a minimal Debian 12 root filesystem with systemd as init, for the
# systemd guest test (tests/vm/systemd_suite.py), with debootstrap from the
# Debian archive this machine's apt uses. Cached outside git as a tarball;
# rebuilt only when the package list below changes.
# Prints the tarball's path.
#
# Usage: tests/vm/make-rootfs.sh [CACHE_DIR]   (default ~/.cache/valet-vm)
set -euo pipefail

cache=${1:-${VALET_VM_CACHE:-$HOME/.cache/valet-vm}}
mkdir -p "$cache"
suite=bookworm
# systemd as PID 1 and udev; what valet's package depends on, so that the
# package installs offline; iproute2 and procps for the test's checks.
include=systemd-sysv,udev,iproute2,procps,libnghttp2-14,libprotobuf-c1,zlib1g
key=$(printf '%s %s' "$suite" "$include" | sha256sum | cut -c1-12)
out="$cache/rootfs-$suite-$key.tar"
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi

mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /^http/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

tmp=$(mktemp -d "$cache/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
debootstrap --variant=minbase --include="$include" "$suite" "$tmp/root" "$mirror" >"$tmp/log" 2>&1 || {
	tail -20 "$tmp/log" >&2
	echo "make-rootfs: debootstrap failed" >&2
	exit 1
}
rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
tar -C "$tmp/root" --numeric-owner -cf "$tmp/rootfs.tar" .
mv "$tmp/rootfs.tar" "$out"
echo "$out"
