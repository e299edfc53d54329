#!/usr/bin/python3
"""valet.v1.Process: 1000 processes started (`sleep 600`, each attached
once and left) and listed, with maitred's RSS against issue 19's target
(under 16 MiB while their output buffers are empty: the rings are
allocated on the first byte of output, never at the start). Also the time
to start them one after another and of the List that holds them all.

maitred runs on a unix socket with RLIMIT_NOFILE raised (two pipes per
process: 1000 processes need more than the usual soft limit of 1024; as
PID 1 maitred raises it itself). Prints a Markdown report.

    make build-static
    /usr/bin/python3 bench/process_bench.py --build build-static
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from benchlib import children, status_kib, wait_path  # noqa: E402

TARGET_KIB = 16 * 1024


def _raise_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-static", help="build directory whose maitred is measured")
    ap.add_argument("-n", type=int, default=1000, help="processes started")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    import valet
    valet.configure(build)
    from process_client import pb, stubs

    d = tempfile.mkdtemp(prefix="valet-process-bench-")
    sock = os.path.join(d, "maitred.sock")
    log = open(os.path.join(d, "maitred.log"), "w")
    m = subprocess.Popen([os.path.join(build, "src", "maitred"), "--listen", "unix:" + sock, "--no-startup-processes",
                          "--vm-ready", "none"], stdout=log, stderr=subprocess.STDOUT, preexec_fn=_raise_nofile)
    try:
        wait_path(sock, proc=m)
        s = stubs("unix:" + sock)
        P = pb()
        s.List(P.ListProcessesRequest(), timeout=10)
        time.sleep(0.5)
        idle = status_kib(m.pid)
        t0 = time.perf_counter()
        ids = []
        for _ in range(args.n):
            call = s.Start(P.StartRequest(argv=["sleep", "600"]), timeout=30)
            ev = next(call)
            ids.append(ev.started.id)
            call.cancel()
        started_s = time.perf_counter() - t0
        time.sleep(0.5)
        after_start = status_kib(m.pid)
        t0 = time.perf_counter()
        listed = s.List(P.ListProcessesRequest(), timeout=30).processes
        list_ms = (time.perf_counter() - t0) * 1000
        after_list = status_kib(m.pid)
        assert len(listed) == args.n and all(p.running for p in listed), len(listed)
        kids = len(children(m.pid))
        for i in ids:
            s.SendSignal(P.SendSignalRequest(id=i, signal=9, group=True), timeout=30)
        deadline = time.monotonic() + 60
        while children(m.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        s.List(P.ListProcessesRequest(include_exited=True), timeout=30)
        time.sleep(0.5)
        after_end = status_kib(m.pid)
        hwm = status_kib(m.pid, "VmHWM")
        ok = max(after_start, after_list) < TARGET_KIB
        print("## valet.v1.Process: %d processes (`sleep 600`) started and listed\n" % args.n)
        print("| what | figure |")
        print("|---|---|")
        print("| maitred RSS idle | %.1f MiB |" % (idle / 1024))
        print("| RSS with %d processes remembered (buffers empty) | %.1f MiB |" % (args.n, after_start / 1024))
        print("| RSS after List of all of them | %.1f MiB |" % (after_list / 1024))
        print("| peak RSS (VmHWM) | %.1f MiB |" % (hwm / 1024))
        print("| RSS once they were killed and forgotten | %.1f MiB |" % (after_end / 1024))
        print("| children of maitred while they ran | %d |" % kids)
        print("| %d Starts, one after another (grpcio) | %.2f s (%.1f ms each) |"
              % (args.n, started_s, started_s * 1000 / args.n))
        print("| List of %d processes | %.1f ms |" % (args.n, list_ms))
        print("\nTarget: under 16 MiB with %d processes: %s" % (args.n, "met" if ok else "NOT met"))
        return 0 if ok else 1
    finally:
        m.terminate()
        m.wait(30)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
