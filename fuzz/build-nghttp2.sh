#!/usr/bin/env bash
# Builds libnghttp2.a with the fuzzer's instrumentation from Debian's own
# source package (the version of the installed libnghttp2-dev), so that the
# fuzzers explore the HTTP/2 state machine our sessions drive. Only the fuzz
# build links it; the programs keep the system library.
#
# The source is fetched with apt through a private configuration (the
# machine's own sources turned into deb-src entries) into a cache outside
# the tree; nothing global is changed. Prints the install prefix.
#
#   fuzz/build-nghttp2.sh [CACHE_DIR]   (default ~/.cache/valet-fuzz)
set -euo pipefail

cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/valet-fuzz}
version=$(dpkg-query -W -f='${source:Version}' libnghttp2-dev)
flags="-fsanitize=fuzzer-no-link,address,undefined -g -O1 -fno-omit-frame-pointer"
# What nghttp2's configure would find on any Linux.
defs="-DHAVE_ARPA_INET_H -DHAVE_NETINET_IN_H -DHAVE_UNISTD_H -DHAVE_TIME_H -DHAVE_CLOCK_GETTIME -DBUILDING_NGHTTP2"
prefix=$cache/nghttp2-$version
stamp=$prefix/.built

# The instrumentation is part of what was built: rebuild when it changes.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$flags $defs" ]; then
	echo "$prefix"
	exit 0
fi

apt_dir=$cache/apt
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/src"
# deb-src twins of the machine's sources (deb822 and one-line formats).
rm -f "$apt_dir/sources.list.d/"*
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt_dir/sources.list.d/$(basename "$f")"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] && sed -n 's/^deb /deb-src /p' "$f" >"$apt_dir/sources.list.d/src-$(basename "$f" .list).list"
done
apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")

src=$cache/src/nghttp2-$version
if [ ! -d "$src" ]; then
	echo "build-nghttp2: fetching the source of nghttp2 $version" >&2
	apt-get "${apt_opts[@]}" -qq update >&2
	(cd "$cache/src" && apt-get "${apt_opts[@]}" -qq source --download-only "nghttp2=$version" >&2)
	rm -rf "$src.tmp"
	dpkg-source -x "$cache/src/nghttp2_${version#*:}.dsc" "$src.tmp" >&2
	mv "$src.tmp" "$src"
fi

# Only the library, compiled directly: no configure run, no tools, no apps.
echo "build-nghttp2: building the instrumented library" >&2
upstream=${version%%-*}
num=$(printf '0x%02x%02x%02x' $(echo "$upstream" | tr . ' '))
obj=$prefix/obj
rm -rf "$prefix"
mkdir -p "$obj" "$prefix/include/nghttp2" "$prefix/lib"
cp "$src"/lib/includes/nghttp2/nghttp2.h "$prefix/include/nghttp2/"
sed -e "s/@PACKAGE_VERSION@/$upstream/" -e "s/@PACKAGE_VERSION_NUM@/$num/" \
	"$src/lib/includes/nghttp2/nghttp2ver.h.in" >"$prefix/include/nghttp2/nghttp2ver.h"
for c in "$src"/lib/*.c; do
	clang $flags $defs -I"$prefix/include" -I"$src/lib" -c "$c" -o "$obj/$(basename "$c" .c).o" &
	# Two at a time at most: the machine is shared.
	while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
done
wait
ar rcs "$prefix/lib/libnghttp2.a" "$obj"/*.o
# For Meson's dependency('libnghttp2') with -Dpkg_config_path=PREFIX/lib/pkgconfig.
mkdir -p "$prefix/lib/pkgconfig"
cat >"$prefix/lib/pkgconfig/libnghttp2.pc" <<PC
prefix=$prefix
Name: libnghttp2
Description: nghttp2 $version built for fuzzing
Version: $upstream
Libs: -L\${prefix}/lib -l:libnghttp2.a
Cflags: -I\${prefix}/include
PC
echo "$flags $defs" >"$stamp"
echo "$prefix"
