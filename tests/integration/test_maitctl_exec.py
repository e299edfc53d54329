"""maitctl exec, attach, ps and kill against a real maitred
(valet.v1.Process): exit codes and signals exactly, stdin byte-exact,
stdout and stderr apart, a real PTY (size, resize, ^C, the terminal given
back as it was), detach and attach, reattach after the first maitctl is
killed or its connection cut (every byte once, in order), ps and kill
(a whole tree with --group), and bad input: a clear error, a distinct
exit status, maitred serving on. Guest and host are the same machine here,
so the guest's processes are looked at in /proc."""
import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time

from process_client import children_of, pid_alive
from valet import SANITIZER_MARKS, Maitred, binary, sanitizer_env, tmpdir, track, wait_until

NUMBERS = "for i in $(seq 1 100000); do echo $i; done; sleep 1; exit 3"
SEQ = "".join(f"{i}\n" for i in range(1, 100001)).encode()


def maitred():
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"])


def env():
    """maitctl's environment: a runtime directory of the test's own (where
    it keeps the offsets written out)."""
    d = os.path.join(tmpdir(), "xdg")
    os.mkdir(d, 0o700)
    return sanitizer_env({"XDG_RUNTIME_DIR": d})


def cmd(addr, *args, json_out=False):
    return [binary("maitctl"), "--addr", addr] + (["--json"] if json_out else []) + list(args)


def check_stderr(err):
    text = err.decode(errors="replace") if isinstance(err, bytes) else err
    for mark in SANITIZER_MARKS:
        assert mark not in text, text
    return text


def mc(addr, *args, input=None, stdin=None, e=None, json_out=False, timeout=120):
    """maitctl, bytes in and out."""
    res = subprocess.run(cmd(addr, *args, json_out=json_out), input=input,
                         stdin=stdin if input is None else None, capture_output=True,
                         timeout=timeout, env=e or sanitizer_env())
    check_stderr(res.stderr)
    return res


def popen(addr, *args, e=None, **kw):
    return track(subprocess.Popen(cmd(addr, *args), env=e or sanitizer_env(), **kw))


def ps(addr, *args):
    res = mc(addr, "ps", *args, json_out=True)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.decode().splitlines()]


def test_exit_codes_and_signals_exactly():
    m = maitred()
    for script, code in [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -9 $$", 137),
                         ("kill -TERM $$", 143), ("kill -SEGV $$", 139)]:
        res = mc(m.addr, "exec", "--", "sh", "-c", script, stdin=subprocess.DEVNULL)
        assert res.returncode == code, (script, res.returncode, res.stderr)
        assert res.stdout == b"" and res.stderr == b"", (script, res)


def test_stdout_and_stderr_apart():
    m = maitred()
    res = mc(m.addr, "exec", "--", "sh", "-c", "echo out1; echo err1 >&2; echo out2; printf 'err2' >&2; exit 5",
             stdin=subprocess.DEVNULL)
    assert res.returncode == 5
    assert res.stdout == b"out1\nout2\n"
    assert res.stderr == b"err1\nerr2"


def test_stdin_piped_byte_exact():
    m = maitred()
    data = os.urandom(5 * 1024 * 1024 + 12345)
    res = mc(m.addr, "exec", "--", "cat", input=data)
    assert res.returncode == 0, res.stderr
    assert res.stdout == data
    # The end of input reaches the process: wc counts and exits.
    res = mc(m.addr, "exec", "--", "wc", "-c", input=data)
    assert res.returncode == 0 and res.stdout.split() == [str(len(data)).encode()], res
    # stdin from a regular file (epoll refuses it: read as input is taken).
    path = os.path.join(tmpdir(), "in.bin")
    with open(path, "wb") as f:
        f.write(data[:3000000])
    with open(path, "rb") as f:
        res = mc(m.addr, "exec", "--", "sha256sum", stdin=f)
    import hashlib
    assert res.stdout.split()[0].decode() == hashlib.sha256(data[:3000000]).hexdigest()


def test_stdin_dev_null_is_not_forwarded():
    m = maitred()
    res = mc(m.addr, "exec", "--", "sh", "-c", "cat; readlink /proc/self/fd/0 </dev/stdin; echo done",
             stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and res.stdout == b"/dev/null\ndone\n", res


def test_signals_forwarded_to_the_group():
    m = maitred()
    for sig, code in [(signal.SIGINT, 7), (signal.SIGTERM, 8), (signal.SIGHUP, 9), (signal.SIGQUIT, 10)]:
        name = sig.name[3:]
        p = popen(m.addr, "exec", "--", "sh", "-c",
                  f"trap 'echo got {name}; exit {code}' {name}; echo ready; while :; do sleep 0.05; done",
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        check_stderr(err)
        assert p.returncode == code, (name, p.returncode, err)
        assert out == f"got {name}\n".encode()
    # Untrapped: the process dies of it, maitctl says so as a shell does.
    p = popen(m.addr, "exec", "--", "sh", "-c", "echo ready; sleep 1000", stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert [x for x in ps(m.addr) if x["running"]] == []


def test_local_stdout_closed_is_sigpipe():
    m = maitred()
    p = popen(m.addr, "exec", "--", "yes", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE)
    assert p.stdout.read(2) == b"y\n"
    p.stdout.close()
    assert p.wait(timeout=30) == 128 + signal.SIGPIPE
    check_stderr(p.stderr.read())
    assert [x for x in ps(m.addr) if x["running"]] == []


class Pty:
    """maitctl on a real terminal: the session leader with the PTY as its
    controlling terminal, as in a shell."""

    def __init__(self, argv, rows=33, cols=101, e=None):
        self.master, self.slave = pty.openpty()
        self.set_size(rows, cols)
        self.attrs = termios.tcgetattr(self.slave)
        slave = self.slave
        self.p = track(subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=e or sanitizer_env(),
                                        start_new_session=True,
                                        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)))
        self.out = b""

    def set_size(self, rows, cols):
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def read_until(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}: {self.out!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break
        return self.out

    def wait(self, timeout=30):
        code = self.p.wait(timeout=timeout)
        # What is left to read (the slave is still open here).
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.out += chunk
        return code

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def test_pty_size_output_and_terminal_restored():
    m = maitred()
    t = Pty(cmd(m.addr, "exec", "-t", "--", "sh", "-c", "stty size; tty; echo \"TERM=$TERM\"; exit 4"))
    assert t.wait() == 4
    check_stderr(t.out)
    assert b"33 101\r\n" in t.out, t.out
    assert b"/dev/pts/" in t.out and b"TERM=" in t.out
    # The local terminal is given back exactly as it was.
    assert termios.tcgetattr(t.slave) == t.attrs
    t.close()


def test_pty_resize_and_ctrl_c():
    m = maitred()
    t = Pty(cmd(m.addr, "exec", "--pty", "--", "sh", "-c",
                "trap 'echo INTERRUPTED; exit 6' INT; while :; do stty size; sleep 0.1; done"), rows=20, cols=70)
    t.read_until(b"20 70\r\n")
    t.set_size(41, 132)  # SIGWINCH to maitctl, Resize to the guest
    t.read_until(b"41 132\r\n")
    os.write(t.master, b"\x03")  # ^C: the raw local terminal passes it on
    assert t.wait() == 6
    assert b"INTERRUPTED" in t.out
    assert termios.tcgetattr(t.slave) == t.attrs
    t.close()


def test_pty_stdin_typed():
    m = maitred()
    t = Pty(cmd(m.addr, "exec", "-t", "--", "sh", "-c", "read line; echo \"got:$line\"; exit 2"))
    time.sleep(0.2)
    os.write(t.master, b"hello\r")
    assert t.wait() == 2
    assert b"got:hello" in t.out, t.out
    t.close()


def test_detach_then_attach_by_tag_and_id():
    m = maitred()
    e = env()
    go = os.path.join(tmpdir(), "go")
    res = mc(m.addr, "exec", "-d", "--tag", "job", "--", "sh", "-c",
             f"echo one; echo eins >&2; read x; while [ ! -e {go} ]; do sleep 0.05; done; echo two; exit 4",
             e=e, stdin=subprocess.DEVNULL)
    assert res.returncode == 0 and res.stderr == b"", res
    ident = int(res.stdout)
    procs = ps(m.addr)
    assert [(x["id"], x["tag"], x["running"], x["argv"][0]) for x in procs] == [(ident, "job", True, "sh")], procs
    # A detached process has no stdin by default: read got EOF at once.
    open(go, "w").close()
    res = mc(m.addr, "attach", "job", e=e, stdin=subprocess.DEVNULL)
    assert (res.returncode, res.stdout, res.stderr) == (4, b"one\ntwo\n", b"eins\n"), res
    # Seen to its end: forgotten.
    assert ps(m.addr, "--all") == []
    # --json detach; attach by id, feeding stdin kept open with -i.
    res = mc(m.addr, "exec", "-d", "-i", "--", "sh", "-c", "read x; echo \"got:$x\"; exit 9", json_out=True,
             e=e, stdin=subprocess.DEVNULL)
    d = json.loads(res.stdout)
    assert d["tag"] == "" and d["pid"] > 0
    res = mc(m.addr, "attach", "--stdin", str(d["id"]), input=b"line\n", e=e)
    assert (res.returncode, res.stdout) == (9, b"got:line\n"), res


def test_reattach_after_maitctl_is_killed():
    """The issue's reattach: the first maitctl killed (SIGKILL) once it
    has written the first half (the process then waits); the next one
    prints the rest, every number once, in order, and the exit code is
    3."""
    m = maitred()
    e = env()
    out1 = os.path.join(tmpdir(), "out1")
    go = os.path.join(tmpdir(), "go")
    half = "".join(f"{i}\n" for i in range(1, 50001)).encode()
    script = (f"for i in $(seq 1 50000); do echo $i; done; while [ ! -e {go} ]; do sleep 0.05; done; "
              "for i in $(seq 50001 100000); do echo $i; done; exit 3")
    with open(out1, "wb") as f:
        p = popen(m.addr, "exec", "--tag", "numbers", "--", "sh", "-c", script, e=e, stdin=subprocess.DEVNULL,
                  stdout=f, stderr=subprocess.PIPE)
        wait_until(lambda: os.path.getsize(out1) == len(half), 30, what="the first half")
        p.kill()
        p.wait()
    open(go, "w").close()
    res = mc(m.addr, "attach", "numbers", e=e)
    assert res.returncode == 3, res.stderr
    with open(out1, "rb") as f:
        assert f.read() == half
    assert half + res.stdout == SEQ
    assert res.stderr == b""


def test_reattach_after_maitctl_is_killed_mid_output():
    """Killed at any moment while output flows: what the first maitctl
    wrote and what attach prints make every number, in order; a kill
    between a write and the store of its offset prints that one piece
    again (docs/process-cli.md: at most 64 KiB), never loses one."""
    m = maitred()
    e = env()
    out1 = os.path.join(tmpdir(), "out1")
    with open(out1, "wb") as f:
        p = popen(m.addr, "exec", "--tag", "numbers", "--", "sh", "-c", NUMBERS, e=e, stdin=subprocess.DEVNULL,
                  stdout=f, stderr=subprocess.PIPE)
        wait_until(lambda: os.path.getsize(out1) > 1000, 30, what="first output")
        p.kill()
        p.wait()
    res = mc(m.addr, "attach", "numbers", e=e)
    assert res.returncode == 3, res.stderr
    with open(out1, "rb") as f:
        first = f.read()
    assert 0 < len(first) < len(SEQ)
    assert SEQ.startswith(first)
    again = len(first) + len(res.stdout) - len(SEQ)
    assert 0 <= again <= 64 * 1024, again
    assert first[len(first) - again:] + SEQ[len(first):] == res.stdout
    assert res.stderr == b""


def test_attach_from_start_replays_what_is_kept():
    m = maitred()
    e = env()
    p = popen(m.addr, "exec", "--tag", "n", "--", "sh", "-c", NUMBERS, e=e, stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"1\n"
    p.kill()
    p.wait()
    res = mc(m.addr, "attach", "--from-start", "n", e=e)
    assert res.returncode == 3 and res.stdout == SEQ and res.stderr == b"", res.stderr


def test_dropped_output_is_counted():
    m = maitred()
    e = env()
    res = mc(m.addr, "exec", "-d", "--tag", "big", "--buffer", "65536", "--", "sh", "-c",
             "head -c 1000000 /dev/zero; echo; echo end", e=e, stdin=subprocess.DEVNULL)
    assert res.returncode == 0
    wait_until(lambda: not [x for x in ps(m.addr) if x["running"]], 30, what="the end")
    res = mc(m.addr, "attach", "big", e=e)
    assert res.returncode == 0
    # 1000005 bytes written, the last 65536 kept: the rest lost, said exactly.
    assert len(res.stdout) == 65536 and res.stdout.endswith(b"\nend\n")
    assert check_stderr(res.stderr) == f"maitctl: {1000005 - 65536} bytes of stdout were lost: " \
                                      "the guest's buffer had moved on\n"


class Relay:
    """A unix-socket relay between maitctl and maitred whose connections
    can be cut: the connection lost while the process runs on."""

    def __init__(self, target):
        self.target = target
        self.path = os.path.join(tmpdir(), "relay.sock")
        self.lsock = socket.socket(socket.AF_UNIX)
        self.lsock.bind(self.path)
        self.lsock.listen(8)
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def addr(self):
        return "unix:" + self.path

    def accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX)
            u.connect(self.target)
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_connection_lost_says_how_to_reattach():
    m = maitred()
    e = env()
    relay = Relay(m.sock)
    out1 = os.path.join(tmpdir(), "out1")
    with open(out1, "wb") as f:
        p = popen(relay.addr, "exec", "--", "sh", "-c", NUMBERS, e=e, stdin=subprocess.DEVNULL, stdout=f,
                  stderr=subprocess.PIPE)
        wait_until(lambda: os.path.getsize(out1) > 1000, 30, what="first output")
        relay.cut()
        assert p.wait(timeout=30) == 123
    err = check_stderr(p.stderr.read())
    assert "connection to " + relay.addr + " lost" in err, err
    ident = [x["id"] for x in ps(m.addr)][0]
    assert f"reattach with: maitctl attach {ident}\n" in err, err
    # The same address: where maitctl got to is kept per address and id.
    res = mc(relay.addr, "attach", str(ident), e=e)
    with open(out1, "rb") as f:
        assert f.read() + res.stdout == SEQ
    assert res.returncode == 3


def test_kill_on_disconnect():
    m = maitred()
    p = popen(m.addr, "exec", "--kill-on-disconnect", "--", "sh", "-c", "echo ready; exec sleep 1000",
              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    pid = ps(m.addr)[0]["pid"]
    p.kill()
    p.wait()
    wait_until(lambda: not pid_alive(pid), 10, what="the process killed")
    assert [(x["running"], x["signal"]) for x in ps(m.addr, "--all")] == [(False, 9)]



def test_quick_detached_process_can_be_attached():
    """`exec -d` of a process that ends at once: its Start call goes right
    after Started, racing the end; the process stays remembered for an
    attach, which gets its output and its status (and then it is gone)."""
    m = maitred()
    e = env()
    for i in range(3):
        res = mc(m.addr, "exec", "-d", "--", "sh", "-c", "echo hi %d; exit 5" % i, e=e, stdin=subprocess.DEVNULL)
        assert res.returncode == 0 and res.stderr == b"", res
        ident = int(res.stdout)
        wait_until(lambda: not ps(m.addr), 10, what="the process ended")
        res = mc(m.addr, "attach", str(ident), e=e, stdin=subprocess.DEVNULL)
        assert (res.returncode, res.stdout, res.stderr) == (5, b"hi %d\n" % i, b""), res
    assert ps(m.addr, "--all") == []

def test_ps_table_and_json():
    m = maitred()
    res = mc(m.addr, "exec", "-d", "--tag", "sleeper", "--", "sleep", "1000", stdin=subprocess.DEVNULL)
    ident = int(res.stdout)
    # Ends once the detaching maitctl is gone: an Exited queued to the
    # Start call before it closed would count as seen (and forgotten).
    go = os.path.join(tmpdir(), "go")
    script = f"while [ ! -e {go} ]; do sleep 0.05; done; exit 3"
    res = mc(m.addr, "exec", "-d", "--", "sh", "-c", script, stdin=subprocess.DEVNULL)
    quick = int(res.stdout)
    open(go, "w").close()
    wait_until(lambda: len(ps(m.addr)) == 1, 10, what="sh to end")
    text = mc(m.addr, "ps").stdout.decode().splitlines()
    assert text[0].split() == ["ID", "PID", "TAG", "STATE", "EXIT", "STARTED", "ARGV"]
    row = text[1].split()
    assert row[0] == str(ident) and row[2:5] == ["sleeper", "running", "-"] and row[-2:] == ["sleep", "1000"]
    assert len(text) == 2
    rows = ps(m.addr, "--all")
    assert [(x["id"], x["running"], x.get("exit_code"), x["argv"]) for x in rows] == [
        (ident, True, None, ["sleep", "1000"]), (quick, False, 3, ["sh", "-c", script])]
    assert rows[0]["started"].endswith("Z") and rows[0]["pty"] is False
    # The exited one was seen by ps --all: forgotten.
    assert [x["id"] for x in ps(m.addr, "--all")] == [ident]
    assert mc(m.addr, "kill", "-KILL", str(ident)).returncode == 0
    wait_until(lambda: not ps(m.addr), 10, what="the kill")
    text = mc(m.addr, "ps", "-a").stdout.decode().splitlines()
    assert text[1].split()[3:5] == ["exited", "SIGKILL"], text


def test_kill_signal_forms():
    m = maitred()
    for form, sig in [([], 15), (["-9"], 9), (["-s", "INT"], 2), (["--signal", "sighup"], 1), (["-USR1"], 10),
                      (["--signal=QUIT"], 3)]:
        res = mc(m.addr, "exec", "-d", "--tag", "t", "--", "sleep", "1000", stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res
        res = mc(m.addr, "kill", *form, "t")
        assert res.returncode == 0 and res.stdout == b"" and res.stderr == b"", (form, res)
        wait_until(lambda: not ps(m.addr), 10, what="the kill")
        assert [x["signal"] for x in ps(m.addr, "--all")] == [sig], form


def test_kill_group_ends_the_tree():
    m = maitred()
    res = mc(m.addr, "exec", "-d", "--tag", "tree", "--", "sh", "-c", "sleep 1000 & sleep 1000 & wait",
             stdin=subprocess.DEVNULL)
    assert res.returncode == 0
    pid = ps(m.addr)[0]["pid"]
    sleeps = wait_until(lambda: len(children_of(pid)) == 2 and children_of(pid), 10, what="two sleeps")
    res = mc(m.addr, "kill", "--group", "tree")
    assert res.returncode == 0, res
    wait_until(lambda: not any(pid_alive(p) for p in sleeps + [pid]), 10, what="no sleep left")
    assert [x["signal"] for x in ps(m.addr, "--all")] == [15]


def test_bad_inputs():
    m = maitred()
    cases = [
        (["attach", "999"], 1, "maitctl: NOT_FOUND: id: no process 999\n"),
        (["attach", "nosuchtag"], 1, "maitctl: NOT_FOUND: tag: no process has the tag nosuchtag\n"),
        (["attach"], 2, "maitctl attach: no process given (an id or a tag)\n"),
        (["attach", "1", "2"], 2, "maitctl attach: unexpected argument '2'\n"),
        (["kill", "999"], 1, "maitctl: NOT_FOUND: id: no process 999\n"),
        (["kill", "nosuchtag"], 1, "maitctl: NOT_FOUND: tag: no running process has the tag nosuchtag\n"),
        (["kill", "-NOPE", "1"], 2,
         "maitctl kill: unknown signal 'NOPE': expected a name (TERM, KILL, ...) or 1-64\n"),
        (["kill", "-s", "0", "1"], 2,
         "maitctl kill: unknown signal '0': expected a name (TERM, KILL, ...) or 1-64\n"),
        (["kill", "-s"], 2, "maitctl kill: -s needs a signal\n"),
        (["kill"], 2, "maitctl kill: no process given (an id or a tag)\n"),
        (["exec"], 2, "maitctl exec: no command given (maitctl exec [OPTIONS] -- ARGV...)\n"),
        (["exec", "--"], 2, "maitctl exec: no command given (maitctl exec [OPTIONS] -- ARGV...)\n"),
        (["exec", "--env", "=x", "--", "true"], 2, "maitctl exec: invalid --env '=x': expected KEY=VALUE\n"),
        (["exec", "--buffer", "lots", "--", "true"], 2,
         "maitctl exec: invalid --buffer 'lots': expected a number of bytes\n"),
        (["exec", "--", "/nonexistent/program"], 1, None),
        (["exec", "--user", "nosuchuser", "--", "true"], 1,
         "maitctl: INVALID_ARGUMENT: user: no such user: nosuchuser\n"),
        (["ps", "extra"], 2, "maitctl ps: unexpected argument 'extra'\n"),
    ]
    for args, code, err in cases:
        res = mc(m.addr, *args, stdin=subprocess.DEVNULL)
        assert res.returncode == code, (args, res)
        if err is not None:
            assert res.stderr.decode() == err, (args, res.stderr)
        assert res.stdout == b"", (args, res)
    res = mc(m.addr, "exec", "--", "/nonexistent/program", stdin=subprocess.DEVNULL)
    assert "cannot execute '/nonexistent/program'" in res.stderr.decode(), res.stderr
    # A tag a running process has.
    assert mc(m.addr, "exec", "-d", "--tag", "dup", "--", "sleep", "1000").returncode == 0
    res = mc(m.addr, "exec", "--tag", "dup", "--", "true", stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and res.stderr.decode().startswith("maitctl: ALREADY_EXISTS: tag:"), res
    assert mc(m.addr, "kill", "-9", "dup").returncode == 0
    # No maitred there.
    res = mc("unix:" + os.path.join(tmpdir(), "none.sock"), "exec", "--", "true", stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and "UNAVAILABLE" in res.stderr.decode(), res
    # maitred serves on.
    assert mc(m.addr, "exec", "--", "true", stdin=subprocess.DEVNULL).returncode == 0
    assert m.proc.poll() is None
