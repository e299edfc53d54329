#!/usr/bin/python3
"""The Python SDK against the raw grpcio calls it makes (issue 21: "the SDK
adds little to the wire"), against one maitred on a unix socket, each pair
measured alternately round by round so that the machine's load hits both
alike:

1. `Guest.run(["/bin/true"])` against the Process/Start call it makes
   (the same StartRequest, read to its Exited event) through grpcio's
   generic stub: median latency; target: SDK within 1.3x of raw.
   (Skipped, and said so, when the maitred built does not serve
   valet.v1.Process.)
2. A unary call (`Guest.kernel_version()` against GetKernelVersion raw),
   for scale.
3. File transfers: `guest.files.write(bytes)` against a raw Files/Write of
   the same data messages, `guest.files.read(path)` against a raw
   Files/Read joined to bytes, 256 MiB on tmpfs: throughput; target: SDK at
   least 0.9x of raw.

Prints a Markdown report; exits 1 when a target is missed.

    make build-static
    /usr/bin/python3 bench/sdk_bench.py --build build-static
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import grpc  # noqa: E402
import valet  # noqa: E402
from valet import _methods  # noqa: E402
from valet._proto import common_pb2, files_pb2, process_pb2  # noqa: E402
from valet.files import CHUNK  # noqa: E402
from benchlib import wait_path  # noqa: E402

MIB = 1 << 20


def raw_stub(channel, m):
    return getattr(channel, m.kind)(m.path, request_serializer=m.request.SerializeToString,
                                    response_deserializer=m.response.FromString)


def alternate(rounds, a, b):
    """Runs a() and b() alternately; returns their lists of results."""
    ra, rb = [], []
    for i in range(rounds):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        x, y = first(), second()
        (ra if first is a else rb).append(x)
        (rb if first is a else ra).append(y)
    return ra, rb


def timed(fn):
    def run():
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-static")
    ap.add_argument("--calls", type=int, default=400, help="calls per latency figure")
    ap.add_argument("--mib", type=int, default=256, help="MiB per transfer")
    ap.add_argument("--rounds", type=int, default=6, help="transfers per figure")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="valet-sdk-bench-", dir="/dev/shm")
    sock = os.path.join(work, "maitred.sock")
    log = open(os.path.join(work, "maitred.log"), "w")
    proc = subprocess.Popen([os.path.join(args.build, "src", "maitred"), "--listen", "unix:" + sock,
                             "--no-startup-processes", "--vm-ready", "none"], stdout=log, stderr=subprocess.STDOUT)
    missed = []
    try:
        wait_path(sock, proc=proc)
        time.sleep(0.3)
        addr = "unix:" + sock
        guest = valet.Guest(addr, timeout=None)
        raw = grpc.insecure_channel(addr, options=_methods.CHANNEL_OPTIONS)
        print(f"# The SDK against raw grpcio (`bench/sdk_bench.py --build {args.build}`)\n")
        print(f"grpcio {grpc.__version__}, maitred of `{args.build}` on a unix socket, tmpfs, "
              f"load average {os.getloadavg()[0]:.1f} at the start\n")
        print("| what | SDK | raw grpcio | ratio | target |\n| --- | --- | --- | --- | --- |")

        # Unary, for scale.
        kv = raw_stub(raw, _methods.MAITRED["GetKernelVersion"])
        guest.kernel_version()
        kv(common_pb2.EmptyMessage())
        a, b = alternate(args.calls, timed(guest.kernel_version), timed(lambda: kv(common_pb2.EmptyMessage())))
        sa, sb = statistics.median(a), statistics.median(b)
        print(f"| GetKernelVersion, median of {args.calls} | {sa * 1e6:.0f} µs | {sb * 1e6:.0f} µs | "
              f"{sa / sb:.2f}x | |")

        # run(["/bin/true"]) against its Start call.
        start = raw_stub(raw, _methods.PROCESS["Start"])
        req = process_pb2.StartRequest(argv=["/bin/true"], kill_on_disconnect=True)

        def raw_run():
            for ev in start(req):
                if ev.WhichOneof("event") == "exited":
                    break
        try:
            guest.run(["/bin/true"])
            served = True
        except valet.Unimplemented:
            served = False
        if served:
            raw_run()
            a, b = alternate(args.calls, timed(lambda: guest.run(["/bin/true"])), timed(raw_run))
            sa, sb = statistics.median(a), statistics.median(b)
            ok = sa / sb <= 1.3
            missed += [] if ok else ["run"]
            print(f"| `Guest.run([\"/bin/true\"])`, median of {args.calls} | {sa * 1e3:.2f} ms | {sb * 1e3:.2f} ms | "
                  f"{sa / sb:.2f}x | ≤ 1.3x: {'met' if ok else 'MISSED'} |")
        else:
            print("| `Guest.run([\"/bin/true\"])` | — | — | — | not measured: this maitred does not serve "
                  "valet.v1.Process |")

        # Transfers.
        size = args.mib * MIB
        data = os.urandom(size)
        path = os.path.join(work, "f.bin")
        write = raw_stub(raw, _methods.FILES["Write"])
        read = raw_stub(raw, _methods.FILES["Read"])

        def raw_write():
            def reqs():
                yield files_pb2.WriteRequest(header=files_pb2.WriteHeader(path=path))
                view = memoryview(data)
                for off in range(0, size, CHUNK):
                    yield files_pb2.WriteRequest(data=bytes(view[off:off + CHUNK]))
            write(reqs())

        def raw_read():
            parts = [r.data for r in read(files_pb2.ReadRequest(path=path)) if r.WhichOneof("part") == "data"]
            assert len(b"".join(parts)) == size

        def sdk_read():
            assert len(guest.files.read(path)) == size
        for name, sdk_fn, raw_fn in (("upload (Files/Write)", lambda: guest.files.write(path, data), raw_write),
                                     ("download (Files/Read)", sdk_read, raw_read)):
            raw_fn()
            a, b = alternate(args.rounds, timed(sdk_fn), timed(raw_fn))
            ta, tb = size / MIB / statistics.median(a), size / MIB / statistics.median(b)
            ok = ta / tb >= 0.9
            missed += [] if ok else [name]
            print(f"| {name}, {args.mib} MiB, median of {args.rounds} | {ta:.0f} MiB/s | {tb:.0f} MiB/s | "
                  f"{ta / tb:.2f}x | ≥ 0.9x: {'met' if ok else 'MISSED'} |")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
        guest.close()
        raw.close()
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
