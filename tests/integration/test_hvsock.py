"""Hybrid vsock (Firecracker, Cloud Hypervisor): vsh and maitctl reach
maitred and vshd through tests/lib/hvsock_relay.py, which plays the VMM's
part of the protocol; a VMM that refuses, answers garbage, an error line or
nothing; VmReady arriving through <path>_7777 at `maitctl wait-ready`."""
import os
import subprocess
import sys
import time

from valet import Maitred, Vshd, binary, maitctl, netns, sanitizer_env, tmpdir, track, vsh, wait_until
from lanes import timing

RELAY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib", "hvsock_relay.py")


def relay(ports=None, guest_ports=None, mode="ok", path=None):
    """Starts the relay; returns the path of the VMM's socket."""
    path = path or os.path.join(tmpdir(), "vm.vsock")
    cmd = [sys.executable, RELAY, "--socket", path, "--mode", mode]
    for p, s in (ports or {}).items():
        cmd += ["--port", f"{p}={s}"]
    for p, s in (guest_ports or {}).items():
        cmd += ["--guest-port", f"{p}={s}"]
    proc = track(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    assert proc.stdout.readline().strip() == "ready"
    return path


def test_four_rpcs_through_the_vmm_socket():
    ns = netns("hv")
    subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "vpeer"], check=True)
    m = Maitred(wrap=["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private"])
    path = relay({8888: m.sock})
    addr = f"hvsock:{path}:8888"

    r = maitctl(addr, "network", "--address", "10.77.0.5/24", "--gateway", "10.77.0.1")
    assert r.returncode == 0, r
    out = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"], capture_output=True,
                         text=True).stdout
    assert "10.77.0.5/24" in out, out

    r = maitctl(addr, "launch", "--wait", "--", "sh", "-c", "exit 7")
    assert r.returncode == 7, r

    target = os.path.join(m.dir, "mnt")
    os.mkdir(target)
    r = maitctl(addr, "mount", "tmpfs", target, "tmpfs", "--options", "size=1m")
    assert r.returncode == 0, r
    # The mount is in maitred's private namespace: look there.
    ns_mounts = open(f"/proc/{m.pid}/mounts").read()
    assert f" {target} tmpfs " in ns_mounts, ns_mounts

    r = maitctl(addr, "shutdown")
    assert r.returncode == 0 and r.stdout.strip() == "OK", r
    assert m.proc.wait(15) == 0
    m.check_clean()


def test_vsh_pipes_and_pty_through_the_vmm_socket():
    d = Vshd()
    path = relay({9001: d.sock})
    addr = f"hvsock:{path}:9001"
    r = vsh(addr, "--", "sh", "-c", "head -c 3000000 /dev/zero; echo err >&2; exit 3")
    assert r.returncode == 3, r
    assert r.stdout == b"\0" * 3000000 and r.stderr == b"err\n", (len(r.stdout), r.stderr)
    # A PTY session: -t on a pipe stdin, the remote side sees a terminal.
    r = vsh(addr, "-t", "--", "sh", "-c", "test -t 0 && test -t 1 && echo tty:$(tty)")
    assert r.returncode == 0 and b"tty:/dev/pts/" in r.stdout, r


def test_refused_port_and_bad_vmm_answers():
    d = Vshd()
    m = Maitred()
    ok = relay({9001: d.sock, 8888: m.sock})
    cases = [
        (ok, 1234, "refused the port"),
        (relay(mode="garbage"), 9001, 'something other than "OK <port>"'),
        (relay(mode="err"), 9001, "refused the port"),
    ]
    for path, port, text in cases:
        r = vsh(f"hvsock:{path}:{port}", "--", "true")
        assert r.returncode == 1 and f"cannot connect to hvsock:{path}:{port}: " in r.stderr.decode() \
            and text in r.stderr.decode(), (port, text, r)
        r = maitctl(f"hvsock:{path}:{port}", "shutdown")
        assert r.returncode == 1 and f"UNAVAILABLE: cannot connect to hvsock:{path}:{port}: " in r.stderr \
            and text in r.stderr, (port, text, r)
    # Both servers are unharmed and still serve through the good relay.
    assert vsh(f"hvsock:{ok}:9001", "--", "true").returncode == 0
    assert maitctl(f"hvsock:{ok}:8888", "launch", "--wait", "--", "true").returncode == 0
    assert m.stop() == 0


@timing
def test_stalled_vmm_is_bounded():
    path = relay(mode="stall")
    start = time.monotonic()
    r = vsh(f"hvsock:{path}:9001", "--", "true", timeout=30)
    took = time.monotonic() - start
    assert r.returncode == 1 and b"did not answer in time" in r.stderr, r
    assert 4 <= took < 15, took
    # maitctl: the call's own deadline, when shorter, ends it first.
    start = time.monotonic()
    r = subprocess.run([binary("maitctl"), "--addr", f"hvsock:{path}:8888", "--timeout", "1", "shutdown"],
                       capture_output=True, text=True, timeout=30, env=sanitizer_env())
    took = time.monotonic() - start
    assert r.returncode == 1 and "DEADLINE_EXCEEDED" in r.stderr, r
    assert took < 5, took
    r = maitctl(f"hvsock:{path}:8888", "shutdown")
    assert r.returncode == 1 and "UNAVAILABLE" in r.stderr and "did not answer in time" in r.stderr, r


def test_hvsock_is_not_a_listen_address():
    d = tmpdir()
    for prog, what in (("maitred", "--listen"), ("vshd", "--listen")):
        r = subprocess.run([binary(prog), what, f"hvsock:{d}/x:8888"], capture_output=True, text=True, timeout=30,
                           env=sanitizer_env())
        assert r.returncode == 2 and f"invalid --listen address 'hvsock:{d}/x:8888': expected vsock:CID:PORT, " \
            "unix:PATH or tcp:HOST:PORT" in r.stderr, r
    r = subprocess.run([binary("maitctl"), "wait-ready", f"hvsock:{d}/x:7777"], capture_output=True, text=True,
                       timeout=30, env=sanitizer_env())
    assert r.returncode == 2 and "invalid address" in r.stderr, r


def wait_ready(*args, json=False):
    cmd = [binary("maitctl")] + (["--json"] if json else []) + ["wait-ready"] + list(args)
    return track(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=sanitizer_env()))


def test_wait_ready_through_the_vmm_uds_port_socket():
    d = tmpdir()
    vm_sock = os.path.join(d, "vm.vsock")
    guest_side = os.path.join(d, "guest-7777.sock")
    # The host listens on <path>_7777, as Firecracker and Cloud Hypervisor
    # expect; the guest's maitred connects "to CID 2 port 7777".
    w = wait_ready("--timeout", "30", f"unix:{vm_sock}_7777")
    wait_until(lambda: os.path.exists(f"{vm_sock}_7777"), what="wait-ready's socket")
    relay(guest_ports={7777: guest_side}, path=vm_sock)
    m = Maitred(args=["--vm-ready", f"unix:{guest_side}"])
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0, (out, err)
    assert out.startswith("VmReady from unix ") and " s\n" in out, out
    m.wait_log("Told the host")
    assert not os.path.exists(f"{vm_sock}_7777"), "wait-ready left its socket behind"
    assert m.stop() == 0


@timing
def test_wait_ready_over_tcp_and_timeout():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    w = wait_ready("--timeout", "30", f"tcp:127.0.0.1:{port}")
    wait_until(lambda: subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                      text=True).stdout.strip(), what="wait-ready listening")
    m = Maitred(args=["--vm-ready", f"tcp:127.0.0.1:{port}"])
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0 and out.startswith("VmReady from tcp 127.0.0.1 after "), (out, err)
    assert m.stop() == 0

    d = tmpdir()
    start = time.monotonic()
    w = wait_ready("--timeout", "0.5", f"unix:{d}/never_7777")
    out, err = w.communicate(timeout=30)
    took = time.monotonic() - start
    assert w.returncode == 1 and "no VmReady on unix:" in err and "within 0.500 s" in err, (out, err)
    assert 0.5 <= took < 10, took
    w = wait_ready("--timeout", "0.2", f"unix:{d}/never_7777", json=True)
    assert w.communicate(timeout=30)[0] == '{"ready":false}\n'


def test_vm_ready_sent_through_the_vmm_socket():
    # maitred on the host side of a test: its VmReady goes through a VMM's
    # hybrid-vsock socket to whatever serves that guest port.
    d = tmpdir()
    wr_sock = os.path.join(d, "wait-ready.sock")
    w = wait_ready("--timeout", "30", f"unix:{wr_sock}")
    wait_until(lambda: os.path.exists(wr_sock), what="wait-ready's socket")
    path = relay({7777: wr_sock})
    m = Maitred(args=["--vm-ready", f"hvsock:{path}:7777"])
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0 and out.startswith("VmReady from unix "), (out, err)
    m.wait_log(f"Told the host (hvsock:{path}:7777) that the VM is ready")
    # A VMM that refuses the port: the failure is logged with the reason.
    bad = relay({})
    m2 = Maitred(args=["--vm-ready", f"hvsock:{bad}:7777"])
    m2.wait_log("Failed to notify host system that VM is ready: UNAVAILABLE: cannot connect to "
                f"hvsock:{bad}:7777: the VMM refused the port")
    assert m.stop() == 0 and m2.stop() == 0


def _ready_while_another_peer_busy(timeout, busy):
    """wait-ready on a unix socket, one other connection kept busy by
    busy(sock), then VmReady: returns (returncode, stdout, seconds from
    the VmReady answer to exit). At most 20 s, the test's own bound."""
    import socket
    import threading
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import rawh2
    d = tmpdir()
    path = os.path.join(d, "wr_7777")
    w = wait_ready("--timeout", timeout, f"unix:{path}")
    wait_until(lambda: os.path.exists(path), what="wait-ready's socket")
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.connect(path)
    stop = threading.Event()
    t = threading.Thread(target=busy, args=(other, stop), daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        frames = rawh2.unary(path, "/vm_tools.StartupListener/VmReady", b"")
        assert any(f[0] == 1 and f[1] & 1 for f in frames), frames  # answered: trailers
        answered = time.monotonic()
        try:
            out, err = w.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            return None, "", 20.0
        return w.returncode, out, time.monotonic() - answered
    finally:
        stop.set()
        t.join(5)
        other.close()


def _hold_a_stream(s, stop):
    import rawh2
    # A VmReady call whose request never ends.
    s.sendall(rawh2.PREFACE + rawh2.frame(4, 0, 0) +
              rawh2.frame(1, 4, 1, rawh2.headers_block("/vm_tools.StartupListener/VmReady")))
    while not stop.wait(0.05):
        pass


def _flood_pings(s, stop):
    """PINGs without reading a single ACK, in batches small enough for
    nghttp2's flood limit (1000 ACKs queued): the answers pile up in
    wait-ready's output, which never drains."""
    import rawh2
    s.sendall(rawh2.PREFACE + rawh2.frame(4, 0, 0))
    s.settimeout(0.1)
    ping = rawh2.frame(6, 0, 0, b"12345678") * 300
    while not stop.is_set():
        try:
            s.sendall(ping)
        except TimeoutError:
            stop.wait()  # wait-ready stopped reading: its output is full
            return
        except OSError:
            return  # wait-ready closed it
        time.sleep(0.005)


# wait-ready must exit within a bound once VmReady is answered.
@timing
def test_wait_ready_exits_once_answered_despite_a_held_stream():
    """Issue 17: a stream held open on another connection kept wait-ready
    until its timeout (and for ever with --timeout 0)."""
    for timeout in ("10", "0"):
        code, out, took = _ready_while_another_peer_busy(timeout, _hold_a_stream)
        assert code == 0 and out.startswith("VmReady from unix "), (timeout, code, out)
        assert took < 2, f"--timeout {timeout}: exited {took:.2f} s after VmReady was answered"


# wait-ready must exit within a bound once VmReady is answered.
@timing
def test_wait_ready_exits_once_answered_despite_a_ping_flood():
    for timeout in ("10", "0"):
        code, out, took = _ready_while_another_peer_busy(timeout, _flood_pings)
        assert code == 0 and out.startswith("VmReady from unix "), (timeout, code, out)
        assert took < 2, f"--timeout {timeout}: exited {took:.2f} s after VmReady was answered"
