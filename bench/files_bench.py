#!/usr/bin/python3
"""valet.v1.Files through `maitctl cp` against what issue 18 compares it
with, in one run, every pair measured alternately round by round so that
drift in the machine's load hits both sides alike:

1. Throughput of one file (1 GiB), upload (Files/Write) and download
   (Files/Read), over a unix socket and over TCP loopback, against the
   floor: the same bytes file -> socket -> file with socat through the same
   kind of socket; against qemu-ga (guest-file-open/write/read/close with
   base64 chunks over its unix socket, a smaller file); through hybrid
   vsock (tests/lib/hvsock_relay.py plays the VMM) against the unix socket.
   With the CPU seconds of maitctl, maitred and its file worker per run.
2. Memory: maitred's RSS (and its workers' RSS and PSS) sampled during a
   1 GiB cp each way, and during 16 at once; back to idle afterwards.
3. Many small files: a generated tree of 10 000 files of 1-8 KiB, `maitctl
   cp -r` each way against `tar c | vsh -- tar x` and `vsh -- tar c | tar x`
   (vshd on a unix socket).
4. Latency: Files/Stat against a unary vm_tools.Maitred call
   (GetKernelVersion), sequential calls on one connection, warm (maitred
   keeps idle workers), from h2load (raw HTTP/2, the server's cost) and
   from grpcio (what a typical client sees).

Everything lives in a temporary directory on tmpfs (/dev/shm), so neither
side waits for a disk (maitred's fsync is free there). Prints a Markdown
report; paths in it are relative to the repository.

    make build-static
    /usr/bin/python3 bench/files_bench.py --build build-static
"""
import argparse
import base64
import filecmp
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import rawh2  # noqa: E402
from benchlib import children, cpu_of, free_port, pss_kib, status_kib, wait_listening, wait_path  # noqa: E402

RELAY = os.path.join(ROOT, "tests", "lib", "hvsock_relay.py")
MIB = 1 << 20
HVSOCK_PORT = 8888
# socat's buffer: its default (8 KiB) makes the floor slower than it is;
# 128 KiB and 1 MiB measured alike here, maitctl sends 256 KiB messages.
SOCAT_BUF = 131072
QGA_CHUNK = MIB  # data per guest-file-write/-read: 64 KiB to 16 MiB measured alike
# "Back to idle": maitred's RSS after a copy, once settled, at most this
# above its idle figure (a few pages of the heap's top may stay).
BACK_KIB = 128
# The longest any one command may take (a 1 GiB copy on a loaded machine
# took 20 s): past it the run fails, naming the command.
STEP_TIMEOUT = 300


def rel(path):
    return os.path.relpath(path, ROOT)


def median(xs):
    return statistics.median(xs)


# --- processes --------------------------------------------------------------

def rss_kib(pid, key="VmRSS"):
    try:
        return status_kib(pid, key)
    except OSError:  # a worker that just exited
        return 0


def step(what):
    """Progress on stderr: the report comes at the end, and a step that
    hangs is named."""
    print(f"files_bench: {what}", file=sys.stderr, flush=True)


def killer(proc, timeout):
    """A timer that kills proc after timeout seconds: no step waits for
    ever on a client or server that hangs."""
    t = threading.Timer(timeout, proc.kill)
    t.daemon = True
    t.start()
    return t


def run(cmd, timeout=STEP_TIMEOUT):
    """Runs cmd to its end; (wall seconds, CPU seconds of it and of the
    children it waited for). Raises on a non-zero exit."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timer = killer(p, timeout)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    timer.cancel()
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        why = f"killed after {timeout} s" if wall >= timeout else f"exit {p.returncode}"
        raise RuntimeError(f"{' '.join(cmd)}: {why}: {err.decode(errors='replace')}")
    return wall, ru.ru_utime + ru.ru_stime


class Guest:
    """maitred (unix socket and TCP), the hybrid vsock relay in front of its
    unix socket, vshd on a unix socket."""

    def __init__(self, build, d, tcp=True, hvsock=True, vshd=True):
        self.procs = []
        self.sock = os.path.join(d, "maitred.sock")
        listen = ["--listen", "unix:" + self.sock]
        self.addr = {"unix": "unix:" + self.sock}
        if tcp:
            self.port = free_port()
            listen += ["--listen", f"tcp:127.0.0.1:{self.port}"]
            self.addr["tcp"] = f"tcp:127.0.0.1:{self.port}"
        self.maitred = self._start([os.path.join(build, "src", "maitred")] + listen)
        wait_path(self.sock, proc=self.maitred)  # bound under a temporary name, renamed once listening
        if tcp:
            wait_listening("tcp", self.port, self.maitred)
        if hvsock:
            vm = os.path.join(d, "vm.vsock")
            relay = self._start([sys.executable, RELAY, "--socket", vm, "--port", f"{HVSOCK_PORT}={self.sock}"],
                                stdout=subprocess.PIPE)
            if relay.stdout.readline().strip() != b"ready":
                raise RuntimeError("the hybrid vsock relay did not start")
            self.addr["hvsock"] = f"hvsock:{vm}:{HVSOCK_PORT}"
        if vshd:
            self.vsh_sock = os.path.join(d, "vshd.sock")
            self.vshd = self._start([os.path.join(build, "src", "vshd"), "--listen", "unix:" + self.vsh_sock])
            wait_path(self.vsh_sock)

    def _start(self, cmd, stdout=subprocess.DEVNULL):
        p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []

    def cpu(self):
        """maitred's own CPU, and its workers' (alive ones by pid, the
        reaped ones through maitred's children total)."""
        pid = self.maitred.pid
        own, reaped = cpu_of(pid)
        workers = {}
        for c in children(pid):
            try:
                workers[c] = sum(cpu_of(c))
            except OSError:
                pass
        return own, reaped, workers

    @staticmethod
    def cpu_delta(a, b):
        own = b[0] - a[0]
        workers = b[1] - a[1]
        for pid, s in b[2].items():
            workers += s - a[2].get(pid, 0.0)
        # A worker alive before and reaped since is in the reaped total with
        # its whole life: take off what it had used before.
        workers -= sum(s for pid, s in a[2].items() if pid not in b[2])
        return own, workers


# --- 1. throughput ----------------------------------------------------------

def make_source(path, size):
    """size bytes that no compressor squeezes: one random block repeated.
    Returns the block's path (qemu-ga's smaller file)."""
    block = min(size, 64 * MIB)
    data = os.urandom(block)
    with open(path, "wb") as f:
        for _ in range(size // block):
            f.write(data)
    with open(path + ".block", "wb") as f:
        f.write(data)
    return path + ".block"


def unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def socat_copy(kind, direction, src, dst, d):
    """The floor: src -> socket -> dst with two socats, the listener on the
    guest's side as maitred is. (wall, CPU of both)."""
    if kind == "unix":
        where = os.path.join(d, "floor.sock")
        unlink(where)
        listen, connect = f"UNIX-LISTEN:{where}", f"UNIX-CONNECT:{where}"
    else:
        where = free_port()
        listen = f"TCP-LISTEN:{where},bind=127.0.0.1,reuseaddr"
        connect = f"TCP:127.0.0.1:{where}"
    if direction == "up":  # the host's file to the guest's listener
        server = ["socat", "-b", str(SOCAT_BUF), "-u", listen, f"CREATE:{dst}"]
        client = ["socat", "-b", str(SOCAT_BUF), "-u", f"FILE:{src}", connect]
    else:
        server = ["socat", "-b", str(SOCAT_BUF), "-u", f"FILE:{src}", listen]
        client = ["socat", "-b", str(SOCAT_BUF), "-u", connect, f"CREATE:{dst}"]
    srv = subprocess.Popen(server, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(kind, where, srv)
        t = time.perf_counter()
        timer = killer(srv, STEP_TIMEOUT)
        _, cpu = run(client)
        _, status, ru = os.wait4(srv.pid, 0)
        timer.cancel()
        wall = time.perf_counter() - t
        srv.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if srv.returncode is None:
            srv.kill()
            srv.wait()
    if srv.returncode != 0:
        raise RuntimeError(f"socat {direction} over {kind}: exit {srv.returncode}: {srv.stderr.read().decode()}")
    return wall, cpu + ru.ru_utime + ru.ru_stime


def maitctl_copy(maitctl, guest, kind, direction, src, dst):
    """(wall, CPU of maitctl, of maitred, of its workers)."""
    argv = [maitctl, "--addr", guest.addr[kind], "cp"]
    argv += [src, ":" + dst] if direction == "up" else [":" + src, dst]
    before = guest.cpu()
    wall, cpu = run(argv)
    own, workers = Guest.cpu_delta(before, guest.cpu())
    return wall, cpu, own, workers


class Qga:
    def __init__(self, d):
        self.path = os.path.join(d, "qga.sock")
        self.proc = subprocess.Popen(["qemu-ga", "-m", "unix-listen", "-p", self.path, "-t", d,
                                      "-f", os.path.join(d, "qga.pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening("unix", self.path, self.proc)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(STEP_TIMEOUT)
        self.s.connect(self.path)
        self.f = self.s.makefile("rb")

    def cmd(self, execute, **args):
        self.s.sendall(json.dumps({"execute": execute, "arguments": args}).encode() + b"\n")
        r = json.loads(self.f.readline())
        if "return" not in r:
            raise RuntimeError(f"qemu-ga {execute}: {r}")
        return r["return"]

    def upload(self, src, dst):
        t = time.perf_counter()
        h = self.cmd("guest-file-open", path=dst, mode="w")
        with open(src, "rb") as f:
            while True:
                b = f.read(QGA_CHUNK)
                if not b:
                    break
                r = self.cmd("guest-file-write", handle=h, **{"buf-b64": base64.b64encode(b).decode()})
                if r["count"] != len(b):
                    raise RuntimeError("qemu-ga wrote short")
        self.cmd("guest-file-close", handle=h)
        return time.perf_counter() - t

    def download(self, src, dst):
        t = time.perf_counter()
        h = self.cmd("guest-file-open", path=src, mode="r")
        with open(dst, "wb") as f:
            while True:
                r = self.cmd("guest-file-read", handle=h, count=QGA_CHUNK)
                f.write(base64.b64decode(r["buf-b64"]))
                if r["eof"] or not r["count"]:
                    break
        self.cmd("guest-file-close", handle=h)
        return time.perf_counter() - t

    def stop(self):
        self.f.close()
        self.s.close()
        self.proc.kill()  # qemu-ga does not always act on SIGTERM here
        self.proc.wait()


def throughput(args, guest, maitctl, d, src, block):
    host, gdir = os.path.join(d, "host"), os.path.join(d, "guest")
    gsrc = os.path.join(gdir, "src")
    os.link(src, gsrc)  # the guest's file to download: the same bytes, no more memory
    kinds = [k for k in ("unix", "tcp") if k in guest.addr]
    cases = []
    for k in kinds:
        for direction in ("up", "down"):
            cases += [(k, "floor", direction), (k, "maitctl", direction)]
    if "hvsock" in guest.addr:
        cases += [("hvsock", "maitctl", "up"), ("hvsock", "maitctl", "down")]
    res = {c: [] for c in cases}
    for rnd in range(args.rounds):
        step(f"throughput, round {rnd + 1} of {args.rounds}")
        for c in cases:
            kind, who, direction = c
            s, t = (src, os.path.join(gdir, "dst")) if direction == "up" else (gsrc, os.path.join(host, "dst"))
            unlink(t)  # freeing the last copy's pages is no part of the copy
            if who == "floor":
                res[c].append(socat_copy(kind, direction, s, t, d) + (0.0, 0.0))
            else:
                res[c].append(maitctl_copy(maitctl, guest, kind, direction, s, t))
            if os.path.getsize(t) != args.size:
                raise RuntimeError(f"{c}: {os.path.getsize(t)} bytes arrived of {args.size}")
            if rnd == 0 and who == "maitctl" and not filecmp.cmp(s, t, shallow=False):
                raise RuntimeError(f"{c}: the copy differs from its source")
            unlink(t)
    step("throughput, qemu-ga")
    qga = Qga(d)
    try:
        qdst = os.path.join(gdir, "qga-dst")
        qsrc = os.path.join(gdir, "qga-src")
        os.link(block, qsrc)
        qup = qga.upload(block, qdst)
        qback = os.path.join(host, "qga-back")
        qdown = qga.download(qsrc, qback)
        for a, b in ((block, qdst), (qsrc, qback)):
            if not filecmp.cmp(a, b, shallow=False):
                raise RuntimeError("qemu-ga's copy differs from its source")
        qbytes = os.path.getsize(block)
        for p in (qdst, qsrc, qback):
            unlink(p)
    finally:
        qga.stop()
    unlink(gsrc)
    return res, {"up": qbytes / qup / 1e6, "down": qbytes / qdown / 1e6, "bytes": qbytes}


def report_throughput(args, res, qga):
    mb = args.size / 1e6
    rate = {c: median([mb / r[0] for r in v]) for c, v in res.items()}
    verdicts = []
    print(f"### Throughput: one file of {args.size // MIB} MiB, median of {args.rounds} rounds (alternating)\n")
    print("| transport | direction | maitctl cp MB/s | floor (socat) MB/s | maitctl / floor | target |")
    print("|---|---|---:|---:|---:|---|")
    for kind in ("unix", "tcp"):
        for direction in ("up", "down"):
            if (kind, "maitctl", direction) not in rate:
                continue
            m, f = rate[(kind, "maitctl", direction)], rate[(kind, "floor", direction)]
            ok = m / f >= 0.8
            verdicts.append(ok)
            print(f"| {kind} | {direction} ({'Write' if direction == 'up' else 'Read'}) | {m:.0f} | {f:.0f} | "
                  f"{m / f:.2f}× | ≥ 0.8× {'met' if ok else 'MISSED'} |")
    if ("hvsock", "maitctl", "up") in rate:
        print("\n| hybrid vsock | MB/s | unix socket MB/s | hvsock / unix | target |")
        print("|---|---:|---:|---:|---|")
        for direction in ("up", "down"):
            h, u = rate[("hvsock", "maitctl", direction)], rate[("unix", "maitctl", direction)]
            ok = h / u >= 0.9
            verdicts.append(ok)
            print(f"| {direction} | {h:.0f} | {u:.0f} | {h / u:.2f}× | ≥ 0.9× {'met' if ok else 'MISSED'} |")
    print(f"\n| against qemu-ga ({qga['bytes'] // MIB} MiB, {QGA_CHUNK // 1024} KiB base64 chunks, one run) "
          "| qemu-ga MB/s | maitctl cp (unix) MB/s | ratio | target |")
    print("|---|---:|---:|---:|---|")
    for direction in ("up", "down"):
        q, m = qga[direction], rate[("unix", "maitctl", direction)]
        ok = m / q >= 10
        verdicts.append(ok)
        print(f"| {direction} (guest-file-{'write' if direction == 'up' else 'read'}) | {q:.1f} | {m:.0f} | "
              f"{m / q:.1f}× | ≥ 10× {'met' if ok else 'MISSED'} |")
    print("\nCPU seconds per GiB (medians): where the time goes. maitctl's and socat's from wait4(2), "
          "maitred's and its worker's from /proc/PID/stat.\n")
    print("| transport | direction | wall s/GiB | maitctl | maitred | worker | all three | floor wall | "
          "floor CPU (both socats) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    per = (1 << 30) / args.size
    for kind in ("unix", "tcp", "hvsock"):
        for direction in ("up", "down"):
            v = res.get((kind, "maitctl", direction))
            if not v:
                continue
            w, a, b, c = (median([r[i] * per for r in v]) for i in range(4))
            fl = res.get((kind, "floor", direction))
            fw = f"{median([r[0] * per for r in fl]):.2f}" if fl else ""
            fc = f"{median([r[1] * per for r in fl]):.2f}" if fl else ""
            print(f"| {kind} | {direction} | {w:.2f} | {a:.2f} | {b:.2f} | {c:.2f} | "
                  f"{median([(r[1] + r[2] + r[3]) * per for r in v]):.2f} | {fw} | {fc} |")
    return verdicts


# --- 2. memory ----------------------------------------------------------------

class Sampler(threading.Thread):
    """maitred's RSS and its children's RSS (summed at each instant) every
    few milliseconds; their PSS less often (smaps_rollup walks the page
    tables)."""

    def __init__(self, pid, interval=0.005):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop_ = threading.Event()
        self.rss = self.kids_rss = self.kids_pss = self.kids_n = 0

    def run(self):
        i = 0
        while not self.stop_.is_set():
            self.rss = max(self.rss, rss_kib(self.pid))
            kids = children(self.pid)
            self.kids_n = max(self.kids_n, len(kids))
            self.kids_rss = max(self.kids_rss, sum(rss_kib(k) for k in kids))
            if i % 10 == 0:
                self.kids_pss = max(self.kids_pss, sum(pss_kib(k) for k in kids))
            i += 1
            time.sleep(self.interval)

    def stop(self):
        self.stop_.set()
        self.join()


def settle(pid, timeout=20):
    """maitred idle: no worker left (idle ones exit after 5 s) and its RSS
    unchanged for a whole second (the heap is trimmed 250 ms after a
    call)."""
    deadline = time.monotonic() + timeout
    while children(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = []
    while time.monotonic() < deadline:
        time.sleep(0.1)
        samples.append(rss_kib(pid))
        if len(samples) >= 10 and len(set(samples[-10:])) == 1:
            break
    return samples[-1], len(children(pid))


def memory(args, build, maitctl, d, src, block):
    gdir, host = os.path.join(d, "guest"), os.path.join(d, "host")
    guest = Guest(build, os.path.join(d, "mem"), tcp=False, hvsock=False, vshd=False)
    addr, pid = guest.addr["unix"], guest.maitred.pid
    out = []
    try:
        gsrc = os.path.join(gdir, "msrc")
        os.link(src, gsrc)
        # One small call first: the code paths are touched, a worker forked
        # and gone again; what stays is what a serving maitred holds.
        run([maitctl, "--addr", addr, "stat", gsrc])
        idle, _ = settle(pid)
        n = args.concurrent
        gblock = os.path.join(gdir, "mblock")
        os.link(block, gblock)
        steps = [
            ("1 × up", [[maitctl, "--addr", addr, "cp", src, ":" + os.path.join(gdir, "mdst")]]),
            ("1 × down", [[maitctl, "--addr", addr, "cp", ":" + gsrc, os.path.join(host, "mdst")]]),
            (f"{n} × up ({os.path.getsize(block) // MIB} MiB each)",
             [[maitctl, "--addr", addr, "cp", block, f":{gdir}/c{i}"] for i in range(n)]),
            # To standard output, thrown away: no local copies to hold.
            (f"{n} × down ({os.path.getsize(block) // MIB} MiB each, to /dev/null)",
             [[maitctl, "--addr", addr, "cp", ":" + gblock, "-"] for i in range(n)]),
        ]
        for name, cmds in steps:
            step(f"memory, {name}")
            before, _ = settle(pid)
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM: the peak between samples too
            s = Sampler(pid)
            s.start()
            t = time.perf_counter()
            ps = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
            timers = [killer(p, STEP_TIMEOUT) for p in ps]
            errs = [(p.stderr.read(), p.wait()) for p in ps]
            for tm in timers:
                tm.cancel()
            wall = time.perf_counter() - t
            s.stop()
            hwm = rss_kib(pid, "VmHWM")
            for e, rc in errs:
                if rc != 0:
                    raise RuntimeError(f"{name}: maitctl exit {rc}: {e.decode(errors='replace')}")
            t = time.perf_counter()
            after, left = settle(pid)
            out.append(dict(name=name, before=before, peak=max(hwm, s.rss), kids_rss=s.kids_rss,
                            kids_pss=s.kids_pss, kids_n=s.kids_n, after=after, left=left, wall=wall,
                            settle=time.perf_counter() - t, n=len(cmds)))
            for p in [os.path.join(host, "mdst"), os.path.join(gdir, "mdst")] + [f"{gdir}/c{i}" for i in range(n)]:
                unlink(p)
        unlink(gsrc)
        unlink(gblock)
    finally:
        guest.stop()
    return idle, out


def report_memory(idle, out):
    print(f"\n### Memory: maitred's RSS during `maitctl cp` (idle: {idle} KiB)\n")
    print("Peak from VmHWM (reset before each step) and 5 ms samples; workers (maitred's children, "
          "each call's file I/O) summed at the same instant; 'after': once the idle workers have "
          f"exited (5 s) and RSS held still for 1 s; back to idle means within {BACK_KIB} KiB.\n")
    print("| cp | wall s | maitred peak − idle | target | workers at once | workers' RSS | workers' PSS | "
          "maitred after − idle | settled in s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    verdicts = []
    for r in out:
        limit = 4 * 1024 if r["n"] == 1 else 16 * 1024
        up = r["peak"] - idle
        left = f" ({r['left']} workers left)" if r["left"] else ""
        ok = up <= limit and r["after"] - idle <= BACK_KIB and r["left"] == 0
        verdicts.append(ok)
        print(f"| {r['name']} | {r['wall']:.1f} | {up} KiB | ≤ {limit // 1024} MiB and back: "
              f"{'met' if ok else 'MISSED'} | {r['kids_n']} | {r['kids_rss']} KiB | {r['kids_pss']} KiB | "
              f"{r['after'] - idle:+d} KiB{left} | {r['settle']:.1f} |")
    return verdicts


# --- 3. many small files ------------------------------------------------------

def make_tree(root, files, seed=18):
    """files files of 1-8 KiB (random sizes and bytes, fixed seed) in
    directories three deep, ten to a directory: a source tree."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        a, b, c = i // 1000, (i // 100) % 10, (i // 10) % 10
        d = os.path.join(root, f"d{a}", f"s{b}", f"t{c}")
        os.makedirs(d, exist_ok=True)
        n = rng.randint(1024, 8192)
        with open(os.path.join(d, f"f{i}.c"), "wb") as f:
            f.write(rng.randbytes(n))
        total += n
    return total, sum(1 for _ in os.walk(root))


def same_tree(a, b):
    r = subprocess.run(["diff", "-rq", a, b], capture_output=True, text=True, timeout=STEP_TIMEOUT)
    return r.returncode == 0


def trees(args, guest, maitctl, vsh, d):
    host, gdir = os.path.join(d, "host"), os.path.join(d, "guest")
    src = os.path.join(host, "tree")
    total, dirs = make_tree(src, args.files)
    gsrc = os.path.join(gdir, "tree")
    shutil.copytree(src, gsrc, symlinks=True)
    vaddr = "unix:" + guest.vsh_sock
    cases = [("maitctl", "up"), ("tar", "up"), ("maitctl", "down"), ("tar", "down")]
    res = {c: [] for c in cases}
    for rnd in range(args.rounds):
        step(f"small files, round {rnd + 1} of {args.rounds}")
        for who, direction in cases:
            dst = os.path.join(gdir if direction == "up" else host, f"t-{who}-{direction}-{rnd}")
            before = guest.cpu()
            vshd_before = sum(cpu_of(guest.vshd.pid))
            if who == "maitctl":
                argv = [maitctl, "--addr", guest.addr["unix"], "cp", "-r"]
                argv += [src, ":" + dst] if direction == "up" else [":" + gsrc, dst]
                wall, cpu = run(argv)
            else:
                os.mkdir(dst)
                if direction == "up":
                    cmd = f"tar c -C {src} . | {vsh} --addr {vaddr} -- tar x -C {dst}"
                else:
                    cmd = f"{vsh} --addr {vaddr} -- tar c -C {gsrc} . | tar x -C {dst}"
                wall, cpu = run(["bash", "-o", "pipefail", "-c", cmd])
            own, workers = Guest.cpu_delta(before, guest.cpu())
            if who == "tar":  # vshd, its session process and the guest's tar, all reaped by now
                own, workers = sum(cpu_of(guest.vshd.pid)) - vshd_before, 0.0
            res[(who, direction)].append((wall, cpu, own, workers))
            if rnd == 0 and not same_tree(src, dst):
                raise RuntimeError(f"{who} {direction}: the tree arrived different")
            shutil.rmtree(dst)
    shutil.rmtree(gsrc)
    return res, (total, dirs)


def report_trees(args, res, shape):
    total, dirs = shape
    print(f"\n### Many small files: {args.files} files of 1-8 KiB ({total / 1e6:.0f} MB) in {dirs} directories, "
          f"median of {args.rounds} rounds (alternating)\n")
    print("`tar` is `tar c -C SRC . | vsh -- tar x -C DST` up and `vsh -- tar c -C SRC . | tar x -C DST` "
          "down, through vshd on a unix socket; maitctl through maitred on a unix socket. CPU seconds: "
          "the host side (maitctl; tar and vsh) and the guest side (maitred and its worker; vshd, its "
          "session and the guest's tar).\n")
    print("| direction | maitctl cp -r s | tar over vsh s | tar / maitctl | target | CPU host: maitctl | "
          "tar + vsh | CPU guest: maitred + worker | vshd + tar |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    verdicts = []
    for direction in ("up", "down"):
        m = median([r[0] for r in res[("maitctl", direction)]])
        t = median([r[0] for r in res[("tar", direction)]])
        ok = m <= t
        verdicts.append(ok)
        hc = [median([r[1] for r in res[(who, direction)]]) for who in ("maitctl", "tar")]
        gc = [median([r[2] + r[3] for r in res[(who, direction)]]) for who in ("maitctl", "tar")]
        print(f"| {direction} | {m:.2f} | {t:.2f} | {t / m:.2f}× | ≥ 1× {'met' if ok else 'MISSED'} | "
              f"{hc[0]:.2f} | {hc[1]:.2f} | {gc[0]:.2f} | {gc[1]:.2f} |")
    return verdicts


# --- 4. latency -----------------------------------------------------------------

def grpc_body(message):
    return b"\0" + struct.pack(">I", len(message)) + message


def stat_request(path):
    p = path.encode()
    return bytes([0x0A, len(p)]) + p  # StatRequest.path (field 1), a path under 128 bytes


def check_answers(sock, method, message):
    """One call by hand: the body h2load sends is answered with a message
    (h2load counts a gRPC error as a success: HTTP 200)."""
    frames = rawh2.unary(sock, method, message)
    if not any(f[0] == 0 and f[2] == 1 and len(f[3]) > 5 for f in frames):
        raise RuntimeError(f"{method} answered no message: {frames}")


def h2load_p50(target, base, method, body, n):
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        cmd = ["h2load", "-n", str(n), "-c", "1", "-m", "1", "-t", "1", "-H", "content-type: application/grpc",
               "-H", "te: trailers", "-d", body, "--log-file", log.name]
        if base:
            cmd += ["-B", base]
        out = subprocess.run(cmd + [target + method], capture_output=True, text=True, timeout=STEP_TIMEOUT).stdout
        if f"{n} succeeded" not in out:
            raise RuntimeError(f"h2load {method}: {out}")
        lat = [int(line.split("\t")[2]) for line in open(log.name) if line.strip()]
    return median(lat), statistics.mean(lat)


def latency(args, guest, d):
    gpath = os.path.join(d, "guest", "stat-me")
    with open(gpath, "w") as f:
        f.write("x")
    stat_msg = stat_request(gpath)
    check_answers(guest.sock, "/valet.v1.Files/Stat", stat_msg)
    check_answers(guest.sock, "/vm_tools.Maitred/GetKernelVersion", b"")
    bodies = {}
    for name, msg in (("stat", stat_msg), ("kernel", b"")):
        bodies[name] = os.path.join(d, f"{name}.bin")
        with open(bodies[name], "wb") as f:
            f.write(grpc_body(msg))
    methods = {"stat": "/valet.v1.Files/Stat", "kernel": "/vm_tools.Maitred/GetKernelVersion"}
    targets = {"unix": ("http://valet", "unix:" + guest.sock)}
    if "tcp" in guest.addr:
        targets["tcp"] = (f"http://127.0.0.1:{guest.port}", None)
    res = {}
    for kind, (target, base) in targets.items():
        step(f"latency, h2load over {kind}")
        h2load_p50(target, base, methods["stat"], bodies["stat"], 200)  # warm: idle workers waiting
        for _ in range(args.rounds + 2):
            for name in ("stat", "kernel"):
                res.setdefault(("h2load", kind, name), []).append(
                    h2load_p50(target, base, methods[name], bodies[name], args.calls))
    # grpcio: raw bytes in and out (no serializer), one channel, calls alternating.
    import grpc
    for kind in targets:
        step(f"latency, grpcio over {kind}")
        addr = "unix:" + guest.sock if kind == "unix" else f"127.0.0.1:{guest.port}"
        with grpc.insecure_channel(addr) as ch:
            calls = {"stat": (ch.unary_unary(methods["stat"]), stat_msg),
                     "kernel": (ch.unary_unary(methods["kernel"]), b"")}
            lat = {"stat": [], "kernel": []}
            for i in range(args.calls + 100):
                for name, (fn, msg) in calls.items():
                    t = time.perf_counter_ns()
                    fn(msg, timeout=30)
                    if i >= 100:
                        lat[name].append((time.perf_counter_ns() - t) / 1000)
            for name in lat:
                res[("grpcio", kind, name)] = [(median(lat[name]), statistics.mean(lat[name]))]
    return res


def report_latency(args, res):
    print("\n### Latency: Files/Stat against vm_tools.Maitred/GetKernelVersion, sequential calls on one "
          "connection, warm\n")
    print(f"h2load: {args.calls} calls per run (one connection, one stream at a time), {args.rounds + 2} runs "
          f"alternating, median of the runs' medians; grpcio: {args.calls} calls each, alternating call by "
          f"call on one channel. µs.\n")
    print("| client | transport | Stat p50 | GetKernelVersion p50 | ratio p50 | Stat mean | "
          "GetKernelVersion mean | ratio mean | target (p50) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    verdicts = []
    for client in ("h2load", "grpcio"):
        for kind in ("unix", "tcp"):
            if (client, kind, "stat") not in res:
                continue
            s = [median([r[i] for r in res[(client, kind, "stat")]]) for i in (0, 1)]
            k = [median([r[i] for r in res[(client, kind, "kernel")]]) for i in (0, 1)]
            ok = s[0] / k[0] <= 1.2
            if client == "h2load":
                verdicts.append(ok)
            print(f"| {client} | {kind} | {s[0]:.0f} | {k[0]:.0f} | {s[0] / k[0]:.2f}× | {s[1]:.0f} | {k[1]:.0f} | "
                  f"{s[1] / k[1]:.2f}× | ≤ 1.2× {'met' if ok else 'MISSED'} |")
    return verdicts


# --- main -----------------------------------------------------------------------

def build_desc(build):
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        return f"buildtype={opts.get('buildtype')}, static={opts.get('static')}"
    except OSError:
        return "unknown options"


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-static", help="the build whose maitred, maitctl, vshd and vsh run")
    ap.add_argument("--maitctl", help="another maitctl than the build's")
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="the big file (default 1G)")
    ap.add_argument("--qga-size", type=parse_size, default=64 << 20, help="qemu-ga's file (default 64M)")
    # 5: this machine has 1 GiB copies of 2-10 s now and then on any side
    # (docs/benchmarks.md); a median of 3 was sometimes one of them.
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--concurrent", type=int, default=16)
    ap.add_argument("--calls", type=int, default=2000, help="calls per latency run")
    ap.add_argument("--only", action="append", choices=["throughput", "memory", "trees", "latency"],
                    help="run only these parts (repeatable)")
    args = ap.parse_args()
    only = set(args.only or ["throughput", "memory", "trees", "latency"])
    build = os.path.abspath(args.build)
    maitctl = os.path.abspath(args.maitctl) if args.maitctl else os.path.join(build, "src", "maitctl")
    vsh = os.path.join(build, "src", "vsh")
    for p in (maitctl, vsh, os.path.join(build, "src", "maitred"), os.path.join(build, "src", "vshd")):
        if not os.path.exists(p):
            sys.exit(f"files_bench: missing {rel(p)}")
    if args.size % (64 * MIB) and args.size > 64 * MIB:
        sys.exit("files_bench: --size: a multiple of 64M, or less")

    # Killed (a timeout, make interrupted): the finally below still removes
    # the gigabytes on tmpfs and stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    d = tempfile.mkdtemp(prefix="valet-files-bench-", dir=shm)
    for sub in ("host", "guest", "mem"):
        os.mkdir(os.path.join(d, sub))
    load_before = os.getloadavg()
    t0 = time.monotonic()
    verdicts = {}
    guest = None
    try:
        src = os.path.join(d, "host", "src")
        block = make_source(src, args.size)
        if args.qga_size < os.path.getsize(block):
            os.truncate(block, args.qga_size)
        out = []
        if only & {"throughput", "trees", "latency"}:
            guest = Guest(build, d)
        if "throughput" in only:
            res, qga = throughput(args, guest, maitctl, d, src, block)
            out.append(lambda: verdicts.__setitem__("throughput", report_throughput(args, res, qga)))
        if "trees" in only:
            tres, total = trees(args, guest, maitctl, vsh, d)
            out.append(lambda: verdicts.__setitem__("trees", report_trees(args, tres, total)))
        if "latency" in only:
            lres = latency(args, guest, d)
            out.append(lambda: verdicts.__setitem__("latency", report_latency(args, lres)))
        if guest:
            guest.stop()
            guest = None
        if "memory" in only:
            idle, mres = memory(args, build, maitctl, d, src, block)
            out.append(lambda: verdicts.__setitem__("memory", report_memory(idle, mres)))
    finally:
        if guest:
            guest.stop()
        shutil.rmtree(d, ignore_errors=True)
    load_after = os.getloadavg()

    print("## valet.v1.Files: `maitctl cp` side by side\n")
    print(f"maitred, vshd, vsh: `{rel(build)}` ({build_desc(build)}); maitctl: `{rel(maitctl)}`; "
          f"files on {'tmpfs (/dev/shm)' if shm else 'the temporary directory (not tmpfs!)'}; "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"{time.monotonic() - t0:.0f} s in all.\n")
    for f in out:
        f()
        print()
    flat = [(part, ok) for part, vs in verdicts.items() for ok in vs]
    missed = [part for part, ok in flat if not ok]
    print(f"Summary: {len(flat) - len(missed)} of {len(flat)} targets met"
          + (f"; missed: {', '.join(sorted(set(missed), key=missed.index))}." if missed else "."))


if __name__ == "__main__":
    main()
