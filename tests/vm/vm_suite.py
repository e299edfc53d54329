"""The VM test: maitred as the init of a real Linux kernel booted under QEMU.

Boot A runs the whole scenario on one VM, in order, each step reported as
its own case; the last step is Shutdown, after which the host reads the
ext4 disk images. Boots B-D check the other ways to power off (Ctrl-Alt-Del,
SIGTERM, SIGPWR) and the kernel command-line switches.

Timings seen on the way are written to BUILD/vm-timings.json (docs/benchmarks.md)."""
import hashlib
import json
import os
import pty
import re
import secrets
import select
import subprocess
import threading
import time

import files_vm
import tunnel_vm
import later_rpcs_vm
import process_cli_vm
import snapshot_vm
import valet
import vm

GRACE = 2.0  # maitred.shutdown_grace on the kernel command line of boot A


class Scenario:
    def __init__(self, build, tally, pattern):
        self.build = build
        self.tally = tally
        self.pattern = pattern
        self.timings = {}
        self.kdir = vm.kernel_dir()
        self.work = valet.tmpdir()
        self.initrd = os.path.join(self.work, "initrd.gz")
        vm.build_initramfs(build, self.kdir, self.initrd, test_jobs=True)

    def step(self, name, fn, *args, always=False):
        if self.pattern and self.pattern not in f"vm/{name}" and not always:
            return None
        return vm.run_step(self.tally, name, fn, *args)

    def boot(self, name, cmdline, disk=None, extra_disks=(), timeout=120):
        sub = os.path.join(self.work, name)
        os.makedirs(sub)
        v = vm.VM(self.build, sub, self.kdir, self.initrd, cmdline=cmdline, disk=disk, extra_disks=extra_disks,
                  timeout=timeout)
        # Kept after the run for whoever reads a failure.
        v.keep_console = os.path.join(self.build, f"vm-console-{name}.log")
        return v


# -- helpers ------------------------------------------------------------------

def gsh(v, script, input=None, timeout=60):
    """Runs a shell script in the guest through vsh (pipes); returns stdout."""
    res = valet.vsh(v.vshd_addr(), "--", "/bin/sh", "-c", script, input=input, timeout=timeout)
    if res.returncode != 0:
        raise AssertionError(f"guest script failed ({res.returncode}): {script}\n"
                             f"{res.stdout.decode(errors='replace')}{res.stderr.decode(errors='replace')}")
    return res.stdout.decode()


def ctl(v, *args, timeout=30):
    return valet.maitctl(v.maitred_addr(), *args, timeout=timeout)


def expect(res, code, text=None):
    out = res.stdout + res.stderr
    assert res.returncode == code, f"exit {res.returncode}, expected {code}: {out}"
    if text is not None:
        assert text in out, f"{text!r} not in {out!r}"


# -- boot A ---------------------------------------------------------------------

def a_boot(s, v):
    assert v.listener.event.wait(vm.BOOT_TIMEOUT) or v.check_alive(), "VmReady never arrived"
    ready_at = v.listener.calls[0][0] - v.started
    assert len(v.listener.calls) == 1, v.listener.calls
    v.wait_console(r"first-stage: loading modules")
    v.wait_console(r"maitred: Server listening on tcp")
    v.wait_console(r"maitred: Told the host .* that the VM is ready")
    c = v.console_text()
    assert "maitred: maitred running as PID 1" in c
    assert "init: could not" not in c, "a setup step failed:\n" + c[-3000:]
    # The boot jobs, in order: the waited-for one ends before the server
    # starts; the broken ones are logged with file:line and skipped.
    order = [r"maitred: Job 05-prepare.textproto exited with status 0",
             r"maitred: /etc/maitred/20-broken.textproto:3: .*; job skipped",
             r"maitred: /etc/maitred/30-contradiction.textproto: respawn and wait_for_exit cannot both be true",
             r"maitred: Server listening on vsock"]
    where = [re.search(p, c) for p in order]
    assert all(where), [p for p, w in zip(order, where) if not w]
    assert [w.start() for w in where] == sorted(w.start() for w in where), "boot jobs out of order"
    assert "Successfully launched job: 10-vshd.textproto" in c
    v.wait_vshd()
    handover, _ = vm.kernel_time(c, "first-stage: loading modules")
    execd, _ = vm.kernel_time(c, "first-stage: exec maitred")
    serving, _ = vm.kernel_time(c, "maitred: Server listening on tcp")
    s.timings.update({
        "qemu_to_handover_s": v.seen_at(r"first-stage: loading modules"),
        "qemu_to_serving_s": v.seen_at(r"maitred: Server listening on tcp"),
        "qemu_to_vm_ready_s": ready_at,
        "qemu_to_vshd_s": time.monotonic() - v.started,
        "kernel_to_handover_s": handover,
        "maitred_exec_to_serving_ms": (serving - execd) * 1000,
        "maitred_share_of_boot_to_ready_pct": (serving - execd) / ready_at * 100,
    })


def a_pid1_setup(v):
    mounts = gsh(v, "cat /proc/mounts")
    want = {
        "/dev": ("devtmpfs", ["nosuid", "mode=755"]),
        "/proc": ("proc", ["nosuid", "nodev", "noexec"]),
        "/sys": ("sysfs", ["nosuid", "nodev", "noexec"]),
        "/dev/pts": ("devpts", ["nosuid", "noexec", "gid=5", "mode=620", "ptmxmode=666"]),
        "/dev/shm": ("tmpfs", ["nosuid", "nodev", "noexec"]),
        "/run": ("tmpfs", ["nosuid", "nodev", "noexec", "mode=755"]),
        "/tmp": ("tmpfs", ["nosuid", "nodev", "noexec"]),
        "/sys/fs/cgroup": ("cgroup2", ["nosuid", "nodev", "noexec"]),
    }
    seen = {}
    for line in mounts.splitlines():
        src, target, fstype, opts = line.split()[:4]
        seen[target] = (fstype, opts.split(","))
    for target, (fstype, opts) in want.items():
        assert target in seen, f"{target} not mounted:\n{mounts}"
        assert seen[target][0] == fstype, (target, seen[target])
        for o in opts:
            assert o in seen[target][1], f"{target} lacks {o}: {seen[target]}"
    out = gsh(v, "stat -c %a /run/lock; hostname; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags;"
                 "grep 'Max open files' /proc/1/limits; cat /proc/1/stat")
    lines = out.splitlines()
    assert gsh(v, "cat /run/prepared") == "prepared before serving\n"
    assert lines[0] == "1777", lines
    assert lines[1] == "valet-vm", lines
    assert int(lines[3], 16) & 1, f"lo not up: {lines[2:4]}"
    assert lines[4].split()[3:5] == ["1048576", "1048576"], lines[4]
    stat = lines[5].rsplit(")", 1)[1].split()
    # state ppid pgrp session tty_nr: PID 1 leads session 1 and has the
    # console (console=ttyS0: major 4, minor 64) as controlling terminal.
    assert stat[3] == "1" and int(stat[4]) == (4 << 8) | 64, stat[:5]
    # maitred's environment, as its children receive it (/proc/1/environ
    # shows what the kernel passed, not what maitred cleaned up).
    expect(ctl(v, "launch", "--wait", "--", "/bin/sh", "-c", "cp /proc/$$/environ /run/env"), 0)
    env = gsh(v, "cat /run/env").split("\0")
    assert [e for e in env if e] == ["PATH=/usr/bin:/usr/sbin:/bin:/sbin"], env


def a_pid1_survives_signals(v):
    # From inside the guest: the kernel protects init, and maitred ignores
    # what it does not handle. Then it must still answer.
    gsh(v, "kill -KILL 1; kill -SEGV 1; kill -HUP 1; kill -USR1 1; kill -QUIT 1; true")
    expect(ctl(v, "launch", "--wait", "--", "/bin/true"), 0)
    c = v.console_text()
    assert "received SIGHUP; ignored" in c, c[-2000:]


def a_configure_network(v):
    before = gsh(v, "ip -4 route")
    assert "default" not in before, before
    expect(ctl(v, "network", "--address", "10.0.2.15/24", "--gateway", "10.0.2.2"), 0)
    out = gsh(v, "ip -4 addr show eth0; ip -4 route")
    assert "inet 10.0.2.15/24" in out and "default via 10.0.2.2 dev eth0" in out, out
    assert out.count("inet ") == 1, out
    # Bad input is an error, and the agent keeps serving on the same NIC.
    expect(ctl(v, "network", "--address", "10.0.2.15", "--netmask", "255.0.255.0", "--gateway", "10.0.2.2"), 1,
           "INVALID_ARGUMENT")
    expect(ctl(v, "launch", "--wait", "--", "/bin/true"), 0)


def a_mount(v):
    expect(ctl(v, "mount", "tmpfs", "/mnt/tmp", "tmpfs", "--flags", "nosuid,nodev", "--options", "size=1m,mode=700"), 0)
    expect(ctl(v, "mount", "/dev/vda", "/mnt/disk", "ext4"), 0)
    mounts = gsh(v, "cat /proc/mounts")
    assert re.search(r"^\S+ /mnt/tmp tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=700", mounts, re.M), mounts
    assert re.search(r"^/dev/vda /mnt/disk ext4 rw", mounts, re.M), mounts
    expect(ctl(v, "mount", "/dev/nonexistent", "/mnt/tmp", "ext4"), 1)
    expect(ctl(v, "mount", "none", "/mnt/tmp", "nosuchfs"), 1)
    expect(ctl(v, "launch", "--wait", "--", "/bin/true"), 0)


def a_launch(v):
    expect(ctl(v, "launch", "--wait", "--", "/bin/sh", "-c", "exit 42"), 42, "EXITED 42")
    expect(ctl(v, "launch", "--wait", "--", "/bin/sh", "-c", "kill -9 $$"), 137, "SIGNALED 9")
    expect(ctl(v, "launch", "--", "/bin/sh", "-c", "echo launched >/run/launched"), 0, "LAUNCHED")
    valet.wait_until(lambda: "launched" in gsh(v, "cat /run/launched 2>/dev/null; true"), 10, what="/run/launched")
    expect(ctl(v, "launch", "--wait", "--", "/nonexistent"), 127, "FAILED")
    expect(ctl(v, "launch", "--respawn", "--wait", "--", "/bin/true"), 1, "INVALID_ARGUMENT")


def a_respawn_start(v):
    expect(ctl(v, "launch", "--respawn", "--", "/bin/sh", "-c", "echo run >>/run/respawns"), 0, "LAUNCHED")


def a_respawn_throttled(v):
    v.wait_console(r"maitred: /bin/sh respawning too frequently; stopped", timeout=30)
    time.sleep(1.5)  # longer than the largest backoff: no 11th run sneaks in
    runs = gsh(v, "wc -l </run/respawns").strip()
    assert runs == "10", f"{runs} runs"


def guest_processes(v):
    """(pid, comm, state, ppid) of every process in the guest."""
    out = gsh(v, "cat /proc/[0-9]*/stat 2>/dev/null; true")
    procs = []
    for line in out.splitlines():
        m = re.match(r"(\d+) \((.*)\) (\S) (\d+)", line)
        if m:
            procs.append((int(m.group(1)), m.group(2), m.group(3), int(m.group(4))))
    return procs


def a_orphans(v):
    # 200 background sleeps whose parent exits at once: all re-parented to PID 1.
    expect(ctl(v, "launch", "--wait", "--", "/bin/sh", "-c",
               "for i in $(seq 200); do sleep 8 & done; exit 0"), 0, "EXITED 0")
    orphans = [p for p in guest_processes(v) if p[1] == "sleep" and p[3] == 1]
    assert len(orphans) == 200, f"{len(orphans)} orphaned sleeps seen"

    def settled():
        procs = guest_processes(v)
        return not [p for p in procs if p[1] == "sleep" or p[2] == "Z"]
    valet.wait_until(settled, 30, interval=0.5, what="the orphans to be reaped")


def a_pid_wrap(s, v):
    # Issue 17, defect 1: with pid numbers wrapping every hundred pids
    # (pid_max 400; numbers below 300 are not reused), orphans that exit 5
    # are reaped by PID 1 between launches; then each launch waits for
    # its own process and must get its own status (EXITED 7), after it ran
    # (>= 50 ms), never an orphan's. maitred kept the status of the last 64
    # orphans and gave it to a new child that got one of their numbers.
    import guest_pb2
    g = valet.grpc_stubs(v.maitred_addr())
    orphans = guest_pb2.LaunchProcessRequest(argv=["/bin/sh", "-c", "(exit 5) & (exit 5) & (exit 5) & exit 0"],
                                             wait_for_exit=True)
    launch = guest_pb2.LaunchProcessRequest(argv=["/bin/sh", "-c", "sleep 0.05; exit 7"], wait_for_exit=True)
    old = gsh(v, "cat /proc/sys/kernel/pid_max").strip()
    gsh(v, "echo 400 >/proc/sys/kernel/pid_max")
    wrong, runs = [], 200
    try:
        for i in range(runs):
            g.LaunchProcess(orphans, timeout=30)
            start = time.monotonic()
            resp = g.LaunchProcess(launch, timeout=30)
            took = time.monotonic() - start
            if resp.status != guest_pb2.EXITED or resp.code != 7 or took < 0.05:
                wrong.append((i, guest_pb2.ProcessStatus.Name(resp.status), resp.code, round(took * 1000)))
    finally:
        gsh(v, f"echo {old} >/proc/sys/kernel/pid_max")
    s.timings["pid_wrap_wrong_answers"] = len(wrong)
    print(f"vm/pid_wrap: {len(wrong)} of {runs} launches answered wrong", flush=True)
    assert not wrong, f"{len(wrong)} of {runs} wrong (run, status, code, ms): {wrong[:10]}"


def a_vsh_pty(v):
    fd, tty = pty.openpty()
    proc = valet.track(subprocess.Popen([valet.binary("vsh"), "--addr", v.vshd_addr(), "-t"], stdin=tty,
                                        stdout=tty, stderr=tty, start_new_session=True))
    os.close(tty)
    buf = b""

    def read_until(token, timeout=20):
        nonlocal buf
        deadline = time.monotonic() + timeout
        while token not in buf:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    buf += os.read(fd, 4096)
                except OSError:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"{token!r} never came: {buf[-500:]!r}")
    try:
        read_until(b"# ")  # the prompt: typed-ahead input may be flushed
        os.write(fd, b"tty; stty size; echo sum=$((40+2))\n")
        read_until(b"sum=42")
        assert re.search(rb"/dev/pts/\d+", buf), buf
        os.write(fd, b"exit 3\n")
        assert proc.wait(20) == 3, proc.returncode
    finally:
        os.close(fd)


def a_vsh_pipes(v):
    data = secrets.token_bytes(1 << 20)
    res = valet.vsh(v.vshd_addr(), "--", "/bin/sh", "-c", "cat; echo err >&2; exit 7", input=data, timeout=60)
    assert res.returncode == 7, res.returncode
    assert hashlib.sha256(res.stdout).digest() == hashlib.sha256(data).digest(), len(res.stdout)
    assert res.stderr == b"err\n", res.stderr


def a_vsock_loopback(v):
    # The guest's own vsock loopback (CID 1): refused by default...
    out = valet.vsh(v.vshd_addr(), "--", "/bin/maitctl", "--addr", "vsock:1:8888", "--timeout", "5",
                    "launch", "--wait", "--", "/bin/true")
    assert out.returncode == 1 and b"UNAVAILABLE" in out.stderr, out
    v.wait_console(r"maitred: refused connection from vsock cid 1 port \d+: not allowed by the peer policy", timeout=10)
    out = valet.vsh(v.vshd_addr(), "--", "/bin/vsh", "--cid", "1", "--", "true")
    assert out.returncode != 0, out
    v.wait_console(r"vshd: refused connection from vsock cid 1 port \d+: not allowed by the peer policy", timeout=10)
    # Kernel-log records carry syslog priorities: info 6, warning 4.
    raw = gsh(v, "dmesg -r")
    info = re.search(r"^<(\d+)>\[[ .\d]+\] maitred: maitred running as PID 1$", raw, re.M)
    warn = re.search(r"^<(\d+)>\[[ .\d]+\] maitred: refused connection from vsock cid 1", raw, re.M)
    assert info and int(info.group(1)) % 8 == 6, raw[-1500:]
    assert warn and int(warn.group(1)) % 8 == 4, raw[-1500:]
    # ...and accepted by instances started with --allow-cid 1.
    expect(ctl(v, "launch", "--", "/sbin/maitred", "--listen", "vsock:-1:8890", "--allow-cid", "1",
               "--no-startup-processes", "--vm-ready", "none"), 0, "LAUNCHED")
    expect(ctl(v, "launch", "--", "/sbin/vshd", "--listen", "vsock:-1:9002", "--allow-cid", "1"), 0, "LAUNCHED")
    out = gsh(v, "i=0; until /bin/maitctl --addr vsock:1:8890 --timeout 5 launch --wait -- /bin/sh -c 'exit 5';"
                 " do [ $? = 5 ] && break; i=$((i+1)); [ $i -gt 50 ] && exit 9; usleep 100000; done; echo rc=$?")
    assert "EXITED 5" in out, out
    out = gsh(v, "i=0; until /bin/vsh --addr vsock:1:9002 -- echo via-vsock; do i=$((i+1));"
                 " [ $i -gt 50 ] && exit 9; usleep 100000; done")
    assert out.strip() == "via-vsock", out


def a_wait_ready_vsock(v):
    # maitctl wait-ready over real vsock (the guest's loopback, CID 1): a
    # second maitred, not PID 1, sends its VmReady there. wait-ready is
    # listening once it sleeps in epoll_wait (it listens first).
    out = gsh(v, "/bin/maitctl wait-ready --timeout 30 vsock:-1:7790 >/tmp/wr.out 2>&1 & W=$!;"
                 " i=0; until grep -q epoll /proc/$W/wchan 2>/dev/null; do i=$((i+1)); [ $i -gt 500 ] && exit 9;"
                 " usleep 10000; done;"
                 " /sbin/maitred --listen vsock:-1:8891 --no-startup-processes --vm-ready vsock:1:7790"
                 " >/tmp/m2.log 2>&1 & M=$!;"
                 " wait $W; echo rc=$?; cat /tmp/wr.out; kill $M; wait $M; cat /tmp/m2.log")
    assert "rc=0" in out and re.search(r"VmReady from vsock cid 1 port \d+ after \d+\.\d+ s", out), out
    assert "Told the host (vsock:1:7790) that the VM is ready" in out, out


def a_bad_peer(v):
    import socket
    host, port = "127.0.0.1", v.forwarded_ports()[8888]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(secrets.token_bytes(4096))
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
    expect(ctl(v, "launch", "--wait", "--", "/bin/true"), 0)


def a_measure_rss(s, v):
    rss = gsh(v, "grep VmRSS /proc/1/status").split()[1]
    s.timings["maitred_pid1_rss_kib"] = int(rss)


def a_shutdown(s, v, disk):
    nonce = secrets.token_hex(8)
    if " /mnt/disk " not in gsh(v, "cat /proc/mounts"):  # run on its own (-k)
        expect(ctl(v, "mount", "/dev/vda", "/mnt/disk", "ext4"), 0)
    expect(ctl(v, "launch", "--wait", "--", "/bin/sh", "-c", f"echo valet-proof-{nonce} >/mnt/disk/proof"), 0)
    # A process that ignores SIGTERM (and passes that on to its sleep).
    expect(ctl(v, "launch", "--", "/bin/sh", "-c", "trap '' TERM; touch /run/ignoring; while :; do sleep 1; done"),
           0, "LAUNCHED")
    valet.wait_until(lambda: gsh(v, "test -e /run/ignoring && echo yes; true").strip() == "yes", 20,
                     what="the trap to be set")
    # A waiting call still pending: answered (SIGTERM) before power-off.
    waiting = {}

    def wait_call():
        waiting["res"] = ctl(v, "launch", "--wait", "--", "/bin/sleep", "1000", timeout=60)
    t = threading.Thread(target=wait_call)
    t.start()
    v.wait_console(r"maitred: LaunchProcess from .*: /bin/sleep \(pid \d+\) started, waiting", timeout=10)

    start = time.monotonic()
    res = ctl(v, "shutdown", timeout=30)
    replied = time.monotonic() - start
    expect(res, 0)
    code = v.wait_exit(GRACE + 3 + 5)
    exited = time.monotonic() - start
    t.join(30)
    assert code == 0, f"qemu exit status {code}"
    assert exited <= GRACE + 3, f"QEMU took {exited:.2f} s after Shutdown (grace {GRACE} s)"
    assert replied >= GRACE - 0.2, f"replied after {replied:.2f} s: before the grace period ended?"
    expect(waiting["res"], 128 + 15, "SIGNALED 15")
    s.timings["shutdown_to_qemu_exit_s"] = exited
    c = v.console_text()
    for line in ("maitred: Power-off: sending SIGTERM to all processes",
                 "maitred: Power-off: processes left after the grace period; sending SIGKILL",
                 "maitred: Shutting down system NOW", "reboot: Power down"):
        assert line in c, f"{line!r} not on the console:\n" + c[-3000:]
    assert "could not unmount /mnt/disk" not in c, c[-3000:]
    proof = subprocess.run(["debugfs", "-R", "cat /proof", disk], capture_output=True, text=True, check=True)
    assert proof.stdout.strip() == f"valet-proof-{nonce}", (proof.stdout, proof.stderr)


def boot_a(s):
    disk = os.path.join(s.work, "disk.ext4")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "valet", disk, "16M"], check=True)
    blank = os.path.join(s.work, "blank.img")  # /dev/vdb, for Mount's mkfs_if_needed
    with open(blank, "wb") as f:
        f.truncate(8 << 20)
    files = files_vm.make_image(os.path.join(s.work, "files.ext4"))  # /dev/vdc, for valet.v1.Files
    # QEMU's hard limit is for the whole scenario: minutes under TCG on a
    # busy machine (every step has its own timeout besides).
    v = s.boot("a", f"maitred.shutdown_grace={GRACE} maitred.main_fs=/mnt/disk", disk=disk,
               extra_disks=[blank, files.image], timeout=900)
    try:
        if not s.step("boot_vm_ready", a_boot, s, v, always=True):
            return
        s.step("pid1_setup", a_pid1_setup, v)
        respawning = s.step("respawn_start", a_respawn_start, v)
        s.step("pid1_survives_signals", a_pid1_survives_signals, v)
        s.step("configure_network", a_configure_network, v)
        s.step("mount_tmpfs_and_ext4", a_mount, v)
        s.step("launch_process", a_launch, v)
        s.step("orphans_reaped", a_orphans, v)
        s.step("pid_wrap_launch_wait", a_pid_wrap, s, v)
        s.step("vsh_pty_session", a_vsh_pty, v)
        s.step("vsh_pipe_session", a_vsh_pipes, v)
        s.step("vsock_loopback", a_vsock_loopback, v)
        s.step("wait_ready_over_vsock", a_wait_ready_vsock, v)
        s.step("bad_peer_on_tcp", a_bad_peer, v)
        # The methods added after 2017 (later_rpcs_vm.py).
        s.step("later_kernel_space_refused", later_rpcs_vm.kernel_space_refused, v)
        s.step("later_set_time", later_rpcs_vm.set_time, v)
        s.step("later_set_timezone", later_rpcs_vm.set_timezone, v)
        s.step("later_resolv_config", later_rpcs_vm.resolv_config, v)
        s.step("later_suspend_network_changed", later_rpcs_vm.suspend_and_network_changed, v)
        s.step("later_resize_filesystem", later_rpcs_vm.resize, v)
        s.step("later_mount_create_chmod_mkfs", later_rpcs_vm.mount_extras, v)
        # valet.v1.Files (files_vm.py), on a disk of its own.
        s.step("files_write_read_64mib", files_vm.write_read_64mib, s, files, v)
        s.step("files_tree_round_trip", files_vm.tree_round_trip, s, files, v)
        s.step("files_stat_list_mkdir_move_remove", files_vm.metadata_calls, s, files, v)
        s.step("files_maitctl_cp_round_trip", files_vm.maitctl_cp, s, files, v)
        # maitctl exec and attach over valet.v1.Process (process_cli_vm.py).
        s.step("process_maitctl_reattach", process_cli_vm.reattach, v)
        # valet.v1.Tunnel (tunnel_vm.py).
        s.step("tunnel_forward_http", tunnel_vm.forward_http, v)
        if respawning:
            s.step("respawn_throttled", a_respawn_throttled, v)
        s.step("pid1_rss", a_measure_rss, s, v)
        s.step("shutdown_power_off", a_shutdown, s, v, disk)
        s.step("files_on_disk_after_power_off", files_vm.on_disk_after_power_off, files, v)
    finally:
        v.close()


# -- boots B-D: the other ways to power off -------------------------------------

def power_off_by(s, how):
    v = s.boot(how, "maitred.no_startup_processes maitred.shutdown_grace=1")
    try:
        assert v.listener.event.wait(vm.BOOT_TIMEOUT) or v.check_alive(), "VmReady never arrived"
        v.wait_console(r"maitred: Server listening on tcp")
        c = v.console_text()
        assert "maitred.no_startup_processes: skipping the boot jobs" in c and "10-vshd" not in c, c[-2000:]
        # Something to stop, which gets its answer before power-off.
        waiting = {}
        t = threading.Thread(target=lambda: waiting.update(
            res=ctl(v, "launch", "--wait", "--", "/bin/sleep", "1000", timeout=60)))
        t.start()
        v.wait_console(r"/bin/sleep \(pid \d+\) started, waiting", timeout=10)
        start = time.monotonic()
        if how == "ctrl-alt-del":
            v.monitor("sendkey ctrl-alt-delete")
            sig = "SIGINT"
        else:
            expect(ctl(v, "launch", "--", "/bin/kill", f"-{how}", "1"), 0, "LAUNCHED")
            sig = f"SIG{how}"
        code = v.wait_exit(1 + 3 + 5)
        took = time.monotonic() - start
        t.join(30)
        assert code == 0, f"qemu exit status {code}"
        assert took <= 1 + 3, f"{took:.2f} s"
        c = v.console_text()
        assert f"maitred: received {sig}, powering off" in c, c[-2000:]
        expect(waiting["res"], 128 + 15, "SIGNALED 15")
    finally:
        v.close()


STEPS = ("boot_vm_ready pid1_setup respawn_start pid1_survives_signals configure_network mount_tmpfs_and_ext4 "
         "launch_process orphans_reaped pid_wrap_launch_wait vsh_pty_session vsh_pipe_session vsock_loopback wait_ready_over_vsock "
         "bad_peer_on_tcp "
         "later_kernel_space_refused later_set_time later_set_timezone later_resolv_config "
         "later_suspend_network_changed later_resize_filesystem later_mount_create_chmod_mkfs "
         "files_write_read_64mib files_tree_round_trip files_stat_list_mkdir_move_remove "
         "files_maitctl_cp_round_trip process_maitctl_reattach tunnel_forward_http "
         "respawn_throttled pid1_rss shutdown_power_off files_on_disk_after_power_off "
         "power_off_on_ctrl-alt-del power_off_on_term "
         "power_off_on_pwr power_off_during_boot_jobs unrecoverable_error_powers_off").split() + snapshot_vm.STEPS


def power_off_during_boot_jobs(s):
    # SIGTERM while a wait_for_exit job runs: no later job starts, the
    # server never starts, the power-off completes.
    v = s.boot("jobs", "valet_jobs=/etc/maitred-poweroff-during-jobs maitred.shutdown_grace=1")
    try:
        v.wait_console(r"maitred: received SIGTERM, powering off")
        code = v.wait_exit(vm.BOOT_TIMEOUT)
        assert code == 0, f"qemu exit status {code}"
        c = v.console_text()
        assert "maitred: stopping: 1 boot jobs not started" in c, c[-2000:]
        assert "job-20-ran" not in c and "20-never" not in c, c[-2000:]
        assert "Server listening" not in c and not v.listener.calls, c[-2000:]
        assert "maitred: Shutting down system NOW" in c
    finally:
        v.close()


def unrecoverable_error_powers_off(s):
    # A listener that cannot be opened (an address the guest does not
    # have): logged, then sync and power-off; never a kernel panic.
    v = s.boot("badlisten", "valet_listen=tcp:10.9.9.9:8888")
    try:
        code = v.wait_exit(vm.BOOT_TIMEOUT)
        c = v.console_text()
        assert code == 0, f"qemu exit status {code} (1 = guest panic):\n" + c[-2000:]
        assert "Kernel panic" not in c and "Attempted to kill init" not in c, c[-2000:]
        assert re.search(r"maitred: could not listen on tcp:10.9.9.9:8888: Cannot assign requested address", c), \
            c[-2000:]
        assert "maitred: unrecoverable error (code 1); powering off" in c, c[-2000:]
        assert "reboot: Power down" in c
    finally:
        v.close()


def run(build, tally, pattern):
    if pattern and not any(pattern in f"vm/{n}" for n in STEPS):
        return
    valet.configure(build)
    s = Scenario(build, tally, pattern)
    try:
        later = ("power_off_", "unrecoverable_", "snapshot_")
        if not pattern or any(pattern in f"vm/{n}" for n in STEPS if not n.startswith(later)):
            boot_a(s)
        for how in ("ctrl-alt-del", "TERM", "PWR"):
            s.step(f"power_off_on_{how.lower()}", power_off_by, s, how)
        s.step("power_off_during_boot_jobs", power_off_during_boot_jobs, s)
        s.step("unrecoverable_error_powers_off", unrecoverable_error_powers_off, s)
        # valet.v1.Snapshot: boot S and two clones of it (snapshot_vm.py).
        snapshot_vm.boot_s(s)
    finally:
        valet.cleanup()
        if s.timings:
            with open(os.path.join(build, "vm-timings.json"), "w") as f:
                json.dump(s.timings, f, indent=1)
            print("vm timings: " + ", ".join(f"{k}={v:.3g}" for k, v in s.timings.items()), flush=True)
