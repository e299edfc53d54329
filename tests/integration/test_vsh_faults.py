"""Event-loop registrations that fail, in vshd and in its sessions: each
failure ends in a clear answer to the client (FAILED) or is survived, never
a silent hang or a leaked session slot. Uses vshd-faults, vshd built with
the failures of tests/unit/test-vsh-faults.c (VALET_FAIL)."""
import os
import subprocess

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
