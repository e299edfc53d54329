#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the benchmarks need,
# and only those that are missing. Safe to run again; called by `make`.
set -euo pipefail

packages=(
	gcc make meson ninja-build pkg-config
	libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
	protobuf-compiler libprotobuf-dev python3-grpcio python3-protobuf
	iproute2 util-linux procps tmux
	qemu-system-x86 busybox-static cpio e2fsprogs tzdata
	mandoc man-db bash-completion
	debootstrap debhelper dpkg-dev lintian
	zlib1g-dev
	# The interop suite: a grpc++ client, grpc-js on Debian's node, h2load.
	g++ libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc nodejs nghttp2-client
)
# npm comes with Debian's `npm` package, or inside some nodejs builds.
command -v npm >/dev/null 2>&1 || packages+=(npm)
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
# Only the interop suite needs grpc-js: a failure here (no npm registry)
# does not stop the build; the interop tests then say what is missing.
npm_deps() {
	"$(dirname "$0")/install-npm-deps.sh" ||
		echo "install-deps: @grpc/grpc-js not installed; the grpc-js interop tests will fail" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
	npm_deps
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_deps
