#!/usr/bin/python3
"""Runs every test suite against one or more build directories.

The VM test (tests/vm/vm_suite.py) boots maitred as the init of a real
kernel under QEMU, with the static programs of the build given by --vm.

Unit tests are the C programs built under BUILD/tests/unit (each prints
"ok NAME" or "not ok NAME: why" per case); BUILD/fuzz/replay-* run every
fuzz corpus file once in the same format. Integration tests are the
functions named test_* in tests/integration/test_*.py, run against the real
binaries of that build. The last line printed is "N passed, N failed".
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))

import valet  # noqa: E402


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, name, secs=None):
        self.passed += 1
        extra = f" ({secs:.1f}s)" if secs is not None and secs >= 1 else ""
        print(f"ok {name}{extra}", flush=True)

    def fail(self, name, why):
        self.failed.append(name)
        print(f"not ok {name}: {why}", flush=True)


def run_unit(build, label, tally, pattern, subdir=("tests", "unit"), prefix="test-"):
    unit_dir = os.path.join(build, *subdir)
    if not os.path.isdir(unit_dir):
        tally.fail(f"{label}/{subdir[-1]}", f"nothing built in {unit_dir}")
        return
    progs = sorted(p for p in os.listdir(unit_dir)
                   if p.startswith(prefix) and os.access(os.path.join(unit_dir, p), os.X_OK)
                   and not p.endswith(".p"))
    for prog in progs:
        path = os.path.join(unit_dir, prog)
        if os.path.isdir(path):
            continue
        try:
            res = subprocess.run([path], capture_output=True, text=True, timeout=300,
                                 env=valet.sanitizer_env(), cwd=ROOT)
        except subprocess.TimeoutExpired:
            tally.fail(f"{label}/{prog}", "timed out")
            continue
        seen = 0
        for line in res.stdout.splitlines():
            if line.startswith("ok "):
                seen += 1
                name = line[3:].strip()
                if pattern and pattern not in name and pattern not in prog:
                    continue
                tally.ok(f"{label}/{prog}/{name}")
            elif line.startswith("not ok "):
                seen += 1
                tally.fail(f"{label}/{prog}/{line[7:].split(':', 1)[0]}", line[7:])
        if res.returncode != 0 or seen == 0:
            tally.fail(f"{label}/{prog}", f"exit status {res.returncode}, {seen} cases\n{res.stderr[-3000:]}")


def run_integration(build, label, tally, pattern):
    valet.configure(build)
    idir = os.path.join(HERE, "integration")
    for fname in sorted(os.listdir(idir)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        spec = importlib.util.spec_from_file_location(f"{label}_{modname}", os.path.join(idir, fname))
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:
            tally.fail(f"{label}/{modname}", "import failed\n" + traceback.format_exc())
            continue
        for name in sorted(n for n in dir(mod) if n.startswith("test_")):
            full = f"{label}/{modname}/{name}"
            if pattern and pattern not in full:
                continue
            start = time.monotonic()
            try:
                getattr(mod, name)()
            except Exception as e:
                tally.fail(full, f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=6))
                continue
            finally:
                valet.cleanup()
            tally.ok(full, time.monotonic() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append", default=[])
    ap.add_argument("--vm", metavar="STATIC_BUILD", help="also run the VM test with this static build")
    ap.add_argument("-k", dest="pattern", default=None, help="run only tests whose name contains this")
    ap.add_argument("--unit-only", action="store_true")
    args = ap.parse_args()

    if os.geteuid() != 0:
        print("tests need root (they create namespaces); run as root", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    tally = Tally()
    for build in args.build:
        build = os.path.abspath(build)
        label = os.path.basename(build)
        run_unit(build, label, tally, args.pattern)
        # The fuzz corpora, replayed once through each target (fuzz/replay-main.c).
        run_unit(build, label, tally, args.pattern, ("fuzz",), "replay-")
        if not args.unit_only:
            run_integration(build, label, tally, args.pattern)
    if args.vm and not args.unit_only:
        sys.path.insert(0, os.path.join(HERE, "vm"))
        import vm_suite
        import systemd_suite
        for suite in (vm_suite, systemd_suite):
            try:
                suite.run(os.path.abspath(args.vm), tally, args.pattern)
            except Exception:
                tally.fail(f"vm/{suite.__name__}", "the VM test could not run\n" + traceback.format_exc())
    if tally.failed:
        print("\nfailed:\n  " + "\n  ".join(tally.failed))
    print(f"{tally.passed} passed, {len(tally.failed)} failed")
    return 1 if tally.failed or tally.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
