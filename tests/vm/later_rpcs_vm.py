"""Boot A's steps for the Maitred methods added after 2017, where the clock,
/etc and the disks are the VM's own: through maitctl and through
python3-grpcio with the modern field numbers. Boot A gives
maitred.main_fs=/mnt/disk (its 16 MiB ext4 disk, /dev/vda) and a second,
blank disk (/dev/vdb); the image carries the zones UTC and Asia/Tokyo."""
import re
import time

import valet
import vm_suite  # its helpers, used once both modules are loaded

MiB = 1 << 20


def gsh(v, script):
    return vm_suite.gsh(v, script)


def ctl(v, *args):
    return vm_suite.ctl(v, *args)


def expect(res, code, text=None):
    return vm_suite.expect(res, code, text)

def stubs(v):
    return valet.grpc_stubs(v.maitred_addr())


def empty():
    import common_pb2
    return common_pb2.EmptyMessage()


def kernel_space_refused(v):
    import guest_pb2
    g = stubs(v)
    resp = g.GetKernelVersion(empty(), timeout=10)
    assert resp.kernel_release == gsh(v, "uname -r").strip(), resp
    assert resp.kernel_version == gsh(v, "uname -v").strip(), resp
    expect(ctl(v, "kernel-version"), 0, resp.kernel_release)
    if " /mnt/disk " not in gsh(v, "cat /proc/mounts"):  # run on its own (-k)
        expect(ctl(v, "mount", "/dev/vda", "/mnt/disk", "ext4"), 0)
    avail, bsize = gsh(v, "stat -f -c '%a %S' /mnt/disk").split()
    assert g.GetAvailableSpace(empty(), timeout=10).available_space == int(avail) * int(bsize)
    expect(ctl(v, "space"), 0, str(int(avail) * int(bsize)))
    code, details = valet.grpc_error(g.Mount9P, guest_pb2.Mount9PRequest(port=1, target="/mnt/x"), timeout=10)
    assert code == "UNIMPLEMENTED" and "container stack" in details, details
    for name in ("StartTermina", "ConfigureContainerGuest", "UpdateStorageBalloon"):
        code, _ = valet.grpc_error(g.raw(f"/vm_tools.Maitred/{name}"), b"", timeout=10)
        assert code == "UNIMPLEMENTED", name


def guest_ahead(v):
    """The guest's clock minus the host's, as (lowest, highest): date
    prints whole seconds, read between two host readings (a vsh call took
    more than a second on a loaded machine, and a single reading after it
    failed the check once)."""
    before = time.time()
    guest = float(gsh(v, "date +%s").strip())
    after = time.time()
    return guest - after, guest + 1 - before


def set_time(v):
    import guest_pb2
    from google.protobuf import timestamp_pb2
    g = stubs(v)
    target = time.time() + 86400
    g.SetTime(guest_pb2.SetTimeRequest(time=timestamp_pb2.Timestamp(seconds=int(target),
                                                                    nanos=int(target % 1 * 1e9))), timeout=10)
    # A day ahead, give or take a second (the request's way to the guest).
    lo, hi = guest_ahead(v)
    assert lo - 1 <= 86400 <= hi + 1, (lo, hi)
    code, details = valet.grpc_error(g.SetTime, guest_pb2.SetTimeRequest(time=timestamp_pb2.Timestamp(seconds=0)),
                                     timeout=10)
    assert code == "INVALID_ARGUMENT", details
    lo, hi = guest_ahead(v)
    assert lo - 1 <= 86400 <= hi + 1, ("SetTime(0) moved the clock", lo, hi)
    assert re.search(r"SetTime from .*: clock stepped from \d+\.\d+ to \d+\.\d+ \(\+86\d\d\d\.\d+ s\)",
                     v.console_text()), v.console_text()[-2000:]
    # Back to the host's time, through maitctl.
    expect(ctl(v, "set-time", "--now"), 0, "OK")
    lo, hi = guest_ahead(v)
    assert lo - 1 <= 0 <= hi + 1, (lo, hi)


def set_timezone(v):
    import guest_pb2
    g = stubs(v)
    expect(ctl(v, "set-timezone", "Asia/Tokyo"), 0)
    assert gsh(v, "date +%Z").strip() == "JST"
    assert gsh(v, "readlink /etc/localtime").strip() == "/usr/share/zoneinfo/Asia/Tokyo"
    g.SetTimezone(guest_pb2.SetTimezoneRequest(timezone_name="UTC", use_bind_mount=True), timeout=10)
    assert gsh(v, "date +%Z").strip() == "UTC"
    assert re.search(r"^\S+ /etc/localtime ", gsh(v, "cat /proc/mounts"), re.M)
    expect(ctl(v, "set-timezone", "--bind-mount", "Asia/Tokyo"), 0)
    assert gsh(v, "date +%Z").strip() == "JST"
    for name in ("Mars/Olympus_Mons", "../../etc/passwd"):
        code, details = valet.grpc_error(g.SetTimezone, guest_pb2.SetTimezoneRequest(timezone_name=name),
                                         timeout=10)
        assert code == "INVALID_ARGUMENT" and name in details, details
    assert gsh(v, "date +%Z").strip() == "JST"
    expect(ctl(v, "set-timezone", "UTC"), 0)
    assert gsh(v, "grep -c ' /etc/localtime ' /proc/mounts; true").strip() == "0"
    assert gsh(v, "date +%Z").strip() == "UTC"


def resolv_config(v):
    import guest_pb2
    g = stubs(v)
    expect(ctl(v, "set-dns", "--nameserver", "10.0.2.3", "--nameserver", "2001:db8::53", "--search", "vm.example"),
           0)
    want = "nameserver 10.0.2.3\nnameserver 2001:db8::53\nsearch vm.example\n"
    assert gsh(v, "grep -v '^#' /etc/resolv.conf") == want
    code, details = valet.grpc_error(g.SetResolvConfig, guest_pb2.SetResolvConfigRequest(
        resolv_config=guest_pb2.ResolvConfig(nameservers=["10.0.2.3", "10.0.2.300"])), timeout=10)
    assert code == "INVALID_ARGUMENT" and "10.0.2.300" in details, details
    assert gsh(v, "grep -v '^#' /etc/resolv.conf") == want, "a refused call changed resolv.conf"
    # ConfigureNetwork with field 2, the address the VM already has.
    import socket
    import struct

    def s_addr(x):
        return struct.unpack("=I", socket.inet_aton(x))[0]
    g.ConfigureNetwork(guest_pb2.NetworkConfigRequest(
        ipv4_config=guest_pb2.IPv4Config(address=s_addr("10.0.2.15"), netmask=s_addr("255.255.255.0"),
                                         gateway=s_addr("10.0.2.2")),
        resolv_config=guest_pb2.ResolvConfig(nameservers=["10.0.2.3"], search_domains=["a.example", "b.example"])),
        timeout=10)
    assert gsh(v, "grep -v '^#' /etc/resolv.conf") == "nameserver 10.0.2.3\nsearch a.example b.example\n"
    # A read-only /etc: the file goes to /run/resolv.conf instead.
    gsh(v, "mount --bind /etc /etc && mount -o remount,bind,ro /etc")
    try:
        expect(ctl(v, "set-dns", "--nameserver", "10.0.2.4"), 0)
        assert gsh(v, "grep -v '^#' /run/resolv.conf") == "nameserver 10.0.2.4\n"
        assert "10.0.2.4" not in gsh(v, "cat /etc/resolv.conf")
    finally:
        gsh(v, "umount /etc")


def suspend_and_network_changed(v):
    g = stubs(v)
    g.PrepareToSuspend(empty(), timeout=30)
    expect(ctl(v, "suspend-prep"), 0, "OK")
    v.wait_console(r"maitred: PrepareToSuspend from .*: file systems synced", timeout=10)
    g.OnHostNetworkChanged(empty(), timeout=10)
    expect(ctl(v, "network-changed", "--reset-ipv6"), 0, "OK")
    out = gsh(v, "ip -4 addr show eth0; ip -4 route")
    assert "inet 10.0.2.15/24" in out and "default via 10.0.2.2 dev eth0" in out, out
    v.wait_console(r"maitred: ResetIPv6 from .*: OK: eth0: IPv4 set again", timeout=10)


def resize(v):
    import guest_pb2
    g = stubs(v)
    E = empty()
    if " /mnt/disk " not in gsh(v, "cat /proc/mounts"):
        expect(ctl(v, "mount", "/dev/vda", "/mnt/disk", "ext4"), 0)
    gsh(v, "head -c 2000000 /dev/urandom >/mnt/disk/before; sync")
    before = gsh(v, "sha256sum /mnt/disk/before").split()[0]
    assert g.GetResizeBounds(E, timeout=10).minimum_size == 16 * MiB
    code, details = valet.grpc_error(g.ResizeFilesystem, guest_pb2.ResizeFilesystemRequest(size=32 * MiB),
                                     timeout=10)
    assert code == "INVALID_ARGUMENT" and "larger than the device /dev/vda" in details, details
    # The host grows the disk; the guest kernel sees the new capacity.
    v.monitor("block_resize d0 32M")
    valet.wait_until(lambda: gsh(v, "cat /sys/block/vda/size").strip() == str(32 * MiB // 512), 20,
                     interval=0.2, what="the guest to see the bigger disk")
    code, details = valet.grpc_error(g.ResizeFilesystem, guest_pb2.ResizeFilesystemRequest(size=8 * MiB),
                                     timeout=10)
    assert code == "FAILED_PRECONDITION" and "cannot shrink" in details, details
    # Frozen, the resize waits: the second request meets it running.
    gsh(v, "fsfreeze --freeze /mnt/disk")
    try:
        assert g.ResizeFilesystem(guest_pb2.ResizeFilesystemRequest(size=32 * MiB), timeout=10).status == \
            guest_pb2.ResizeFilesystemResponse.STARTED
        expect(ctl(v, "resize", "32M"), 1, "ALREADY_IN_PROGRESS")
        st = g.GetResizeStatus(E, timeout=10)
        assert (st.resize_in_progress, st.current_size, st.target_size) == (True, 16 * MiB, 32 * MiB), st
        # The worker child waits in the kernel holding 0-2 and the mount
        # point only: no connection or listener of PID 1.
        # (Waited for: the child may not have reached the ioctl yet.)
        def worker_fds():
            return gsh(v, "for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = maitred ] &&"
                          " grep -q '^State:.*D' $d/status && ls $d/fd; done; true").split()
        fds = valet.wait_until(worker_fds, 20, interval=0.1, what="the resize worker blocked in the kernel")
        assert len(fds) == 4 and {"0", "1", "2"} <= set(fds), fds
    finally:
        gsh(v, "fsfreeze --unfreeze /mnt/disk")
    valet.wait_until(lambda: not g.GetResizeStatus(E, timeout=10).resize_in_progress, 60, interval=0.2,
                     what="the resize to finish")
    st = g.GetResizeStatus(E, timeout=10)
    assert (st.current_size, st.target_size) == (32 * MiB, 32 * MiB), st
    expect(ctl(v, "resize-status"), 0, f"idle current {32 * MiB} target {32 * MiB}")
    expect(ctl(v, "resize-bounds"), 0, str(32 * MiB))
    blocks, bsize = gsh(v, "stat -f -c '%b %S' /mnt/disk").split()
    assert 28 * MiB < int(blocks) * int(bsize) <= 32 * MiB, (blocks, bsize)
    df = gsh(v, "df -k /mnt/disk").splitlines()[-1].split()
    assert 28 * 1024 < int(df[1]) <= 32 * 1024, df
    assert gsh(v, "sha256sum /mnt/disk/before").split()[0] == before
    v.wait_console(r"maitred: ResizeFilesystem: /mnt/disk resized to 33554432 bytes", timeout=10)


def mount_extras(v):
    import guest_pb2
    g = stubs(v)
    blank = "test $(od -An -v /dev/vdb | tr -d ' 0\\n' | wc -c) = 0 && echo blank; true"
    assert gsh(v, blank).strip() == "blank"
    # The image has no mkfs.ext4: a clear error, nothing written.
    code, details = valet.grpc_error(g.Mount, guest_pb2.MountRequest(
        source="/dev/vdb", target="/mnt/new/vol", fstype="ext4", create_target=True, mkfs_if_needed=True),
        timeout=30)
    assert code == "FAILED_PRECONDITION" and "mkfs.ext4 is not in the image" in details, details
    assert gsh(v, blank).strip() == "blank"
    # An image that has mkfs.ext2 (busybox's mke2fs): formatted, mounted,
    # target created (0755 parents) and chmod'ed.
    gsh(v, "printf '#!/bin/sh\\nexec mke2fs \"$@\"\\n' >/sbin/mkfs.ext2; chmod 755 /sbin/mkfs.ext2")
    resp = g.Mount(guest_pb2.MountRequest(source="/dev/vdb", target="/mnt/new/vol", fstype="ext2",
                                          create_target=True, permissions=0o750, mkfs_if_needed=True), timeout=60)
    assert resp.error == 0, resp
    assert re.search(r"^/dev/vdb /mnt/new/vol ext[24] ", gsh(v, "cat /proc/mounts"), re.M)
    assert gsh(v, "stat -c %a /mnt/new/vol /mnt/new").split() == ["750", "755"]
    gsh(v, "echo kept >/mnt/new/vol/file; umount /mnt/new/vol")
    # A filesystem that fails to mount for another reason (a bad option
    # makes ext4 say EINVAL, like a blank disk): never formatted.
    code, details = valet.grpc_error(g.Mount, guest_pb2.MountRequest(
        source="/dev/vdb", target="/mnt/new/vol", fstype="ext4", options="no_such_option", mkfs_if_needed=True),
        timeout=30)
    assert code == "FAILED_PRECONDITION" and "not blank (ext2/3/4 found)" in details, details
    expect(ctl(v, "mount", "/dev/vdb", "/mnt/new/vol", "ext2", "--mkfs-if-needed"), 0)
    assert gsh(v, "cat /mnt/new/vol/file") == "kept\n"
    gsh(v, "umount /mnt/new/vol")
