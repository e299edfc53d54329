"""maitred and vshd under a service manager: READY=1 once serving and
STOPPING=1 when stopping, through $NOTIFY_SOCKET (here a datagram socket
the test binds, as systemd does), and the variable not passed on to the
processes they start. (Under real systemd: the systemd guest test.)"""
import os
import signal
import socket

from valet import Maitred, Vshd, maitctl, tmpdir, vsh


def notify_socket():
    path = os.path.join(tmpdir(), "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(15)
    return s, path


def test_maitred_reports_ready_and_stopping():
    s, path = notify_socket()
    m = Maitred(args=["--no-startup-processes"], env={"NOTIFY_SOCKET": path})
    msg = s.recv(4096).decode()
    assert msg.split("\n")[0] == "READY=1", msg
    # By then every listener is open: a call works at once.
    assert "Server listening on" in m.log()
    out = os.path.join(m.dir, "env")
    r = maitctl(m.addr, "launch", "--wait", "--", "/bin/sh", "-c", f"env > {out}")
    assert r.returncode == 0, r
    assert "NOTIFY_SOCKET" not in open(out).read()
    m.proc.send_signal(signal.SIGTERM)
    assert s.recv(4096).decode() == "STOPPING=1"
    assert m.proc.wait(15) == 0, m.log()
    m.check_clean()


def test_maitred_shutdown_outside_systemd_exits():
    # Not started by systemd (its parent is this test): Shutdown stops
    # maitred and nothing else, whatever init this machine runs.
    s, path = notify_socket()
    m = Maitred(args=["--no-startup-processes"], env={"NOTIFY_SOCKET": path})
    assert s.recv(4096).decode().startswith("READY=1")
    r = maitctl(m.addr, "shutdown")
    assert r.returncode == 0, r
    assert s.recv(4096).decode() == "STOPPING=1"
    assert m.proc.wait(15) == 0
    assert "OK, finishing calls in flight" in m.log()
    m.check_clean()



def test_vshd_reports_ready_and_stopping():
    s, path = notify_socket()
    d = Vshd(env={"NOTIFY_SOCKET": path})
    assert s.recv(4096).decode().split("\n")[0] == "READY=1"
    r = vsh(d.addr, "--", "sh", "-c", "echo ${NOTIFY_SOCKET:-unset}")
    assert r.returncode == 0 and r.stdout == b"unset\n", r
    d.proc.send_signal(signal.SIGTERM)
    assert s.recv(4096).decode() == "STOPPING=1"
    assert d.proc.wait(15) == 0, d.log()
    d.check_clean()
