"""Event-loop registrations that fail, in vshd and in its sessions: each
failure ends in a clear answer to the client (FAILED) or is survived, never
a silent hang or a leaked session slot. Uses vshd-faults, vshd built with
the failures of tests/unit/test-vsh-faults.c (VALET_FAIL)."""
import os
import signal
import socket
import struct
import subprocess
import time

import valet
from valet import SANITIZER_MARKS, sanitizer_env, tmpdir, track, vsh, wait_until


class FaultyVshd:
    def __init__(self, fail, args=()):
        self.dir = tmpdir()
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "vshd.sock")
        self.addr = "unix:" + self.sock
        self.log_path = os.path.join(self.dir, "vshd.log")
        prog = os.path.join(valet.BUILD, "tests", "unit", "vshd-faults")
        with open(self.log_path, "w") as log:
            self.proc = track(subprocess.Popen([prog, "--listen", self.addr] + list(args), stdout=log,
                                               stderr=subprocess.STDOUT, cwd=self.dir,
                                               env=sanitizer_env({"VALET_FAIL": fail})))
        # The socket file appears at bind(), before listen(): wait for the log line.
        wait_until(lambda: "listening on" in self.log() or self.proc.poll() is not None, 10, what="vshd listening")
        assert self.proc.poll() is None, self.log()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(15)
        for mark in SANITIZER_MARKS:
            assert mark not in self.log(), self.log()[-4000:]
        return rc


def test_failed_child_watch_neither_hangs_nor_leaks_a_slot():
    # Every loop_watch_child fails, in vshd and in the sessions alike.
    d = FaultyVshd("loop_watch_child", args=["--max-sessions", "1"])
    for i in range(3):
        r = vsh(d.addr, "--", "sh", "-c", f"echo {i}; exit {i + 3}", timeout=30)
        assert r.returncode == i + 3 and r.stdout == f"{i}\n".encode(), (i, r, d.log()[-2000:])
        # The slot comes back once the session process is reaped.
        wait_until(lambda: "ended with code" in d.log() and not _sessions(d), 10, what="the slot back")
    assert d.stop() == 0


def _sessions(d):
    with open(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children") as f:
        return f.read().split()


def test_failed_registrations_in_the_session_answer_failed():
    for fail in ("loop_add_io:child", "loop_add_io:child:2", "loop_add_io:child:3", "loop_add_timer:child"):
        d = FaultyVshd(fail)
        marker = os.path.join(d.dir, "ran")
        r = vsh(d.addr, "--", "sh", "-c", f"touch {marker}; sleep 60 & echo started", timeout=30)
        assert r.returncode == 1, (fail, r, d.log()[-2000:])
        assert b"out of resources: cannot watch the session" in r.stderr, (fail, r)
        assert not os.path.exists(marker), fail  # nothing was started
        assert d.stop() == 0


def test_failure_mid_session_ends_it_with_failed():
    # After READY, an update of the session's watches fails.
    d = FaultyVshd("loop_io_set_events:child:3")
    r = vsh(d.addr, "--", "sh", "-c", "echo one; sleep 60; echo two", timeout=40)
    assert r.returncode == 123 and b"session ended: cannot update the session's watches" in r.stderr, \
        (r, d.log()[-2000:])
    # The session process logs after its last answer.
    wait_until(lambda: "session failed: cannot update the session's watches" in d.log(), 10,
               what="the session's log line")
    # vshd itself goes on serving.
    d2 = FaultyVshd("")
    assert vsh(d2.addr, "--", "true").returncode == 0
    assert d.stop() == 0 and d2.stop() == 0


# --- the client: allocation failure (vsh-faults, VALET_FAIL_REALLOC_OVER) ---

def _faulty_vsh(addr, over, *args, **kw):
    """vsh whose reallocations of more than `over` bytes fail (test-vsh-client-faults.c)."""
    prog = os.path.join(valet.BUILD, "tests", "unit", "vsh-faults")
    return [prog, "--addr", addr] + list(args), sanitizer_env({"VALET_FAIL_REALLOC_OVER": str(over)})


def _frame(payload):
    return struct.pack("<I", len(payload)) + payload


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_client_out_of_memory_for_received_data_ends_the_session():
    """A burst of output vsh cannot grow its receive buffer for: it stops
    with a clear error and 123, instead of dropping the burst and carrying
    on (the old code wrote nothing and exited 0, the command's EXITED)."""
    import vsh_pb2
    d = tmpdir()
    path = os.path.join(d, "fake-vshd.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(10)
    out_path = os.path.join(d, "out")
    cmd, env = _faulty_vsh("unix:" + path, 64 * 1024, "--", "cat", "big")
    with open(out_path, "wb") as out, open(os.path.join(d, "err"), "w+b") as err:
        p = track(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env))
        conn, _ = srv.accept()
        conn.settimeout(10)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:4])[0]:
            chunk = conn.recv(65536)
            assert chunk, "vsh closed before its request"
            data += chunk
        conn.sendall(_frame(vsh_pb2.SetupConnectionResponse(status=vsh_pb2.READY, pid=1).SerializeToString()))
        time.sleep(0.3)  # vsh in its loop, waiting
        # 25 whole frames (100 000 bytes) queued while vsh is stopped, so
        # that one receive takes them all: growing the buffer to 128 KiB fails.
        os.kill(p.pid, signal.SIGSTOP)
        wait_until(lambda: _state(p.pid) == "T", 10, what="vsh stopped")
        burst = b"".join(_frame(vsh_pb2.HostMessage(data_message=vsh_pb2.DataMessage(
            stream=vsh_pb2.STDOUT_STREAM, data=b"x" * 4000)).SerializeToString()) for _ in range(25))
        conn.sendall(burst)
        os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.3)
        try:
            conn.sendall(_frame(vsh_pb2.HostMessage(status_message=vsh_pb2.ConnectionStatusMessage(
                status=vsh_pb2.EXITED, code=0)).SerializeToString()))
        except OSError:
            pass  # vsh is gone already
        rc = p.wait(10)
        conn.close()
        err.seek(0)
        stderr = err.read()
    srv.close()
    got = os.path.getsize(out_path)
    for mark in SANITIZER_MARKS:
        assert mark.encode() not in stderr, stderr.decode(errors="replace")
    assert rc == 123 and b"vsh: out of memory for the data received" in stderr, (rc, stderr, got)
    assert got < 100000


def test_client_out_of_memory_for_input_ends_the_session():
    """1 MB of input from a file, queued in frames vsh cannot grow its send
    buffer for: it stops with a clear error and 123, instead of dropping
    the frames that did not fit (the old code: wc counted a quarter of the
    input, exit 0)."""
    vshd = valet.Vshd()
    d = tmpdir()
    src = os.path.join(d, "in")
    with open(src, "wb") as f:
        f.write(b"y" * (1 << 20))
    cmd, env = _faulty_vsh(vshd.addr, 16 * 1024, "--", "wc", "-c")
    with open(src, "rb") as stdin:
        r = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=30, env=env)
    for mark in SANITIZER_MARKS:
        assert mark.encode() not in r.stderr, r.stderr.decode(errors="replace")
    assert r.returncode == 123 and b"vsh: out of memory for the input to send" in r.stderr, r
    vshd.stop()
