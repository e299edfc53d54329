#!/usr/bin/python3
"""maitctl exec (valet.v1.Process) side by side with what it must match,
in one run, on the same transport (unix sockets, maitred and vshd as the
tests run them):

- round trip: `maitctl exec -- /bin/true` against `maitctl launch --wait
  -- /bin/true` (LaunchProcess with wait_for_exit), each a whole maitctl
  run, as a user types it; target: within 1.2x;
- output throughput: a process writing 1 GiB to stdout through
  `maitctl exec` against the same through `vsh`; target: at least 0.8x.

Prints a Markdown report (docs/benchmarks.md)."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import wait_path

GIB = 1 << 30


def timed(cmd, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        out.append(time.perf_counter() - t)
    return out


def throughput(cmd):
    """(MiB/s, bytes lost) of 1 GiB written by `head -c` in the guest, the
    client's stdout /dev/null. maitred holds the process while its client
    is a ring behind (docs/process.md), so nothing should be lost; were
    anything dropped, maitctl says how much on stderr and it is subtracted."""
    t = time.perf_counter()
    p = subprocess.run(cmd + ["--", "head", "-c", str(GIB), "/dev/zero"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - t
    assert p.returncode == 0, (cmd, p.returncode, p.stderr)
    lost = sum(int(m) for m in re.findall(r"(\d+) bytes of stdout were lost", p.stderr))
    return (GIB - lost) / (1 << 20) / took, lost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-static")
    ap.add_argument("--runs", type=int, default=3, help="1 GiB transfers per program")
    ap.add_argument("--calls", type=int, default=100, help="round trips per program")
    args = ap.parse_args()
    bin_dir = os.path.join(os.path.abspath(args.build), "src")
    d = tempfile.mkdtemp(prefix="valet-exec-bench-")
    msock, vsock = os.path.join(d, "maitred.sock"), os.path.join(d, "vshd.sock")
    env = dict(os.environ, XDG_RUNTIME_DIR=d)
    maitred = subprocess.Popen([os.path.join(bin_dir, "maitred"), "--listen", "unix:" + msock,
                                "--no-startup-processes", "--vm-ready", "none"], stderr=subprocess.DEVNULL, cwd=d)
    vshd = subprocess.Popen([os.path.join(bin_dir, "vshd"), "--listen", "unix:" + vsock], stderr=subprocess.DEVNULL)
    try:
        wait_path(msock, proc=maitred)
        wait_path(vsock, proc=vshd)
        time.sleep(0.2)
        maitctl = [os.path.join(bin_dir, "maitctl"), "--addr", "unix:" + msock]
        exec_cmd = maitctl + ["exec", "--", "/bin/true"]
        launch_cmd = maitctl + ["launch", "--wait", "--", "/bin/true"]
        rtt = {"exec": [], "launch": []}
        # Interleaved, so that the machine's load weighs on both alike.
        for _ in range(args.calls):
            rtt["exec"] += timed(exec_cmd, 1)
            rtt["launch"] += timed(launch_cmd, 1)
        med = {k: statistics.median(v) * 1000 for k, v in rtt.items()}
        os.environ.update(env)
        tp = {"exec": [], "vsh": []}
        lost = {"exec": 0, "vsh": 0}
        for _ in range(args.runs):
            for k, c in (("exec", maitctl + ["exec"]), ("vsh", [os.path.join(bin_dir, "vsh"), "--addr",
                                                              "unix:" + vsock])):
                rate, n = throughput(c)
                tp[k].append(rate)
                lost[k] += n
        best = {k: max(v) for k, v in tp.items()}
    finally:
        for p in (maitred, vshd):
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)

    rt_ratio = med["exec"] / med["launch"]
    tp_ratio = best["exec"] / best["vsh"]
    print("## maitctl exec (valet.v1.Process)\n")
    print(f"`{' '.join(['bench/process_exec_bench.py'] + sys.argv[1:])}`: unix sockets, "
          f"{args.calls} round trips each (interleaved, median), {args.runs} x 1 GiB each (best).\n")
    print("| measure | maitctl exec | reference | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| `-- /bin/true`, whole maitctl run (ms) | {med['exec']:.2f} | {med['launch']:.2f} "
          f"(`maitctl launch --wait`) | {rt_ratio:.2f}x | <= 1.2x |")
    print(f"| 1 GiB to stdout (MiB/s) | {best['exec']:.0f} | {best['vsh']:.0f} (`vsh`) | {tp_ratio:.2f}x | >= 0.8x |")
    print(f"\nall throughput runs (MiB/s): exec {[round(x) for x in tp['exec']]}, "
          f"vsh {[round(x) for x in tp['vsh']]}; bytes dropped by maitred (client behind the ring): "
          f"exec {lost['exec']}")
    ok = rt_ratio <= 1.2 and tp_ratio >= 0.8
    print(f"\ntargets {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
