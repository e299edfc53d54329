"""maitctl forward end to end against a real maitred (docs/tunnel.md,
"maitctl forward"): an HTTP server on loopback as the guest service,
several connections at once on ONE connection to maitred, byte-exact
data both ways, half-close each way, a refused guest port, a local
client that stops reading, bad specs and an address in use (nothing sent
to maitred), SIGINT and SIGTERM, maitred going away."""
import hashlib
import http.server
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import valet
from files_client import maitred
from tunnel_client import MiB, Service, echo, free_port, read_all
from valet import SANITIZER_MARKS, binary, sanitizer_env, tmpdir, wait_until

NOWHERE = "unix:/nonexistent/maitred.sock"


class Forward:
    """maitctl forward SPECS... running; lines: what it printed."""

    def __init__(self, addr, *specs, json=False):
        self.err_path = os.path.join(tmpdir(), "forward.err")
        self.err = open(self.err_path, "w")
        cmd = [binary("maitctl"), "--addr", addr] + (["--json"] if json else []) + ["forward"] + list(specs)
        self.proc = valet.track(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                                 env=sanitizer_env()))
        self.lines = [self.proc.stdout.readline().strip() for _ in specs]
        assert all(self.lines), (self.lines, self.stderr())

    def local(self, i=0):
        """(host, port) of the i-th listener, from its line."""
        addr = self.lines[i].split()[0]
        assert addr.startswith("tcp:"), addr
        host, port = addr[4:].rsplit(":", 1)
        return host, int(port)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)
        rc = self.proc.wait(20)
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            assert mark not in err, err
        return rc


def _unix_sockets(pid):
    """How many unix sockets pid holds: maitred's listener and its
    connections (the tunnels' own sockets in the guest are TCP here)."""
    with open("/proc/net/unix") as f:
        inodes = {line.split()[6] for line in list(f)[1:]}
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        n += link.startswith("socket:[") and link[8:-1] in inodes
    return n


def _random(n, seed):
    return random.Random(seed).randbytes(n)


def _connect(fw, i=0):
    return socket.create_connection(fw.local(i), timeout=30)


def _http_server(root):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=root, **kw)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_forward_http_many_at_once_on_one_connection():
    m = maitred()
    root = tmpdir()
    files = {f"f{i}.bin": _random(MiB * (i % 3) + 1000 * i + 1, i) for i in range(8)}
    for name, b in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(b)
    srv = _http_server(root)
    fw = Forward(m.addr, f"0={srv.server_address[1]}")
    assert fw.lines[0].endswith(f" -> {srv.server_address[1]}"), fw.lines
    host, port = fw.local()
    assert host == "127.0.0.1", fw.lines
    results = {}

    def get(i):
        name = f"f{i % 8}.bin"
        with urllib.request.urlopen(f"http://{host}:{port}/{name}", timeout=60) as r:
            results[i] = (r.status, hashlib.sha256(r.read()).hexdigest() ==
                          hashlib.sha256(files[name]).hexdigest())

    threads = [threading.Thread(target=get, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    # While they run: maitred holds its listener and ONE connection.
    counts = []
    while any(t.is_alive() for t in threads):
        counts.append(_unix_sockets(m.pid))
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert results == {i: (200, True) for i in range(24)}, results
    assert max(counts) == 2 and min(counts) >= 1, counts
    assert fw.stop() == 0
    assert fw.stderr() == "", fw.stderr()
    srv.shutdown()
    m.stop()


def test_forward_binary_both_ways_and_half_close_from_the_host():
    m = maitred()
    svc = Service(echo)
    fw = Forward(m.addr, f"0={svc.port}")
    up = _random(8 * MiB + 3, 1)
    c = _connect(fw)
    got = []
    reader = threading.Thread(target=lambda: got.append(read_all(c)))
    reader.start()
    c.sendall(up)
    c.shutdown(socket.SHUT_WR)
    reader.join(60)
    assert got and got[0] == up, len(got[0]) if got else None
    c.close()
    assert svc.wait()[0]["bytes"] == len(up)
    assert fw.stop() == 0
    m.stop()


def test_forward_half_close_from_the_guest():
    m = maitred()

    def banner_then_read(c, rec):
        c.sendall(b"banner")
        c.shutdown(socket.SHUT_WR)
        rec["got"] = read_all(c)

    svc = Service(banner_then_read)
    fw = Forward(m.addr, f"0={svc.port}")
    c = _connect(fw)
    assert read_all(c) == b"banner"  # then EOF: the guest's half-close
    c.sendall(b"after the guest's eof")
    c.shutdown(socket.SHUT_WR)
    assert svc.wait()[0]["got"] == b"after the guest's eof"
    assert c.recv(10) == b""
    c.close()
    assert fw.stop(signal.SIGTERM) == 0
    assert fw.stderr() == "", fw.stderr()
    m.stop()


def test_forward_unix_both_ends_and_json():
    m = maitred()
    svc = Service(echo, unix=True)
    local = os.path.join(tmpdir(), "local.sock")
    fw = Forward(m.addr, f"unix:{local}={svc.path}", json=True)
    assert fw.lines == [f'{{"listen":"unix:{local}","guest":"{svc.path}"}}'], fw.lines
    c = socket.socket(socket.AF_UNIX)
    c.connect(local)
    c.sendall(b"over unix sockets at both ends")
    c.shutdown(socket.SHUT_WR)
    assert read_all(c) == b"over unix sockets at both ends"
    c.close()
    assert fw.stop() == 0
    assert not os.path.exists(local), "the local socket was left behind"
    m.stop()


def test_forward_refused_guest_port_resets_the_local_client_and_goes_on():
    m = maitred()
    port = free_port()
    svc = Service(echo)
    fw = Forward(m.addr, f"0={port}", f"0={svc.port}")
    # The reset may come before the client's connect has returned (on a
    # loaded machine): connect then fails with it, the same end.
    try:
        got = _connect(fw).recv(10)
    except ConnectionResetError:
        got = "reset"
    assert got == "reset", got
    wait_until(lambda: "Connection refused" in fw.stderr(), 10, what="the error on stderr")
    host, lport = fw.local()
    assert fw.stderr() == (f"maitctl forward: tcp:127.0.0.1:{lport} -> {port}: UNAVAILABLE: "
                           f"connect to tcp:127.0.0.1:{port}: Connection refused\n"), fw.stderr()
    # The other spec still forwards.
    c = _connect(fw, 1)
    c.sendall(b"still forwarding")
    c.shutdown(socket.SHUT_WR)
    assert read_all(c) == b"still forwarding"
    assert fw.stop() == 0
    m.stop()


def test_forward_local_client_that_stops_reading():
    """The guest service is stopped by flow control: maitctl and maitred
    hold a bounded amount; another connection is unaffected."""
    m = maitred()
    total = 256 * MiB
    blob = _random(MiB, 7)
    progress = {"sent": 0}

    def firehose(c, rec):
        try:
            for _ in range(total // MiB):
                c.sendall(blob)
                progress["sent"] += MiB
        except OSError:
            pass

    svc = Service(firehose)
    other = Service(echo)
    fw = Forward(m.addr, f"0={svc.port}", f"0={other.port}")
    rss_m0 = m.rss_kib()
    c = _connect(fw)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    first = len(c.recv(1000))
    assert first > 0
    time.sleep(1)
    wait_until(lambda: (progress["sent"], time.sleep(0.5))[0] == progress["sent"], 30, what="the service to block")
    stalled = progress["sent"]
    assert stalled < 32 * MiB, f"{stalled} bytes left the service with nobody reading"
    with open(f"/proc/{fw.proc.pid}/status") as f:
        rss_fw = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")][0]
    if not valet.sanitized():
        assert rss_fw < 16 * 1024, f"maitctl forward holds {rss_fw} KiB"
        assert m.rss_kib() - rss_m0 < 8 * 1024, (rss_m0, m.rss_kib())
    o = _connect(fw, 1)
    o.sendall(b"beside a stalled one")
    o.shutdown(socket.SHUT_WR)
    assert read_all(o) == b"beside a stalled one"
    # Reading again: the bytes in order, exact.
    c.settimeout(60)
    want = 20 * MiB
    got = bytearray()
    while len(got) < want:
        b = c.recv(1 << 20)
        assert b, len(got)
        got += b
    assert bytes(got[:want]) == (blob * 21)[first:first + want], "bytes lost or reordered"
    c.close()
    assert fw.stop() == 0
    m.stop()


def test_forward_bad_specs_say_so_before_contacting_maitred():
    cases = [
        ("0", "maitctl forward: invalid '0': the guest's port must be 1-65535 (or GUEST a /PATH)"),
        ("70000", "maitctl forward: invalid '70000': the guest's port must be 1-65535 (or GUEST a /PATH)"),
        ("http", "maitctl forward: invalid 'http': the guest's port must be 1-65535 (or GUEST a /PATH)"),
        ("99999=80", "maitctl forward: invalid '99999=80': the local port must be 0-65535"),
        ("bogus:1=80", "maitctl forward: invalid 'bogus:1=80': expected LOCAL as a port, tcp:HOST:PORT or unix:PATH"),
        ("/run/app.sock", "maitctl forward: invalid '/run/app.sock': a guest unix path has no port to listen on: "
                          "give LOCAL= as well"),
        ("8080=", "maitctl forward: invalid '8080=': the guest's port must be 1-65535 (or GUEST a /PATH)"),
    ]
    for spec, want in cases:
        res = subprocess.run([binary("maitctl"), "--addr", NOWHERE, "forward", spec], capture_output=True, text=True,
                             timeout=30, env=sanitizer_env())
        assert (res.returncode, res.stdout, res.stderr) == (2, "", want + "\n"), (spec, res)
    res = subprocess.run([binary("maitctl"), "--addr", NOWHERE, "forward"], capture_output=True, text=True,
                         timeout=30, env=sanitizer_env())
    assert res.returncode == 2 and res.stderr.startswith("Usage: maitctl forward"), res


def test_forward_address_in_use():
    m = maitred()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    res = subprocess.run([binary("maitctl"), "--addr", m.addr, "forward", f"{port}"], capture_output=True, text=True,
                         timeout=30, env=sanitizer_env())
    assert (res.returncode, res.stdout, res.stderr) == \
        (1, "", f"maitctl forward: cannot listen on tcp:127.0.0.1:{port}: Address already in use\n"), res
    # Nothing reached maitred: it holds its listener only.
    assert _unix_sockets(m.pid) == 1
    m.stop()


def test_forward_exits_when_maitred_goes_away():
    m = maitred()
    svc = Service(echo)
    fw = Forward(m.addr, f"0={svc.port}")
    c = _connect(fw)
    c.sendall(b"x")
    assert c.recv(1) == b"x"
    m.proc.kill()
    m.proc.wait(10)
    assert fw.proc.wait(20) == 1
    err = fw.stderr()
    assert "maitctl forward: the connection to maitred ended: UNAVAILABLE: " in err, err
    # The open connection was reset, not ended cleanly.
    try:
        got = c.recv(10)
    except ConnectionResetError:
        got = "reset"
    assert got == "reset", got


def test_forward_to_maitred_that_is_not_there():
    fw_err = subprocess.run([binary("maitctl"), "--addr", NOWHERE, "forward", f"0={free_port()}"],
                            capture_output=True, text=True, timeout=30, env=sanitizer_env())
    assert (fw_err.returncode, fw_err.stdout, fw_err.stderr) == \
        (1, "", "maitctl forward: cannot connect to unix:/nonexistent/maitred.sock: No such file or directory\n"), \
        fw_err
    # A TCP maitred that refuses: found once listening, the same end.
    port = free_port()
    fw_err = subprocess.run([binary("maitctl"), "--addr", f"tcp:127.0.0.1:{port}", "forward", f"0={free_port()}"],
                            capture_output=True, text=True, timeout=30, env=sanitizer_env())
    assert fw_err.returncode == 1, fw_err
    assert fw_err.stdout.startswith("tcp:127.0.0.1:"), fw_err
    assert fw_err.stderr == ("maitctl forward: the connection to maitred ended: UNAVAILABLE: cannot connect to "
                             f"tcp:127.0.0.1:{port}: Connection refused\n"), fw_err
