"""VmReady when maitred is not PID 1 (--vm-ready): the official gRPC
library as the host's StartupListener; a missing or silent host is logged
and harmless. (As PID 1 it is covered by the VM test.)"""
import os
import socket
import time

from valet import Maitred, StartupListener, maitctl, tmpdir


def test_vm_ready_reaches_the_host_once_serving():
    path = os.path.join(tmpdir(), "startup.sock")
    host = StartupListener("unix:" + path)
    try:
        m = Maitred(args=["--vm-ready", "unix:" + path, "--no-startup-processes"])
        assert host.event.wait(10), m.log()
        m.wait_log("Told the host (unix:" + path + ") that the VM is ready")
        assert len(host.calls) == 1
        log = m.log()
        assert log.index("Server listening on") < log.index("Told the host"), log
        assert "Serving " in log and " ms after start (" in log, log
        assert m.stop() == 0
    finally:
        host.stop()


def test_vm_ready_to_nobody_is_logged_and_harmless():
    m = Maitred(args=["--vm-ready", "unix:/nonexistent/startup.sock", "--no-startup-processes"])
    m.wait_log("Failed to notify host system that VM is ready: No such file or directory")
    r = maitctl(m.addr, "launch", "--wait", "--", "/bin/true")
    assert r.returncode == 0, r
    assert m.stop() == 0


def test_vm_ready_to_a_silent_host_gives_up_at_the_deadline():
    d = tmpdir()
    path = os.path.join(d, "silent.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(path)
    silent.listen(4)
    try:
        start = time.monotonic()
        m = Maitred(args=["--vm-ready", "unix:" + path, "--no-startup-processes"])
        # Serving goes on while the call waits.
        r = maitctl(m.addr, "launch", "--wait", "--", "/bin/true")
        assert r.returncode == 0, r
        m.wait_log("Failed to notify host system that VM is ready: DEADLINE_EXCEEDED", timeout=15)
        took = time.monotonic() - start
        assert 4 < took < 10, took
        assert m.stop() == 0
    finally:
        silent.close()


def test_no_vm_ready_unless_asked_when_not_pid1():
    m = Maitred(args=["--no-startup-processes"])
    r = maitctl(m.addr, "launch", "--wait", "--", "/bin/true")
    assert r.returncode == 0
    log = m.log()
    assert "VM is ready" not in log, log
    assert m.stop() == 0
