"""Boot A's step for maitctl exec and attach (issue 19, "VM test": a
process started, the host client killed, reattached from a new maitctl):
in the guest, a process prints numbers through `maitctl exec`; that maitctl
is killed (SIGKILL) after the first output, a new `maitctl attach` prints
the rest: every number once, in order, and the exit code. Then the same
with `exec --detach` and an attach after the process has ended."""
import os
import subprocess
import tempfile
import time

import valet
import vm_suite  # its helpers, used once both modules are loaded

N = 20000  # under TCG: a few seconds of output
SCRIPT = f"i=1; while [ $i -le {N} ]; do echo $i; i=$((i+1)); done; sleep 1; exit 3"
SEQ = "".join(f"{i}\n" for i in range(1, N + 1)).encode()


def _maitctl(v, *args):
    return [valet.binary("maitctl"), "--addr", v.maitred_addr()] + list(args)


def reattach(v):
    d = tempfile.mkdtemp(prefix="valet-vm-exec-")
    xdg = os.path.join(d, "xdg")
    os.mkdir(xdg, 0o700)
    env = valet.sanitizer_env({"XDG_RUNTIME_DIR": xdg})
    out1 = os.path.join(d, "out1")
    # Attached, then killed.
    with open(out1, "wb") as f:
        p = valet.track(subprocess.Popen(_maitctl(v, "exec", "--tag", "vmnum", "--", "/bin/sh", "-c", SCRIPT),
                                         stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE, env=env))
        valet.wait_until(lambda: os.path.getsize(out1) > 100, 120, what="the first output")
        p.kill()
        p.wait()
    res = subprocess.run(_maitctl(v, "attach", "vmnum"), capture_output=True, timeout=300, env=env)
    with open(out1, "rb") as f:
        first = f.read()
    assert res.returncode == 3, (res.returncode, res.stderr)
    assert 0 < len(first) < len(SEQ), len(first)
    assert first + res.stdout == SEQ, "output not complete, in order, once"
    assert res.stderr == b"", res.stderr
    # Detached; attached once it has ended: all of it, and the end.
    res = subprocess.run(_maitctl(v, "exec", "-d", "--tag", "vmdet", "--", "/bin/sh", "-c",
                                  "while [ ! -e /tmp/vmdet-go ]; do sleep 0.1; done; echo out; echo err >&2; exit 5"),
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=60, env=env)
    assert res.returncode == 0 and res.stdout.strip().isdigit(), res
    ident = res.stdout.strip().decode()
    # It ends once the detaching maitctl has gone (an end sent to that
    # call would count as seen, and the process be forgotten).
    vm_suite.gsh(v, "touch /tmp/vmdet-go")
    deadline = time.monotonic() + 60
    while True:
        ps = subprocess.run(_maitctl(v, "ps"), capture_output=True, text=True, timeout=60, env=env)
        assert ps.returncode == 0, ps.stderr
        if not any(line.split()[0] == ident for line in ps.stdout.splitlines()[1:]):
            break
        assert time.monotonic() < deadline, ps.stdout
        time.sleep(0.2)
    res = subprocess.run(_maitctl(v, "attach", ident), capture_output=True, timeout=60, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (5, b"out\n", b"err\n"), res
