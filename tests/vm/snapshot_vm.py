"""valet.v1.Snapshot in a real guest (issue 20, "How it is tested"): one
boot of its own (boot S: a 32 MiB ext4 disk as /dev/vda, mounted at
/mnt/snap through Mount), then two clones restored from a file that the
running guest was saved to (QEMU's migrate "exec:cat > FILE", then
-incoming "exec:cat FILE"; shared/spec's vm-testing-notes.md, section 9).

Steps, in order:
- snapshot_consistent_disk_copy: a guest job appends numbered lines to
  /mnt/snap/job.log without pause, recording each line's number in /run
  (tmpfs) after writing it. The host copies the raw disk image once while
  the job writes (no freeze: what e2fsck -fn says of it is printed and
  kept in the timings, not asserted: it depends on where the copy catches
  the journal), then Freeze, reads the record, copies the image, Thaw.
  e2fsck -fn passes on the frozen copy and its job.log holds every line
  recorded before the freeze, in order, nothing else.
- snapshot_frozen_calls_and_auto_thaw: Freeze with a 2 s timeout and no
  Thaw (the host "crashes"): GetKernelVersion, Files Stat and a
  LaunchProcess of /bin/true are answered; Files Write and SetResolvConfig
  are FAILED_PRECONDITION within a second; the job does not advance; it
  resumes after the automatic thaw; stopped, its log holds lines 1..N,
  N its record: no line lost or doubled.
- snapshot_clones: a respawning job and a vsh session; Restored (generation
  "original"); saved to a file and the source ended; 3 s later two QEMUs
  restored from that one file, each with a copy of the disk as it was. In
  each: Restored with the host's time, 64 fresh bytes of entropy, the
  network and a generation of its own: the clock step reported is the
  pause (at least 2.5 s), the previous generation is "original", the
  guest's clock is within 50 ms of the host's afterwards; the two clones
  draw different numbers from /dev/urandom; the respawning job comes back
  when killed; a new vsh session, Maitred and Files calls work."""
import calendar
import os
import re
import shutil
import subprocess
import time

import files_client
import snapshot_client
import valet
import vm
import vm_suite

DISK_MOUNT = "/mnt/snap"
LOG = f"{DISK_MOUNT}/job.log"
COUNT = "/run/job.count"
STOP = "/run/job.stop"
FROZEN = "file systems are frozen"
# Appends without pause; the number goes to tmpfs only once the line is
# written (its write returned). The record is rewritten with ">", which
# truncates first: a signal can end the job between the truncation and the
# write and leave the record empty for good (the job was stopped with kill
# once, and the next read found nothing for 30 s, in about one run of three
# on a loaded machine). So the job is stopped by a file it looks for
# between lines, and ends with its record whole.
JOB = (f"echo $$ > /run/job.pid; i=0; while [ ! -e {STOP} ]; do i=$((i+1)); printf 'line %08d\\n' $i >> {LOG}; "
       f"echo $i > {COUNT}; done")


def gsh(v, script, timeout=60):
    return vm_suite.gsh(v, script, timeout=timeout)


def addr(v):
    return v.maitred_addr()[4:]


# What the guest looks like when the job's record stays empty: the job's
# process twice a second apart (state, wchan, system call, CPU time), the
# record's file, /run and the disk, memory, the processes. A write to the
# disk is tried in the background (it hangs on a frozen filesystem).
JOB_STATE = (
    f"p=$(cat /run/job.pid 2>/dev/null); echo \"job pid: $p\"; [ -d /proc/$p ] || echo 'no such process';"
    f" ls -l {COUNT} /run/job.pid {STOP} 2>&1;"
    " for t in 1 2; do [ -n \"$p\" ] && { cat /proc/$p/stat; echo \"wchan $(cat /proc/$p/wchan)"
    " syscall $(cat /proc/$p/syscall)\"; grep -E '^(State|SigPnd|ShdPnd|SigBlk|SigIgn)' /proc/$p/status; };"
    " sleep 1; done; cat /proc/$p/stack 2>/dev/null; ls -l /proc/$p/fd 2>&1;"
    f" rm -f /run/probe; (touch {DISK_MOUNT}/.probe && echo yes >/run/probe) </dev/null >/dev/null 2>&1 & sleep 1;"
    " echo \"disk writable: $(cat /run/probe 2>/dev/null || echo no: a write hangs)\";"
    f" df /run {DISK_MOUNT}; grep -E '^(/dev|tmpfs)' /proc/mounts;"
    " grep -E '^(MemFree|MemAvailable|Shmem|Dirty|Writeback):' /proc/meminfo; ps -o pid,ppid,stat,args | grep -v ' \\[';"
    " dmesg | tail -20; true")


def job_state(v):
    """JOB_STATE's answer, and maitred's last log lines (the console,
    without vshd's line per session)."""
    try:
        guest = gsh(v, JOB_STATE, timeout=60)
    except Exception as e:  # the reader itself failing says something too
        guest = f"(vsh failed: {e})"
    log = [ln for ln in v.console_text().splitlines() if "vshd: session from" not in ln]
    return f"{guest}\n-- console --\n" + "\n".join(log[-25:])


def count(v):
    """The job's record: the number of the last line it wrote. The job
    rewrites the file after each line; a read that finds it empty for a
    moment reads again."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = gsh(v, f"cat {COUNT} 2>/dev/null || echo 0").strip()
        if out:
            return int(out)
        time.sleep(0.05)  # let the job finish its rewrite
    raise AssertionError("the job's record stayed empty for 30 s:\n" + job_state(v))


def expected(n):
    return [f"line {i:08d}" for i in range(1, n + 1)]


class State:
    def __init__(self, work, disk):
        self.work = work
        self.disk = disk
        self.mounted = False


def job_running(v):
    return gsh(v, "p=$(cat /run/job.pid 2>/dev/null) && [ -d /proc/$p ] && echo yes; true").strip() == "yes"


def ensure_job(v, st):
    """The disk mounted and the appending job running (when a step runs
    alone, or after stop_job()); a job started here begins a new log."""
    import guest_pb2
    g = valet.grpc_stubs(v.maitred_addr())
    if not st.mounted:
        r = g.Mount(guest_pb2.MountRequest(source="/dev/vda", target=DISK_MOUNT, fstype="ext4",
                                           create_target=True), timeout=30)
        assert r.error == 0, r
        st.mounted = True
    if not job_running(v):
        gsh(v, f"rm -f {LOG} {COUNT} {STOP} /run/job.pid")
        r = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["/bin/sh", "-c", JOB]), timeout=30)
        assert r.status == guest_pb2.LAUNCHED, r
    valet.wait_until(lambda: count(v) > 100, 60, interval=0.2, what="the job's first 100 lines")


def stop_job(v):
    """Stops the job between two lines (JOB) and waits for its end."""
    gsh(v, f"touch {STOP}")
    valet.wait_until(lambda: not job_running(v), 30, interval=0.2, what="the job to stop")


def e2fsck(image):
    r = subprocess.run(["e2fsck", "-fn", image], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def disk_log(image):
    r = subprocess.run(["debugfs", "-R", "cat /job.log", image], capture_output=True, text=True, check=True)
    return r.stdout.split("\n")[:-1] if r.stdout.endswith("\n") else r.stdout.split("\n")


def consistent_disk_copy(s, v, st):
    P = snapshot_client.pb()
    sn = snapshot_client.stubs(v.maitred_addr())
    ensure_job(v, st)
    # The copy a backup without a freeze would take.
    loose = os.path.join(st.work, "nofreeze.img")
    before = count(v)
    shutil.copyfile(st.disk, loose)
    rc, out = e2fsck(loose)
    try:
        got = disk_log(loose)
        held = sum(1 for a, b in zip(got, expected(len(got))) if a == b)
        seen = f"job.log has {len(got)} lines, {held} of them right, of the {before} or more written before the copy"
    except subprocess.CalledProcessError as e:
        seen = f"debugfs cannot read job.log: {e.stderr.strip()}"
        got = []
    s.timings["snapshot_copy_without_freeze_e2fsck_rc"] = rc
    s.timings["snapshot_copy_without_freeze_lines"] = len(got)
    s.timings["snapshot_copy_without_freeze_lines_written"] = before
    print(f"vm/snapshot: a copy taken while the job writes, without Freeze: e2fsck -fn exit {rc} "
          f"({out.splitlines()[-1] if out else ''}); {seen}", flush=True)
    start = time.monotonic()
    r = sn.Freeze(P.FreezeRequest(), timeout=120)
    s.timings["snapshot_freeze_s"] = time.monotonic() - start
    assert list(r.frozen) == [DISK_MOUNT], r.frozen
    try:
        n = count(v)
        frozen = os.path.join(st.work, "frozen.img")
        start = time.monotonic()
        shutil.copyfile(st.disk, frozen)
        s.timings["snapshot_copy_32mib_s"] = time.monotonic() - start
        # Still held: the record did not move while the host copied.
        assert count(v) in (n, n + 1)
    finally:
        assert snapshot_client.thaw(sn) == [DISK_MOUNT]
    rc, out = e2fsck(frozen)
    assert rc == 0, out
    lines = disk_log(frozen)
    # Every line recorded before the freeze; at most the one being written
    # when the freeze came besides (written, not yet recorded).
    assert lines[:n] == expected(n), (n, lines[max(0, n - 3):n + 2])
    assert lines == expected(len(lines)) and len(lines) in (n, n + 1), (n, len(lines), lines[-3:])
    s.timings["snapshot_lines_in_frozen_copy"] = len(lines)
    valet.wait_until(lambda: count(v) > n + 50, 30, interval=0.2, what="the job after the thaw")


def frozen_calls_and_auto_thaw(s, v, st):
    import common_pb2
    import guest_pb2
    P = snapshot_client.pb()
    sn = snapshot_client.stubs(v.maitred_addr())
    f = files_client.stubs(addr(v))
    g = valet.grpc_stubs(v.maitred_addr())
    ensure_job(v, st)
    assert list(sn.Freeze(P.FreezeRequest(timeout_seconds=2), timeout=120).frozen) == [DISK_MOUNT]
    frozen_at = time.monotonic()
    n = count(v)
    assert g.GetKernelVersion(common_pb2.EmptyMessage(), timeout=10).kernel_release
    assert files_client.stat_(f, LOG).size >= n * 14
    r = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["/bin/true"], wait_for_exit=True), timeout=10)
    assert r.status == guest_pb2.EXITED and r.code == 0, r
    for name, call in [
            ("Write", lambda: files_client.write(f, f"{DISK_MOUNT}/new", [b"x"], timeout=10)),
            ("SetResolvConfig", lambda: g.SetResolvConfig(guest_pb2.SetResolvConfigRequest(
                resolv_config=guest_pb2.ResolvConfig(nameservers=["10.0.2.3"])), timeout=10))]:
        start = time.monotonic()
        code, details = valet.grpc_error(call)
        took = time.monotonic() - start
        assert code == "FAILED_PRECONDITION" and FROZEN in details, (name, code, details)
        assert took < 1, (name, took)
    held = count(v)
    assert held in (n, n + 1), (n, held)
    # The automatic thaw, then the job goes on.
    v.wait_console(r"maitred: Thaw: the Freeze's timeout passed without a Thaw", timeout=30)
    thawed_after = time.monotonic() - frozen_at
    assert thawed_after >= 1.9, thawed_after
    s.timings["snapshot_auto_thaw_after_s"] = thawed_after
    valet.wait_until(lambda: count(v) > held + 50, 30, interval=0.2, what="the job after the automatic thaw")
    assert snapshot_client.thaw(sn) == []
    # Stopped after recording a line, and nothing lost or doubled.
    stop_job(v)
    last = count(v)
    lines = gsh(v, f"cat {LOG}").split("\n")[:-1]
    assert lines == expected(last), (last, len(lines), lines[-3:])


class Shell:
    """A vsh session running sh in pipe mode: one command, one line back."""
    def __init__(self, v):
        self.proc = valet.track(subprocess.Popen(
            [valet.binary("vsh"), "--addr", v.vshd_addr(), "--", "/bin/sh"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=valet.sanitizer_env(), bufsize=0))

    def ask(self, command):
        self.proc.stdin.write(command.encode() + b"\n")
        return self.proc.stdout.readline().decode().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def clock_offset(v):
    """The guest's clock minus the host's, bracketed by host readings
    around the question (the narrowest of several): (lowest, highest)."""
    sh = Shell(v)
    try:
        assert sh.ask("echo ready") == "ready"
        best = None
        for _ in range(6):
            # busybox's date has no %N: the nanosecond mtime of a file
            # touched now (tmpfs), as stat prints it.
            t0 = time.time()
            out = sh.ask("touch /run/now && stat -c %y /run/now")
            t1 = time.time()
            m = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{9}) \+0000", out)
            assert m, out
            g = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1e9
            if best is None or t1 - t0 < best[1] - best[0]:
                best = (t0, t1, g)
        t0, t1, g = best
        return g - t1, g - t0
    finally:
        sh.close()


def clone(s, st, name, state, disk, cmdline):
    sub = os.path.join(st.work, name)
    os.makedirs(sub)
    c = vm.VM(s.build, sub, s.kdir, s.initrd, cmdline=cmdline, disk=disk, timeout=300, incoming=state)
    c.keep_console = os.path.join(s.build, f"vm-console-{name}.log")
    return c


def clones(s, v, st, cmdline):
    import common_pb2
    import guest_pb2
    from google.protobuf import timestamp_pb2
    P = snapshot_client.pb()
    ensure_job(v, st)
    stop_job(v)
    gsh(v, "rm -f /run/respawn.pid")
    g = valet.grpc_stubs(v.maitred_addr())
    r = g.LaunchProcess(guest_pb2.LaunchProcessRequest(
        argv=["/bin/sh", "-c", "echo $$ > /run/respawn.pid; exec sleep 100000"], respawn=True), timeout=30)
    assert r.status == guest_pb2.LAUNCHED, r
    valet.wait_until(lambda: gsh(v, "cat /run/respawn.pid 2>/dev/null; true").strip(), 30, what="the respawning job")
    old_pid = gsh(v, "cat /run/respawn.pid").strip()
    session = Shell(v)
    assert session.ask("echo before") == "before"
    r = snapshot_client.stubs(v.maitred_addr()).Restored(
        P.RestoredRequest(entropy=os.urandom(32), generation="original"), timeout=30)
    assert r.previous_generation == ""
    state = os.path.join(st.work, "vm.state")
    s.timings["snapshot_save_s"] = v.save(state)
    s.timings["snapshot_state_mib"] = os.path.getsize(state) / (1 << 20)
    # The source is paused: its disk is as the saved memory expects it.
    disks = []
    for i in (1, 2):
        d = os.path.join(st.work, f"clone{i}.img")
        shutil.copyfile(st.disk, d)
        disks.append(d)
    v.close()
    session.proc.wait(30)  # its connection went with the source
    time.sleep(3)
    started = time.monotonic()
    cs = [clone(s, st, f"snap-clone{i}", state, disks[i - 1], cmdline) for i in (1, 2)]
    try:
        steps = []
        for i, c in enumerate(cs, 1):
            sn = snapshot_client.stubs(c.maitred_addr())
            # The first connection to a guest just restored takes a while:
            # the host's time is read once the guest answers, as maitctl
            # restored does.
            valet.grpc_stubs(c.maitred_addr()).GetKernelVersion(common_pb2.EmptyMessage(), timeout=60)
            # The connection that carries Restored is made before the time
            # is read, too (a Thaw with nothing frozen: an empty answer):
            # connecting to a guest just restored took 100 ms and more on a
            # loaded machine, and left its clock that far behind.
            assert snapshot_client.thaw(sn) == []
            if i == 1:
                s.timings["snapshot_restore_to_first_answer_s"] = time.monotonic() - started
            ts = timestamp_pb2.Timestamp()
            ts.GetCurrentTime()
            net = guest_pb2.NetworkConfigRequest(ipv4_config=guest_pb2.IPv4Config(
                address=0x0f02000a, netmask=0x00ffffff, gateway=0x0202000a))
            r = sn.Restored(P.RestoredRequest(time=ts, entropy=os.urandom(64), network=net,
                                              generation=f"clone-{i}"), timeout=60)
            assert r.previous_generation == "original", r
            assert r.clock_step_ns >= 2.5e9, r.clock_step_ns
            steps.append(r.clock_step_ns / 1e9)
            m = c.wait_console(r"maitred: Restored from .*; ([\d.]+) ms, ([\d.]+) ms of CPU \(checks ([\d.]+), "
                               r"clock ([\d.]+), entropy ([\d.]+), network ([\d.]+) ms\)", timeout=10)
            for k, g in zip(("ms", "cpu_ms", "checks_ms", "clock_ms", "entropy_ms", "network_ms"), m.groups()):
                s.timings[f"snapshot_restored_clone{i}_{k}"] = float(g)
        s.timings["snapshot_clock_steps_s"] = steps[0]
        # The clones' random numbers diverged (each reseeded with bytes of
        # its own; the unit test checks the reseed's system calls).
        draws = [gsh(c, "head -c 16 /dev/urandom | od -An -tx1").split() for c in cs]
        assert len(draws[0]) == 16 and draws[0] != draws[1], draws
        for i, c in enumerate(cs, 1):
            lo, hi = clock_offset(c)
            s.timings[f"snapshot_clone{i}_clock_offset_ms"] = (lo + hi) / 2 * 1000
            assert lo <= 0.05 and hi >= -0.05, (lo, hi)
            # The respawning job is still supervised: killed, it comes back.
            assert gsh(c, "cat /run/respawn.pid").strip() == old_pid
            gsh(c, f"kill {old_pid}")
            valet.wait_until(lambda: gsh(c, "cat /run/respawn.pid").strip() not in ("", old_pid), 30,
                             interval=0.2, what="the respawned job")
            # New sessions and calls.
            assert gsh(c, "echo clone").strip() == "clone"
            gc = valet.grpc_stubs(c.maitred_addr())
            assert gc.GetKernelVersion(common_pb2.EmptyMessage(), timeout=30).kernel_release
            r = gc.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["/bin/true"], wait_for_exit=True), timeout=30)
            assert r.status == guest_pb2.EXITED and r.code == 0
            assert files_client.stat_(files_client.stubs(addr(c)), LOG).size > 0
            out = gsh(c, "ip -4 addr show eth0; ip route")
            assert "10.0.2.15/24" in out and "default via 10.0.2.2" in out, out
    finally:
        for c in cs:
            c.close()


STEPS = ["snapshot_consistent_disk_copy", "snapshot_frozen_calls_and_auto_thaw", "snapshot_clones"]


def boot_s(s):
    """Boot S and its steps (vm_suite.run calls it)."""
    if s.pattern and not any(s.pattern in f"vm/{n}" for n in STEPS):
        return
    work = os.path.join(s.work, "snap-files")
    os.makedirs(work)
    disk = os.path.join(work, "disk.ext4")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "snap", disk, "32M"], check=True)
    cmdline = "maitred.shutdown_grace=1"
    v = s.boot("snap", cmdline, disk=disk, timeout=600)
    st = State(work, disk)
    try:
        assert v.listener.event.wait(vm.BOOT_TIMEOUT) or v.check_alive(), "VmReady never arrived"
        v.wait_console(r"maitred: Server listening on tcp")
        v.wait_vshd()
        s.step("snapshot_consistent_disk_copy", consistent_disk_copy, s, v, st)
        s.step("snapshot_frozen_calls_and_auto_thaw", frozen_calls_and_auto_thaw, s, v, st)
        s.step("snapshot_clones", clones, s, v, st, cmdline)
    finally:
        v.close()
