#!/bin/sh
# The VM image's /init, first stage: load the modules Debian's cloud kernel
# builds as modules (virtio, vsock loopback, pvpanic), give eth0 the address
# QEMU's user-mode network forwards to, then exec maitred, which stays PID 1
# and does the rest (mounts, console, boot jobs, serving, power-off).
# Mounts nothing: setting the system up is maitred's job and is tested.
export PATH=/bin:/sbin
msg() { echo "<6>first-stage: $*" >/dev/kmsg; }
msg "loading modules"
while read -r m; do
	insmod "/lib/modules/$m" || msg "could not load $m"
done </lib/modules/modules.order
i=0
until ip link show eth0 >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 500 ] && { msg "no eth0"; break; }
	usleep 10000
done
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
# For the VM test: the kernel hands unknown key=value words of its command
# line to init as environment; valet_jobs=DIR picks another boot-job
# directory, valet_listen=ADDR adds a listener.
msg "exec maitred"
exec /sbin/maitred --listen vsock:-1:8888 --listen tcp:10.0.2.15:8888 --vm-ready tcp:10.0.2.100:7777 \
	--jobs-dir "${valet_jobs:-/etc/maitred}" ${valet_listen:+--listen "$valet_listen"}
