#!/usr/bin/env bash
# Installs the Debian packages one Make target needs, and only those that
# are missing. Safe to run again; each Make target calls it with its mode:
#
#   build     compiler, Meson, Ninja and the libraries (make, make build, make install)
#   check     build + what the unit and integration tests run (make check-fast)
#   vm        check + QEMU and what the VM test builds its guests with (make check)
#   demo      build + QEMU, the guest image's tools, Python gRPC (make demo)
#   sandbox   build + namespaces' tools (make demo-sandbox)
#   clang     build + clang (make check-clang)
#   bench     vm + the benchmarks' peers (make bench)
#   fuzz      build + libFuzzer, nghttp2's source tools (make fuzz)
#
# --reconfigure DIR (repeatable): when something was installed, run
# `meson setup --reconfigure` on DIR if it exists, so that optional
# dependencies (grpc++ for the interop driver) are found by a build
# directory that was set up before them.
set -euo pipefail

mode=build
reconfigure=()
while [ $# -gt 0 ]; do
	case "$1" in
	--reconfigure) reconfigure+=("$2"); shift 2 ;;
	--bench | --fuzz) mode=${1#--}; shift ;;
	build | check | vm | demo | sandbox | clang | bench | fuzz) mode=$1; shift ;;
	*) echo "install-deps: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

build=(
	gcc make meson ninja-build pkg-config python3 binutils
	libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev zlib1g-dev
)
# The Python side of the tests and of the VM harness: protos, grpcio; the
# SDK (python/) installs with setuptools into a venv (test_sdk_package).
python_grpc=(protobuf-compiler python3-grpcio python3-protobuf python3-setuptools python3-venv python3-pip)
check=(
	"${python_grpc[@]}"
	iproute2 util-linux procps tmux e2fsprogs tzdata
	# Mount's blank check and the btrfs resize bound against real mkfs output.
	btrfs-progs xfsprogs dosfstools cryptsetup-bin fdisk
	# test_install: manual pages, completions, an image from installed programs.
	mandoc man-db bash-completion busybox-static cpio
	# The interop suite: a grpc++ client, grpc-js on Debian's node, h2load.
	g++ libgrpc++-dev protobuf-compiler-grpc nodejs nghttp2-client
)
# The VM test: QEMU, guest images, and the systemd guest's Debian package
# and root filesystem (tests/vm/systemd_suite.py).
vm=(qemu-system-x86 busybox-static cpio e2fsprogs tzdata debootstrap debhelper dpkg-dev lintian)

packages=("${build[@]}")
npm=false
case "$mode" in
build) ;;
check) packages+=("${check[@]}"); npm=true ;;
vm) packages+=("${check[@]}" "${vm[@]}"); npm=true ;;
demo) packages+=("${python_grpc[@]}" qemu-system-x86 busybox-static cpio e2fsprogs tzdata) ;;
sandbox) packages+=(iproute2 util-linux procps) ;;
clang) packages+=(clang) ;;
bench) packages+=("${check[@]}" "${vm[@]}" qemu-guest-agent openssh-server openssh-client socat); npm=true ;;
# make fuzz: libFuzzer, and what fetches and unpacks nghttp2's source.
fuzz) packages+=(clang libfuzzer-14-dev dpkg-dev) ;;
esac
# npm comes with Debian's `npm` package, or inside some nodejs builds.
if $npm && ! command -v npm >/dev/null 2>&1; then
	packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
# Only the interop suite needs grpc-js: a failure here (no npm registry)
# does not stop the tests; the interop tests then say what is missing.
npm_deps() {
	$npm || return 0
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
for d in "${reconfigure[@]}"; do
	if [ -f "$d/build.ninja" ]; then
		meson setup --reconfigure "$d" >/dev/null
	fi
done
