#!/usr/bin/python3
"""vsh through hybrid vsock (the VMM's unix socket and its CONNECT
handshake, played by tests/lib/hvsock_relay.py, which splices like a VMM's
in-kernel copy would not: the relay is the slower side) against vsh on the
plain unix socket, in one run, alternating: 1 GiB from `head -c 1G
/dev/zero`, and the time to run `true`. Prints a Markdown report with the
ratios."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import wait_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELAY = os.path.join(ROOT, "tests", "lib", "hvsock_relay.py")
SIZE = 1 << 30


def vsh_run(vsh, addr, *argv, check_size=None):
    start = time.monotonic()
    p = subprocess.Popen([vsh, "--addr", addr, "--"] + list(argv), stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    n = 0
    while True:
        chunk = p.stdout.read1(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    rc = p.wait()
    took = time.monotonic() - start
    if rc != 0 or (check_size is not None and n != check_size):
        raise RuntimeError(f"vsh through {addr}: exit {rc}, {n} bytes")
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    vsh, vshd = os.path.join(build, "src", "vsh"), os.path.join(build, "src", "vshd")
    d = tempfile.mkdtemp(prefix="valet-bench-")
    sock, vm = os.path.join(d, "vshd.sock"), os.path.join(d, "vm.vsock")
    procs = [subprocess.Popen([vshd, "--listen", "unix:" + sock], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        wait_path(sock)
        procs.append(subprocess.Popen([sys.executable, RELAY, "--socket", vm, "--port", f"9001={sock}"],
                                      stdout=subprocess.PIPE, text=True))
        assert procs[-1].stdout.readline().strip() == "ready"
        addrs = {"unix socket": "unix:" + sock, "hybrid vsock": f"hvsock:{vm}:9001"}
        rates = {k: [] for k in addrs}
        trues = {k: [] for k in addrs}
        for _ in range(args.rounds):
            for name, addr in addrs.items():
                rates[name].append(SIZE / vsh_run(vsh, addr, "head", "-c", str(SIZE), "/dev/zero",
                                                  check_size=SIZE) / 1e6)
                trues[name].append(min(vsh_run(vsh, addr, "true") for _ in range(20)) * 1e3)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    base = "unix socket"
    print(f"{args.rounds} rounds, alternating; medians (throughput: 1 GiB from head -c; `true`: best of 20)\n")
    print("| path | 1 GiB, MB/s | vs unix | `true`, ms | vs unix |")
    print("|---|---:|---:|---:|---:|")
    for name in addrs:
        r, t = statistics.median(rates[name]), statistics.median(trues[name])
        print(f"| {name} | {r:.0f} | {r / statistics.median(rates[base]):.2f}x | {t:.2f} | "
              f"{t / statistics.median(trues[base]):.2f}x |")


if __name__ == "__main__":
    main()
