"""valet.v1.Process against a real maitred, from the contract alone
(shared/spec's valet-v1.md, "valet.v1.Process") and docs/process.md's
decisions: Debian's grpcio with classes generated at test time
(tests/lib/process_client.py). Every method and field; the reattach test
of the issue (a disconnect, a killed connection, a buffer small enough to
drop output, with exact counts); trees killed by group; PTY and resize;
stdin byte-exact; kill_on_disconnect; every bad input and limit."""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import grpc

import valet
from lanes import timing
from process_client import MiB, Run, children_of, maitred, pb, pid_alive, run, stubs
from valet import grpc_error, tmpdir, wait_until

SEQ = "for i in $(seq 1 100000); do echo $i; done; sleep 1; exit 3"
SEQ_BYTES = b"".join(b"%d\n" % i for i in range(1, 100001))


def _req(argv, **kw):
    return pb().StartRequest(argv=argv, **kw)


def _listed(s, include_exited=False):
    return {p.id: p for p in s.List(pb().ListProcessesRequest(include_exited=include_exited)).processes}


def _start_detached(s, argv, **kw):
    """Starts argv, takes Started, hangs up: the process goes on."""
    call = s.Start(_req(argv, **kw), timeout=30)
    ev = next(call)
    assert ev.WhichOneof("event") == "started", ev
    call.cancel()
    return ev.started


def _wait_exited(s, pid_or_id):
    """Until the process is no longer listed as running (without seeing its
    end, which would forget it)."""
    wait_until(lambda: pid_or_id not in _listed(s), 30, what="process %d exited" % pid_or_id)


def _start_exiting(s, argv_tail="exit 0", **kw):
    """A detached process that ends once it is told to (its stdin closed):
    its Start call is gone by then, so nothing has seen its end."""
    st = _start_detached(s, ["sh", "-c", "read x; " + argv_tail], stdin=True, **kw)
    s.SendInput(pb().SendInputRequest(id=st.id, eof=True))
    _wait_exited(s, st.id)
    return st


def _start_code(s, argv):
    try:
        list(s.Start(_req(argv), timeout=30))
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def _alive(s):
    s.List(pb().ListProcessesRequest(), timeout=10)


# --- Start, its events and fields -----------------------------------------

def test_start_pipes_exit_code_and_streams_apart():
    m = maitred()
    s = stubs(m.addr)
    r = run(s, ["sh", "-c", "printf 'to out'; printf 'to err' >&2; exit 3"], tag="first")
    assert r.started.id > 0 and r.started.pid > 0 and r.started.tag == "first", r.started
    assert (r.out, r.err, r.pty) == (b"to out", b"to err", b""), (r.out, r.err)
    assert (r.exited.exit_code, r.exited.signal, r.exited.core_dumped) == (3, 0, False), r.exited
    now = time.time()
    assert abs(r.exited.ended.seconds + r.exited.ended.nanos / 1e9 - now) < 30, r.exited.ended
    r2 = run(s, ["true"])
    assert r2.started.id > r.started.id, (r.started.id, r2.started.id)  # never reused
    assert (r2.exited.exit_code, r2.exited.signal) == (0, 0)
    assert not pid_alive(r.started.pid)
    m.check_clean()


def test_exit_9_and_killed_by_9_are_told_apart():
    m = maitred()
    s = stubs(m.addr)
    r = run(s, ["sh", "-c", "exit 9"])
    assert (r.exited.exit_code, r.exited.signal, r.exited.core_dumped) == (9, 0, False), r.exited
    r = run(s, ["sh", "-c", "kill -9 $$"])
    assert (r.exited.exit_code, r.exited.signal, r.exited.core_dumped) == (-1, 9, False), r.exited
    r = run(s, ["sh", "-c", "ulimit -c 0; kill -SEGV $$"])
    assert (r.exited.exit_code, r.exited.signal, r.exited.core_dumped) == (-1, 11, False), r.exited


def test_core_dumped():
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    assert not pattern.startswith("|"), "this test needs a plain core_pattern, not " + pattern
    m = maitred()
    s = stubs(m.addr)
    d = tmpdir()
    r = run(s, ["sh", "-c", "ulimit -c unlimited; kill -QUIT $$"], cwd=d)
    assert (r.exited.exit_code, r.exited.signal, r.exited.core_dumped) == (-1, 3, True), r.exited


def test_env_cwd_user_and_clear_env():
    m = maitred()
    s = stubs(m.addr)
    d = tmpdir()
    os.chmod(d, 0o755)
    r = run(s, ["sh", "-c", 'echo "$FOO|$HOME|$USER|$LOGNAME|$PATH|${TERM-unset}"; pwd; id -u; id -g'],
            env={"FOO": "bar baz", "HOME": "/custom"}, cwd=d)
    lines = r.out.decode().splitlines()
    assert lines[0] == "bar baz|/custom|root|root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|unset", lines
    assert lines[1:] == [d, "0", "0"], lines
    r = run(s, ["sh", "-c", "id -u; id -g; pwd; echo $HOME $USER"], user="nobody")
    assert r.out.decode().splitlines() == ["65534", "65534", "/nonexistent" if os.path.isdir("/nonexistent") else "/",
                                           "/nonexistent nobody"], r.out
    r = run(s, ["/usr/bin/env"], env={"ONLY": "this"}, clear_env=True)
    assert r.out == b"ONLY=this\n", r.out
    r = run(s, ["env"], clear_env=True)  # argv[0] found along the default PATH
    assert (r.out, r.exited.exit_code) == (b"", 0), r.out
    # No cwd: the user's home.
    r = run(s, ["pwd"])
    assert r.out == b"/root\n", r.out


def test_own_session_and_group():
    m = maitred()
    s = stubs(m.addr)
    r = run(s, ["sh", "-c", "cut -d' ' -f5,6 /proc/$$/stat; echo $$"])
    pgid, sid, pid = r.out.decode().split()
    assert pgid == sid == pid == str(r.started.pid), r.out


def test_stdin_false_is_dev_null():
    m = maitred()
    s = stubs(m.addr)
    r = run(s, ["sh", "-c", "cat; readlink /proc/self/fd/0"])
    assert r.out == b"/dev/null\n", r.out


# --- PTY -------------------------------------------------------------------

def test_pty_output_resize_and_eof():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["sh", "-c", "stty size; tty; echo TERM=$TERM; read x; stty size; cat; echo after-eof"],
                        pty=True, rows=33, cols=101, stdin=True), timeout=30)
    r = Run()
    r.consume(call, until=lambda r: b"TERM=" in r.pty and r.pty.endswith(b"\n"))
    pid = r.started.id
    assert r.pty.startswith(b"33 101\r\n/dev/pts/"), r.pty
    assert b"TERM=xterm-256color\r\n" in r.pty, r.pty
    s.Resize(pb().ResizeRequest(id=pid, rows=50, cols=132))
    s.SendInput(pb().SendInputRequest(id=pid, data=b"go\n"))
    r.consume(call, until=lambda r: b"50 132\r\n" in r.pty)
    # eof on a PTY is ^D: cat ends, the shell goes on, the terminal too.
    s.SendInput(pb().SendInputRequest(id=pid, data=b"line\n", eof=True))
    r.consume(call)
    assert r.exited.exit_code == 0, r.exited
    tail = r.pty[r.pty.index(b"50 132\r\n"):]
    assert tail.endswith(b"after-eof\r\n"), tail
    assert tail.count(b"line\r\n") == 2, tail  # the echo and cat's copy
    assert r.data[1] == r.data[2] == b""


def test_pty_without_size_is_24x80():
    m = maitred()
    s = stubs(m.addr)
    r = run(s, ["stty", "size"], pty=True)
    assert r.pty == b"24 80\r\n", r.pty


# --- stdin -----------------------------------------------------------------

def test_stdin_8mib_through_cat_byte_exact():
    m = maitred()
    s = stubs(m.addr)
    data = random.Random(7).randbytes(8 * MiB)
    call = s.Start(_req(["cat"], stdin=True, buffer_bytes=16 * MiB), timeout=120)
    r = Run()
    r.add(next(call))
    reader = threading.Thread(target=r.consume, args=(call,))
    reader.start()
    sizes = [1, 4093, MiB, 65537, 3 * MiB + 5]
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        s.SendInput(pb().SendInputRequest(id=r.started.id, data=data[pos:pos + n]), timeout=60)
        pos += n
        i += 1
    s.SendInput(pb().SendInputRequest(id=r.started.id, eof=True), timeout=60)
    reader.join(120)
    assert r.exited is not None and r.exited.exit_code == 0, r.exited
    assert r.dropped[1] == 0 and len(r.out) == len(data) and r.out == data, (len(r.out), r.dropped)
    _alive(s)


def test_send_input_refusals():
    m = maitred()
    s = stubs(m.addr)
    st = _start_detached(s, ["sleep", "1000"])
    assert grpc_error(s.SendInput, pb().SendInputRequest(id=st.id, data=b"x"))[0] == "FAILED_PRECONDITION"
    st2 = _start_detached(s, ["sh", "-c", "cat >/dev/null; sleep 1000"], stdin=True)
    s.SendInput(pb().SendInputRequest(id=st2.id, data=b"abc", eof=True))
    code, msg = grpc_error(s.SendInput, pb().SendInputRequest(id=st2.id, data=b"x"))
    assert code == "FAILED_PRECONDITION" and "closed" in msg, (code, msg)
    st3 = _start_exiting(s)
    code, msg = grpc_error(s.SendInput, pb().SendInputRequest(id=st3.id, data=b"x"))
    assert code == "FAILED_PRECONDITION" and "exited" in msg, (code, msg)
    for st_ in (st, st2):
        s.SendSignal(pb().SendSignalRequest(id=st_.id, signal=9, group=True))
    _alive(s)


# --- reattach ----------------------------------------------------------------

def _numbers_complete(out):
    assert out == SEQ_BYTES, (len(out), len(SEQ_BYTES), out[:40])


def test_reattach_after_disconnect():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["sh", "-c", SEQ]), timeout=60)
    first = Run()
    first.consume(call, until=lambda r: len(r.out) > 0)
    call.cancel()
    offset = first.next[1]
    assert 0 < offset < len(SEQ_BYTES), offset
    second = Run(base={1: offset, 2: 0, 3: 0})
    second.consume(s.Connect(pb().ConnectRequest(id=first.started.id, stdout_offset=offset), timeout=60))
    assert second.started.id == first.started.id and second.started.pid == first.started.pid
    assert second.dropped[1] == 0
    _numbers_complete(first.out + second.out)
    assert (second.exited.exit_code, second.exited.signal) == (3, 0), second.exited
    # Its end was seen: forgotten.
    assert first.started.id not in _listed(s, include_exited=True)


CLIENT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import valet
from process_client import Run, pb, stubs
s = stubs(sys.argv[2])
call = s.Start(pb().StartRequest(argv=["sh", "-c", sys.argv[3]]), timeout=60)
r = Run()
r.consume(call, until=lambda r: len(r.out) > 0)
sys.stdout.write("%d %d\n" % (r.started.id, r.next[1]))
sys.stdout.flush()
sys.stdin.read()
"""


def test_reattach_after_client_connection_killed():
    """The first client is a process of its own, killed with SIGKILL
    mid-stream: maitred sees its connection die, not a cancel."""
    m = maitred()
    s = stubs(m.addr)
    client = subprocess.Popen([sys.executable, "-c", CLIENT, os.path.join(valet.ROOT, "tests", "lib"), m.addr, SEQ],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    valet.track(client)
    line = client.stdout.readline().decode()
    pid, offset = (int(x) for x in line.split())
    client.kill()
    client.wait()
    second = Run(base={1: offset, 2: 0, 3: 0})
    second.consume(s.Connect(pb().ConnectRequest(id=pid, stdout_offset=offset), timeout=60))
    assert second.dropped[1] == 0
    head = SEQ_BYTES[:offset]
    _numbers_complete(head + second.out)
    assert second.exited.exit_code == 3, second.exited


def test_reattach_with_small_buffer_counts_dropped_exactly():
    m = maitred()
    s = stubs(m.addr)
    buf = 4096
    call = s.Start(_req(["sh", "-c", SEQ], buffer_bytes=buf), timeout=60)
    first = Run()
    first.consume(call, until=lambda r: len(r.out) > 0)
    call.cancel()
    offset = first.next[1]
    # The first call may have lost some already: exactly what it says.
    assert first.dropped[1] + len(first.out) == offset
    assert first.out == SEQ_BYTES[first.dropped[1]:offset]
    _wait_exited(s, first.started.id)
    second = Run(base={1: offset, 2: 0, 3: 0})
    second.consume(s.Connect(pb().ConnectRequest(id=first.started.id, stdout_offset=offset), timeout=60))
    total = len(SEQ_BYTES)
    assert second.dropped[1] == total - buf - offset, (second.dropped[1], total, offset)
    assert offset + second.dropped[1] + len(second.out) == total
    assert second.out == SEQ_BYTES[-buf:], second.out[:40]
    assert second.exited.exit_code == 3
    # Its end was seen: forgotten.
    code, _ = grpc_error(lambda: list(s.Connect(pb().ConnectRequest(id=first.started.id))))
    assert code == "NOT_FOUND"  # the end was seen: forgotten



# --- an attached client slows the process; nobody attached, it drops -------

BIG = 1200000  # seq 1 BIG: 8.3 MB
BIG_BYTES = b"".join(b"%d\n" % i for i in range(1, BIG + 1))


def _slow_consume(call, r, pause, each):
    """Reads call into r: nothing for pause seconds, then sleeps each
    seconds between messages."""
    time.sleep(pause)
    for ev in call:
        r.add(ev)
        time.sleep(each)


# The process is held while its client does not read: still running after
# a second in which, unheld, it writes its 8 MB many times over.
@timing
def test_slow_reader_gets_every_byte_and_holds_the_process():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["seq", "1", str(BIG)], buffer_bytes=64 * 1024), timeout=120)
    r = Run()
    r.add(next(call))
    time.sleep(1)
    assert r.started.id in _listed(s), "not held by its unread client"
    _slow_consume(call, r, 0, 0.001)
    assert r.dropped == {1: 0, 2: 0, 3: 0}, r.dropped
    assert len(r.out) == len(BIG_BYTES) and r.out == BIG_BYTES, len(r.out)
    assert (r.exited.exit_code, r.exited.signal) == (0, 0), r.exited


def test_two_attached_calls_one_slow_both_get_every_byte():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["sh", "-c", "read x; seq 1 %d; seq 1 1000 >&2; exit 6" % BIG], stdin=True,
                        buffer_bytes=64 * 1024), timeout=120)
    fast, slow = Run(), Run()
    fast.add(next(call))
    conn = s.Connect(pb().ConnectRequest(id=fast.started.id), timeout=120)
    slow.add(next(conn))
    threads = [threading.Thread(target=fast.consume, args=(call,)),
               threading.Thread(target=_slow_consume, args=(conn, slow, 0.5, 0.002))]
    for t in threads:
        t.start()
    s.SendInput(pb().SendInputRequest(id=fast.started.id, data=b"go\n"))
    for t in threads:
        t.join(120)
    err = b"".join(b"%d\n" % i for i in range(1, 1001))
    for r in (fast, slow):
        assert r.dropped == {1: 0, 2: 0, 3: 0}, r.dropped
        assert r.out == BIG_BYTES and r.err == err, (len(r.out), len(r.err))
        assert r.exited.exit_code == 6


def test_connect_from_a_dropped_offset_gets_dropped_once_then_every_byte():
    """Unattached, the process ran on and its oldest output went; the call
    that comes back from offset 0 is told exactly how much, then holds the
    process and loses nothing more."""
    m = maitred()
    s = stubs(m.addr)
    mark = os.path.join(tmpdir(), "mark")
    st = _start_detached(s, ["sh", "-c", "seq 1 100000; touch %s; read x; seq 100001 %d" % (mark, BIG)],
                         stdin=True, buffer_bytes=64 * 1024)
    wait_until(lambda: os.path.exists(mark), 30, what="the first part written")
    conn = s.Connect(pb().ConnectRequest(id=st.id), timeout=120)
    r = Run()
    r.add(next(conn))
    s.SendInput(pb().SendInputRequest(id=st.id, data=b"go\n"))
    _slow_consume(conn, r, 0.5, 0.001)
    first = len(SEQ_BYTES)
    assert r.dropped[1] == first - 64 * 1024, (r.dropped, first)
    assert r.out == BIG_BYTES[first - 64 * 1024:], len(r.out)
    assert r.exited.exit_code == 0


# A client that stops reading holds the process while attached; its call's
# end lets it run on (dropping, unattached: the exact count).
@timing
def test_stalled_client_holds_the_process_until_it_goes():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["seq", "1", str(BIG)], buffer_bytes=64 * 1024), timeout=120)
    st = next(call).started
    time.sleep(1)
    assert st.id in _listed(s)
    call.cancel()
    _wait_exited(s, st.id)
    r = Run()
    r.consume(s.Connect(pb().ConnectRequest(id=st.id), timeout=30))
    assert r.dropped[1] == len(BIG_BYTES) - 64 * 1024, r.dropped
    assert r.out == BIG_BYTES[-64 * 1024:] and r.exited.exit_code == 0

def test_several_calls_attached_at_once_by_id_and_tag():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["sh", "-c", "read x; seq 1 20000; seq 1 5 >&2; exit 7"], stdin=True, tag="multi"),
                   timeout=60)
    runs = [Run()]
    runs[0].add(next(call))
    sid = runs[0].started.id
    calls = [call, s.Connect(pb().ConnectRequest(tag="multi"), timeout=60),
             s.Connect(pb().ConnectRequest(id=sid), timeout=60)]
    runs += [Run(), Run()]
    for c, r in zip(calls[1:], runs[1:]):
        r.add(next(c))
        assert r.started.id == sid and r.started.tag == "multi", r.started
    threads = [threading.Thread(target=r.consume, args=(c,)) for c, r in zip(calls, runs)]
    for t in threads:
        t.start()
    s.SendInput(pb().SendInputRequest(id=sid, data=b"go\n"))
    for t in threads:
        t.join(60)
    want = "".join("%d\n" % i for i in range(1, 20001)).encode()
    for r in runs:
        assert r.out == want and r.err == b"1\n2\n3\n4\n5\n", (len(r.out), r.err)
        assert r.exited.exit_code == 7


def test_connect_offsets_and_replay_from_start():
    m = maitred()
    s = stubs(m.addr)
    st = _start_detached(s, ["sh", "-c", "printf abcdef; printf XYZ >&2; exec sleep 1000"])
    r = Run()
    c = s.Connect(pb().ConnectRequest(id=st.id), timeout=30)
    r.consume(c, until=lambda r: r.out == b"abcdef" and r.err == b"XYZ")
    c.cancel()
    r = Run(base={1: 2, 2: 1, 3: 0})
    c = s.Connect(pb().ConnectRequest(id=st.id, stdout_offset=2, stderr_offset=1), timeout=30)
    r.consume(c, until=lambda r: r.out == b"cdef" and r.err == b"YZ")
    c.cancel()
    # At the very end: nothing yet, then what comes.
    c = s.Connect(pb().ConnectRequest(id=st.id, stdout_offset=6, stderr_offset=3), timeout=30)
    assert next(c).WhichOneof("event") == "started"
    c.cancel()
    code, msg = grpc_error(lambda: list(s.Connect(pb().ConnectRequest(id=st.id, stdout_offset=7))))
    assert code == "OUT_OF_RANGE" and "stdout_offset" in msg, (code, msg)
    code, msg = grpc_error(lambda: list(s.Connect(pb().ConnectRequest(id=st.id, stderr_offset=4))))
    assert code == "OUT_OF_RANGE" and "stderr_offset" in msg, (code, msg)
    s.SendSignal(pb().SendSignalRequest(id=st.id, signal=9))
    _alive(s)


# --- signals and trees -------------------------------------------------------

def test_group_kill_leaves_no_sleep():
    m = maitred()
    s = stubs(m.addr)
    st = _start_detached(s, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    wait_until(lambda: len(children_of(st.pid)) == 2, 20, what="two sleeps")
    sleeps = children_of(st.pid)
    s.SendSignal(pb().SendSignalRequest(id=st.id, signal=signal.SIGTERM, group=True))
    r = Run()
    r.consume(s.Connect(pb().ConnectRequest(id=st.id), timeout=30))
    assert (r.exited.exit_code, r.exited.signal) == (-1, signal.SIGTERM), r.exited
    wait_until(lambda: not any(pid_alive(p) for p in sleeps), 10, what="sleeps gone")


def test_ignored_sigterm_then_sigkill():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]), timeout=60)
    r = Run()
    r.consume(call, until=lambda r: r.out == b"ready\n")
    s.SendSignal(pb().SendSignalRequest(id=r.started.id, signal=signal.SIGTERM))
    time.sleep(0.3)
    assert _listed(s)[r.started.id].running
    s.SendSignal(pb().SendSignalRequest(id=r.started.id, signal=signal.SIGKILL))
    r.consume(call)
    assert (r.exited.exit_code, r.exited.signal) == (-1, 9), r.exited


def test_background_job_does_not_hang_the_end_and_is_killed_by_group():
    m = maitred()
    s = stubs(m.addr)
    t0 = time.monotonic()
    call = s.Start(_req(["sh", "-c", "sleep 1000 & echo $!; echo done"]), timeout=30)
    r = Run()
    r.consume(call)
    assert time.monotonic() - t0 < 20
    bg = int(r.out.split()[0])
    assert r.out.endswith(b"done\n") and r.exited.exit_code == 0, r.out
    assert pid_alive(bg)
    # The process was seen to end: forgotten. Started again detached, its
    # group can still be signalled after its own end.
    st = _start_detached(s, ["sh", "-c", "sleep 1000 & echo $!"])
    _wait_exited(s, st.id)
    code, _ = grpc_error(s.SendSignal, pb().SendSignalRequest(id=st.id, signal=9))
    assert code == "FAILED_PRECONDITION"
    s.SendSignal(pb().SendSignalRequest(id=st.id, signal=9, group=True))
    r2 = Run()
    r2.consume(s.Connect(pb().ConnectRequest(id=st.id), timeout=30))
    bg2 = int(r2.out.split()[0])
    wait_until(lambda: not pid_alive(bg2), 10, what="background sleep killed")
    code, msg = grpc_error(s.SendSignal, pb().SendSignalRequest(id=st.id, signal=9, group=True))
    assert code == "NOT_FOUND", (code, msg)  # seen, forgotten
    os.kill(bg, signal.SIGKILL)


# --- lifetime ----------------------------------------------------------------

def test_kill_on_disconnect():
    m = maitred()
    s = stubs(m.addr)
    killed = _start_detached(s, ["sh", "-c", "sleep 1000 & exec sleep 1000"], kill_on_disconnect=True)
    kept = _start_detached(s, ["sleep", "1000"])
    wait_until(lambda: killed.id not in _listed(s), 10, what="kill_on_disconnect")
    assert not pid_alive(killed.pid)
    time.sleep(0.2)
    assert pid_alive(kept.pid)
    procs = _listed(s, include_exited=True)
    assert procs[killed.id].exited.signal == 9 and not procs[killed.id].running
    assert procs[kept.id].running
    s.SendSignal(pb().SendSignalRequest(id=kept.id, signal=9))


def test_list_fields_and_forgetting():
    m = maitred()
    s = stubs(m.addr)
    t0 = time.time()
    a = _start_detached(s, ["sh", "-c", "exec sleep 1000", "x" * 3000], tag="sleeper")
    b = _start_exiting(s, "exit 5", user="nobody", pty=True)
    running = _listed(s)
    assert list(running) == [a.id], running
    p = running[a.id]
    assert (p.pid, p.tag, p.running, p.pty, p.user) == (a.pid, "sleeper", True, False, "root"), p
    # argv as far as 2048 bytes go.
    assert list(p.argv[:3]) == ["sh", "-c", "exec sleep 1000"] and p.argv[3] == "x" * (2048 - 19), p.argv
    assert abs(p.started.seconds - t0) < 30 and not p.HasField("exited")
    everything = _listed(s, include_exited=True)
    assert list(everything) == [a.id, b.id]
    q = everything[b.id]
    assert (q.running, q.pty, q.user, q.exited.exit_code, q.exited.signal) == (False, True, "nobody", 5, 0), q
    assert list(q.argv) == ["sh", "-c", "read x; exit 5"]
    # Seen: gone from the next List.
    assert list(_listed(s, include_exited=True)) == [a.id]
    s.SendSignal(pb().SendSignalRequest(id=a.id, signal=9))


# The exited process nobody has seen is forgotten after the time given.
@timing
def test_exited_unseen_is_forgotten_after_keep_time():
    m = maitred(["--process-keep-exited", "1"])
    s = stubs(m.addr)
    st = _start_exiting(s)
    time.sleep(2)
    assert st.id not in _listed(s, include_exited=True)


def test_tags_unique_among_running():
    m = maitred()
    s = stubs(m.addr)
    a = _start_detached(s, ["sleep", "1000"], tag="job")
    code, msg = grpc_error(lambda: list(s.Start(_req(["true"], tag="job"))))
    assert code == "ALREADY_EXISTS" and "job" in msg, (code, msg)
    s.SendSignal(pb().SendSignalRequest(id=a.id, signal=9))
    _wait_exited(s, a.id)
    b = _start_detached(s, ["sleep", "1000"], tag="job")
    # By tag: the running one, not the older exited one.
    c = s.Connect(pb().ConnectRequest(tag="job"), timeout=30)
    assert next(c).started.id == b.id
    c.cancel()
    s.SendSignal(pb().SendSignalRequest(id=b.id, signal=9))
    _wait_exited(s, b.id)
    c = s.Connect(pb().ConnectRequest(tag="job"), timeout=30)
    assert next(c).started.id == b.id  # the newest exited
    c.cancel()


def test_orderly_stop_ends_calls_and_processes():
    m = maitred()
    s = stubs(m.addr)
    call = s.Start(_req(["sh", "-c", "echo up; exec sleep 1000"]), timeout=60)
    r = Run()
    r.consume(call, until=lambda r: r.out == b"up\n")
    m.stop()
    try:
        r.consume(call)
        raise AssertionError("the call should have ended with an error")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e
    wait_until(lambda: not pid_alive(r.started.pid), 10, what="process ended with maitred")


# --- bad input and limits ----------------------------------------------------

def _no_new_children(m, before):
    assert sorted(m.children()) == sorted(before), (m.children(), before)


def test_bad_start_requests_leave_nothing():
    m = maitred(["--process-buffer-max", "65536"])
    s = stubs(m.addr)
    before = m.children()
    exe = os.path.join(tmpdir(), "not-executable")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(exe, 0o644)
    cases = [
        (_req([]), "INVALID_ARGUMENT", "argv"),
        (_req([""]), "INVALID_ARGUMENT", "argv[0]"),
        (_req(["true"], cwd="relative/dir"), "INVALID_ARGUMENT", "cwd"),
        (_req(["true"], user="no-such-user-here"), "INVALID_ARGUMENT", "no-such-user-here"),
        (_req(["true"], env={"A=B": "c"}), "INVALID_ARGUMENT", "env"),
        (_req(["tr\x00ue"]), "INVALID_ARGUMENT", "argv"),
        (_req(["true"], env={"": "c"}), "INVALID_ARGUMENT", "env"),
        (_req(["true"], tag="t" * 257), "INVALID_ARGUMENT", "tag"),
        (_req(["true"], pty=True, rows=70000), "INVALID_ARGUMENT", "rows"),
        (_req(["no-such-program-xyz"]), "NOT_FOUND", "no-such-program-xyz"),
        (_req(["/no/such/program"]), "NOT_FOUND", "/no/such/program"),
        (_req([exe]), "PERMISSION_DENIED", exe),
        (_req(["true"], cwd="/no/such/dir"), "NOT_FOUND", "/no/such/dir"),
        (_req(["true"], cwd="/etc/passwd"), "FAILED_PRECONDITION", "/etc/passwd"),
        (_req(["true"], buffer_bytes=65537), "RESOURCE_EXHAUSTED", "buffer_bytes"),
    ]
    for req, want, word in cases:
        code, msg = grpc_error(lambda: list(s.Start(req, timeout=30)))
        assert code == want and word in msg, (req, code, msg)
        _alive(s)
    assert _listed(s, include_exited=True) == {}
    _no_new_children(m, before)
    r = run(s, ["true"], buffer_bytes=65536)
    assert r.exited.exit_code == 0


def test_bad_requests_to_the_other_methods():
    m = maitred()
    s = stubs(m.addr)
    st = _start_detached(s, ["sleep", "1000"])
    P = pb()
    for fn, req, want, word in [
        (lambda r: list(s.Connect(r)), P.ConnectRequest(id=999999), "NOT_FOUND", "999999"),
        (lambda r: list(s.Connect(r)), P.ConnectRequest(tag="nope"), "NOT_FOUND", "nope"),
        (lambda r: list(s.Connect(r)), P.ConnectRequest(), "INVALID_ARGUMENT", "target"),
        (lambda r: list(s.Connect(r)), P.ConnectRequest(tag=""), "INVALID_ARGUMENT", "target"),
        (s.SendInput, P.SendInputRequest(id=999999, data=b"x"), "NOT_FOUND", "999999"),
        (s.SendSignal, P.SendSignalRequest(id=999999, signal=9), "NOT_FOUND", "999999"),
        (s.SendSignal, P.SendSignalRequest(id=st.id, signal=0), "INVALID_ARGUMENT", "signal"),
        (s.SendSignal, P.SendSignalRequest(id=st.id, signal=65), "INVALID_ARGUMENT", "signal"),
        (s.SendSignal, P.SendSignalRequest(id=st.id, signal=-3), "INVALID_ARGUMENT", "signal"),
        (s.Resize, P.ResizeRequest(id=999999, rows=1, cols=1), "NOT_FOUND", "999999"),
        (s.Resize, P.ResizeRequest(id=st.id, rows=10, cols=10), "FAILED_PRECONDITION", "PTY"),
    ]:
        code, msg = grpc_error(fn, req)
        assert code == want and word in msg, (req, code, msg)
    pt = _start_detached(s, ["sleep", "1000"], pty=True)
    code, msg = grpc_error(s.Resize, P.ResizeRequest(id=pt.id, rows=0, cols=80))
    assert code == "INVALID_ARGUMENT", (code, msg)
    # A PTY has one stream, told as stdout: no stderr offset but 0.
    code, msg = grpc_error(lambda: list(s.Connect(P.ConnectRequest(id=pt.id, stderr_offset=1))))
    assert code == "OUT_OF_RANGE" and "PTY" in msg, (code, msg)
    for x in (st, pt):
        s.SendSignal(P.SendSignalRequest(id=x.id, signal=9))
        _wait_exited(s, x.id)
    code, msg = grpc_error(s.Resize, P.ResizeRequest(id=pt.id, rows=10, cols=10))
    assert code == "FAILED_PRECONDITION" and "exited" in msg, (code, msg)
    _alive(s)


def test_process_limit():
    m = maitred(["--max-processes", "2"])
    s = stubs(m.addr)
    a = _start_detached(s, ["sleep", "1000"])
    b = _start_exiting(s)
    code, msg = grpc_error(lambda: list(s.Start(_req(["true"]))))
    assert code == "RESOURCE_EXHAUSTED" and "--max-processes" in msg, (code, msg)
    assert b.id in _listed(s, include_exited=True)  # its end seen: forgotten, room again
    assert run(s, ["true"]).exited.exit_code == 0
    s.SendSignal(pb().SendSignalRequest(id=a.id, signal=9))



def test_quick_process_stays_listed_after_its_start_call():
    """A process that exits at once stays remembered after its Start call,
    whether the call went right after Started (racing the exit, its Exited
    maybe queued) or saw the Exited: until a List or a Connect sees it."""
    m = maitred()
    s = stubs(m.addr)
    argv = ["sh", "-c", "echo hi; echo ho >&2; exit 5"]

    def cancelled_after_started():
        call = s.Start(_req(argv), timeout=30)
        st = next(call).started
        time.sleep(0.3)  # the Exited is queued to the call by now
        call.cancel()
        return st.id

    def saw_exited():
        r = run(s, argv)
        assert r.exited.exit_code == 5
        return r.started.id

    for start in (cancelled_after_started, saw_exited):
        listed, connected = start(), start()
        wait_until(lambda: connected not in _listed(s), 10, what="the process exited")
        r = Run()
        r.consume(s.Connect(pb().ConnectRequest(id=connected), timeout=30))
        assert (r.out, r.err, r.dropped[1], r.exited.exit_code) == (b"hi\n", b"ho\n", 0, 5), (r.out, r.exited)
        procs = _listed(s, include_exited=True)
        assert list(procs) == [listed], procs
        assert procs[listed].exited.exit_code == 5 and not procs[listed].running, procs
        # Seen now, by the List and the Connect: forgotten.
        assert _listed(s, include_exited=True) == {}


def test_full_table_evicts_ends_told_to_a_start_only():
    m = maitred(["--max-processes", "3"])
    s = stubs(m.addr)
    # Four exec-style Starts that each saw their Exited: the oldest makes room.
    ids = [run(s, ["sh", "-c", "exit %d" % i]).started.id for i in range(4)]
    assert sorted(_listed(s, include_exited=True)) == ids[1:]
    # An end nobody has seen is not evicted, nor is a running process.
    a = _start_detached(s, ["sleep", "1000"])
    b = _start_detached(s, ["sleep", "1000"])
    c = _start_exiting(s, "exit 2")
    code, msg = grpc_error(lambda: list(s.Start(_req(["true"]))))
    assert code == "RESOURCE_EXHAUSTED" and "--max-processes" in msg, (code, msg)
    assert _listed(s, include_exited=True)[c.id].exited.exit_code == 2  # seen: forgotten
    d = _start_detached(s, ["sleep", "1000"])
    code, msg = grpc_error(lambda: list(s.Start(_req(["true"]))))
    assert code == "RESOURCE_EXHAUSTED" and "3 processes remembered" in msg, (code, msg)
    assert sorted(_listed(s)) == [a.id, b.id, d.id]
    for x in (a, b, d):
        s.SendSignal(pb().SendSignalRequest(id=x.id, signal=9))

def test_total_buffer_limit():
    m = maitred(["--process-buffer-total", "8192"])
    s = stubs(m.addr)
    # 100000 bytes, and the ring cannot grow past the 8 KiB of the total.
    a = _start_exiting(s, "head -c 100000 /dev/zero")
    code, msg = grpc_error(lambda: list(s.Start(_req(["true"]))))
    assert code == "RESOURCE_EXHAUSTED" and "--process-buffer-total" in msg, (code, msg)
    r = Run()
    r.consume(s.Connect(pb().ConnectRequest(id=a.id), timeout=30))
    assert (r.dropped[1], len(r.out), r.out) == (100000 - 8192, 8192, bytes(8192)), (r.dropped, len(r.out))
    assert r.exited.exit_code == 0
    # Its end seen, it is forgotten and its buffers are free again.
    assert run(s, ["true"]).exited.exit_code == 0


def test_bad_process_options_stop_maitred_at_start():
    for args, word in [(["--max-processes", "0"], "--max-processes"), (["--max-processes", "1025"], "--max-processes"),
                       (["--process-buffer-max", "4095"], "--process-buffer-max"),
                       (["--process-buffer-total", "5000000000"], "--process-buffer-total"),
                       (["--process-keep-exited", "0"], "--process-keep-exited"),
                       (["--process-keep-exited", "x"], "--process-keep-exited")]:
        r = subprocess.run([valet.binary("maitred"), "--listen", "unix:" + os.path.join(tmpdir(), "s")] + args,
                           capture_output=True, text=True, timeout=30, env=valet.sanitizer_env())
        assert r.returncode == 2 and word in r.stderr and args[1] in r.stderr, (args, r.returncode, r.stderr)
