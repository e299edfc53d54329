#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need,
# and only those that are missing. Safe to run again; called by `make`.
set -euo pipefail

packages=(
	gcc make meson ninja-build pkg-config
	libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
	protobuf-compiler python3-grpcio python3-protobuf
	iproute2 util-linux procps tmux
	qemu-system-x86 busybox-static cpio e2fsprogs
)
case "${1:-}" in
	--bench) packages+=(qemu-guest-agent openssh-server openssh-client socat) ;;
	# make fuzz: libFuzzer, and what fetches and unpacks nghttp2's source.
	--fuzz) packages+=(clang libfuzzer-14-dev dpkg-dev) ;;
esac

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
