#!/usr/bin/env bash
# Fetches Debian's cloud kernel (the versioned package behind
# linux-image-cloud-amd64, resolved now, never hard-coded) and extracts
# vmlinuz plus the few modules the VM test loads, into a cache outside git.
# Prints the directory holding vmlinuz, modules/ (with modules.order, the
# load order, as valet-mkinitramfs --modules takes it) and version.
#
# Usage: tests/vm/fetch-kernel.sh [CACHE_DIR]   (default ~/.cache/valet-vm)
set -euo pipefail

cache=${1:-${VALET_VM_CACHE:-$HOME/.cache/valet-vm}}
mkdir -p "$cache"

resolve() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
	apt-get update -qq >&2
	pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }

dir="$cache/$pkg"
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/version" ] && [ -s "$dir/modules/modules.order" ]; then
	echo "$dir"
	exit 0
fi

# The modules, in the order they are loaded (dependencies first).
modules=(
	drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
	drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
	net/core/failover drivers/net/net_failover drivers/net/virtio_net
	drivers/block/virtio_blk
	lib/crc16 crypto/crc32c_generic lib/libcrc32c fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4
	net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common net/vmw_vsock/vsock_loopback
	drivers/misc/pvpanic/pvpanic drivers/misc/pvpanic/pvpanic-pci
)

tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q "$pkg" >&2)
deb=$(ls "$tmp"/*.deb)
version=${pkg#linux-image-}
mkdir -p "$tmp/x"
patterns=("./boot/vmlinuz-$version")
for m in "${modules[@]}"; do
	patterns+=("./lib/modules/$version/kernel/$m.ko")
done
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards "${patterns[@]}" 2>/dev/null || true

mkdir -p "$tmp/out/modules"
cp "$tmp/x/boot/vmlinuz-$version" "$tmp/out/vmlinuz"
: >"$tmp/out/modules/modules.order"
for m in "${modules[@]}"; do
	f="$tmp/x/lib/modules/$version/kernel/$m.ko"
	if [ -f "$f" ]; then
		cp "$f" "$tmp/out/modules/"
		echo "$(basename "$m").ko" >>"$tmp/out/modules/modules.order"
	fi
	# A module missing from the package is built into this kernel.
done
echo "$version" >"$tmp/out/version"
rm -rf "$dir"
mv "$tmp/out" "$dir"
echo "$dir"
