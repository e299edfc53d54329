"""LaunchProcess end to end: maitctl and the official gRPC client get the
same answers; the child's environment is what the issue asks for."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawh2  # noqa: E402
from valet import Maitred, binary, grpc_error, grpc_stubs, maitctl, sanitizer_env, wait_until
from lanes import timing


def _resp(status, code=0):
    return {"status": status, "code": code}


def test_wait_exit_codes_match_grpc():
    m = Maitred()
    g = grpc_stubs(m.addr)
    import guest_pb2
    for code in (0, 1, 3, 42, 255):
        r = maitctl(m.addr, "launch", "--wait", "--", "sh", "-c", f"exit {code}", json=True)
        assert r.returncode == code, (code, r)
        assert json.loads(r.stdout) == _resp("EXITED", code), r.stdout
        gr = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["sh", "-c", f"exit {code}"], wait_for_exit=True),
                             timeout=10)
        assert gr.status == guest_pb2.EXITED and gr.code == code, gr
    assert m.stop() == 0


def test_wait_signal():
    m = Maitred()
    g = grpc_stubs(m.addr)
    import guest_pb2
    r = maitctl(m.addr, "launch", "--wait", "--", "sh", "-c", "kill -TERM $$", json=True)
    assert r.returncode == 128 + 15, r
    assert json.loads(r.stdout) == _resp("SIGNALED", 15)
    gr = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["sh", "-c", "kill -KILL $$"], wait_for_exit=True),
                         timeout=10)
    assert gr.status == guest_pb2.SIGNALED and gr.code == 9, gr
    assert "killed by signal 9" in m.log()
    assert m.stop() == 0


def test_exec_failure_is_ok_with_failed():
    m = Maitred()
    g = grpc_stubs(m.addr)
    import guest_pb2
    r = maitctl(m.addr, "launch", "--wait", "--", "/nonexistent/program", json=True)
    assert r.returncode == 127 and json.loads(r.stdout)["status"] == "FAILED", r
    gr = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["no-such-program-valet"]), timeout=10)
    assert gr.status == guest_pb2.FAILED and gr.code == 0, gr
    # proto3 leaves zero fields out: FAILED is exactly the bytes 08 04.
    assert gr.SerializeToString() == b"\x08\x04"
    # Not executable: also FAILED, and nothing is left behind.
    path = os.path.join(m.dir, "not-exec")
    open(path, "w").write("#!/bin/sh\n")
    gr = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=[path], wait_for_exit=True), timeout=10)
    assert gr.status == guest_pb2.FAILED, gr
    assert m.zombies() == [] and m.children() == []
    assert m.stop() == 0


def test_not_waiting_is_launched():
    m = Maitred()
    g = grpc_stubs(m.addr)
    import guest_pb2
    marker = os.path.join(m.dir, "ran")
    r = maitctl(m.addr, "launch", "--", "sh", "-c", f"echo yes > {marker}", json=True)
    assert r.returncode == 0 and json.loads(r.stdout) == _resp("LAUNCHED"), r
    wait_until(lambda: os.path.exists(marker) and open(marker).read() == "yes\n", what="the process to run")
    gr = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["true"]), timeout=10)
    assert gr.status == guest_pb2.LAUNCHED
    wait_until(lambda: m.children() == [], what="children reaped")
    assert m.stop() == 0


def test_validation_errors_match_grpc():
    m = Maitred()
    g = grpc_stubs(m.addr)
    import guest_pb2
    r = maitctl(m.addr, "launch", "--")
    assert r.returncode == 1 and "INVALID_ARGUMENT: missing argv" in r.stderr, r
    assert grpc_error(g.LaunchProcess, guest_pb2.LaunchProcessRequest(), timeout=5) == \
        ("INVALID_ARGUMENT", "missing argv")
    r = maitctl(m.addr, "launch", "--respawn", "--wait", "--", "true", json=True)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"code": "INVALID_ARGUMENT",
                                    "message": "respawn and wait_for_exit cannot both be true"}
    assert grpc_error(g.LaunchProcess, guest_pb2.LaunchProcessRequest(argv=["true"], respawn=True,
                                                                      wait_for_exit=True), timeout=5) == \
        ("INVALID_ARGUMENT", "respawn and wait_for_exit cannot both be true")
    assert grpc_error(g.LaunchProcess, guest_pb2.LaunchProcessRequest(argv=["true"], env={"A=B": "x"}),
                      timeout=5)[0] == "INVALID_ARGUMENT"
    # Still serving after every bad input.
    assert g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["true"], wait_for_exit=True),
                           timeout=5).status == guest_pb2.EXITED
    assert m.stop() == 0


def test_child_environment():
    """New session, stdio on /dev/null, umask 022, env = maitred's + request's,
    signals reset, no inherited descriptors, PATH lookup with the child's PATH."""
    m = Maitred(env={"VALET_FROM_MAITRED": "inherited", "VALET_OVERRIDE": "old"})
    out = os.path.join(m.dir, "probe")
    bindir = os.path.join(m.dir, "bin")
    os.mkdir(bindir)
    with open(os.path.join(bindir, "valet-probe"), "w") as f:
        # The signal state is read first, with builtins only: once the shell
        # forks, /proc/$$/status may show its mask from inside fork().
        f.write(f"""#!/bin/sh
sig=
while read -r k v; do case $k in SigBlk:|SigIgn:) sig="$sig$k	$v
";; esac; done </proc/$$/status
o=$(readlink /proc/$$/fd/1)
{{
echo "sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$"
echo "stdin=$(readlink /proc/$$/fd/0) stdout=$o"
echo "umask=$(umask)"
echo "inherited=$VALET_FROM_MAITRED override=$VALET_OVERRIDE new=$VALET_NEW"
printf "$sig"
echo "fds=$(ls /proc/self/fd | sort -n | tr '\\n' ',')"
}} > {out}
""")
    os.chmod(os.path.join(bindir, "valet-probe"), 0o755)
    r = maitctl(m.addr, "launch", "--wait", "--env", f"PATH={bindir}:/usr/bin:/bin", "--env", "VALET_OVERRIDE=new",
                "--env", "VALET_NEW=1", "--", "valet-probe")
    assert r.returncode == 0, r
    got = dict(kv.split("=", 1) for line in open(out).read().split("\n") if line and not line.startswith("Sig")
               for kv in line.split(" ") if "=" in kv)
    text = open(out).read()
    assert got["sid"] == got["pid"], text  # session leader
    assert got["stdin"] == "/dev/null" and got["stdout"] == "/dev/null", text
    assert got["umask"] == "0022", text
    assert got["inherited"] == "inherited" and got["override"] == "new" and got["new"] == "1", text
    assert "SigBlk:\t0000000000000000" in text and "SigIgn:\t0000000000000000" in text, text
    # What ls inherits: 0-2, and 3 is the directory it lists. Nothing of maitred's.
    assert got["fds"] == "0,1,2,3,", text
    assert m.stop() == 0


@timing
def test_respawn_throttled_after_ten_starts():
    """End to end with no backoff (the policy's timings are unit-tested in
    tests/unit/test-supervisor.c with a fake clock)."""
    m = Maitred(args=["--respawn-backoff-max", "0"])
    count = os.path.join(m.dir, "count")
    r = maitctl(m.addr, "launch", "--respawn", "--", "sh", "-c", f"echo x >> {count}")
    assert r.returncode == 0 and r.stdout.strip() == "LAUNCHED", r
    m.wait_log("respawning too frequently; stopped", timeout=30)
    # Without backoff a further start would be due at once: a whole call
    # served after the throttle proves it would have come by now.
    assert maitctl(m.addr, "launch", "--wait", "--", "true").returncode == 0
    assert len(open(count).read().split()) == 10, open(count).read()
    assert m.log().count("Restarting sh") == 9
    # A new LaunchProcess starts with a fresh budget.
    r = maitctl(m.addr, "launch", "--respawn", "--", "sh", "-c", f"echo y >> {count}")
    wait_until(lambda: m.log().count("respawning too frequently") == 2, 30, what="second throttle")
    assert open(count).read().split().count("y") == 10
    assert m.stop() == 0


def test_respawn_backoff_option_is_checked():
    r = subprocess.run([binary("maitred"), "--respawn-backoff-max", "-1"], capture_output=True, text=True,
                       env=sanitizer_env())
    assert r.returncode == 2 and "invalid --respawn-backoff-max '-1'" in r.stderr, r


def test_respawn_restarts_a_killed_service():
    m = Maitred()
    r = maitctl(m.addr, "launch", "--respawn", "--", "sleep", "1000")
    assert r.returncode == 0, r
    first = wait_until(lambda: m.children(), what="the service")[0]
    os.kill(first, 9)
    second = wait_until(lambda: [p for p in m.children() if p != first], what="the restart")[0]
    assert second != first
    m.wait_log("Restarting sleep")
    # Stopping maitred stops the respawning; the service itself is ours to end.
    assert m.stop() == 0
    os.kill(second, 9)


def test_use_console_puts_stdio_on_dev_console():
    """/dev/console is a file bind-mounted in maitred's own mount namespace."""
    import tempfile
    console = tempfile.NamedTemporaryFile(prefix="valet-console-", delete=False).name
    try:
        m = Maitred(wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f'mount --bind {console} /dev/console && exec "$0" "$@"'])
        r = maitctl(m.addr, "launch", "--wait", "--console", "--", "sh", "-c",
                    "echo to-stdout; echo to-stderr >&2; readlink /proc/self/fd/0")
        assert r.returncode == 0, r
        text = open(console).read()
        assert "to-stdout\nto-stderr\n/dev/console" in text, text
        # Without --console nothing reaches it.
        maitctl(m.addr, "launch", "--wait", "--", "sh", "-c", "echo quiet")
        assert "quiet" not in open(console).read()
        assert m.stop() == 0
    finally:
        os.unlink(console)


def test_expired_deadline_launches_nothing():
    import guest_pb2
    m = Maitred()
    marker = os.path.join(m.dir, "ran")
    for wait in (True, False):
        req = guest_pb2.LaunchProcessRequest(argv=["touch", marker], wait_for_exit=wait).SerializeToString()
        got = rawh2.unary(m.sock, "/vm_tools.Maitred/LaunchProcess", req, timeout="1n")
        assert rawh2.trailers_only(got), got
    # Calls are handled in order: once this one is answered, the two above
    # have been dealt with.
    r = maitctl(m.addr, "launch", "--wait", "--", "true")
    assert r.returncode == 0, r
    assert not os.path.exists(marker)
    assert "touch" not in m.log(), m.log()
    assert m.children() == []
    assert m.stop() == 0


def test_nul_in_strings_is_invalid_argument():
    import guest_pb2
    m = Maitred()
    g = grpc_stubs(m.addr)
    marker = os.path.join(m.dir, "ran")
    cases = [
        (guest_pb2.LaunchProcessRequest(argv=["sh\0evil", "-c", f"touch {marker}"], wait_for_exit=True), "argv"),
        (guest_pb2.LaunchProcessRequest(argv=["sh", "-c", f"touch {marker}\0; reboot"]), "argv"),
        (guest_pb2.LaunchProcessRequest(argv=["sh", "-c", f"touch {marker}"], env={"A\0B": "1"}), "env.key"),
        (guest_pb2.LaunchProcessRequest(argv=["sh", "-c", f"touch {marker}"], env={"A": "1\0"}), "env.value"),
    ]
    for req, field in cases:
        code, msg = grpc_error(g.LaunchProcess, req, timeout=10)
        assert (code, msg) == ("INVALID_ARGUMENT", f"string field '{field}' contains a NUL byte"), (req, code, msg)
    r = maitctl(m.addr, "launch", "--wait", "--", "true")
    assert r.returncode == 0, r
    assert not os.path.exists(marker)
    assert "evil" not in m.log() and "touch" not in m.log()
    assert m.children() == []
    assert m.stop() == 0


def test_stop_after_a_waiting_caller_went_away_leaks_nothing():
    # The caller of a waiting LaunchProcess goes away; maitred stops while
    # the process still runs (no call in flight any more, so it stops at
    # once). Under ASan, LeakSanitizer runs at its exit (Maitred.stop checks
    # the log for reports).
    import subprocess
    from valet import binary, sanitizer_env, track
    m = Maitred()
    gone = track(subprocess.Popen([binary("maitctl"), "--addr", m.addr, "launch", "--wait", "--", "sleep", "30"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=sanitizer_env()))
    m.wait_log("started, waiting")
    gone.kill()
    gone.wait()
    m.wait_log("caller went away")
    assert m.stop() == 0


def test_runs_with_the_tcache_off_and_children_get_the_environment_as_it_was():
    # maitred re-executes itself once with glibc's tcache off (idle memory
    # after a burst); what it starts gets the environment it was given.
    for given in (None, "glibc.malloc.check=0"):
        env = {"GLIBC_TUNABLES": given} if given else {}
        m = Maitred(env=env)
        # The environment maitred was (re-)executed with; glibc's tunable
        # parser may have cut it at ':' in place.
        with open(f"/proc/{m.pid}/environ", "rb") as f:
            seen = f.read()
        assert b"glibc.malloc.tcache_count=0\0" in seen, seen
        # Still called maitred (ps, pidof): re-executed through its own path.
        assert open(f"/proc/{m.pid}/comm").read() == "maitred\n"
        out = os.path.join(m.dir, "env")
        assert maitctl(m.addr, "launch", "--wait", "--", "/bin/sh", "-c",
                       f"env > {out}").returncode == 0
        child = open(out).read().splitlines()
        assert not any(ln.startswith("VALET_") for ln in child), child
        tun = [ln for ln in child if ln.startswith("GLIBC_TUNABLES=")]
        assert tun == ([f"GLIBC_TUNABLES={given}"] if given else []), tun
        assert m.stop() == 0
    # A GLIBC_TUNABLES that sets the cache itself is left alone: no re-exec.
    m = Maitred(env={"GLIBC_TUNABLES": "glibc.malloc.tcache_count=3"})
    with open(f"/proc/{m.pid}/environ", "rb") as f:
        assert b"GLIBC_TUNABLES=glibc.malloc.tcache_count=3" in f.read().split(b"\0")
    assert m.stop() == 0
