#!/usr/bin/env bash
# Builds the VM test's initramfs: static maitred, vshd, maitctl and vsh from
# BUILD (a -Dstatic=true build), busybox-static for tools, the kernel
# modules from KERNEL_DIR (tests/vm/fetch-kernel.sh), a first stage as
# /init, and vshd as a boot job. Writes a gzip'd newc cpio to OUT.
#
# Usage: tests/vm/make-initramfs.sh [--test-jobs] BUILD KERNEL_DIR OUT
set -euo pipefail
test_jobs=0
if [ "${1:-}" = --test-jobs ]; then
	test_jobs=1
	shift
fi
build=$1 kernel=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)

for p in maitred vshd maitctl vsh; do
	f="$build/src/$p"
	[ -x "$f" ] || { echo "make-initramfs: $f missing (build BUILD with -Dstatic=true)" >&2; exit 1; }
	if readelf -l "$f" | grep -q "program interpreter"; then
		echo "make-initramfs: $f is not static" >&2
		exit 1
	fi
done

root=$(mktemp -d /tmp/valet-initramfs-XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,etc/maitred,lib/modules,mnt/disk,mnt/tmp,proc,root,run,sys,tmp}
install -m 0755 "$build/src/maitred" "$build/src/vshd" "$root/sbin/"
install -m 0755 "$build/src/maitctl" "$build/src/vsh" "$root/bin/"
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/first-stage.sh" "$root/init"
cp "$kernel"/modules/*.ko "$root/lib/modules/"
cp "$kernel/modules.order" "$root/lib/modules/"

# The kernel opens /dev/console for /init before anything is mounted; the
# first stage logs to /dev/kmsg. maitred mounts devtmpfs over these.
mknod -m 0600 "$root/dev/console" c 5 1
mknod -m 0644 "$root/dev/kmsg" c 1 11

cat >"$root/etc/passwd" <<'EOT'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOT
cat >"$root/etc/group" <<'EOT'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOT
echo "valet-vm" >"$root/etc/hostname"
# vshd is a boot job. With --test-jobs, so are the VM test's: one waited
# for, one that does not parse, one asking for respawn and wait_for_exit.
install -m 0644 "$here/jobs/10-vshd.textproto" "$root/etc/maitred/"
if [ "$test_jobs" = 1 ]; then
	install -m 0644 "$here"/jobs/[0-9]*.textproto "$root/etc/maitred/"
	mkdir -p "$root/etc/maitred-poweroff-during-jobs"
	install -m 0644 "$here"/jobs/poweroff-during-jobs/*.textproto "$root/etc/maitred-poweroff-during-jobs/"
fi

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
