"""valet.v1.Snapshot without a VM: Freeze and Thaw on loop-device ext4
filesystems mounted in maitred's own mount namespace (unshare -m), with
--freeze-below limiting Freeze to the test's directory (this machine's own
disks are never frozen); what is refused and what is served while frozen;
the automatic thaw; Restored's arguments, entropy and generation; maitctl
freeze, thaw and restored end to end."""
import json
import os
import re
import subprocess
import time

import files_client as fc
from files_client import maitred, open_dir
from lanes import timing
from snapshot_client import loop_ext4, pb, stubs, thaw
from valet import binary, grpc_error, grpc_stubs, maitctl, sanitized, sanitizer_env, track, wait_until

FROZEN = "file systems are frozen"


def snapshot_maitred(base, devs, extra_setup="", args=()):
    """maitred in a mount namespace of its own where devs[0] is mounted on
    BASE/outer, devs[1] (if any) on BASE/outer/inner, a tmpfs on BASE/tmp,
    devs[2] (if any) read-only on BASE/ro; Freeze limited to BASE."""
    setup = [f"mkdir -p {base}/outer {base}/tmp {base}/ro", f"mount {devs[0]} {base}/outer",
             f"mount -t tmpfs -o size=1m tmpfs {base}/tmp"]
    if len(devs) > 1:
        setup += [f"mkdir -p {base}/outer/inner", f"mount {devs[1]} {base}/outer/inner"]
    if len(devs) > 2:
        setup += [f"mount -o ro {devs[2]} {base}/ro"]
    resolv = os.path.join(base, "tmp", "resolv.conf")
    m = maitred(args=["--freeze-below", base, "--resolv-conf", resolv] + list(args),
                wrap=["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                      "\n".join(setup + [extra_setup]) + "\nexec \"$0\" \"$@\""])
    return m


def frozen_by_kernel(m, path):
    """Whether the kernel has path's filesystem frozen: a second FIFREEZE
    is refused with EBUSY (only asked when it should be frozen)."""
    r = fc.in_ns(m, "fsfreeze", "--freeze", path, check=False)
    if r.returncode == 0:
        fc.in_ns(m, "fsfreeze", "--unfreeze", path, check=False)
        return False
    assert "busy" in r.stderr.lower(), r.stderr
    return True


def writable(m, path, name="probe"):
    """A write into path's filesystem finishes (within 5 s)."""
    r = fc.in_ns(m, "timeout", "5", "sh", "-c", f"echo x > {path}/{name} && sync -f {path}/{name}", check=False)
    return r.returncode == 0


def test_freeze_children_first_then_thaw_in_reverse():
    base = open_dir()
    with loop_ext4(3) as devs:
        m = snapshot_maitred(base, devs)
        s = stubs(m.addr)
        P = pb()
        try:
            r = s.Freeze(P.FreezeRequest(), timeout=60)
            # The tmpfs and the read-only ext4 are left alone; the inner
            # filesystem is frozen before the one it is mounted on.
            assert list(r.frozen) == [f"{base}/outer/inner", f"{base}/outer"], r.frozen
            assert frozen_by_kernel(m, f"{base}/outer") and frozen_by_kernel(m, f"{base}/outer/inner")
            assert writable(m, f"{base}/tmp")
            code, details = grpc_error(s.Freeze, P.FreezeRequest(timeout_seconds=5), timeout=10)
            assert code == "ALREADY_EXISTS" and "frozen already" in details, details
            assert "automatic thaw after 60 s" in m.log()
            assert thaw(s) == [f"{base}/outer", f"{base}/outer/inner"]
            assert writable(m, f"{base}/outer") and writable(m, f"{base}/outer/inner")
            # Nothing frozen: an empty answer, as often as asked.
            assert thaw(s) == []
            assert thaw(s) == []
            # And again, the same.
            assert list(s.Freeze(P.FreezeRequest(timeout_seconds=30), timeout=60).frozen) == \
                [f"{base}/outer/inner", f"{base}/outer"]
            assert thaw(s) == [f"{base}/outer", f"{base}/outer/inner"]
        finally:
            thaw(s)
            assert m.stop() == 0


# "Within a second" is asserted for the refusals.
@timing
def test_while_frozen_writing_calls_refused_others_served():
    import common_pb2
    import guest_pb2
    base = open_dir()
    with loop_ext4(1) as devs:
        m = snapshot_maitred(base, devs)
        s, f, g = stubs(m.addr), fc.stubs(m.addr), grpc_stubs(m.addr)
        F = fc.pb()
        target = f"{base}/outer"
        fc.write(f, f"{target}/before", [b"before"])
        try:
            assert list(s.Freeze(pb().FreezeRequest(), timeout=60).frozen) == [target]
            rc = guest_pb2.ResolvConfig(nameservers=["192.0.2.1"])
            refused = [
                ("Write", lambda: fc.write(f, f"{target}/new", [b"x"], timeout=10)),
                ("Write elsewhere", lambda: fc.write(f, f"{base}/tmp/new", [b"x"], timeout=10)),
                ("WriteTree", lambda: f.WriteTree(iter([F.TreeRequest(header=F.TreeHeader(root=f"{target}/t"))]),
                                                  timeout=10)),
                ("MakeDirectory", lambda: f.MakeDirectory(F.MakeDirectoryRequest(path=f"{target}/d"), timeout=10)),
                ("Remove", lambda: f.Remove(F.RemoveRequest(path=f"{target}/before"), timeout=10)),
                ("Move", lambda: f.Move(F.MoveRequest(source=f"{target}/before", destination=f"{target}/b2"),
                                        timeout=10)),
                ("SetResolvConfig", lambda: g.SetResolvConfig(guest_pb2.SetResolvConfigRequest(resolv_config=rc),
                                                              timeout=10)),
                ("SetTimezone", lambda: g.SetTimezone(guest_pb2.SetTimezoneRequest(timezone_name="UTC"),
                                                      timeout=10)),
                ("ConfigureNetwork", lambda: g.ConfigureNetwork(guest_pb2.NetworkConfigRequest(
                    ipv4_config=guest_pb2.IPv4Config(address=0x0100000a, netmask=0x00ffffff, gateway=0xfe00000a),
                    resolv_config=rc), timeout=10)),
                ("Mount create_target", lambda: g.Mount(guest_pb2.MountRequest(
                    source="none", target=f"{target}/m", fstype="tmpfs", create_target=True), timeout=10)),
                ("Restored with resolv_config", lambda: s.Restored(pb().RestoredRequest(
                    entropy=os.urandom(32), network=guest_pb2.NetworkConfigRequest(
                        ipv4_config=guest_pb2.IPv4Config(address=0x0100000a, netmask=0x00ffffff,
                                                         gateway=0xfe00000a), resolv_config=rc)), timeout=10)),
            ]
            for name, call in refused:
                start = time.monotonic()
                code, details = grpc_error(call)
                took = time.monotonic() - start
                assert code == "FAILED_PRECONDITION" and FROZEN in details, (name, code, details)
                assert took < 1, (name, took)
            # Served: reading calls, and a process that writes nothing.
            start = time.monotonic()
            assert fc.stat_(f, f"{target}/before").size == 6
            assert fc.read(f, f"{target}/before", timeout=5)[1] == b"before"
            assert g.GetKernelVersion(common_pb2.EmptyMessage(), timeout=5).kernel_release == os.uname().release
            r = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["/bin/true"], wait_for_exit=True), timeout=5)
            assert r.status == guest_pb2.EXITED and r.code == 0, r
            assert time.monotonic() - start < 2
            assert frozen_by_kernel(m, target)
            assert sorted(os.listdir(fc.ns_path(m, target))) == ["before", "lost+found"]
        finally:
            assert thaw(s) == [target]
        # Thawed: the same calls work again.
        assert fc.write(f, f"{target}/new", [b"x"], timeout=10).info.size == 1
        g.SetResolvConfig(guest_pb2.SetResolvConfigRequest(resolv_config=rc), timeout=10)
        with open(fc.ns_path(m, f"{base}/tmp/resolv.conf")) as fh:
            assert "nameserver 192.0.2.1\n" in fh.read()
        assert m.stop() == 0


# The automatic thaw comes after a timeout of 2 s.
@timing
def test_automatic_thaw_after_the_timeout_resumes_a_writer():
    """The host "crashes" after Freeze (no Thaw): a writer in the guest
    that appends a numbered line every 20 ms is held while frozen and
    resumes after the 2 s timeout; no line is lost or doubled."""
    base = open_dir()
    with loop_ext4(1) as devs:
        m = snapshot_maitred(base, devs)
        s = stubs(m.addr)
        target = f"{base}/outer"
        log = f"{target}/job.log"
        job = track(subprocess.Popen(
            ["nsenter", "-t", str(m.pid), "-m", "--", "sh", "-c",
             f"i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo $i >> {log}; sleep 0.02; done"]))
        wait_until(lambda: os.path.exists(fc.ns_path(m, log)), 10, what="the job's first line")
        time.sleep(0.3)
        start = time.monotonic()
        assert list(s.Freeze(pb().FreezeRequest(timeout_seconds=2), timeout=60).frozen) == [target]
        frozen_at = time.monotonic()
        with open(fc.ns_path(m, log)) as fh:
            n_frozen = len(fh.read().split())
        time.sleep(1)
        with open(fc.ns_path(m, log)) as fh:
            assert len(fh.read().split()) == n_frozen, "the job wrote while frozen"
        m.wait_log("the Freeze's timeout passed without a Thaw", timeout=10)
        thawed_after = time.monotonic() - frozen_at
        assert 1.8 <= thawed_after <= 4, thawed_after
        m.wait_log("1 filesystem thawed")
        wait_until(lambda: job.poll() is not None, 30, what="the job's end")
        with open(fc.ns_path(m, log)) as fh:
            assert fh.read().split() == [str(i) for i in range(1, 401)]
        assert thaw(s) == []
        assert job.returncode == 0
        print(f"frozen after {frozen_at - start:.3f} s at line {n_frozen}, thawed by itself after "
              f"{thawed_after:.3f} s")
        assert m.stop() == 0


def test_freeze_arguments_nothing_to_freeze_and_a_foreign_freeze():
    P = pb()
    base = open_dir()
    with loop_ext4(2) as devs:
        m = snapshot_maitred(base, devs)
        s, f = stubs(m.addr), fc.stubs(m.addr)
        code, details = grpc_error(s.Freeze, P.FreezeRequest(timeout_seconds=601), timeout=10)
        assert (code, details) == ("INVALID_ARGUMENT", "timeout_seconds 601: at most 600")
        # Another program froze the inner filesystem: Freeze says so and
        # leaves nothing frozen of its own (the outer one is thawed again).
        fc.in_ns(m, "fsfreeze", "--freeze", f"{base}/outer/inner")
        try:
            code, details = grpc_error(s.Freeze, P.FreezeRequest(), timeout=30)
            assert code == "FAILED_PRECONDITION" and f"{base}/outer/inner" in details and \
                "frozen already" in details, details
            assert writable(m, f"{base}/outer")
            assert fc.write(f, f"{base}/tmp/x", [b"x"], timeout=10).info.size == 1
            assert thaw(s) == []
        finally:
            fc.in_ns(m, "fsfreeze", "--unfreeze", f"{base}/outer/inner")
        assert m.stop() == 0
        # Nothing below --freeze-below: an empty answer, nothing refused.
        empty = open_dir()
        m = maitred(args=["--freeze-below", empty])
        s, f = stubs(m.addr), fc.stubs(m.addr)
        assert list(s.Freeze(P.FreezeRequest(), timeout=30).frozen) == []
        assert fc.write(f, f"{empty}/x", [b"x"], timeout=10).info.size == 1
        assert thaw(s) == []
        assert m.stop() == 0


def test_thaw_during_a_freeze_and_a_freeze_call_that_goes_away():
    """A Thaw that arrives while Freeze is still working undoes it: the
    Freeze answers ABORTED, the Thaw lists what was thawed (maybe nothing
    yet); a Freeze whose caller gives up (its deadline) is undone too."""
    import grpc
    P = pb()
    base = open_dir()
    with loop_ext4(2) as devs:
        m = snapshot_maitred(base, devs)
        s = stubs(m.addr)
        fut = s.Freeze.future(P.FreezeRequest(), timeout=60)
        # The Thaw once the Freeze has begun (its sync runs): while it works,
        # or, on a machine quick enough, once it is done.
        m.wait_log("Freeze from ")
        thawed = thaw(s)
        try:
            r = fut.result()
            # It finished before the Thaw arrived: then the Thaw thawed it.
            assert list(r.frozen) == [f"{base}/outer/inner", f"{base}/outer"]
            assert thawed == [f"{base}/outer", f"{base}/outer/inner"]
            print("the Freeze was done when the Thaw came")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.ABORTED and "a Thaw came during the Freeze" in e.details()
            assert set(thawed) <= {f"{base}/outer", f"{base}/outer/inner"}
            print(f"the Thaw came during the Freeze, and thawed {thawed}")
        assert writable(m, f"{base}/outer") and writable(m, f"{base}/outer/inner")
        assert thaw(s) == []
        # A deadline too short: the call ends on the client's side, maybe
        # before maitred saw it, maybe while it worked (then it undoes the
        # freeze itself), maybe just after its answer. The host's part
        # after a Freeze that failed is a Thaw; afterwards nothing stays
        # frozen, whichever it was.
        code, _ = grpc_error(s.Freeze, P.FreezeRequest(), timeout=0.001)
        assert code == "DEADLINE_EXCEEDED"
        thaw(s)
        wait_until(lambda: thaw(s) == [], 30, interval=0.2, what="nothing frozen")
        assert writable(m, f"{base}/outer") and writable(m, f"{base}/outer/inner")
        assert m.stop() == 0


def test_stop_while_frozen_thaws_first():
    base = open_dir()
    with loop_ext4(1) as devs:
        m = snapshot_maitred(base, devs)
        s = stubs(m.addr)
        assert list(s.Freeze(pb().FreezeRequest(), timeout=60).frozen) == [f"{base}/outer"]
        pid = m.pid
        # The namespace outlives maitred for as long as a process of ours is in it.
        holder = track(subprocess.Popen(["nsenter", "-t", str(pid), "-m", "--", "sleep", "60"]))
        time.sleep(0.2)
        assert m.stop() == 0
        assert "Thaw (maitred ends): " + f"{base}/outer thawed" in m.log()
        r = subprocess.run(["nsenter", "-t", str(holder.pid), "-m", "--", "timeout", "5", "sh", "-c",
                            f"echo x > {base}/outer/after"], capture_output=True, text=True)
        holder.kill()
        assert r.returncode == 0, r


def test_restored_argument_errors_change_nothing():
    import guest_pb2
    from google.protobuf import timestamp_pb2
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    now = int(time.time())
    bad = [
        (P.RestoredRequest(), "entropy: 0 bytes: from 32 to 4096 bytes are needed"),
        (P.RestoredRequest(entropy=b"x" * 31), "entropy: 31 bytes"),
        (P.RestoredRequest(entropy=b"x" * 4097), "entropy: 4097 bytes"),
        (P.RestoredRequest(entropy=b"x" * 32, time=timestamp_pb2.Timestamp(seconds=5)), "not plausible"),
        (P.RestoredRequest(entropy=b"x" * 32, time=timestamp_pb2.Timestamp(seconds=now, nanos=10**9)),
         "not plausible"),
        (P.RestoredRequest(entropy=b"x" * 32, generation="g" * 257), "generation: 257 bytes: at most 256"),
        (P.RestoredRequest(entropy=b"x" * 32, network=guest_pb2.NetworkConfigRequest()),
         "network: IPv4 address cannot be 0"),
        (P.RestoredRequest(entropy=b"x" * 32, network=guest_pb2.NetworkConfigRequest(
            ipv4_config=guest_pb2.IPv4Config(address=0x0100000a, netmask=0x00ff00ff, gateway=0xfe00000a))),
         "network: IPv4 netmask 255.0.255.0 is not contiguous"),
    ]
    for req, text in bad:
        code, details = grpc_error(s.Restored, req, timeout=10)
        assert code == "INVALID_ARGUMENT" and text in details, (req, details)
    assert "clock stepped" not in m.log() and "entropy added" not in m.log()
    # A NUL in the generation is refused by the core, as for every string.
    code, _ = grpc_error(s.Restored, P.RestoredRequest(entropy=b"x" * 32, generation="a\0b"), timeout=10)
    assert code == "INVALID_ARGUMENT"
    assert m.stop() == 0


def restored_maitred_without_clock():
    """maitred as root without CAP_SYS_TIME: Restored's entropy reaches the
    kernel (RNDADDENTROPY mixes the bytes into this machine's pool, which
    is harmless: anyone may write to /dev/urandom), its clock step cannot."""
    d = open_dir(0o777)
    sock = os.path.join(d, "m.sock")
    log = open(os.path.join(d, "log"), "w")
    proc = track(subprocess.Popen(
        ["setpriv", "--bounding-set=-sys_time", "--inh-caps=-sys_time", binary("maitred"), "--listen",
         "unix:" + sock, "--no-startup-processes", "--vm-ready", "none"], stdout=log, stderr=subprocess.STDOUT,
        env=sanitizer_env(), cwd=d))
    wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, 10, what="maitred socket")
    time.sleep(0.1)
    return proc, "unix:" + sock, os.path.join(d, "log")


def test_restored_entropy_generation_and_a_clock_it_may_not_set():
    from google.protobuf import timestamp_pb2
    P = pb()
    proc, addr, log = restored_maitred_without_clock()
    s = stubs(addr)
    r = s.Restored(P.RestoredRequest(entropy=os.urandom(32), generation="gen-1"), timeout=10)
    assert (r.clock_step_ns, r.previous_generation) == (0, "")
    r = s.Restored(P.RestoredRequest(entropy=os.urandom(4096), generation="gen-2"), timeout=10)
    assert (r.clock_step_ns, r.previous_generation) == (0, "gen-1")
    # No generation: the one recorded stays.
    r = s.Restored(P.RestoredRequest(entropy=os.urandom(64)), timeout=10)
    assert r.previous_generation == "gen-2"
    # The host's own time, which maitred may not set: refused, and the
    # generation of that call is not recorded.
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    code, details = grpc_error(s.Restored, P.RestoredRequest(entropy=os.urandom(32), time=ts, generation="gen-3"),
                               timeout=10)
    assert code == "PERMISSION_DENIED" and "could not set the clock" in details, details
    r = s.Restored(P.RestoredRequest(entropy=os.urandom(32), generation="gen-4"), timeout=10)
    assert r.previous_generation == "gen-2"
    # maitctl: the same call from a file's bytes, --json; --time keep.
    ent = os.path.join(open_dir(), "ent")
    with open(ent, "wb") as fh:
        fh.write(os.urandom(40))
    r = maitctl(addr, "restored", "--time", "keep", "--entropy-from", ent, "--generation", "gen-5", json=True)
    assert r.returncode == 0 and json.loads(r.stdout) == {"clock_step_ns": 0, "previous_generation": "gen-4"}, r
    r = maitctl(addr, "restored", "--time", "keep", "--generation", "gen-6")
    assert r.returncode == 0 and r.stdout == 'clock stepped +0.000000 s; previous generation "gen-5"\n', r
    r = maitctl(addr, "restored", "--generation", "gen-7")
    assert r.returncode == 1 and "PERMISSION_DENIED: could not set the clock" in r.stderr, r
    with open(ent, "wb") as fh:
        fh.write(b"short")
    r = maitctl(addr, "restored", "--time", "keep", "--entropy-from", ent)
    assert r.returncode == 2 and "5 bytes; at least 32 are needed" in r.stderr, r
    for args, text in [(["--time", "soon"], "invalid --time 'soon'"),
                       (["--address", "10.0.0.2/24"], "--gateway are required"),
                       (["--address", "10.0.0.300/24", "--gateway", "10.0.0.1"], "invalid --address"),
                       (["extra"], "unexpected argument 'extra'")]:
        r = maitctl(addr, "restored", *args)
        assert r.returncode == 2 and text in r.stderr, (args, r)
    with open(log) as fh:
        text = fh.read()
    assert text.count("bytes of entropy added and the CRNG reseeded") == 6, text
    assert "generation \"gen-2\" (was \"gen-1\")" in text
    # Under 5 ms of maitred's time (CPU) each, as the issue asks; the
    # figures go to docs/benchmarks.md.
    cpu = [float(x) for x in re.findall(r"Restored from .*; [\d.]+ ms, ([\d.]+) ms of CPU", text)]
    assert len(cpu) == 6, text
    print(f"Restored: {max(cpu):.3f} ms of CPU at most ({', '.join(f'{c:.3f}' for c in cpu)})")
    if not sanitized():
        assert max(cpu) < 5, cpu
    proc.terminate()
    assert proc.wait(15) == 0


def test_maitctl_freeze_and_thaw():
    base = open_dir()
    with loop_ext4(2) as devs:
        m = snapshot_maitred(base, devs)
        try:
            r = maitctl(m.addr, "freeze", "--timeout", "30")
            assert r.returncode == 0 and r.stdout == f"frozen {base}/outer/inner\nfrozen {base}/outer\n", r
            assert "automatic thaw after 30 s" in m.log()
            r = maitctl(m.addr, "freeze")
            assert r.returncode == 1 and "ALREADY_EXISTS" in r.stderr, r
            r = maitctl(m.addr, "thaw", json=True)
            assert r.returncode == 0 and json.loads(r.stdout) == {"thawed": [f"{base}/outer",
                                                                            f"{base}/outer/inner"]}, r
            r = maitctl(m.addr, "thaw")
            assert r.returncode == 0 and r.stdout == "nothing thawed\n", r
            r = maitctl(m.addr, "freeze", json=True)
            assert r.returncode == 0 and json.loads(r.stdout) == {"frozen": [f"{base}/outer/inner",
                                                                            f"{base}/outer"]}, r
            for args, text in [(["freeze", "--timeout", "0"], "invalid --timeout '0'"),
                               (["freeze", "--timeout", "601"], "invalid --timeout '601'"),
                               (["thaw", "x"], "unexpected argument 'x'")]:
                r = maitctl(m.addr, *args)
                assert r.returncode == 2 and text in r.stderr, (args, r)
        finally:
            maitctl(m.addr, "thaw")
        assert m.stop() == 0
