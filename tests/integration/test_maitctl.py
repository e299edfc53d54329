"""maitctl's own command line: help, usage errors quoting the bad input,
connection failures, exit codes."""
import subprocess

from valet import Maitred, binary, sanitizer_env
from lanes import timing


def run(*args):
    return subprocess.run([binary("maitctl")] + list(args), capture_output=True, text=True, timeout=30,
                          env=sanitizer_env())


def test_help_for_every_command():
    r = run("--help")
    assert r.returncode == 0 and "Commands:" in r.stdout
    for cmd in ("network", "launch", "mount", "shutdown", "cp", "stat", "ls", "mkdir", "rm", "mv", "forward"):
        assert cmd in r.stdout
        r2 = run(cmd, "--help")
        assert r2.returncode == 0 and r2.stdout.startswith(f"Usage: maitctl {cmd}"), (cmd, r2)


def test_usage_errors():
    cases = [
        ([], "Usage"),
        (["launch", "--", "true"], "no guest given"),
        (["--addr", "vsock:x", "shutdown"], "invalid --addr 'vsock:x'"),
        (["--cid", "-3", "shutdown"], "invalid --cid '-3'"),
        (["--addr", "unix:/x", "--timeout", "soon", "shutdown"], "invalid --timeout 'soon'"),
        (["--addr", "unix:/x", "frobnicate"], "unknown command 'frobnicate'"),
        (["--addr", "unix:/x", "network", "--address", "10.0.0.300/24", "--gateway", "10.0.0.1"],
         "invalid --address '10.0.0.300'"),
        (["--addr", "unix:/x", "network", "--address", "10.0.0.3/33", "--gateway", "10.0.0.1"],
         "invalid prefix in '10.0.0.3/33'"),
        (["--addr", "unix:/x", "network", "--address", "10.0.0.3"], "are required"),
        (["--addr", "unix:/x", "launch", "--env", "NOEQUALS", "--", "true"], "invalid --env 'NOEQUALS'"),
        (["--addr", "unix:/x", "shutdown", "now"], "unexpected argument 'now'"),
    ]
    for args, text in cases:
        r = run(*args)
        assert r.returncode == 2 and text in r.stderr, (args, r)


def test_connection_refused_is_unavailable():
    r = run("--addr", "unix:/nonexistent/maitred.sock", "launch", "--", "true")
    assert r.returncode == 1
    assert "UNAVAILABLE: cannot connect to unix:/nonexistent/maitred.sock" in r.stderr, r
    r = run("--json", "--addr", "unix:/nonexistent/maitred.sock", "shutdown")
    assert r.returncode == 1 and '"code":"UNAVAILABLE"' in r.stdout


def test_launch_passes_argv_verbatim():
    m = Maitred()
    out = m.dir + "/argv"
    r = run("--addr", m.addr, "launch", "--wait", "--", "sh", "-c", 'printf "%s|" "$@" > ' + out, "sh",
            "--help", "a b", "", "-x")
    assert r.returncode == 0, r
    assert open(out).read() == "--help|a b||-x|"
    assert m.stop() == 0


# maitctl --timeout 2 must end the run within a bound.
@timing
def test_timeout_ends_the_run_against_a_peer_that_stops_reading():
    """--timeout bounds the whole run (issue 17): a peer that opens its flow
    control windows wide and then never reads again left maitctl waiting in
    epoll_wait for ever once its large request filled the socket."""
    import os
    import socket
    import struct
    import threading
    import time
    import valet
    d = valet.tmpdir()
    path = os.path.join(d, "stalled.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    held = []

    def peer():
        c, _ = srv.accept()
        held.append(c)
        # SETTINGS: INITIAL_WINDOW_SIZE 2^31-1, then the connection window
        # as wide: the whole request may be sent, and none of it is read.
        settings = struct.pack(">HI", 4, 2**31 - 1)
        c.sendall(struct.pack(">I", len(settings))[1:] + bytes([4, 0]) + struct.pack(">I", 0) + settings +
                  struct.pack(">I", 4)[1:] + bytes([8, 0]) + struct.pack(">I", 0) +
                  struct.pack(">I", 2**31 - 1 - 65535))
    t = threading.Thread(target=peer, daemon=True)
    t.start()
    argv = ["x" * 60000 for _ in range(16)]  # about 1 MB: more than the socket holds
    start = time.monotonic()
    try:
        r = subprocess.run([binary("maitctl"), "--addr", f"unix:{path}", "--timeout", "2", "launch", "--"] + argv,
                           capture_output=True, text=True, timeout=20, env=sanitizer_env())
    except subprocess.TimeoutExpired:
        raise AssertionError(f"maitctl still running {time.monotonic() - start:.1f} s after a 2 s --timeout")
    finally:
        for c in held:
            c.close()
        srv.close()
    took = time.monotonic() - start
    assert r.returncode != 0, r
    assert "DEADLINE_EXCEEDED" in r.stderr, r.stderr
    assert took < 2 + 1.5, f"maitctl took {took:.2f} s with --timeout 2"
