"""Processes, tunnels and snapshots through the SDK against a real maitred:
Guest.run/start/attach/processes and the Process handle, Guest.forward,
Guest.freeze/thaw/restored, sync and asyncio, errors and timeouts too.

Written from the contract (shared/spec's valet-v1.md). A test whose service
this maitred does not serve yet says so and passes without checking
anything (`# skipped: ...` in its output): the services land on main
separately from the SDK."""
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time

import sdk
from sdk import raises
from lanes import timing
from valet import tmpdir, wait_until

MiB = 1 << 20
_served = {}


def missing(service):
    """None when this build's maitred serves service, else why not."""
    if service not in _served:
        v = sdk.load()
        m = sdk.maitred()
        with v.Guest(m.addr) as g:
            probe = {"valet.v1.Process": lambda: g.processes(),
                     "valet.v1.Tunnel": lambda: g._call(sdk.load()._methods.TUNNEL["Connect"])(iter(()), timeout=10)
                     .__next__(),
                     "valet.v1.Snapshot": lambda: g.thaw()}[service]
            try:
                probe()
                _served[service] = None
            except v.Unimplemented as e:
                _served[service] = f"{service} is not served by this maitred ({e})"
            except Exception as e:  # noqa: BLE001 - served, and refusing the empty probe
                import grpc
                if isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    _served[service] = f"{service} is not served by this maitred ({e.details()})"
                else:
                    _served[service] = None
        m.stop()
    return _served[service]


def skip(service):
    why = missing(service)
    if why:
        print(f"# skipped: {why}")
    return why is not None




def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Gone before the open, or between the open and the read (ESRCH).
        return False


# --- Process -----------------------------------------------------------------

def test_run_output_exit_status_signal_input_env_cwd_user():
    if skip("valet.v1.Process"):
        return
    v = sdk.load()
    m = sdk.maitred()
    with v.Guest(m.addr) as g:
        r = g.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (r.stdout, r.stderr, r.exit_code, r.signal, r.ok) == (b"out\n", b"err\n", 3, 0, False), r
        assert r.id > 0 and r.pid > 0 and r.argv == ["sh", "-c", "echo out; echo err >&2; exit 3"]
        r = g.run("kill -9 $$")
        assert (r.exit_code, r.signal) == (-1, 9), r
        r = g.run("exit 9")
        assert (r.exit_code, r.signal) == (9, 0), r
        data = os.urandom(3 * MiB + 1)
        r = g.run(["cat"], input=data)
        assert r.stdout == data and r.ok
        assert g.run(["cat"], input="text").stdout == b"text"
        path = os.path.join(tmpdir(), "in")
        with open(path, "wb") as f:
            f.write(b"from a file\n")
        with open(path, "rb") as f:
            assert g.run(["cat"], input=f).stdout == b"from a file\n"
        # Without input, stdin is empty (not this process's).
        assert g.run(["cat"]).stdout == b""
        r = g.run("echo $A:$HOME; pwd; id -u", env={"A": "1"}, cwd="/tmp", user="nobody")
        assert r.stdout == b"1:/nonexistent\n/tmp\n65534\n" or r.stdout.startswith(b"1:"), r
        assert r.stdout.endswith(b"/tmp\n65534\n"), r
        pieces = []
        r = g.run("for i in 1 2 3; do echo $i; sleep 0.05; done", on_stdout=pieces.append)
        assert b"".join(pieces) == r.stdout == b"1\n2\n3\n" and len(pieces) >= 2, pieces
        e = raises(v.ProcessError, g.run, "exit 2", check=True)
        assert e.result.exit_code == 2 and "exit status 2" in str(e)
        assert g.run("true", check=True).ok
        # Errors: a program that cannot run, an unknown user, an empty argv.
        try:
            r = g.run(["/no/such/program"])
            assert r.exit_code == 127 or r.exit_code != 0, r
        except v.Error as x:
            assert "/no/such/program" in str(x), x
        e = raises(v.InvalidArgument, g.run, ["true"], user="no-such-user-valet")
        assert "no-such-user-valet" in str(e), str(e)
        raises(ValueError, g.run, [])
    assert m.stop() == 0


@timing
def test_run_timeout_kills_the_process_group():
    if skip("valet.v1.Process"):
        return
    v = sdk.load()
    m = sdk.maitred()
    with v.Guest(m.addr) as g:
        start = time.monotonic()
        e = raises(v.DeadlineExceeded, g.run, "echo started; sleep 100 & sleep 100; wait", timeout=1)
        took = time.monotonic() - start
        assert 1 <= took < 10, took
        assert e.result.stdout == b"started\n" and e.result.pid > 0, e.result
        wait_until(lambda: not alive(e.result.pid), 10, what="the timed-out process to die")
        wait_until(lambda: not [p for p in g.processes() if p.running], 10, what="nothing left running")
    assert m.stop() == 0


def test_start_handle_input_events_wait_list_attach_signal():
    if skip("valet.v1.Process"):
        return
    v = sdk.load()
    m = sdk.maitred()
    with v.Guest(m.addr) as g:
        p = g.start(["sh", "-c", "echo 0123456789; read a; echo got:$a; cat"], tag="job-1", stdin=True)
        assert p.id > 0 and p.pid > 0 and p.tag == "job-1" and alive(p.pid)
        listed = {i.tag: i for i in g.processes()}
        info = listed["job-1"]
        assert (info.id, info.pid, info.running, info.argv, info.pty) == (p.id, p.pid, True, p.argv, False), info
        assert info.started is not None and info.started.tzinfo is not None
        # A second handle, by tag, replaying from an offset while it runs;
        # a third by id from the start.
        # An offset beyond what it has written so far is OUT_OF_RANGE: wait
        # for its first line.
        def attach_at_4():
            try:
                return g.attach("job-1", stdout_offset=4)
            except v.OutOfRange:
                return None
        q = wait_until(attach_at_4, 10, what="the first line of job-1")
        z = g.attach(p.id)
        assert q.id == z.id == p.id
        p.send_input("line\n")
        p.send_input(b"rest")
        p.close_stdin()
        events = list(p.events())
        out = b"".join(e.data for e in events if isinstance(e, v.Output))
        assert out == b"0123456789\ngot:line\nrest", out
        assert isinstance(events[-1], v.Exited) and events[-1].exit_code == 0 and p.exited == events[-1]
        assert p.stdout_offset == len(out)
        assert q.wait().stdout == out[4:]
        assert z.wait().stdout == out
        # Signals to the whole group: a tree under sh dies with it.
        p = g.start("sleep 100 & echo $!; wait")
        child = None

        def first(data):
            nonlocal child
            child = child or int(data.split()[0])
        p.signal(signal.SIGTERM, group=True)
        r = p.wait(timeout=20, on_stdout=first)
        assert (r.exit_code, r.signal) == (-1, signal.SIGTERM), r
        wait_until(lambda: child is None or not alive(child), 10, what="the group's child to die")
        # Errors: unknown id and tag, input to a process without stdin.
        raises(v.NotFound, g.attach, 999999)
        raises(v.NotFound, g.attach, "no-such-tag")
        n = g.start("sleep 100", kill_on_disconnect=True)
        e = raises(v.FailedPrecondition, n.send_input, "x")
        assert "without stdin" in str(e), str(e)
        n.kill()
        assert n.wait(timeout=20).signal == signal.SIGKILL
        e = raises(v.NotFound, g.attach, p.id + 1000)
        assert str(p.id + 1000) in str(e), str(e)
    assert m.stop() == 0


def test_detach_leaves_it_running_and_wait_timeout_keeps_the_handle():
    if skip("valet.v1.Process"):
        return
    v = sdk.load()
    m = sdk.maitred()
    with v.Guest(m.addr) as g:
        p = g.start("echo one; read x; echo two", stdin=True, tag="kept")
        e = raises(v.DeadlineExceeded, p.wait, timeout=0.5)
        assert "still runs" in str(e)
        assert alive(p.pid)
        # The handle still works: it follows the process again from where it stopped.
        p.send_input("go\n")
        r = p.wait(timeout=20)
        assert r.stdout == b"two\n" and r.ok, r
        p = g.start("echo one; read x; echo two", stdin=True, tag="kept2")
        p.detach()
        time.sleep(0.2)
        assert [i.running for i in g.processes() if i.tag == "kept2"] == [True]
        q = g.attach("kept2")
        q.send_input("go\n")
        r = q.wait(timeout=20)
        assert r.stdout == b"one\ntwo\n" and r.ok, r
        # kill_on_disconnect: detaching ends it.
        k = g.start("sleep 100", kill_on_disconnect=True)
        k.detach()
        wait_until(lambda: not alive(k.pid), 10, what="the process to be killed")
    assert m.stop() == 0


def test_pty_size_and_resize():
    if skip("valet.v1.Process"):
        return
    v = sdk.load()
    m = sdk.maitred()
    with v.Guest(m.addr) as g:
        p = g.start("stty size; read x; stty size", pty=True, rows=24, cols=80)
        out = b""
        it = p.events()
        for ev in it:
            out += ev.data if isinstance(ev, v.Output) else b""
            if b"24 80" in out:
                break
        p.resize(30, 90)
        p.send_input("\n")
        for ev in it:
            if isinstance(ev, v.Output):
                assert ev.stream == v.Stream.PTY
                out += ev.data
        assert b"30 90" in out and p.exited is not None and p.exited.exit_code == 0, out
    assert m.stop() == 0


def test_async_processes():
    if skip("valet.v1.Process"):
        return
    v = sdk.load()
    m = sdk.maitred()

    async def main():
        async with v.AsyncGuest(m.addr) as g:
            r = await g.run(["sh", "-c", "cat; exit 4"], input=b"async in")
            assert (r.stdout, r.exit_code) == (b"async in", 4), r
            p = await g.start("read a; echo $a", stdin=True, tag="a1")
            assert [i.tag for i in await g.processes()] == ["a1"]
            q = await g.attach("a1")
            try:
                await p.wait(timeout=0.3)
                raise AssertionError("no timeout")
            except v.DeadlineExceeded:
                pass
            # Attached again before the end: once q has seen the end the
            # guest forgets the process (the contract), and a handle that
            # came back only then would find nothing.
            p = await p.attach()
            await p.send_input("hi\n")
            await p.close_stdin()
            r = await p.wait(timeout=20)
            assert r.stdout == b"hi\n" and r.ok
            assert (await q.wait()).stdout == b"hi\n"
            try:
                await g.run("sleep 100", timeout=0.5)
                raise AssertionError("no timeout")
            except v.DeadlineExceeded:
                pass
            try:
                await g.attach(987654)
                raise AssertionError("attached to nothing")
            except v.NotFound:
                pass
    asyncio.run(main())
    assert m.stop() == 0


# --- Tunnel ------------------------------------------------------------------

class Echo:
    """A TCP (or unix) echo service: what it reads it sends back; at EOF it
    half-closes too."""

    def __init__(self, unix_path=None):
        if unix_path:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.bind(unix_path)
        else:
            self.s = socket.socket()
            self.s.bind(("127.0.0.1", 0))
            self.port = self.s.getsockname()[1]
        self.s.listen(64)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        while True:
            b = c.recv(65536)
            if not b:
                c.shutdown(socket.SHUT_WR)
                c.close()
                return
            c.sendall(b)

    def close(self):
        self.s.close()


def exchange(address, data):
    """Sends data to a local address, half-closes, returns all it got back."""
    a = sdk.load().parse_address(address)
    c = a.connect(10)
    got = []
    t = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(socket.SHUT_WR)))
    t.start()
    while True:
        b = c.recv(65536)
        if not b:
            break
        got.append(b)
    t.join()
    c.close()
    return b"".join(got)


def test_forward_bytes_both_ways_half_close_many_at_once_unix_and_refused():
    if skip("valet.v1.Tunnel"):
        return
    v = sdk.load()
    m = sdk.maitred()
    echo = Echo()
    d = tmpdir()
    uecho = Echo(unix_path=f"{d}/echo.sock")
    with v.Guest(m.addr) as g:
        with g.forward(echo.port) as fwd:
            assert fwd.address == f"tcp:127.0.0.1:{fwd.port}" and fwd.port != echo.port
            data = os.urandom(5 * MiB + 3)
            assert exchange(fwd.address, data) == data
            results = [None] * 10
            def one(i):
                results[i] = exchange(fwd.address, bytes([i]) * 100000)
            ts = [threading.Thread(target=one, args=(i,)) for i in range(10)]
            [t.start() for t in ts]
            [t.join(60) for t in ts]
            assert results == [bytes([i]) * 100000 for i in range(10)]
            assert fwd.errors == []
        # Closed: nothing listens there any more.
        raises(v.Unavailable, v.parse_address(fwd.address).connect, 5)
        with g.forward(unix_path=f"{d}/echo.sock", local=f"unix:{d}/local.sock") as fwd:
            assert exchange(fwd.address, b"over unix") == b"over unix"
        assert not os.path.exists(f"{d}/local.sock")
        # A refused port: the local connection ends, the reason is kept.
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        with g.forward(port) as fwd:
            # The reset may come before the client's connect has seen
            # the handshake end: the SDK then reports the connect itself
            # as Unavailable, caused by the same reset.
            try:
                got = exchange(fwd.address, b"anyone?")
            except ConnectionResetError:
                got = b""
            except v.Unavailable as e:
                assert isinstance(e.__cause__, ConnectionResetError), e
                got = b""
            assert got == b""
            wait_until(lambda: fwd.errors, 10, what="the refusal")
            assert isinstance(fwd.errors[0], v.Unavailable), fwd.errors
        raises(v.InvalidArgument, g.forward, 0)
        raises(v.InvalidArgument, g.forward, 70000)
        raises(v.InvalidArgument, g.forward, 80, local="vsock:3:80")
    echo.close()
    uecho.close()
    assert m.stop() == 0


def test_async_forward():
    if skip("valet.v1.Tunnel"):
        return
    v = sdk.load()
    m = sdk.maitred()
    echo = Echo()

    async def main():
        async with v.AsyncGuest(m.addr) as g:
            async with await g.forward(echo.port) as fwd:
                r, w = await asyncio.open_connection("127.0.0.1", fwd.port)
                data = os.urandom(2 * MiB)
                w.write(data)
                await w.drain()
                w.write_eof()
                got = await r.read()
                assert got == data, len(got)
                w.close()
    asyncio.run(main())
    echo.close()
    assert m.stop() == 0


# --- Snapshot ----------------------------------------------------------------

@contextlib.contextmanager
def snapshot_maitred():
    """maitred in a mount namespace of its own with a loop-device ext4
    mounted at BASE/disk, Freeze limited to BASE, without CAP_SYS_TIME (a
    Restored with a time must not step this machine's clock): yields
    (maitred, BASE)."""
    base = tmpdir()
    os.chmod(base, 0o755)
    img = os.path.join(tmpdir(), "disk.img")
    with open(img, "wb") as f:
        f.truncate(16 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", img], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        m = sdk.maitred(["--freeze-below", base],
                        wrap=["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                              f"mkdir -p {base}/disk && mount {dev} {base}/disk\n"
                              "exec setpriv --bounding-set=-sys_time --inh-caps=-sys_time \"$0\" \"$@\""])
        yield m, base
        assert m.stop() == 0
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_freeze_as_a_context_manager_thaw_and_restored():
    if skip("valet.v1.Snapshot"):
        return
    v = sdk.load()
    with snapshot_maitred() as (m, base), v.Guest(m.addr) as g:
        with g.freeze(timeout_seconds=30) as frozen:
            assert frozen.filesystems == [f"{base}/disk"], frozen.filesystems
            e = raises(v.FailedPrecondition, g.files.write, f"{base}/disk/x", b"x")
            assert "file systems are frozen" in str(e), str(e)
            assert g.kernel_version().release == os.uname().release  # the rest is served
        assert frozen.thawed == [f"{base}/disk"]
        assert g.files.write(f"{base}/disk/x", b"x").size == 1
        assert g.thaw() == []
        f = g.freeze()
        raises(v.AlreadyExists, g.freeze)
        assert f.thaw() == [f"{base}/disk"] and f.thaw() == [f"{base}/disk"]
        # Restored: the generation is recorded and given back next time.
        # The time travels as a Timestamp: this maitred may not set the
        # clock, so the step is refused (and the generation not recorded).
        e = raises(v.PermissionDenied, g.restored, generation="gen-0", time=time.time())
        assert "could not set the clock" in str(e), str(e)
        r = g.restored(generation="gen-1", time=False)
        assert r.clock_step.total_seconds() == 0 and r.previous_generation == "", r
        assert g.restored(generation="gen-2", time=False).previous_generation == "gen-1"
        e = raises(v.InvalidArgument, g.restored, entropy=b"short")
        assert "entropy" in str(e), str(e)


def test_async_freeze_and_restored():
    if skip("valet.v1.Snapshot"):
        return
    v = sdk.load()
    with snapshot_maitred() as (m, base):
        async def main():
            async with v.AsyncGuest(m.addr) as g:
                async with g.freeze(timeout_seconds=30) as frozen:
                    assert frozen.filesystems == [f"{base}/disk"]
                assert frozen.thawed == [f"{base}/disk"]
                f = await g.freeze()
                assert f.filesystems == [f"{base}/disk"] and await g.thaw() == [f"{base}/disk"]
                await g.restored(generation="a", time=False)
                assert (await g.restored(generation="b", time=False)).previous_generation == "a"
        asyncio.run(main())
