"""valet.v1.Files under hostile and faulty conditions, from the contract
(shared/spec's valet-v1.md: "Nothing half-done", "Bounded memory", the
trees' rules; issue 18, "How it is tested"). Each case asserts that
nothing is left behind (no file, no temporary `.valet-tmp-*`) and that
maitred keeps serving (a unary call answers afterwards). Everything that
mounts does it in maitred's own mount namespace."""
import contextlib
import os
import subprocess
import threading
import time

from files_client import (MiB, alive, in_ns, listing, maitred, maitred_in_ns, no_temporaries, ns_path, open_dir, pb,
                          put_file, read, rss_tree_kib, sha, stat_, stubs, write, write_requests)
from lanes import timing
from valet import grpc_error, sanitized, tmpdir, wait_until

NOBODY = 65534


def _get(path):
    with open(path, "rb") as f:
        return f.read()


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                out += kids
                todo += kids
        except FileNotFoundError:
            pass
    return out


def _has_open_file_in(pid, d):
    """Whether maitred or one of its processes holds a file open in d (the
    Write's temporary file: the bytes go to a file in the target's
    directory)."""
    for p in [pid] + _descendants(pid):
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    if os.readlink(f"/proc/{p}/fd/{fd}").startswith(d + "/"):
                        return True
                except OSError:
                    pass
        except OSError:
            pass
    return False


def _settled(d, want, timeout=10):
    """d holds exactly want, and still does a moment later (a cleanup may
    finish after the client saw its status; nothing may stay)."""
    wait_until(lambda: no_temporaries(d) == want, timeout, what=f"{d} to hold only {want}")
    time.sleep(0.3)
    assert no_temporaries(d) == want, no_temporaries(d)


def _held_write(s, path, first, **header):
    """A Write that sends its header and `first`, then waits for release
    (an Event) before half-closing: (future, release event)."""
    gate, sent = threading.Event(), threading.Event()

    def requests():
        yield from write_requests(path, [first], **header)
        sent.set()
        gate.wait(60)

    fut = s.Write.future(requests(), timeout=120)
    assert sent.wait(10)
    return fut, gate


def test_client_cancels_mid_write():
    import grpc
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    old = os.path.join(d, "old")
    put_file(old, b"the old file", 0o600)
    ino = os.stat(old).st_ino
    for target in (old, os.path.join(d, "new")):
        fut, gate = _held_write(s, target, os.urandom(MiB))
        seen = wait_until(lambda: _has_open_file_in(m.pid, d), 10, what="the temporary file to be open")
        assert seen
        fut.cancel()
        gate.set()
        try:
            fut.result()
            raise AssertionError("a cancelled Write succeeded")
        except grpc.FutureCancelledError:
            pass
        _settled(d, ["old"])
        wait_until(lambda: not _has_open_file_in(m.pid, d), 10, what="the temporary file to be closed")
        assert _get(old) == b"the old file" and os.stat(old).st_ino == ino
        alive(s)
    assert m.stop() == 0


def test_client_killed_mid_write():
    """The client process dies (SIGKILL: its connection closes, no
    RST_STREAM) after the header and 1 MiB: nothing is left, the old file
    is intact, the temporary file is closed, maitred serves."""
    import signal
    import valet
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    old = os.path.join(d, "old")
    put_file(old, b"the old file")
    lib = os.path.join(valet.ROOT, "tests", "lib")
    for target in (old, os.path.join(d, "new")):
        code = f"""import os, sys, time
sys.path.insert(0, {lib!r})
import valet
valet.configure({valet.BUILD!r})
from files_client import stubs, write_requests
def reqs():
    yield from write_requests({target!r}, [os.urandom(1 << 20)])
    print("sent", flush=True)
    time.sleep(60)
stubs({m.addr!r}).Write(reqs(), timeout=120)
"""
        p = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "sent"
            wait_until(lambda: _has_open_file_in(m.pid, d), 10, what="the temporary file to be open")
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        wait_until(lambda: not _has_open_file_in(m.pid, d), 10, what="the temporary file to be closed")
        _settled(d, ["old"])
        assert _get(old) == b"the old file"
        alive(s)
    assert m.stop() == 0


def test_sixteen_writes_and_reads_at_once():
    """16 Writes of 4 MiB in flight together (more than one worker), then
    16 Reads of them together: every file whole, every digest right."""
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    datas = [os.urandom(4 * MiB - i) for i in range(16)]
    futs = [s.Write.future(write_requests(os.path.join(d, f"f{i}"), [x[j:j + 300001] for j in
                                                                       range(0, len(x), 300001)]), timeout=120)
            for i, x in enumerate(datas)]
    for i, f in enumerate(futs):
        r = f.result()
        assert (r.info.size, r.sha256) == (len(datas[i]), sha(datas[i])), i
    results = [None] * 16

    def reader(i):
        results[i] = read(s, os.path.join(d, f"f{i}"), sha256=True)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i, (info, got, digest, kinds) in enumerate(results):
        assert got == datas[i] and digest == sha(datas[i]) and kinds == ["info", "data", "sha256"], i
    assert listing(d) == sorted(f"f{i}" for i in range(16))
    assert m.stop() == 0


# A 1 s deadline while the client sends for longer.
@timing
def test_deadline_passes_mid_write():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    old = os.path.join(d, "old")
    put_file(old, b"the old file")
    stop = threading.Event()

    def requests(path):
        yield from write_requests(path, [b"a" * 65536])
        for _ in range(100):
            if stop.is_set():
                return
            time.sleep(0.05)
            yield pb().WriteRequest(data=b"b" * 65536)

    for target in (old, os.path.join(d, "new")):
        stop.clear()
        start = time.monotonic()
        code, _ = grpc_error(s.Write, requests(target), timeout=1.0)
        stop.set()
        assert code == "DEADLINE_EXCEEDED", code
        assert time.monotonic() - start < 4
        _settled(d, ["old"])
        assert _get(old) == b"the old file"
        alive(s)
    assert m.stop() == 0


def test_disk_full_is_resource_exhausted_old_file_intact():
    """ENOSPC on a 1 MiB tmpfs: RESOURCE_EXHAUSTED naming the path, the old
    file intact, the space given back; then a Write that fits succeeds."""
    d = open_dir()
    m = maitred_in_ns(f"mount -t tmpfs -o size=1m tmpfs {d}")
    s = stubs(m.addr)
    old = os.path.join(d, "old")
    body = os.urandom(200 * 1024)
    write(s, old, [body])
    free = os.statvfs(ns_path(m, d)).f_bfree
    for target in (old, os.path.join(d, "new")):
        code, details = grpc_error(write, s, target, [os.urandom(256 * 1024) for _ in range(8)])
        assert code == "RESOURCE_EXHAUSTED" and target in details, (code, details)
        wait_until(lambda: listing(ns_path(m, d)) == ["old"], 10, what="only the old file")
        assert _get(ns_path(m, old)) == body
        wait_until(lambda: os.statvfs(ns_path(m, d)).f_bfree == free, 10, what="the space to be given back")
        alive(s)
    r = write(s, os.path.join(d, "fits"), [b"z" * 300 * 1024])
    assert r.info.size == 300 * 1024
    assert listing(ns_path(m, d)) == ["fits", "old"]
    assert m.stop() == 0


def test_sha256_mismatch_leaves_nothing():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    old = os.path.join(d, "old")
    put_file(old, b"before")
    data = os.urandom(5 * MiB)
    for target in (old, os.path.join(d, "new")):
        code, details = grpc_error(write, s, target, [data[i:i + MiB] for i in range(0, len(data), MiB)],
                                   sha256=sha(data + b"!"))
        assert code == "DATA_LOSS" and target in details, (code, details)
        _settled(d, ["old"])
        assert _get(old) == b"before"
    # A digest that is not 32 bytes cannot match anything: refused, and
    # nothing written either.
    code, _ = grpc_error(write, s, os.path.join(d, "new"), [b"x"], sha256=b"short")
    assert code in ("INVALID_ARGUMENT", "DATA_LOSS"), code
    _settled(d, ["old"])
    alive(s)
    assert m.stop() == 0


def test_message_over_the_limit_mid_write():
    """A data message over the 4 MiB message limit, after others: the
    call fails (RESOURCE_EXHAUSTED, the core's limit per message), the old
    file is intact, nothing is left."""
    from files_client import DATA_MAX
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    old = os.path.join(d, "old")
    put_file(old, b"before")
    for target in (old, os.path.join(d, "new")):
        code, _ = grpc_error(write, s, target, [b"a" * MiB, b"b" * DATA_MAX, b"c" * (DATA_MAX + 1)])
        assert code == "RESOURCE_EXHAUSTED", code
        _settled(d, ["old"])
        wait_until(lambda: not _has_open_file_in(m.pid, d), 10, what="the temporary file to be closed")
        assert _get(old) == b"before"
        alive(s)
    assert m.stop() == 0


def test_write_as_a_user_who_may_not():
    """nobody: no entry in a root 0755 directory (a temporary file would be
    the first thing); no replacing root's file in a sticky 1777 directory
    (the temporary file can be made there, the rename cannot); no parents
    made under a root directory. Nothing left, old files intact."""
    m = maitred()
    s = stubs(m.addr)
    base = open_dir()
    priv, sticky = os.path.join(base, "priv"), os.path.join(base, "sticky")
    os.mkdir(priv)
    os.chmod(priv, 0o755)
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    put_file(os.path.join(sticky, "roots"), b"root's own", 0o666)
    for path, kw in ((os.path.join(priv, "f"), {}), (os.path.join(priv, "a", "b", "f"), {"make_parents": True}),
                     (os.path.join(sticky, "roots"), {})):
        code, details = grpc_error(write, s, path, [os.urandom(100000)], user="nobody", **kw)
        assert code == "PERMISSION_DENIED" and (path in details or os.path.join(priv, "a") in details), \
            (path, code, details)
    _settled(priv, [])
    _settled(sticky, ["roots"])
    assert _get(os.path.join(sticky, "roots")) == b"root's own"
    alive(s)
    assert m.stop() == 0


# --- trees that try to leave their root ------------------------------------

def _sandboxed():
    """maitred chrooted into a tmpfs of its own mount namespace, system
    directories bound read-only: an entry that did escape (`/etc/x`)
    could not touch this machine, and /outside is a writable place beside
    the trees' roots to watch."""
    import valet
    r = open_dir()
    build = valet.BUILD
    setup = f"""R={r}
mount -t tmpfs -o size=64m,mode=0755 tmpfs "$R"
for d in usr etc dev proc; do mkdir "$R/$d"; mount --bind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"; done
for l in bin sbin lib lib64; do ln -s usr/$l "$R/$l"; done
mkdir -p "$R{build}"; mount --bind "{build}" "$R{build}"; mount -o remount,bind,ro "$R{build}"
D=$(pwd); mkdir -p "$R$D"; mount --bind "$D" "$R$D"
mkdir -m 0777 "$R/outside" "$R/trees"; echo secret >"$R/outside/secret"
cd /; exec chroot "$R" "$0" "$@" """
    return maitred(wrap=["unshare", "--mount", "--propagation", "private", "sh", "-ec", setup])


def test_trees_never_write_outside_their_root():
    """`../x`, `/etc/x`, `/outside/x`, a symlink entry followed by a file
    (or directory, or hard link) entry through it, hard links to paths
    outside the tree or to a file already in the root that is a link to
    one outside: each refused (INVALID_ARGUMENT where the spec says so),
    nothing written outside the root, the outside file's link count the
    same, maitred serving."""
    F = pb().FileInfo
    P = pb()
    m = _sandboxed()
    s = stubs(m.addr)
    out = ns_path(m, "/outside")
    secret = os.path.join(out, "secret")
    nlink = os.stat(secret).st_nlink
    # A file in a root that is a hard link to the outside file (made by
    # someone else): linking to it would hand the outside file to the tree.
    os.mkdir(ns_path(m, "/trees/pre"))
    os.link(secret, ns_path(m, "/trees/pre/planted"))
    nlink += 1

    def fe(path, size=1, **kw):
        return P.TreeRequest(entry=P.TreeEntry(path=path, type=F.FILE, mode=0o644, size=size, **kw))

    def sym(path, target):
        return P.TreeRequest(entry=P.TreeEntry(path=path, type=F.SYMLINK, symlink_target=target))

    x = P.TreeRequest(data=b"X")
    cases = [
        ("dotdot", [fe("../x"), x], "INVALID_ARGUMENT"),
        ("dotdot-deep", [fe("a/../../x"), x], "INVALID_ARGUMENT"),
        ("etc", [fe("/etc/x"), x], "INVALID_ARGUMENT"),
        ("abs", [fe("/outside/x"), x], "INVALID_ARGUMENT"),
        ("through-symlink", [sym("l", "/outside"), fe("l/x"), x], None),
        ("through-relative-symlink", [sym("l", "../../outside"), fe("l/x"), x], None),
        ("dir-through-symlink", [sym("l", "/outside"), P.TreeRequest(entry=P.TreeEntry(
            path="l/sub", type=F.DIRECTORY, mode=0o777))], None),
        ("symlink-through-symlink", [sym("l", "/outside"), sym("l/x", "/etc/passwd")], None),
        ("hardlink-abs", [fe("h", size=0, hardlink_to="/outside/secret")], None),
        ("hardlink-dotdot", [fe("h", size=0, hardlink_to="../../outside/secret")], None),
        ("hardlink-through-symlink", [sym("l", "/outside"), fe("h", size=0, hardlink_to="l/secret")], None),
        ("hardlink-to-planted", [fe("h", size=0, hardlink_to="planted")], None),
        ("replace-symlink-by-file-through", [sym("l", "/outside/secret"), fe("l", size=1), x], "ok-if-link-replaced"),
    ]
    for name, entries, want in cases:
        root = "/trees/pre" if name == "hardlink-to-planted" else f"/trees/{name}"
        if root != "/trees/pre":
            os.mkdir(ns_path(m, root))
        before = no_temporaries(ns_path(m, root))
        reqs = [P.TreeRequest(header=P.TreeHeader(root=root))] + entries
        if want == "ok-if-link-replaced":
            # A file entry at the path of an earlier symlink entry: it may
            # replace the link (never write through it), or be refused.
            try:
                s.WriteTree(iter(reqs), timeout=30)
                assert os.path.isfile(ns_path(m, root + "/l")) and not os.path.islink(ns_path(m, root + "/l"))
                assert _get(ns_path(m, root + "/l")) == b"X"
            except Exception as e:
                if not hasattr(e, "code"):
                    raise
        else:
            code, details = grpc_error(s.WriteTree, iter(reqs), timeout=30)
            assert code != "OK", (name, code)
            if want:
                assert code == want, (name, code, details)
            bad = next(r.entry.path for r in entries if r.WhichOneof("part") == "entry" and
                       (r.entry.path in ("l/x", "l/sub", "h") or r.entry.path.startswith(("..", "/", "a/"))))
            assert bad in details, (name, bad, details)
        assert listing(out) == ["secret"], (name, listing(out))
        assert _get(secret) == b"secret\n" and os.stat(secret).st_nlink == nlink, name
        assert not os.path.exists(ns_path(m, "/x")) and not os.path.exists(ns_path(m, "/trees/x")), name
        assert not os.path.exists(ns_path(m, "/etc/x")), name
        # What the root may hold: entries completed before the refusal
        # (the symlink `l`), never a temporary.
        left = [n for n in no_temporaries(ns_path(m, root)) if n not in before]
        assert all(n == "l" for n in left), (name, left)
        alive(s)
    assert m.stop() == 0


# --- symlinks swapped in between Stat and Write ----------------------------

def test_target_swapped_for_a_symlink_between_stat_and_write():
    """The last component is never followed. A client Stats a regular
    file; before its Write, someone replaces the file by a symlink to a
    file elsewhere. The Write replaces the symlink itself (the name now
    holds a regular file with the new bytes); the file the link pointed
    to is untouched. Likewise while the Write streams: the swap happens
    after the header and the first data, before the half-close."""
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d, elsewhere = open_dir(), open_dir()
    victim = os.path.join(elsewhere, "victim")
    put_file(victim, b"do not touch", 0o600)
    t = os.path.join(d, "t")
    for during in (False, True):
        put_file(t, b"plain file")
        assert stat_(s, t).type == F.FILE
        if during:
            fut, gate = _held_write(s, t, b"new ")
            time.sleep(0.2)
        os.unlink(t)
        os.symlink(victim, t)
        if during:
            gate.set()
            r = fut.result()
        else:
            r = write(s, t, [b"new ", b"bytes"])
        assert not os.path.islink(t) and os.path.isfile(t), during
        assert _get(t) == (b"new " if during else b"new bytes"), during
        assert r.info.type == F.FILE and r.info.path == t
        assert _get(victim) == b"do not touch" and os.stat(victim).st_mode & 0o7777 == 0o600
        assert listing(d) == ["t"] and listing(elsewhere) == ["victim"]
    alive(s)
    assert m.stop() == 0


def test_parent_swapped_for_a_symlink_between_stat_and_write():
    """Directories on the way are resolved as any program of the acting
    user would (the spec: paths are the user's own, with the user's
    permission checks), so a Write issued after the directory `d` was
    replaced by a symlink to `other` lands in `other`, where the path
    resolves when it is opened, and nowhere else: not in the directory
    that was Stat'ed, not through the link's name (the symlink `d` stays
    a symlink). The swap gives nothing to a user who could not write
    there: as nobody, a root 0755 `other` is PERMISSION_DENIED. A swap
    while the Write streams (after the header) changes where nothing is
    written but the one file: it is whole, in exactly one of the two
    directories, and nothing else is created anywhere."""
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    base = open_dir()
    d, moved, other = (os.path.join(base, n) for n in ("d", "d.moved", "other"))
    os.mkdir(other)
    os.chmod(other, 0o755)
    os.mkdir(d)
    os.chmod(d, 0o777)
    assert stat_(s, d).type == F.DIRECTORY
    os.rename(d, moved)
    os.symlink(other, d)
    r = write(s, os.path.join(d, "f"), [b"after the swap"])
    assert r.info.size == 14
    assert os.path.islink(d) and os.readlink(d) == other
    assert _get(os.path.join(other, "f")) == b"after the swap"
    assert listing(moved) == [] and listing(other) == ["f"]
    # As nobody: the Stat'ed directory was open to all, the one the link
    # leads to is not.
    code, details = grpc_error(write, s, os.path.join(d, "g"), [b"x"], user="nobody")
    assert code == "PERMISSION_DENIED", (code, details)
    assert listing(moved) == [] and listing(other) == ["f"]
    # Swapped while the Write streams.
    os.unlink(d)
    os.rename(moved, d)
    assert stat_(s, d).type == F.DIRECTORY
    fut, gate = _held_write(s, os.path.join(d, "h"), b"during ")
    time.sleep(0.2)
    os.rename(d, moved)
    os.symlink(other, d)
    gate.set()
    fut.result()
    where = [x for x in (moved, other) if os.path.exists(os.path.join(x, "h"))]
    assert len(where) == 1, where
    assert _get(os.path.join(where[0], "h")) == b"during "
    assert os.path.islink(d)
    assert sorted(no_temporaries(moved) + no_temporaries(other)) == ["f", "h"]
    alive(s)
    assert m.stop() == 0


# --- load, memory, a stuck disk --------------------------------------------

def test_thousand_concurrent_stats():
    """1 000 Stats in flight at once over 4 connections, on 100 files of
    distinct sizes and some missing paths: every one answered, correctly."""
    P = pb()
    m = maitred()
    chans = [stubs(m.addr) for _ in range(4)]
    d = open_dir()
    for i in range(100):
        put_file(os.path.join(d, f"f{i}"), b"x" * i)
    futs = []
    for i in range(1000):
        name = f"f{i % 100}" if i % 10 else f"missing{i}"
        futs.append((name, chans[i % 4].Stat.future(P.StatRequest(path=os.path.join(d, name)), timeout=120)))
    for name, fut in futs:
        if name.startswith("missing"):
            e = fut.exception()
            assert e is not None and e.code().name == "NOT_FOUND", (name, e)
        else:
            info = fut.result()
            assert (info.path, info.size, info.type) == (os.path.join(d, name), int(name[1:]), P.FileInfo.FILE), \
                (name, info)
    alive(chans[0])
    assert m.stop() == 0


def test_idle_worker_that_dies_is_replaced():
    """A worker that finished a List waits for the next call (pool.h),
    its socket watched by maitred meanwhile: the next List is its, and
    once it is killed while idle the next List gets a new worker, with no
    descriptor or child left of the dead one. A worker that acted as a
    user serves no other call. (List: a Stat with no user may be answered
    in maitred's loop, without a worker.)"""
    from process_client import children_of, pid_alive
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    f = os.path.join(d, "f")
    put_file(f, b"abc")

    def list_f():
        return [(e.path, e.size) for e in s.List(pb().ListRequest(path=d), timeout=30)] == [(f, 3)]

    assert list_f()
    wait_until(lambda: len(children_of(m.pid)) == 1, 10, what="one idle worker")
    worker = children_of(m.pid)[0]
    fds = m.fd_count()
    assert list_f()
    assert children_of(m.pid) == [worker]
    os.kill(worker, 9)
    wait_until(lambda: not pid_alive(worker) and worker not in children_of(m.pid), 10, what="the worker reaped")
    assert list_f()
    wait_until(lambda: len(children_of(m.pid)) == 1, 10, what="one idle worker again")
    assert children_of(m.pid) != [worker]
    assert m.fd_count() == fds
    # As a user (a Stat: a worker's, always): the idle worker serves it,
    # then exits; the next call's worker is a new one.
    [before] = children_of(m.pid)
    assert stat_(s, f, user="nobody").size == 3
    wait_until(lambda: not pid_alive(before), 10, what="the user's worker gone")
    assert list_f()
    wait_until(lambda: len(children_of(m.pid)) == 1, 10, what="one idle worker after the user's call")
    assert before not in children_of(m.pid)
    assert m.fd_count() == fds
    assert m.stop() == 0


# RSS sampled for 2 s while the client does not read; calls answered.
@timing
def test_client_stops_reading_a_1gib_read():
    """A 1 GiB file (sparse: no disk needed); the client reads a few
    messages and then nothing. maitred (with any process of its own) stays
    within 16 MiB of idle, flat; other calls on another connection are
    answered meanwhile; after the cancel it is back near idle and serves."""
    P = pb()
    m = maitred()
    s, other = stubs(m.addr), stubs(m.addr)
    d = open_dir()
    big = os.path.join(d, "big")
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    small = os.path.join(d, "small")
    put_file(small, b"small file")
    alive(other)
    read(other, small, sha256=True)
    idle = rss_tree_kib(m.pid)
    it = s.Read(P.ReadRequest(path=big, sha256=True), timeout=120)
    first = next(it)
    assert first.WhichOneof("part") == "info" and first.info.size == 1 << 30
    got = 0
    while got < 2 * MiB:
        got += len(next(it).data)
    samples = []
    for i in range(20):
        time.sleep(0.1)
        samples.append(rss_tree_kib(m.pid))
        if i % 5 == 0:
            start = time.monotonic()
            assert stat_(other, big).size == 1 << 30
            assert read(other, small)[1] == b"small file"
            assert time.monotonic() - start < 2, time.monotonic() - start
    print(f"idle {idle} KiB, while the client does not read: {samples[-5:]} KiB")
    if not sanitized():
        assert max(samples) - idle < 16 * 1024, (idle, samples)
        assert samples[-1] - samples[len(samples) // 2] < 1024, samples
    it.cancel()
    # Recovered: answers, and the memory is given back (within the same
    # bound: a pool of workers may have grown meanwhile).
    alive(other)
    assert read(other, small, sha256=True)[2] == sha(b"small file")
    if not sanitized():
        wait_until(lambda: rss_tree_kib(m.pid) - idle < 16 * 1024, 10, what="RSS back near idle")
    assert m.stop() == 0


@contextlib.contextmanager
def _loop_ext4(size=128 * MiB):
    img = os.path.join(tmpdir(), "disk.img")
    with open(img, "wb") as f:
        f.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", img], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


# Answers within 2 s while another stream's disk is frozen.
@timing
def test_stuck_disk_delays_only_its_stream():
    """A frozen ext4 (fsfreeze, in maitred's namespace) is a disk that does
    not answer: a Write of 64 MiB into it cannot finish. Meanwhile Stat,
    List, Read and a Write elsewhere are answered promptly, and maitred
    (with its workers) holds no more than 16 MiB above idle although the
    client has 64 MiB to send (flow control holds the client back); once
    thawed, the stuck Write completes with every byte."""
    import grpc
    P = pb()
    mnt, d, d2 = open_dir(), open_dir(), open_dir()
    put_file(os.path.join(d, "here"), b"here")
    with _loop_ext4() as dev:
        m = maitred_in_ns(f"mount {dev} {mnt}")
        s, other = stubs(m.addr), stubs(m.addr)
        frozen = False
        try:
            alive(other)
            idle = rss_tree_kib(m.pid)
            in_ns(m, "fsfreeze", "--freeze", mnt)
            frozen = True
            block = os.urandom(MiB)
            blocks = [block[i:] + block[:i] for i in range(64)]
            taken = [0]

            def chunks():
                for b in blocks:
                    taken[0] += 1
                    yield b

            fut = s.Write.future(write_requests(os.path.join(mnt, "stuck"), chunks()), timeout=120)
            time.sleep(0.5)
            for _ in range(3):
                start = time.monotonic()
                assert stat_(other, os.path.join(d, "here")).size == 4
                assert [e.path for e in other.List(P.ListRequest(path=d, depth=1), timeout=3)] == \
                    [os.path.join(d, "here")]
                assert read(other, os.path.join(d, "here"), timeout=3)[1] == b"here"
                assert write(other, os.path.join(d2, "w"), [b"elsewhere"], timeout=3).info.size == 9
                took = time.monotonic() - start
                assert took < 2, took
                time.sleep(0.2)
            held = rss_tree_kib(m.pid)
            print(f"idle {idle} KiB, held {held} KiB; the client handed over {taken[0]} of 64 MiB")
            assert not fut.done(), "a Write into a frozen filesystem finished"
            if not sanitized():
                assert held - idle < 16 * 1024, (idle, held)
            in_ns(m, "fsfreeze", "--unfreeze", mnt)
            frozen = False
            r = fut.result(timeout=60)
            data = b"".join(blocks)
            assert r.info.size == len(data) and r.sha256 == sha(data)
            assert _get(ns_path(m, os.path.join(mnt, "stuck"))) == data
            assert sorted(os.listdir(ns_path(m, mnt))) == ["lost+found", "stuck"]
            alive(s)
        except grpc.RpcError as e:
            raise AssertionError(f"a call failed while the other stream's disk was frozen: {e.code()} "
                                 f"{e.details()}") from None
        finally:
            if frozen:
                in_ns(m, "fsfreeze", "--unfreeze", mnt, check=False)
            assert m.stop() == 0
