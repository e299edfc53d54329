"""Boot jobs from a directory: sorted order, wait_for_exit holding back the
jobs after it and the server, bad files logged with file:line and skipped."""
import os
import select
import subprocess
import time

from valet import Maitred, binary, maitctl, sanitizer_env, tmpdir, wait_until


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_jobs_run_in_order_before_the_server():
    jobs = tmpdir()
    out = os.path.join(jobs, "..", os.path.basename(jobs) + ".out")
    write(f"{jobs}/10-first.textproto",
          f'# waits: nothing after it starts before it ends\n'
          f'argv: "sh" argv: "-c" argv: "sleep 0.5; echo one >> {out}"\nwait_for_exit: true\n')
    write(f"{jobs}/20-bad", 'argv: "true"\n\nrespawn: sometimes\n')
    write(f"{jobs}/30-both", 'argv: "true" respawn: true wait_for_exit: true\n')
    write(f"{jobs}/40-second", f'argv: "sh" argv: "-c" argv: "echo two-$GREETING >> {out}"\n'
                               f'env {{ key: "GREETING" value: "hi" }}\n')
    write(f"{jobs}/sub/50-third", f'argv: "sh"\nargv: "-c"\nargv: "sleep 0.3; echo three >> {out}"\n'
                                  f'wait_for_exit: true\n')
    write(f"{jobs}/60-empty", "# no argv\n")
    start = time.monotonic()
    m = Maitred(args=["--jobs-dir", jobs])
    # The socket exists only once every waited job has ended.
    assert open(out).read() == "one\ntwo-hi\nthree\n", open(out).read()
    assert time.monotonic() - start >= 0.8
    log = m.log()
    assert f"{jobs}/20-bad:3: expected true or false, got 'sometimes'; job skipped" in log, log
    assert f"{jobs}/30-both: respawn and wait_for_exit cannot both be true; job skipped" in log
    assert f"No argv in proto file {jobs}/60-empty" in log
    assert "Job 10-first.textproto exited with status 0" in log
    assert log.index("Job 50-third exited") < log.index("Server listening")
    assert maitctl(m.addr, "launch", "--wait", "--", "true").returncode == 0
    assert m.stop() == 0
    os.unlink(out)


def test_no_startup_processes_and_missing_dir():
    jobs = tmpdir()
    marker = os.path.join(jobs, "ran")
    write(f"{jobs}/job", f'argv: "touch" argv: "{marker}" wait_for_exit: true\n')
    m = Maitred(args=["--jobs-dir", jobs, "--no-startup-processes"])
    # Anchored: a wait_for_exit job holds the server back, so had it run it
    # would have ended before the socket existed (Maitred() waits for it).
    assert not os.path.exists(marker)
    assert m.stop() == 0
    m = Maitred(args=["--jobs-dir", os.path.join(jobs, "nonexistent")])
    assert maitctl(m.addr, "launch", "--wait", "--", "true").returncode == 0
    assert m.stop() == 0


def read_until(f, text, timeout=10):
    """What the pipe f has said up to a line containing text; that line."""
    deadline, seen = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        for line in seen.decode(errors="replace").splitlines(keepends=True):
            if text in line and line.endswith("\n"):
                return line
        if select.select([f], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(f.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    raise AssertionError(f"no {text!r} within {timeout} s: {seen!r}")


def test_stop_while_a_job_is_waited_for():
    jobs = tmpdir()
    write(f"{jobs}/job", 'argv: "sleep" argv: "30" wait_for_exit: true\n')
    d = tmpdir()
    sock = os.path.join(d, "m.sock")
    p = subprocess.Popen([binary("maitred"), "--listen", "unix:" + sock, "--jobs-dir", jobs],
                         stderr=subprocess.PIPE, env=sanitizer_env())
    # The job runs and is waited for: stop now.
    line = read_until(p.stderr, "Successfully launched job: job (pid ")
    job = int(line.rsplit("(pid ", 1)[1].split(")")[0])
    p.terminate()
    try:
        assert p.wait(10) == 0  # without waiting for the job's 30 s
        assert not os.path.exists(sock)  # it never started serving
    finally:
        os.kill(job, 9)


def test_nul_in_a_job_file_is_refused_like_over_grpc():
    jobs = tmpdir()
    marker = os.path.join(jobs, "ran")
    write(f"{jobs}/10-argv", f'argv: "sh\\0evil" argv: "-c" argv: "touch {marker}"\n')
    write(f"{jobs}/20-env", f'argv: "touch" argv: "{marker}"\nenv {{ key: "A" value: "1\\x00" }}\n')
    write(f"{jobs}/30-fine", f'argv: "touch" argv: "{marker}.fine" wait_for_exit: true\n')
    m = Maitred(args=["--jobs-dir", jobs])
    log = m.log()
    # The same words as the INVALID_ARGUMENT of LaunchProcess, with file:line.
    assert f"{jobs}/10-argv:1: string field 'argv' contains a NUL byte; job skipped" in log, log
    assert f"{jobs}/20-env:2: string field 'env.value' contains a NUL byte; job skipped" in log, log
    assert os.path.exists(marker + ".fine") and not os.path.exists(marker)
    assert m.stop() == 0


def test_job_file_over_a_mib_is_skipped():
    """A job file over 1 MiB is not read (logged, skipped); one of exactly
    1 MiB is, and the jobs after both run."""
    jobs = tmpdir()
    marker = os.path.join(jobs, "ran")
    big = f'argv: "touch" argv: "{marker}.big"\n'
    write(f"{jobs}/10-big", big + "#" * (1024 * 1024 - len(big)) + "\n")
    limit = f'argv: "touch" argv: "{marker}.limit" wait_for_exit: true\n'
    write(f"{jobs}/20-limit", limit + "#" * (1024 * 1024 - len(limit) - 1) + "\n")
    write(f"{jobs}/30-fine", f'argv: "touch" argv: "{marker}.fine" wait_for_exit: true\n')
    m = Maitred(args=["--jobs-dir", jobs])
    log = m.log()
    assert f"Unable to read file {jobs}/10-big: File too large" in log, log
    assert os.path.getsize(f"{jobs}/20-limit") == 1024 * 1024
    assert os.path.exists(marker + ".limit") and os.path.exists(marker + ".fine")
    assert not os.path.exists(marker + ".big")
    assert m.stop() == 0
