#!/usr/bin/python3
"""valet.v1.Tunnel through `maitctl forward` against what issue 19 compares
it with, in one run:

1. Throughput of one connection (1 GiB), host -> guest service and guest
   service -> host, against the socat floor: the same bytes through the
   same hops, socat relaying host TCP -> unix socket -> guest TCP where
   maitctl forward and maitred do. maitred listens on a unix socket (the
   transport a VM's vsock stands for here); the guest service is a sink
   or a source on loopback TCP. The two are measured alternately, round by
   round, so that drift in the machine's load hits both alike. Target: at
   least 0.8x the floor.
2. 100 connections at once through one maitctl forward, each moving
   10 MiB to a guest sink: all complete, byte counts exact, maitred's RSS
   sampled throughout (static build: under 32 MiB).
3. An HTTP server in the guest (busybox httpd, a 4 KiB file) answering
   10 000 requests through maitctl forward, from h2load (HTTP/1.1, 10
   clients): every request answered 200, with the same server reached
   directly beside it.

Prints a Markdown report ending in a summary of the targets met, as
files_bench.py does (exit 0 either way: `make bench` goes on).

    make build-static
    /usr/bin/python3 bench/tunnel_bench.py --build build-static
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import free_port, status_kib, wait_listening, wait_path  # noqa: E402

MIB = 1 << 20
SOCAT_BUF = 131072  # socat's default 8 KiB makes the floor slower than it is
STEP_TIMEOUT = 300


def step(what):
    print(f"tunnel_bench: {what}", file=sys.stderr, flush=True)


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


def sink_server(nconn=1):
    """A guest service that reads everything of nconn connections (C-speed
    recv_into of 1 MiB) and records the byte counts."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    counts = []
    lock = threading.Lock()

    def one(c):
        buf = bytearray(MIB)
        n = 0
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            n += k
        c.close()
        with lock:
            counts.append(n)

    def serve():
        for _ in range(nconn):
            c, _ = s.accept()
            threading.Thread(target=one, args=(c,), daemon=True).start()
        s.close()

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1], counts


def source_server(size):
    """A guest service that sends size bytes to one connection and closes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def serve():
        c, _ = s.accept()
        block = b"\xa5" * MIB
        for _ in range(size // MIB):
            c.sendall(block)
        c.close()
        s.close()

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


def push(port, size):
    """The host client: size bytes into 127.0.0.1:port, then EOF, then
    waits for the far side's end. Seconds."""
    c = socket.create_connection(("127.0.0.1", port))
    block = b"\x5a" * MIB
    t = time.perf_counter()
    for _ in range(size // MIB):
        c.sendall(block)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    dt = time.perf_counter() - t
    c.close()
    return dt


def pull(port, size):
    """The host client reading size bytes from 127.0.0.1:port. Seconds."""
    c = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(MIB)
    n = 0
    t = time.perf_counter()
    while True:
        k = c.recv_into(buf)
        if not k:
            break
        n += k
    dt = time.perf_counter() - t
    c.close()
    if n != size:
        raise RuntimeError(f"read {n} bytes of {size}")
    return dt


class Forward:
    """maitred on a unix socket and maitctl forward 0=PORT in front of it."""

    def __init__(self, build, d, procs, guest_port):
        self.sock = os.path.join(d, "maitred.sock")
        if not os.path.exists(self.sock):
            self.maitred = procs.start([os.path.join(build, "src", "maitred"), "--listen", "unix:" + self.sock,
                                        "--no-startup-processes", "--vm-ready", "none"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_path(self.sock, proc=self.maitred)
            time.sleep(0.2)
        self.fw = procs.start([os.path.join(build, "src", "maitctl"), "--addr", "unix:" + self.sock, "forward",
                               f"0={guest_port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.fw.stdout.readline()
        m = re.match(r"tcp:127\.0\.0\.1:(\d+) -> ", line)
        if not m:
            raise RuntimeError(f"maitctl forward: {line!r} {self.fw.stderr.read()}")
        self.port = int(m.group(1))

    def close(self):
        self.fw.send_signal(signal.SIGINT)
        self.fw.wait(10)


class SocatFloor:
    """The same hops through socat: host TCP -> unix socket -> guest TCP."""

    def __init__(self, d, procs, guest_port):
        path = os.path.join(d, f"floor-{guest_port}.sock")
        self.guest = procs.start(["socat", "-b", str(SOCAT_BUF), f"UNIX-LISTEN:{path},fork",
                                  f"TCP:127.0.0.1:{guest_port}"], stderr=subprocess.DEVNULL)
        wait_path(path, proc=self.guest)
        self.port = free_port()
        self.host = procs.start(["socat", "-b", str(SOCAT_BUF), f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
                                 f"UNIX-CONNECT:{path}"], stderr=subprocess.DEVNULL)
        wait_listening("tcp", self.port, self.host)

    def close(self):
        for p in (self.host, self.guest):
            p.send_signal(signal.SIGTERM)
            p.wait(10)


def throughput(args, build, d):
    res = {"up": {"tunnel": [], "socat": []}, "down": {"tunnel": [], "socat": []}}
    procs = Procs()
    try:
        for r in range(args.rounds):
            for direction in ("up", "down"):
                for kind in ("tunnel", "socat"):
                    step(f"throughput round {r + 1} {direction} {kind}")
                    if direction == "up":
                        gport, counts = sink_server()
                    else:
                        gport = source_server(args.size)
                    relay = Forward(build, d, procs, gport) if kind == "tunnel" else SocatFloor(d, procs, gport)
                    dt = push(relay.port, args.size) if direction == "up" else pull(relay.port, args.size)
                    if direction == "up":
                        deadline = time.monotonic() + 10
                        while not counts and time.monotonic() < deadline:
                            time.sleep(0.01)
                        if counts != [args.size]:
                            raise RuntimeError(f"the sink got {counts}, not {args.size}")
                    relay.close()
                    res[direction][kind].append(args.size / dt / MIB)
    finally:
        procs.stop()
    return res


def concurrent(args, build, d):
    procs = Procs()
    n, size = args.connections, args.each
    try:
        gport, counts = sink_server(n)
        fw = Forward(build, d, procs, gport)
        rss = [status_kib(fw.maitred.pid, "VmRSS")]
        idle = rss[0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                rss.append(status_kib(fw.maitred.pid, "VmRSS"))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        step(f"{n} connections of {size // MIB} MiB at once")
        times = [None] * n

        def one(i):
            times[i] = push(fw.port, size)

        t = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(STEP_TIMEOUT)
        wall = time.perf_counter() - t
        deadline = time.monotonic() + 10
        while len(counts) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        done.set()
        sampler.join()
        fw.close()
        return {"complete": sum(1 for x in times if x is not None), "counts_ok": sorted(counts) == [size] * n,
                "wall": wall, "idle_kib": idle, "peak_kib": max(rss), "n": n, "size": size}
    finally:
        procs.stop()


def http(args, build, d):
    procs = Procs()
    try:
        www = os.path.join(d, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "index.html"), "wb") as f:
            f.write(b"x" * 4096)
        port = free_port()
        procs.start(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", www],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening("tcp", port, procs.procs[-1])
        fw = Forward(build, d, procs, port)
        out = {}
        for name, p in (("direct", port), ("forward", fw.port)):
            step(f"h2load {args.requests} requests, {name}")
            res = subprocess.run(["h2load", "--h1", "-n", str(args.requests), "-c", "10",
                                  f"http://127.0.0.1:{p}/index.html"], capture_output=True, text=True,
                                 timeout=STEP_TIMEOUT)
            m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", res.stdout)
            st = re.search(r"status codes: (\d+) 2xx", res.stdout)
            out[name] = {"rps": float(m.group(3)) if m else 0.0, "ok": int(st.group(1)) if st else 0}
        fw.close()
        return out
    finally:
        procs.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-static")
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--each", type=int, default=10 * MIB)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--only", action="append", choices=["throughput", "concurrent", "http"])
    args = ap.parse_args()
    only = set(args.only or ["throughput", "concurrent", "http"])
    build = os.path.abspath(args.build)
    for p in ("maitred", "maitctl"):
        if not os.path.exists(os.path.join(build, "src", p)):
            sys.exit(f"tunnel_bench: missing {os.path.relpath(os.path.join(build, 'src', p), ROOT)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    d = tempfile.mkdtemp(prefix="valet-tunnel-bench-")
    verdicts = []
    lines = ["## valet.v1.Tunnel (`bench/tunnel_bench.py`)", "",
             f"Build `{os.path.relpath(build, ROOT)}`, load average before {os.getloadavg()[0]:.2f}.", ""]
    try:
        if "throughput" in only:
            res = throughput(args, build, d)
            lines += [f"Throughput, one connection, {args.size // MIB} MiB, median of {args.rounds} rounds (MiB/s):",
                      "", "| direction | maitctl forward + maitred | socat floor | ratio (target >= 0.8) |",
                      "|---|---|---|---|"]
            for direction, label in (("up", "host -> guest"), ("down", "guest -> host")):
                t, s = statistics.median(res[direction]["tunnel"]), statistics.median(res[direction]["socat"])
                ratio = t / s
                verdicts.append(ratio >= 0.8)
                lines.append(f"| {label} | {t:.0f} | {s:.0f} | {ratio:.2f} {'met' if ratio >= 0.8 else 'MISSED'} |")
            lines.append("")
        if "concurrent" in only:
            c = concurrent(args, build, d)
            met = c["complete"] == c["n"] and c["counts_ok"] and c["peak_kib"] < 32 * 1024
            verdicts.append(met)
            lines += [f"{c['n']} connections at once, {c['size'] // MIB} MiB each host -> guest: "
                      f"{c['complete']} of {c['n']} complete, byte counts {'exact' if c['counts_ok'] else 'WRONG'}, "
                      f"{c['wall']:.1f} s; maitred RSS {c['idle_kib'] / 1024:.1f} MiB idle, "
                      f"{c['peak_kib'] / 1024:.1f} MiB peak (target < 32 MiB: {'met' if met else 'MISSED'}).", ""]
        if "http" in only:
            h = http(args, build, d)
            met = h["forward"]["ok"] == args.requests
            verdicts.append(met)
            lines += [f"HTTP (busybox httpd, 4 KiB, h2load --h1 -c 10): {h['forward']['ok']} of {args.requests} "
                      f"answered 200 through maitctl forward, {h['forward']['rps']:.0f} req/s; directly "
                      f"{h['direct']['rps']:.0f} req/s ({'met' if met else 'MISSED'}).", ""]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    lines.append(f"Summary: {sum(verdicts)} of {len(verdicts)} targets met.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
