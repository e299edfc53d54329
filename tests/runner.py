#!/usr/bin/python3
"""Runs every test suite against one or more build directories.

The VM test (tests/vm/vm_suite.py) boots maitred as the init of a real
kernel under QEMU, with the static programs of the build given by --vm.

The C programs are the tests each build registers with `meson test`
(`meson introspect --tests`: suites unit, failmalloc, fuzz-replay, layers);
each prints "ok NAME" or "not ok NAME: why" per case. Integration tests are
the functions named test_* in tests/integration/test_*.py, run against the
real binaries of that build, one file per worker process
(`runner.py --worker FILE ...`).

Everything runs in parallel: a pool of 2 x CPUs jobs, longest first (the
durations of the last run are kept in BUILD/test-durations.json). The
tests that measure time run one at a time in a lane of their own, at normal
priority, while the pool's jobs run at nice 10, so that a busy pool does not
stretch what they measure; those that measure speed itself run alone once
the rest is done. Each test says so where it is registered: a C program
with suite 'timing' or 'exclusive' in its meson.build (and is_parallel:
false), an integration test with the decorator @timing or @exclusive of
tests/lib/lanes.py. The VM test runs last, alone. The last line printed is
"N passed, N failed".
"""
import ast
import argparse
import concurrent.futures
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))

import valet  # noqa: E402

SUITES = ("unit", "failmalloc", "fuzz-replay", "layers")
# The lanes a test can be declared in (tests/lib/lanes.py; suites in meson).
LANES = ("timing", "exclusive")
POOL_NICE = 10


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.lock = threading.RLock()

    def ok(self, name, secs=None):
        with self.lock:
            self.passed += 1
            extra = f" ({secs:.1f}s)" if secs is not None and secs >= 1 else ""
            print(f"ok {name}{extra}", flush=True)

    def fail(self, name, why):
        with self.lock:
            self.failed.append(name)
            print(f"not ok {name}: {why}", flush=True)


class Job:
    """One process to run: a registered C test or one integration file."""

    def __init__(self, key, argv, report, env=None, cwd=ROOT, timeout=300, timing=False):
        self.key, self.argv, self.report = key, argv, report
        self.env, self.cwd, self.timeout, self.timing = env, cwd, timeout, timing
        self.exclusive = False

    def run(self):
        start = time.monotonic()
        nice = None if self.timing else (lambda: os.nice(POOL_NICE))
        try:
            res = subprocess.run(self.argv, capture_output=True, text=True, timeout=self.timeout, env=self.env,
                                 cwd=self.cwd, preexec_fn=nice)
            out = (res.returncode, res.stdout, res.stderr)
        except subprocess.TimeoutExpired as e:
            out = (None, _text(e.stdout), _text(e.stderr))
        return out, time.monotonic() - start


def _text(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def registered_tests(build):
    """The tests of SUITES that BUILD registers with meson test."""
    r = subprocess.run(["meson", "introspect", build, "--tests"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"meson introspect {build} --tests: {r.stderr.strip()}")
    return [t for t in json.loads(r.stdout) if set(t["suite"]) & {f"valet:{s}" for s in SUITES} or
            set(t["suite"]) & set(SUITES)]


def c_job(build, label, t, tally, pattern):
    prog = t["name"]
    env = valet.sanitizer_env(t.get("env") or {})

    def report(result, secs):
        with tally.lock:
            report_locked(result, secs)

    def report_locked(result, secs):
        rc, stdout, stderr = result
        seen = 0
        for line in stdout.splitlines():
            if line.startswith("ok "):
                seen += 1
                name = line[3:].strip()
                if pattern and pattern not in name and pattern not in prog:
                    continue
                tally.ok(f"{label}/{prog}/{name}")
            elif line.startswith("not ok "):
                seen += 1
                tally.fail(f"{label}/{prog}/{line[7:].split(':', 1)[0]}", line[7:])
        if rc is None:
            tally.fail(f"{label}/{prog}", f"timed out after {t.get('timeout') or 300}s\n{stderr[-3000:]}")
        elif rc != 0 or seen == 0:
            tally.fail(f"{label}/{prog}", f"exit status {rc}, {seen} cases\n{stderr[-3000:]}")

    lane = c_lane(t)
    j = Job(f"{label}/{prog}", t["cmd"], report, env=env, cwd=t.get("workdir") or ROOT,
            timeout=t.get("timeout") or 300, timing=lane is not None)
    j.exclusive = lane == "exclusive"
    return j


def c_lane(t):
    """'timing', 'exclusive' or None: the suite a C test is registered in."""
    suites = {s.split(":", 1)[-1] for s in t["suite"]}
    for lane in LANES:
        if lane in suites:
            return lane
    return None


def lanes_of(path):
    """{test function: lane} of one integration file, from its decorators
    (@timing, @exclusive, or lanes.timing...), read without importing it.
    An unknown decorator of that module, or a lane on something that is not
    a module-level test_* function, is an error."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    lanes = {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for d in node.decorator_list:
            name = d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else None
            if name not in LANES:
                continue
            if node not in tree.body or not node.name.startswith("test_"):
                raise ValueError(f"{path}:{node.lineno}: @{name} on {node.name}, not a module-level test_ function")
            if node.name in lanes:
                raise ValueError(f"{path}:{node.lineno}: {node.name} is in two lanes")
            lanes[node.name] = name
    return lanes


def integration_jobs(build, label, tally, pattern):
    idir = os.path.join(HERE, "integration")
    jobs = []
    for fname in sorted(os.listdir(idir)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        try:
            lanes = lanes_of(os.path.join(idir, fname))
        except (SyntaxError, ValueError) as e:
            tally.fail(f"{label}/{modname}", f"cannot read its lanes: {e}")
            continue
        timing = sorted(n for n, lane in lanes.items() if lane == "timing")
        exclusive = sorted(n for n, lane in lanes.items() if lane == "exclusive")

        def job(key, extra, is_timing, modname=modname):
            argv = [sys.executable, os.path.abspath(__file__), "--worker", os.path.join(idir, modname + ".py"),
                    "--build", build, "--label", label] + (["-k", pattern] if pattern else []) + extra

            def report(result, secs):
                # The worker's lines as they are (a failure's traceback
                # follows its "not ok" line), counted here.
                rc, stdout, stderr = result
                with tally.lock:
                    for line in stdout.splitlines():
                        if line == "# worker done":
                            continue
                        if line.startswith("ok "):
                            tally.passed += 1
                        elif line.startswith("not ok "):
                            tally.failed.append(line[7:].split(":", 1)[0])
                        print(line)
                    sys.stdout.flush()
                    if rc is None or rc not in (0, 1) or "# worker done" not in stdout.splitlines():
                        tally.fail(key, f"the worker {'timed out' if rc is None else f'exited {rc}'}\n"
                                   f"{stderr[-3000:]}")
            return Job(key, argv, report, timeout=1800, timing=is_timing)

        for name in timing:
            jobs.append(job(f"{label}/{modname}/{name}", ["--only", name], True))
        for name in exclusive:
            j = job(f"{label}/{modname}/{name}", ["--only", name], True)
            j.exclusive = True
            jobs.append(j)
        if timing or exclusive:
            jobs.append(job(f"{label}/{modname}", ["--skip", ",".join(timing + exclusive)], False))
        else:
            jobs.append(job(f"{label}/{modname}", [], False))
    return jobs


def worker(args):
    """Runs the test functions of one integration file; prints ok/not ok."""
    valet.configure(os.path.abspath(args.build[0]))
    path = args.worker
    modname = os.path.basename(path)[:-3]
    label = args.label
    tally = Tally()
    spec = importlib.util.spec_from_file_location(f"{label}_{modname}", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception:
        tally.fail(f"{label}/{modname}", "import failed\n" + traceback.format_exc())
        print("# worker done", flush=True)
        return 1
    only = set(args.only.split(",")) if args.only else None
    skip = set(args.skip.split(",")) if args.skip else set()
    for name in sorted(n for n in dir(mod) if n.startswith("test_")):
        full = f"{label}/{modname}/{name}"
        if (only is not None and name not in only) or name in skip:
            continue
        if args.pattern and args.pattern not in full:
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
    print("# worker done", flush=True)
    return 1 if tally.failed else 0


def run_jobs(jobs, durations, workers):
    """Runs the pool (longest first) and the timing lane side by side,
    then the exclusive tests one by one."""
    def est(j):
        return durations.get(j.key, 5.0)
    exclusive = [j for j in jobs if j.exclusive]
    jobs = [j for j in jobs if not j.exclusive]
    timing = [j for j in jobs if j.timing]
    pool = sorted((j for j in jobs if not j.timing), key=est, reverse=True)
    took = {}

    def lane():
        for j in timing:
            result, secs = j.run()
            took[j.key] = secs
            j.report(result, secs)

    lane_thread = threading.Thread(target=lane)
    lane_thread.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
        futures = {ex.submit(j.run): j for j in pool}
        for f in concurrent.futures.as_completed(futures):
            j = futures[f]
            result, secs = f.result()
            took[j.key] = secs
            j.report(result, secs)
    lane_thread.join()
    for j in exclusive:
        result, secs = j.run()
        took[j.key] = secs
        j.report(result, secs)
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append", default=[])
    ap.add_argument("--vm", metavar="STATIC_BUILD", help="also run the VM test with this static build")
    ap.add_argument("-k", dest="pattern", default=None, help="run only tests whose name contains this")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("-j", dest="jobs", type=int, default=2 * (os.cpu_count() or 1),
                    help="how many jobs run at once (default: 2 x CPUs)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--label", help=argparse.SUPPRESS)
    ap.add_argument("--only", help=argparse.SUPPRESS)
    ap.add_argument("--skip", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        return worker(args)
    if os.geteuid() != 0:
        print("tests need root (they create namespaces); run as root", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    tally = Tally()
    start = time.monotonic()
    # Every build's jobs in one pool.
    jobs, durations, labels = [], {}, {}
    for build in args.build:
        build = os.path.abspath(build)
        label = os.path.basename(build)
        labels[label] = build
        try:
            tests = registered_tests(build)
        except Exception as e:
            tally.fail(f"{label}/meson-tests", str(e))
            tests = []
        if not any(t["name"].startswith("test-") for t in tests):
            tally.fail(f"{label}/unit", f"no unit tests registered in {build}")
        for t in tests:
            jobs.append(c_job(build, label, t, tally, args.pattern))
        if not args.unit_only:
            # The generated Python protos, once, before the workers import them.
            valet.configure(build)
            jobs += integration_jobs(build, label, tally, args.pattern)
        try:
            with open(os.path.join(build, "test-durations.json")) as f:
                durations.update(json.load(f))
        except (OSError, ValueError):
            pass
    took = run_jobs(jobs, durations, max(1, args.jobs))
    if not args.pattern:
        for label, build in labels.items():
            mine = {k: v for k, v in dict(durations, **took).items() if k.startswith(label + "/")}
            try:
                with open(os.path.join(build, "test-durations.json"), "w") as f:
                    json.dump(mine, f, indent=0, sort_keys=True)
            except OSError:
                pass
    if args.vm and not args.unit_only:
        sys.path.insert(0, os.path.join(HERE, "vm"))
        import vm_suite
        import systemd_suite
        import sdk_vm
        for suite in (vm_suite, systemd_suite, sdk_vm):
            try:
                suite.run(os.path.abspath(args.vm), tally, args.pattern)
            except Exception:
                tally.fail(f"vm/{suite.__name__}", "the VM test could not run\n" + traceback.format_exc())
    if tally.failed:
        print("\nfailed:\n  " + "\n  ".join(tally.failed))
    print(f"took {time.monotonic() - start:.0f}s")
    print(f"{tally.passed} passed, {len(tally.failed)} failed")
    return 1 if tally.failed or tally.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
