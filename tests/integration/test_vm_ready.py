"""VmReady when maitred is not PID 1 (--vm-ready): the official gRPC
library as the host's StartupListener; a missing or silent host is logged
and harmless. (As PID 1 it is covered by the VM test.)"""
import os
import socket
import time

from valet import Maitred, StartupListener, maitctl, tmpdir
from lanes import timing


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
    m.wait_log("Failed to notify host system that VM is ready: UNAVAILABLE: cannot connect to "
               "unix:/nonexistent/startup.sock: No such file or directory; retrying for up to 120 s")
    r = maitctl(m.addr, "launch", "--wait", "--", "/bin/true")
    assert r.returncode == 0, r
    assert m.stop() == 0
    # Logged once, however many attempts were made.
    assert m.log().count("Failed to notify host") == 1, m.log()


def test_vm_ready_retried_until_the_host_listens():
    path = os.path.join(tmpdir(), "startup.sock")
    m = Maitred(args=["--vm-ready", "unix:" + path, "--no-startup-processes"])
    m.wait_log("retrying for up to 120 s")
    # The host's listener comes up late: the next attempt reaches it.
    host = StartupListener("unix:" + path)
    try:
        assert host.event.wait(15), m.log()
        m.wait_log("Told the host (unix:" + path + ") that the VM is ready, at attempt ")
        assert len(host.calls) == 1
        assert m.stop() == 0
    finally:
        host.stop()


@timing
def test_vm_ready_gives_up_at_its_bound_and_serving_goes_on():
    start = time.monotonic()
    m = Maitred(args=["--vm-ready", "unix:/nonexistent/startup.sock", "--vm-ready-timeout", "2",
                      "--no-startup-processes"])
    m.wait_log("; gave up after ", timeout=15)
    took = time.monotonic() - start
    assert 1.5 < took < 10, took
    log = m.log()
    assert log.count("Failed to notify host") == 2, log
    attempts = int(log.split("gave up after ")[1].split()[0])
    assert attempts >= 3, log
    r = maitctl(m.addr, "launch", "--wait", "--", "/bin/true")
    assert r.returncode == 0, r
    assert m.stop() == 0


@timing
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
        # Each attempt has its own 5 s deadline.
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
