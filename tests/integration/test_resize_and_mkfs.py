"""ResizeFilesystem and Mount's mkfs_if_needed on file-backed loop devices
that each test creates and removes; every mount happens in maitred's private
mount namespace, never in this machine's."""
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess

from valet import Maitred, grpc_error, grpc_stubs, maitctl, tmpdir, wait_until
from lanes import timing

MiB = 1 << 20


@contextlib.contextmanager
def loop_device(size, mkfs=False, data=None):
    img = os.path.join(tmpdir(), "disk.img")
    with open(img, "wb") as f:
        f.truncate(size)
        if data:
            f.seek(data[0])
            f.write(data[1])
    if mkfs:
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", img], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        yield img, dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def in_ns(m, *cmd):
    return subprocess.run(["nsenter", "-t", str(m.pid), "-m", "--"] + list(cmd), capture_output=True, text=True,
                          check=True).stdout


def has_cap_sys_resource(pid):
    with open(f"/proc/{pid}/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << 24))


def maitred_with_mounted(dev, mnt):
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none", "--main-fs", mnt],
                   wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                         f"mount {dev} {mnt} && exec \"$0\" \"$@\""])


def test_ext4_online_grow_async_with_refusals():
    import common_pb2
    import guest_pb2
    E = common_pb2.EmptyMessage()
    mnt = tmpdir()
    with loop_device(16 * MiB, mkfs=True) as (img, dev):
        m = maitred_with_mounted(dev, mnt)
        g = grpc_stubs(m.addr)
        frozen = False
        try:
            in_ns(m, "sh", "-c", f"head -c 1000000 /dev/urandom >{mnt}/before && sync")
            before = in_ns(m, "sha256sum", f"{mnt}/before").split()[0]
            assert g.GetResizeBounds(E, timeout=10).minimum_size == 16 * MiB
            st = g.GetResizeStatus(E, timeout=10)
            assert (st.resize_in_progress, st.current_size, st.target_size) == (False, 16 * MiB, 0)
            code, details = grpc_error(g.ResizeFilesystem, guest_pb2.ResizeFilesystemRequest(size=32 * MiB),
                                       timeout=10)
            assert code == "INVALID_ARGUMENT" and f"larger than the device {dev}" in details, details
            # The host grows the disk.
            os.truncate(img, 32 * MiB)
            subprocess.run(["losetup", "-c", dev], check=True)
            code, details = grpc_error(g.ResizeFilesystem, guest_pb2.ResizeFilesystemRequest(size=8 * MiB),
                                       timeout=10)
            assert code == "FAILED_PRECONDITION" and "ext4 cannot shrink while mounted" in details, details
            if not has_cap_sys_resource(m.pid):
                # Some sandboxes withhold CAP_SYS_RESOURCE, which ext4's
                # online resize needs: then the failure path is what can be
                # checked here (the VM test grows a disk for real).
                resp = g.ResizeFilesystem(guest_pb2.ResizeFilesystemRequest(size=32 * MiB), timeout=10)
                assert resp.status == guest_pb2.ResizeFilesystemResponse.STARTED
                m.wait_log("to 33554432 bytes failed after")
                assert "Operation not permitted" in m.log()
                st = g.GetResizeStatus(E, timeout=10)
                assert (st.resize_in_progress, st.current_size, st.target_size) == (False, 16 * MiB, 32 * MiB)
                assert in_ns(m, "sha256sum", f"{mnt}/before").split()[0] == before
                return
            # Frozen, the resize cannot finish: the second request meets
            # the first one still running, whatever the machine's speed.
            in_ns(m, "fsfreeze", "--freeze", mnt)
            frozen = True
            resp = g.ResizeFilesystem(guest_pb2.ResizeFilesystemRequest(size=32 * MiB), timeout=10)
            assert resp.status == guest_pb2.ResizeFilesystemResponse.STARTED
            resp = g.ResizeFilesystem(guest_pb2.ResizeFilesystemRequest(size=24 * MiB), timeout=10)
            assert resp.status == guest_pb2.ResizeFilesystemResponse.ALREADY_IN_PROGRESS
            r = maitctl(m.addr, "resize", "32M", json=True)
            assert r.returncode == 1 and json.loads(r.stdout) == {"status": "ALREADY_IN_PROGRESS",
                                                                   "size": 32 * MiB}, (r, m.log())
            st = g.GetResizeStatus(E, timeout=10)
            assert (st.resize_in_progress, st.current_size, st.target_size) == (True, 16 * MiB, 32 * MiB)
            in_ns(m, "fsfreeze", "--unfreeze", mnt)
            frozen = False
            wait_until(lambda: not g.GetResizeStatus(E, timeout=10).resize_in_progress, 30,
                       what="the resize to finish")
            st = g.GetResizeStatus(E, timeout=10)
            assert (st.current_size, st.target_size) == (32 * MiB, 32 * MiB)
            r = maitctl(m.addr, "resize-status", json=True)
            assert json.loads(r.stdout) == {"resize_in_progress": False, "current_size": 32 * MiB,
                                            "target_size": 32 * MiB}, r
            assert maitctl(m.addr, "resize-bounds").stdout == f"{32 * MiB}\n"
            # df in the namespace sees the new size; the data is intact.
            blocks = int(in_ns(m, "stat", "-f", "-c", "%b %S", mnt).split()[0]) * int(
                in_ns(m, "stat", "-f", "-c", "%S", mnt))
            assert 28 * MiB < blocks <= 32 * MiB, blocks
            assert in_ns(m, "sha256sum", f"{mnt}/before").split()[0] == before
            m.wait_log("resized to 33554432 bytes")
            wait_until(lambda: m.zombies() == [], 5, what="the worker to be reaped")
        finally:
            if frozen:
                in_ns(m, "fsfreeze", "--unfreeze", mnt)
            assert m.stop() == 0


def test_btrfs_bound_is_the_kernels():
    """GetResizeBounds said ~6 MB for a small btrfs (the bytes in use) and a
    shrink to 200 MiB answered STARTED, then failed with EINVAL in the
    worker: the kernel refuses any btrfs size under 256 MiB."""
    import common_pb2
    import guest_pb2
    E = common_pb2.EmptyMessage()
    mnt = tmpdir()
    with loop_device(320 * MiB) as (img, dev):
        subprocess.run(["mkfs.btrfs", "-q", "-f", dev], check=True, capture_output=True)
        m = maitred_with_mounted(dev, mnt)
        g = grpc_stubs(m.addr)
        try:
            bound = g.GetResizeBounds(E, timeout=10).minimum_size
            assert bound == 256 * MiB, bound
            assert maitctl(m.addr, "resize-bounds").stdout == f"{256 * MiB}\n"
            for size in (200 * MiB, 256 * MiB - 1):
                code, details = grpc_error(g.ResizeFilesystem, guest_pb2.ResizeFilesystemRequest(size=size),
                                           timeout=10)
                assert code == "FAILED_PRECONDITION" and "btrfs cannot be resized below 256 MiB" in details \
                    and f"minimum for {mnt} is {256 * MiB} bytes" in details, (size, details)
            assert "resizing" not in m.log()
            # The bound itself is accepted by the kernel: a real shrink.
            resp = g.ResizeFilesystem(guest_pb2.ResizeFilesystemRequest(size=256 * MiB), timeout=10)
            assert resp.status == guest_pb2.ResizeFilesystemResponse.STARTED
            wait_until(lambda: not g.GetResizeStatus(E, timeout=10).resize_in_progress, 60,
                       what="the shrink to finish")
            st = g.GetResizeStatus(E, timeout=10)
            assert (st.current_size, st.target_size) == (256 * MiB, 256 * MiB), (st, m.log())
            m.wait_log(f"resized to {256 * MiB} bytes")
        finally:
            assert m.stop() == 0


def test_resize_of_other_filesystems_names_the_type():
    import common_pb2
    import guest_pb2
    d = tmpdir()
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none", "--main-fs", d],
                wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                      f"mount -t tmpfs tmpfs {d} && exec \"$0\" \"$@\""])
    g = grpc_stubs(m.addr)
    code, details = grpc_error(g.ResizeFilesystem, guest_pb2.ResizeFilesystemRequest(size=MiB), timeout=10)
    assert code == "FAILED_PRECONDITION" and f"{d} is tmpfs: only ext4 and btrfs" in details, details
    assert grpc_error(g.GetResizeBounds, common_pb2.EmptyMessage(), timeout=10)[0] == "FAILED_PRECONDITION"
    r = maitctl(m.addr, "resize", "1M")
    assert r.returncode == 1 and "is tmpfs" in r.stderr, r
    assert m.stop() == 0
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none", "--main-fs", d])
    code, details = grpc_error(grpc_stubs(m.addr).GetResizeStatus, common_pb2.EmptyMessage(), timeout=10)
    assert code == "FAILED_PRECONDITION" and "is not a mount point" in details, details
    assert m.stop() == 0


def private_maitred(env=None):
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"], env=env,
                   wrap=[shutil.which("unshare"), "--mount", "--propagation", "private"])


def mounts_at(pid, target):
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line.split(" - ")[1].split()[0] for line in f if line.split()[4] == target]


def test_mkfs_if_needed_formats_only_a_blank_device():
    import guest_pb2
    with loop_device(32 * MiB) as (img, dev):
        m = private_maitred()
        g = grpc_stubs(m.addr)
        target = os.path.join(m.dir, "data", "vol")
        # Without create_target the missing directory is the error, and a
        # missing target is no reason to format.
        resp = g.Mount(guest_pb2.MountRequest(source=dev, target=target, fstype="ext4", mkfs_if_needed=True),
                       timeout=30)
        assert resp.error == 2
        assert digest(img) == hashlib.sha256(bytes(32 * MiB)).hexdigest()
        r = maitctl(m.addr, "mount", dev, target, "ext4", "--create-target", "--permissions", "750",
                    "--mkfs-if-needed", json=True, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout) == {"error": 0, "message": ""}, r
        assert mounts_at(m.pid, target) == ["ext4"]
        assert oct(os.stat(f"/proc/{m.pid}/root{target}").st_mode & 0o7777) == "0o750"
        assert oct(os.stat(os.path.join(m.dir, "data")).st_mode & 0o777) == "0o755"
        assert "is blank; running mkfs.ext4" in m.log()
        assert m.stop() == 0


def test_mkfs_if_needed_never_formats_data():
    import guest_pb2
    # Bytes with no known signature, then a real ext4 asked for as ext2
    # (the mount fails with EINVAL, as on a blank device).
    with loop_device(16 * MiB, data=(5000, b"precious")) as (img, dev):
        m = private_maitred()
        g = grpc_stubs(m.addr)
        target = os.path.join(m.dir, "t")
        before = digest(img)
        code, details = grpc_error(g.Mount, guest_pb2.MountRequest(
            source=dev, target=target, fstype="ext4", create_target=True, mkfs_if_needed=True), timeout=30)
        assert code == "FAILED_PRECONDITION" and "is not blank (non-zero data found)" in details, details
        assert digest(img) == before and mounts_at(m.pid, target) == []
        assert m.stop() == 0
    with loop_device(16 * MiB, mkfs=True) as (img, dev):
        subprocess.run(["debugfs", "-w", "-R", "mkdir keep", img], check=True, capture_output=True)
        before = digest(img)
        m = private_maitred()
        g = grpc_stubs(m.addr)
        target = os.path.join(m.dir, "t")
        os.mkdir(target)
        r = maitctl(m.addr, "mount", dev, target, "xfs", "--mkfs-if-needed")
        assert r.returncode == 1, r  # xfs absent (ENODEV) or not xfs (EINVAL, then the probe)
        code, details = grpc_error(g.Mount, guest_pb2.MountRequest(
            source=dev, target=target, fstype="ext2", mkfs_if_needed=True), timeout=30)
        assert code == "FAILED_PRECONDITION" and "not blank (ext2/3/4 found)" in details, details
        assert digest(img) == before and mounts_at(m.pid, target) == []
        assert "mkfs" not in m.log().replace("mkfs_if_needed", "")
        assert m.stop() == 0


def test_mkfs_missing_is_a_clear_error():
    import guest_pb2
    with loop_device(16 * MiB) as (img, dev):
        m = private_maitred(env={"PATH": "/nonexistent"})
        target = os.path.join(m.dir, "t")
        code, details = grpc_error(grpc_stubs(m.addr).Mount, guest_pb2.MountRequest(
            source=dev, target=target, fstype="ext4", create_target=True, mkfs_if_needed=True), timeout=30)
        assert code == "FAILED_PRECONDITION" and "mkfs.ext4 is not in the image" in details, details
        assert digest(img) == hashlib.sha256(bytes(16 * MiB)).hexdigest()
        # A type the kernel does not know: ENODEV, no reason to format.
        resp = grpc_stubs(m.addr).Mount(guest_pb2.MountRequest(source=dev, target=target, fstype="../x",
                                                                mkfs_if_needed=True), timeout=30)
        assert resp.error == 19
        assert m.stop() == 0


# A Mount whose deadline passes while mkfs still runs.
@timing
def test_mkfs_outliving_its_call_is_reaped_by_its_job():
    # The call's deadline passes while mkfs runs: mkfs is still maitred's
    # (the Mount job keeps watching it), is reaped and logged with its own
    # status (3 here), and nothing is mounted behind the caller's back.
    import common_pb2
    import guest_pb2
    with loop_device(16 * MiB) as (img, dev):
        bindir = tmpdir()
        fake = os.path.join(bindir, "mkfs.ext4")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\n/bin/sleep 1.5\nexit 3\n")
        os.chmod(fake, 0o755)
        m = private_maitred(env={"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin"})
        g = grpc_stubs(m.addr)
        target = os.path.join(m.dir, "t")
        code, details = grpc_error(g.Mount, guest_pb2.MountRequest(
            source=dev, target=target, fstype="ext4", create_target=True, mkfs_if_needed=True), timeout=0.5)
        assert code == "DEADLINE_EXCEEDED", (code, details)
        pid = re.search(r"running mkfs\.ext4 \(pid (\d+)\)", m.log()).group(1)
        m.wait_log(f"mkfs.ext4 {dev} (pid {pid}) ended after its call: exited with status 3; not mounted")
        assert mounts_at(m.pid, target) == [] and not m.zombies()
        assert g.GetKernelVersion(common_pb2.EmptyMessage(), timeout=10).kernel_release


def test_no_mount_attempt_while_the_device_is_formatted():
    """A Mount's first attempt opens the device exclusively for a moment:
    made while an earlier call's mkfs ran, it made that mkfs fail to open
    the device (seen as "mkfs.btrfs failed (status 1)" with a second
    request formatting instead). While a format runs, a plain Mount of the
    device answers EBUSY and a mkfs_if_needed one FAILED_PRECONDITION,
    without touching the device; once mkfs is done, mounting works again."""
    import guest_pb2
    with loop_device(16 * MiB) as (img, dev):
        bindir = tmpdir()
        fake = os.path.join(bindir, "mkfs.ext4")
        # Holds the lock (its stdin) for 3 s, then really formats.
        with open(fake, "w") as f:
            f.write("#!/bin/sh\n/bin/sleep 3\nexec /sbin/mkfs.ext4 -q \"$@\"\n")
        os.chmod(fake, 0o755)
        m = private_maitred(env={"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin"})
        g = grpc_stubs(m.addr)
        first = g.Mount.future(guest_pb2.MountRequest(
            source=dev, target=os.path.join(m.dir, "a"), fstype="ext4", create_target=True, mkfs_if_needed=True),
            timeout=60)
        m.wait_log("running mkfs.ext4")
        plain = g.Mount(guest_pb2.MountRequest(source=dev, target=os.path.join(m.dir, "a"), fstype="ext4"),
                        timeout=10)
        assert plain.error == 16, plain  # EBUSY
        code, details = grpc_error(g.Mount, guest_pb2.MountRequest(
            source=dev, target=os.path.join(m.dir, "b"), fstype="ext4", create_target=True, mkfs_if_needed=True),
            timeout=10)
        assert code == "FAILED_PRECONDITION" and "being formatted" in details, (code, details)
        assert first.result().error == 0, m.log()
        assert m.log().count("running mkfs") == 1, m.log()
        assert mounts_at(m.pid, os.path.join(m.dir, "a")) != []
        assert m.stop() == 0


def test_mkfs_if_needed_mounts_a_formatted_disk_that_udev_is_probing():
    """udev holds a shared flock on a disk while it probes it (right after
    the disk appears, when a host mounts it). A Mount with mkfs_if_needed of
    a disk that already has a filesystem must mount it then; the exclusive
    lock is taken only once a format is wanted, and a blank disk under
    such a lock is refused rather than formatted."""
    import fcntl
    import guest_pb2
    with loop_device(16 * MiB) as (img, dev):
        subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True)
        m = private_maitred()
        g = grpc_stubs(m.addr)
        fd = os.open(dev, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            target = os.path.join(m.dir, "t")
            r = g.Mount(guest_pb2.MountRequest(source=dev, target=target, fstype="ext4", create_target=True,
                                               mkfs_if_needed=True), timeout=30)
            assert r.error == 0, (r, m.log())
            assert mounts_at(m.pid, target) != []
        finally:
            os.close(fd)
        assert m.stop() == 0
    with loop_device(16 * MiB) as (img, dev):
        m = private_maitred()
        g = grpc_stubs(m.addr)
        fd = os.open(dev, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            code, details = grpc_error(g.Mount, guest_pb2.MountRequest(
                source=dev, target=os.path.join(m.dir, "t"), fstype="ext4", create_target=True,
                mkfs_if_needed=True), timeout=30)
            assert code == "FAILED_PRECONDITION" and "being formatted or probed" in details, (code, details)
            assert "running mkfs" not in m.log()
        finally:
            os.close(fd)
        assert m.stop() == 0


def test_mkfs_if_needed_formats_a_device_once_when_asked_twice_at_once():
    """An ext4 and a btrfs request sent back to back both passed the blank
    check (the check's descriptor was closed before mkfs started): two mkfs
    ran on one device. The device is locked from the check to mkfs's end:
    the second is refused, in every run."""
    import guest_pb2
    refused = []
    for run in range(4):
        with loop_device(320 * MiB) as (img, dev):
            m = private_maitred()
            g = grpc_stubs(m.addr)
            # Two streams at once: which one maitred serves first is not
            # fixed; one must format, the other be refused.
            calls = {fs: g.Mount.future(guest_pb2.MountRequest(
                source=dev, target=os.path.join(m.dir, fs), fstype=fs, create_target=True, mkfs_if_needed=True),
                timeout=60) for fs in ("ext4", "btrfs")}
            outcome = {}
            for fs, call in calls.items():
                try:
                    outcome[fs] = f"OK error={call.result().error}"
                except Exception as e:
                    outcome[fs] = f"{e.code().name}: {e.details()}"
            won = [fs for fs, o in outcome.items() if o == "OK error=0"]
            assert len(won) == 1, (run, outcome, m.log())
            lost = "btrfs" if won[0] == "ext4" else "ext4"
            o = outcome[lost]
            refused.append(o.startswith("FAILED_PRECONDITION") and ("being formatted" in o or "not blank" in o))
            assert m.log().count("is blank; running mkfs") == 1, (run, outcome, m.log())
            assert mounts_at(m.pid, os.path.join(m.dir, won[0])) == [won[0]], (run, outcome)
            assert mounts_at(m.pid, os.path.join(m.dir, lost)) == [], (run, outcome)
            with open(img, "rb") as f:
                f.seek(65536 + 0x40 if lost == "btrfs" else 1024 + 0x38)
                assert f.read(2) != (b"_B" if lost == "btrfs" else b"\x53\xef"), (run, lost, "written too")
            print(f"# run {run}: {won[0]} formatted, {lost}: {o}")
            assert m.stop() == 0
    assert refused == [True] * 4, refused


def test_mkfs_if_needed_sees_data_in_the_middle():
    """Data 8 MiB into a 32 MiB device, with zeros in the first and last
    MiB, passed the check and was formatted over."""
    import guest_pb2
    with loop_device(32 * MiB, data=(8 * MiB, b"precious" * 512)) as (img, dev):
        before = digest(img)
        m = private_maitred()
        target = os.path.join(m.dir, "t")
        code, details = grpc_error(grpc_stubs(m.addr).Mount, guest_pb2.MountRequest(
            source=dev, target=target, fstype="ext4", create_target=True, mkfs_if_needed=True), timeout=30)
        assert code == "FAILED_PRECONDITION" and "is not blank (non-zero data found)" in details, details
        assert digest(img) == before and mounts_at(m.pid, target) == []
        assert m.stop() == 0
