#!/usr/bin/env bash
# valet-mkinitramfs: builds a guest image (a compressed newc cpio, usable as
# an initramfs) whose /init is maitred, with vshd as a boot job. The first
# stage (a tiny busybox script) loads the kernel modules given, optionally
# gives an interface a static address, and execs maitred, which stays PID 1.
# See valet-mkinitramfs(1).
set -euo pipefail

prog=valet-mkinitramfs
die() { echo "$prog: $*" >&2; exit 1; }
usage() {
	cat <<'EOT'
Usage: valet-mkinitramfs [OPTIONS] -o OUT

Builds an initramfs whose /init is maitred (the guest agent) with vshd as a
boot job.

  -o, --output OUT       the image to write (required)
  --programs DIR         where maitred, vshd, maitctl and vsh are (repeatable:
                         searched in order; default: PATH, then /usr/sbin,
                         /usr/bin)
  --busybox PATH         a static busybox for /bin (default /bin/busybox)
  --modules DIR          kernel modules to load at boot: DIR/*.ko, in the
                         order of DIR/modules.order when it exists
  --net IFACE=ADDR/LEN   give IFACE this IPv4 address at boot (e.g. for
                         QEMU's user network: eth0=10.0.2.15/24)
  --listen ADDR          maitred listens on ADDR (repeatable; default
                         vsock:-1:8888)
  --vsh-listen ADDR      vshd listens on ADDR (repeatable; default
                         vsock:-1:9001)
  --no-vshd              no vshd boot job
  --vm-ready ADDR        where maitred sends VmReady (default vsock:2:7777)
  --job FILE             an extra boot job (text-format LaunchProcessRequest;
                         repeatable); installed in /etc/maitred
  --file SRC=DEST        copy SRC to DEST in the image (repeatable)
  --dir PATH             an empty directory in the image, e.g. a mount point
                         (repeatable)
  --hostname NAME        /etc/hostname (default valet-vm)
  --compress gzip|xz|zstd|none   (default gzip)
  -h, --help

Dynamically linked programs are copied with the libraries they need.
EOT
}

out="" busybox=/bin/busybox modules="" hostname=valet-vm compress=gzip vm_ready=vsock:2:7777
vshd=1
listen=() vsh_listen=() jobs=() files=() nets=() dirs=() programs=()
while [ $# -gt 0 ]; do
	opt=$1
	case "$opt" in
	-h | --help) usage; exit 0 ;;
	--no-vshd) vshd=0; shift; continue ;;
	-o | --output | --programs | --busybox | --modules | --net | --listen | --vsh-listen | --vm-ready | --job | \
		--file | --dir | --hostname | --compress)
		[ $# -ge 2 ] || die "$opt needs a value"
		val=$2
		shift 2
		;;
	*) usage >&2; die "unknown argument '$opt'" ;;
	esac
	case "$opt" in
	-o | --output) out=$val ;;
	--programs) programs+=("$val") ;;
	--busybox) busybox=$val ;;
	--modules) modules=$val ;;
	--net)
		[[ "$val" =~ ^[A-Za-z0-9_.-]+=[0-9.]+/[0-9]+$ ]] || die "invalid --net '$val': expected IFACE=ADDR/LEN"
		nets+=("$val")
		;;
	--listen) listen+=("$val") ;;
	--vsh-listen) vsh_listen+=("$val") ;;
	--vm-ready) vm_ready=$val ;;
	--job) [ -f "$val" ] || die "--job '$val': no such file"; jobs+=("$val") ;;
	--file)
		[[ "$val" == *=/* ]] || die "invalid --file '$val': expected SRC=/DEST"
		[ -e "${val%%=*}" ] || die "--file '$val': no such file ${val%%=*}"
		files+=("$val")
		;;
	--dir) [[ "$val" == /* ]] || die "invalid --dir '$val': expected an absolute path"; dirs+=("$val") ;;
	--hostname) hostname=$val ;;
	--compress)
		case "$val" in gzip | xz | zstd | none) compress=$val ;; *) die "invalid --compress '$val'" ;; esac
		;;
	esac
done
[ -n "$out" ] || { usage >&2; die "no output given (-o OUT)"; }
[ ${#listen[@]} -gt 0 ] || listen=(vsock:-1:8888)
[ ${#vsh_listen[@]} -gt 0 ] || vsh_listen=(vsock:-1:9001)

find_program() {
	local name=$1 dir
	if [ ${#programs[@]} -gt 0 ]; then
		for dir in "${programs[@]}"; do
			[ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
		done
		die "$name: not found in ${programs[*]}"
	fi
	command -v "$name" 2>/dev/null && return
	for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
		[ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
	done
	die "$name: not found (use --programs DIR)"
}

[ -x "$busybox" ] || die "$busybox: not found (install busybox-static or use --busybox)"
if readelf -l "$busybox" 2>/dev/null | grep -q "program interpreter"; then
	die "$busybox is not static: the first stage runs before any library is there"
fi
if [ -n "$modules" ]; then
	[ -d "$modules" ] || die "--modules '$modules': not a directory"
	compgen -G "$modules/*.ko" >/dev/null || die "--modules '$modules': no .ko files in it"
fi
case "$compress" in
gzip) compressor=(gzip -1) ;;
xz) compressor=(xz --check=crc32 -T1) ;; # the kernel's unxz wants crc32
zstd) compressor=(zstd -q -19) ;;
none) compressor=(cat) ;;
esac
command -v "${compressor[0]}" >/dev/null || die "${compressor[0]} not found"

root=$(mktemp -d "${TMPDIR:-/tmp}/valet-mkinitramfs-XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,etc/maitred,lib/modules,mnt,proc,root,run,sys,tmp}

# A program and, when it is dynamically linked, its loader and libraries.
install_program() {
	local src=$1 dest=$2 lib
	install -m 0755 "$src" "$root$dest"
	readelf -l "$src" 2>/dev/null | grep -q "program interpreter" || return 0
	for lib in $(ldd "$src" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
# Looked up first: a missing program stops the build here (errexit does not
# see a failure inside an argument's command substitution).
maitred_path=$(find_program maitred)
maitctl_path=$(find_program maitctl)
vsh_path=$(find_program vsh)
[ "$vshd" = 0 ] || vshd_path=$(find_program vshd)
install_program "$maitred_path" /sbin/maitred
install_program "$maitctl_path" /bin/maitctl
install_program "$vsh_path" /bin/vsh
[ "$vshd" = 0 ] || install_program "$vshd_path" /sbin/vshd
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

: >"$root/lib/modules/modules.order"
if [ -n "$modules" ]; then
	cp "$modules"/*.ko "$root/lib/modules/"
	if [ -f "$modules/modules.order" ]; then
		cp "$modules/modules.order" "$root/lib/modules/"
	else
		(cd "$modules" && ls -1 -- *.ko) >"$root/lib/modules/modules.order"
	fi
fi

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
echo "$hostname" >"$root/etc/hostname"

# maitred's command line, each word quoted for the shell.
maitred_args=""
for a in "${listen[@]}"; do maitred_args+=" --listen $(printf '%q' "$a")"; done
maitred_args+=" --vm-ready $(printf '%q' "$vm_ready")"

{
	cat <<'EOT'
#!/bin/sh
# The first stage, written by valet-mkinitramfs: load the modules, give
# interfaces their static addresses, then exec maitred, which stays PID 1
# and does the rest (mounts, console, boot jobs, serving, power-off).
# Kernel command line words the kernel hands to init as environment:
# valet_jobs=DIR picks another boot-job directory, valet_listen=ADDR adds a
# listener.
export PATH=/bin:/sbin
msg() { echo "<6>first-stage: $*" >/dev/kmsg; }
msg "loading modules"
while read -r m; do
	insmod "/lib/modules/$m" || msg "could not load $m"
done </lib/modules/modules.order
net() {
	i=0
	until ip link show "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt 500 ] && { msg "no $1"; return; }
		usleep 10000
	done
	ip link set "$1" up
	ip addr add "$2" dev "$1"
}
EOT
	for n in "${nets[@]}"; do printf 'net %q %q\n' "${n%%=*}" "${n#*=}"; done
	cat <<EOT
msg "exec maitred"
exec /sbin/maitred$maitred_args \\
	--jobs-dir "\${valet_jobs:-/etc/maitred}" \${valet_listen:+--listen "\$valet_listen"}
EOT
} >"$root/init"
chmod 0755 "$root/init"

# Text-format strings: backslash and double quote escaped.
tp_string() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
if [ "$vshd" = 1 ]; then
	{
		echo "# The vsock shell, written by valet-mkinitramfs."
		echo 'argv: "/sbin/vshd"'
		for a in "${vsh_listen[@]}"; do echo "argv: \"--listen\" argv: $(tp_string "$a")"; done
		echo 'argv: "--log-kmsg"'
		echo "respawn: true"
	} >"$root/etc/maitred/10-vshd.textproto"
fi
for j in "${jobs[@]}"; do install -m 0644 "$j" "$root/etc/maitred/"; done
for d in "${dirs[@]}"; do mkdir -p "$root$d"; done
for f in "${files[@]}"; do
	dest=${f#*=}
	mkdir -p "$root$(dirname "$dest")"
	cp -a "${f%%=*}" "$root$dest"
done

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) |
	"${compressor[@]}" >"$out.tmp"
mv "$out.tmp" "$out"
