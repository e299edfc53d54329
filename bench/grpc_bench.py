#!/usr/bin/python3
"""Unary call throughput and memory: maitred against a grpc++ synchronous
server (Debian's packages, bench/grpcpp-server.cc) serving the same method,
a Mount that fails (mount(2) on a missing target, errno in the response).
Both are driven by h2load with the same loads, one server after the other
in the same run. Per server and load: calls/s, p50/p99 latency (from
h2load's per-request log); per server: idle RSS at start, peak RSS, idle
RSS after the whole burst. maitred runs once more with a channel held open
throughout (one call made on it first, as a host keeps its channel for the
VM's lifetime): its idle RSS after the burst is measured with that
connection still open. Prints a Markdown report.

    make build build-static
    /usr/bin/python3 bench/grpc_bench.py --build build-static --peer-build build
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import rawh2  # noqa: E402
import valet  # noqa: E402
from benchlib import free_port, status_kib, wait_port  # noqa: E402

# (connections, streams per connection, calls)
LOADS = [(1, 1, 20000), (4, 10, 100000), (100, 100, 200000)]


def settle_rss(pid):
    """Idle RSS: once it has not changed for a whole second (a server may
    tidy up shortly after its last connection: maitred trims its heap 250 ms
    later), at most 20 s."""
    samples = []
    for _ in range(200):
        time.sleep(0.1)
        samples.append(status_kib(pid, "VmRSS"))
        if len(samples) >= 10 and len(set(samples[-10:])) == 1:
            break
    return samples[-1]


def h2load(port, body, conns, streams, calls, tmp):
    log = os.path.join(tmp, "h2load.log")
    if os.path.exists(log):
        os.unlink(log)  # h2load appends
    cmd = ["h2load", "-n", str(calls), "-c", str(conns), "-m", str(streams), "-t", "1",
           "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body, "--log-file", log,
           f"http://127.0.0.1:{port}/vm_tools.Maitred/Mount"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    ok = failed = 0
    secs = None
    for line in out.splitlines():
        if line.startswith("requests:"):
            w = line.replace(",", "").split()
            ok = int(w[w.index("succeeded") - 1])
            failed = int(w[w.index("failed") - 1]) + int(w[w.index("errored") - 1])
        if line.startswith("finished in"):
            v = line.split()[2].rstrip(",")
            for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
                if v.endswith(unit):
                    secs = float(v[:-len(unit)]) * scale
                    break
    lat = sorted(int(line.split("\t")[2]) for line in open(log) if line.strip())
    return dict(ok=ok, failed=failed, rate=ok / secs, p50=lat[len(lat) // 2] / 1000,
                p99=lat[min(len(lat) - 1, len(lat) * 99 // 100)] / 1000)


def run_server(name, cmd, port, body, tmp, env=None, hold=None):
    """hold: a request message; its call is made on a connection that then
    stays open until the end (the "after one call" and "after the burst"
    figures are taken with it open)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    held = None
    try:
        wait_port(port, proc)
        start = settle_rss(proc.pid)
        # One call on one connection: code paths and one-time allocations
        # touched, nothing a burst leaves.
        if hold is not None:
            held = socket.create_connection(("127.0.0.1", port), timeout=20)
            rawh2.call_on(held, "/vm_tools.Maitred/Mount", hold)
        else:
            h2load(port, body, 1, 1, 1, tmp)
        warm = settle_rss(proc.pid)
        loads = [h2load(port, body, c, m, n, tmp) for c, m, n in LOADS]
        peak = status_kib(proc.pid, "VmHWM")
        after = settle_rss(proc.pid)
    finally:
        if held:
            held.close()
        proc.terminate()
        proc.wait(10)
    return dict(name=name, start=start, warm=warm, peak=peak, after=after, loads=loads)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="maitred's build (the static one: what a VM ships)")
    ap.add_argument("--peer-build", required=True, help="the build holding bench/grpcpp-server")
    args = ap.parse_args()
    valet.configure(os.path.abspath(args.peer_build))
    import guest_pb2

    peer = os.path.join(os.path.abspath(args.peer_build), "bench", "grpcpp-server")
    maitred = os.path.join(os.path.abspath(args.build), "src", "maitred")
    for p in (peer, maitred):
        if not os.path.exists(p):
            sys.exit(f"missing {p}")
    tmp = tempfile.mkdtemp(prefix="valet-grpc-bench-")
    body = os.path.join(tmp, "mount.bin")
    msg = guest_pb2.MountRequest(source="none", target="/nonexistent/valet", fstype="none").SerializeToString()
    with open(body, "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(msg)) + msg)

    load_before = os.getloadavg()
    results = []
    port = free_port()
    results.append(run_server("maitred", [maitred, "--listen", f"tcp:127.0.0.1:{port}"], port, body, tmp))
    port = free_port()
    results.append(run_server("grpc++ sync", [peer, f"127.0.0.1:{port}"], port, body, tmp))
    # What keeps maitred's idle RSS above its start after a burst: glibc's
    # per-thread cache (tcache) holds freed small chunks scattered over the
    # heap the burst grew, which malloc_trim cannot release. Shown, not used.
    port = free_port()
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_count=0")
    tc = run_server("maitred, tcache off", [maitred, "--listen", f"tcp:127.0.0.1:{port}"], port, body, tmp, env)
    # A host keeps one channel open for the VM's lifetime: the burst's
    # memory must come back while it is open too (issue 17).
    port = free_port()
    held = run_server("maitred, channel held", [maitred, "--listen", f"tcp:127.0.0.1:{port}"], port, body, tmp,
                      hold=msg)
    load_after = os.getloadavg()

    m, g = results
    print(f"Load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}; "
          f"{os.cpu_count()} CPUs; h2load with one thread.\n")
    print("| load (conns × streams, calls) | server | calls/s | p50 ms | p99 ms | failed |")
    print("|---|---|---:|---:|---:|---:|")
    for i, (c, s, n) in enumerate(LOADS):
        for r in results:
            x = r["loads"][i]
            print(f"| {c} × {s}, {n} | {r['name']} | {x['rate']:.0f} | {x['p50']:.2f} | {x['p99']:.2f} | "
                  f"{x['failed']} |")
        print(f"| | maitred / grpc++ | {m['loads'][i]['rate'] / g['loads'][i]['rate']:.2f}× | | | |")
    print("\n| server | idle RSS at start | after one call | peak RSS | idle RSS after the burst | "
          "after / start | after / one call |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results + [tc, held]:
        print(f"| {r['name']} | {r['start']} KiB | {r['warm']} KiB | {r['peak']} KiB | {r['after']} KiB | "
              f"{r['after'] / r['start']:.2f} | {r['after'] / r['warm']:.2f} |")
    print(f"| maitred / grpc++ | {m['start'] / g['start']:.2f} | {m['warm'] / g['warm']:.2f} | "
          f"{m['peak'] / g['peak']:.2f} | {m['after'] / g['after']:.2f} | | |")
    print(f"\nmaitred's idle RSS after the burst, channel held / all connections closed: "
          f"{held['after'] / m['after']:.2f}× ({held['after']} / {m['after']} KiB); "
          f"1 × 1 calls/s, channel held / closed: {held['loads'][0]['rate'] / m['loads'][0]['rate']:.2f}×")
    valet.cleanup()


if __name__ == "__main__":
    main()
