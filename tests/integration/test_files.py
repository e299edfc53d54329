"""valet.v1.Files against a real maitred, from the contract alone
(shared/spec's valet-v1.md, "Conventions" and "valet.v1.Files"): Debian's
grpcio with classes generated at test time from proto/valet/v1/files.proto
(tests/lib/files_client.py). Every method and its fields; `user` on every
method; the argument errors and the errno table. The hostile and faulty
cases are in test_files_hostile.py."""
import os
import socket
import stat
import time

from files_client import (DATA_MAX, MiB, alive, diff, listing, maitred, maitred_in_ns, no_temporaries, ns_path, odd_chunks,
                          open_dir, owners, pb, put_file, read, sha, stat_, stubs, walk, write, write_requests)
from valet import grpc_error, wait_until

NOBODY = 65534  # nobody:nogroup in Debian's /etc/passwd and /etc/group


def _ts(ns):
    from google.protobuf import timestamp_pb2
    return timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


def _ns(ts):
    return ts.seconds * 10**9 + ts.nanos


def _get(path):
    with open(path, "rb") as f:
        return f.read()


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _err(fn, *args, **kw):
    return grpc_error(fn, *args, **kw)


def _check_info(info, path, typ, size=None, mode=None):
    """A FileInfo against what the file system says of path (lstat)."""
    st = os.lstat(path)
    assert info.path == path, (info.path, path)
    assert info.type == typ, (path, info.type, typ)
    if size is not None:
        assert info.size == size == st.st_size, (path, info.size, size, st.st_size)
    assert info.mode == stat.S_IMODE(st.st_mode), (path, oct(info.mode), oct(st.st_mode))
    if mode is not None:
        assert info.mode == mode, (path, oct(info.mode), oct(mode))
    assert (info.uid, info.gid) == (st.st_uid, st.st_gid), (path, info.uid, info.gid)
    assert _ns(info.mtime) == st.st_mtime_ns, (path, _ns(info.mtime), st.st_mtime_ns)


# --- Write ---------------------------------------------------------------

def test_write_new_file_default_mode_info_and_digest():
    F = pb().FileInfo
    old_umask = os.umask(0o077)  # maitred's umask: 0644 all the same
    try:
        m = maitred()
    finally:
        os.umask(old_umask)
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "new")
    r = write(s, p, [b"hello ", b"world\n"])
    assert _get(p) == b"hello world\n"
    assert _mode(p) == 0o644, oct(_mode(p))
    _check_info(r.info, p, F.FILE, size=12, mode=0o644)
    assert (r.info.owner, r.info.group) == ("root", "root"), r.info
    assert r.sha256 == sha(b"hello world\n")
    assert listing(d) == ["new"]
    alive(s)
    assert m.stop() == 0


def test_write_replaces_atomically_keeping_the_old_mode():
    """Until the client half-closes, the target is the old file; then it
    is the new one, a new inode (renamed over it: a hard link to the old
    one keeps the old bytes), with the replaced file's mode."""
    import threading
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p, keep = os.path.join(d, "t"), os.path.join(d, "old-link")
    put_file(p, b"old contents", 0o640)
    os.link(p, keep)
    ino = os.stat(p).st_ino
    gate, sent = threading.Event(), threading.Event()

    def requests():
        yield from write_requests(p, [b"new " * 1000])
        sent.set()
        gate.wait(30)
        yield pb().WriteRequest(data=b"end")

    fut = s.Write.future(requests(), timeout=60)
    assert sent.wait(10)
    time.sleep(0.3)
    assert _get(p) == b"old contents", "the target changed before the client half-closed"
    assert os.stat(p).st_ino == ino
    gate.set()
    r = fut.result()
    assert _get(p) == b"new " * 1000 + b"end"
    assert os.stat(p).st_ino != ino
    assert _get(keep) == b"old contents"
    assert _mode(p) == 0o640, oct(_mode(p))
    _check_info(r.info, p, F.FILE, size=4003, mode=0o640)
    assert r.sha256 == sha(b"new " * 1000 + b"end")
    assert listing(d) == ["old-link", "t"]
    assert m.stop() == 0


def test_write_mode_given_exactly():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    for name, mode in (("a", 0o600), ("b", 0o4750), ("c", 0o777), ("d", 0)):
        p = os.path.join(d, name)
        r = write(s, p, [b"x"], mode=mode)
        assert _mode(p) == mode, (name, oct(_mode(p)))
        _check_info(r.info, p, F.FILE, size=1, mode=mode)
    # Given on a replace, the given mode wins over the replaced file's.
    p = os.path.join(d, "a")
    r = write(s, p, [b"yy"], mode=0o751)
    assert _mode(p) == 0o751 and r.info.mode == 0o751
    assert listing(d) == ["a", "b", "c", "d"]
    assert m.stop() == 0


def test_write_make_parents():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "x", "y", "z", "f")
    code, details = _err(write, s, p, [b"data"])
    assert code == "NOT_FOUND" and (p in details or os.path.join(d, "x") in details), (code, details)
    assert listing(d) == []
    r = write(s, p, [b"data"], make_parents=True)
    assert _get(p) == b"data"
    _check_info(r.info, p, F.FILE, size=4)
    assert os.path.isdir(os.path.join(d, "x", "y", "z"))
    assert no_temporaries(d) == ["x", "x/y", "x/y/z", "x/y/z/f"]
    assert m.stop() == 0


def test_write_no_replace():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "f")
    put_file(p, b"first", 0o600)
    ino = os.stat(p).st_ino
    code, details = _err(write, s, p, [b"second"], no_replace=True)
    assert code == "ALREADY_EXISTS" and p in details, (code, details)
    assert _get(p) == b"first" and os.stat(p).st_ino == ino and _mode(p) == 0o600
    assert listing(d) == ["f"]
    q = os.path.join(d, "g")
    r = write(s, q, [b"second"], no_replace=True)
    assert _get(q) == b"second" and r.sha256 == sha(b"second")
    assert listing(d) == ["f", "g"]
    assert m.stop() == 0


def test_write_sha256_match_and_mismatch():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    data = os.urandom(3 * MiB + 5)
    p = os.path.join(d, "f")
    r = write(s, p, odd_chunks(data), sha256=sha(data))
    assert _get(p) == data and r.sha256 == sha(data)
    ino = os.stat(p).st_ino
    # A mismatch: DATA_LOSS, the target untouched (same inode, same bytes).
    other = data[:-1] + bytes([data[-1] ^ 1])
    code, details = _err(write, s, p, odd_chunks(other), sha256=sha(data))
    assert code == "DATA_LOSS" and p in details, (code, details)
    assert _get(p) == data and os.stat(p).st_ino == ino
    # A new file with a wrong digest is not created at all.
    q = os.path.join(d, "g")
    code, details = _err(write, s, q, [b"abc"], sha256=sha(b"abd"))
    assert code == "DATA_LOSS" and q in details, (code, details)
    assert listing(d) == ["f"]
    alive(s)
    assert m.stop() == 0


def test_write_mtime():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "f")
    when = 1234567890 * 10**9 + 123456789
    r = write(s, p, [b"old times"], mtime=_ts(when))
    assert os.stat(p).st_mtime_ns == when
    assert _ns(r.info.mtime) == when
    # Without it: now.
    q = os.path.join(d, "g")
    before = time.time_ns()
    r = write(s, q, [b"now"])
    assert before - 2 * 10**9 <= os.stat(q).st_mtime_ns <= time.time_ns() + 10**9
    assert _ns(r.info.mtime) == os.stat(q).st_mtime_ns
    assert m.stop() == 0


def test_write_empty_file():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "empty")
    r = write(s, p, [])
    assert _get(p) == b"" and r.sha256 == sha(b"")
    _check_info(r.info, p, F.FILE, size=0, mode=0o644)
    # An empty data message changes nothing either.
    put_file(p, b"something")
    r = write(s, p, [b""], sha256=sha(b""))
    assert _get(p) == b"" and r.info.size == 0
    assert listing(d) == ["empty"]
    assert m.stop() == 0


def test_write_multi_mib_in_odd_messages():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    data = os.urandom(19 * MiB + 12345)
    chunks = odd_chunks(data)
    assert len(chunks) > 10 and max(len(c) for c in chunks) == DATA_MAX
    p = os.path.join(d, "big")
    r = write(s, p, chunks)
    assert r.info.size == len(data) and r.sha256 == sha(data)
    assert _get(p) == data
    assert listing(d) == ["big"]
    assert m.stop() == 0


def test_write_stream_errors():
    """The first message is the header, then data: anything else is a bad
    argument; a target that is a directory, a parent that is a file or is
    missing are the errno table's."""
    m = maitred()
    s = stubs(m.addr)
    P = pb()
    d = open_dir()
    p = os.path.join(d, "f")
    code, _ = _err(s.Write, iter([P.WriteRequest(data=b"no header")]), timeout=30)
    assert code == "INVALID_ARGUMENT", code
    code, _ = _err(s.Write, iter([]), timeout=30)
    assert code == "INVALID_ARGUMENT", code
    two = [P.WriteRequest(header=P.WriteHeader(path=p)), P.WriteRequest(data=b"a"),
           P.WriteRequest(header=P.WriteHeader(path=p + "2"))]
    code, _ = _err(s.Write, iter(two), timeout=30)
    assert code == "INVALID_ARGUMENT", code
    assert listing(d) == []
    os.mkdir(os.path.join(d, "dir"))
    code, details = _err(write, s, os.path.join(d, "dir"), [b"x"])
    assert code == "FAILED_PRECONDITION" and os.path.join(d, "dir") in details, (code, details)
    put_file(os.path.join(d, "file"), b"plain")
    code, details = _err(write, s, os.path.join(d, "file", "x"), [b"x"])
    assert code == "FAILED_PRECONDITION", (code, details)
    code, details = _err(write, s, os.path.join(d, "missing", "x"), [b"x"])
    assert code == "NOT_FOUND", (code, details)
    assert listing(d) == ["dir", "file"] and listing(os.path.join(d, "dir")) == []
    assert _get(os.path.join(d, "file")) == b"plain"
    alive(s)
    assert m.stop() == 0


def test_stream_refusals_answered_every_time():
    """A client stream refused early (the header's target exists, data
    before any tree entry, a wrong digest) answers its own code each time,
    not sometimes another: 30 of each, in a row."""
    from collections import Counter
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "f")
    put_file(p, b"first")
    got = Counter()
    for _ in range(30):
        got["no_replace " + _err(write, s, p, [b"second"], no_replace=True)[0]] += 1
        got["data first " + _err(s.WriteTree, iter([P.TreeRequest(header=P.TreeHeader(root=d)),
                                                   P.TreeRequest(data=b"x")]), timeout=30)[0]] += 1
        got["digest " + _err(write, s, os.path.join(d, "g"), [b"x"], sha256=sha(b"y"))[0]] += 1
    assert got == {"no_replace ALREADY_EXISTS": 30, "data first INVALID_ARGUMENT": 30, "digest DATA_LOSS": 30}, got
    assert listing(d) == ["f"] and _get(p) == b"first"
    assert m.stop() == 0


def test_files_methods_are_switchable():
    """Conventions, "Switchable": a refused method answers PERMISSION_DENIED
    "... is disabled on this guest" and does nothing; the service's other
    methods are served; the whole service can be refused."""
    P = pb()
    d = open_dir()
    m = maitred(["--disable", "valet.v1.Files/Write", "--disable", "valet.v1.Files/Remove"])
    s = stubs(m.addr)
    p = os.path.join(d, "f")
    code, details = _err(write, s, p, [b"x"])
    assert (code, details) == ("PERMISSION_DENIED", "valet.v1.Files/Write is disabled on this guest"), details
    put_file(p, b"kept")
    code, details = _err(s.Remove, P.RemoveRequest(path=p), timeout=30)
    assert (code, details) == ("PERMISSION_DENIED", "valet.v1.Files/Remove is disabled on this guest"), details
    assert _get(p) == b"kept" and listing(d) == ["f"]
    assert read(s, p)[1] == b"kept"
    assert m.stop() == 0
    m = maitred(["--disable", "valet.v1.Files"])
    s = stubs(m.addr)
    code, details = _err(stat_, s, p)
    assert (code, details) == ("PERMISSION_DENIED",
                               "valet.v1.Files is disabled on this guest (valet.v1.Files/Stat called)"), details
    code, details = _err(read, s, p)
    assert code == "PERMISSION_DENIED" and details.startswith("valet.v1.Files is disabled on this guest"), details
    assert m.stop() == 0


# --- Read ----------------------------------------------------------------

def test_read_whole_file_info_data_digest():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "f")
    data = os.urandom(9 * MiB + 77)
    put_file(p, data, 0o640)
    info, got, digest, kinds = read(s, p, sha256=True)
    assert kinds == ["info", "data", "sha256"], kinds
    _check_info(info, p, F.FILE, size=len(data), mode=0o640)
    assert got == data and digest == sha(data)
    info, got, digest, kinds = read(s, p)
    assert kinds == ["info", "data"] and got == data and digest is None, kinds
    # An empty file: info, no data, and the digest of nothing.
    e = os.path.join(d, "e")
    put_file(e, b"")
    info, got, digest, kinds = read(s, e, sha256=True)
    assert kinds == ["info", "sha256"] and info.size == 0 and digest == sha(b""), kinds
    assert m.stop() == 0


def test_read_ranges():
    """offset/length select a range (length 0: to the end); the digest is
    of the bytes sent; info is the whole file's."""
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "f")
    data = os.urandom(100000)
    put_file(p, data)
    for off, n, want in ((0, 0, data), (1000, 5000, data[1000:6000]), (99990, 100, data[99990:]),
                         (0, 1, data[:1]), (99999, 0, data[99999:]), (100000, 0, b""), (100000, 5, b"")):
        info, got, digest, kinds = read(s, p, offset=off, length=n, sha256=True)
        assert got == want, (off, n, len(got))
        assert digest == sha(want), (off, n)
        assert info.size == 100000 and kinds[0] == "info" and kinds[-1] == "sha256", (off, n, kinds)
    # Beyond the end: the spec names no code for it; a range past the end
    # is empty (pread's answer), or OUT_OF_RANGE naming the path. Nothing
    # else.
    try:
        info, got, digest, kinds = read(s, p, offset=200000, length=10, sha256=True)
        assert got == b"" and digest == sha(b"") and info.size == 100000, (got[:10], digest)
    except Exception as e:
        import grpc
        if not isinstance(e, grpc.RpcError):
            raise
        assert e.code().name == "OUT_OF_RANGE" and p in e.details(), (e.code(), e.details())
    # A 2 GiB offset into a sparse 4 GiB file: only the range is read.
    sparse = os.path.join(d, "sparse")
    with open(sparse, "wb") as f:
        f.truncate(4 << 30)
        f.seek((2 << 30) - 3)
        f.write(b"abcdef")
    info, got, digest, _ = read(s, sparse, offset=(2 << 30) - 3, length=6, sha256=True)
    assert (info.size, got, digest) == (4 << 30, b"abcdef", sha(b"abcdef"))
    assert m.stop() == 0


def test_read_refusals():
    """NOT_FOUND; a directory is EISDIR's FAILED_PRECONDITION; a symlink as
    the last component is not followed (refused, its target's bytes not
    sent); a FIFO is not a regular file, refused at once (no waiting for a
    writer)."""
    import grpc
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    missing = os.path.join(d, "missing")
    code, details = _err(read, s, missing)
    assert code == "NOT_FOUND" and missing in details, (code, details)
    code, details = _err(read, s, d)
    assert code == "FAILED_PRECONDITION" and d in details, (code, details)
    target, link = os.path.join(d, "target"), os.path.join(d, "link")
    put_file(target, b"secret bytes")
    os.symlink(target, link)
    got = []
    try:
        for r in s.Read(pb().ReadRequest(path=link), timeout=30):
            got.append(r)
        raise AssertionError(f"a Read through a symlink was answered: {got}")
    except grpc.RpcError as e:
        assert e.code() != grpc.StatusCode.OK and link in e.details(), (e.code(), e.details())
    assert not any(r.WhichOneof("part") == "data" for r in got), got
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    start = time.monotonic()
    code, details = _err(read, s, fifo, timeout=20)
    assert code in ("FAILED_PRECONDITION", "INVALID_ARGUMENT") and fifo in details, (code, details)
    assert time.monotonic() - start < 10
    alive(s)
    assert m.stop() == 0


# --- Stat ----------------------------------------------------------------

def test_stat_every_type_and_field():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    f = os.path.join(d, "f")
    put_file(f, b"12345", 0o4751)
    os.utime(f, ns=(10**9, 1500000000 * 10**9 + 42))
    _check_info(stat_(s, f), f, F.FILE, size=5, mode=0o4751)
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    os.chmod(sub, 0o1777)
    info = stat_(s, sub)
    _check_info(info, sub, F.DIRECTORY, mode=0o1777)
    link = os.path.join(d, "link")
    os.symlink("f", link)
    info = stat_(s, link)
    assert (info.path, info.type, info.symlink_target) == (link, F.SYMLINK, "f"), info
    assert _ns(info.mtime) == os.lstat(link).st_mtime_ns
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo, 0o620)
    os.chmod(fifo, 0o620)
    _check_info(stat_(s, fifo), fifo, F.OTHER, mode=0o620)
    sock = os.path.join(d, "sock")
    with socket.socket(socket.AF_UNIX) as u:
        u.bind(sock)
        assert stat_(s, sock).type == F.OTHER
    assert stat_(s, "/dev/null").type == F.OTHER
    # Follow: the target's info under the name asked; a dangling link is
    # NOT_FOUND when followed, a SYMLINK when not.
    info = stat_(s, link, follow_symlinks=True)
    assert (info.path, info.type, info.size, info.mode) == (link, F.FILE, 5, 0o4751), info
    assert _ns(info.mtime) == 1500000000 * 10**9 + 42
    os.symlink(os.path.join(d, "nowhere"), os.path.join(d, "dangling"))
    assert stat_(s, os.path.join(d, "dangling")).type == F.SYMLINK
    code, details = _err(stat_, s, os.path.join(d, "dangling"), follow_symlinks=True)
    assert code == "NOT_FOUND", (code, details)
    # Missing: NOT_FOUND naming the path; through a file: ENOTDIR.
    code, details = _err(stat_, s, os.path.join(d, "missing"))
    assert code == "NOT_FOUND" and os.path.join(d, "missing") in details, (code, details)
    code, details = _err(stat_, s, os.path.join(f, "x"))
    assert code == "FAILED_PRECONDITION", (code, details)
    # Directories on the way are followed (a symlink to a directory).
    os.symlink("sub", os.path.join(d, "via"))
    put_file(os.path.join(sub, "g"), b"g")
    info = stat_(s, os.path.join(d, "via", "g"))
    assert (info.type, info.size) == (F.FILE, 1), info
    assert m.stop() == 0


def test_stat_owner_and_group_names():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    f = os.path.join(d, "f")
    put_file(f, b"")
    info = stat_(s, f)
    assert (info.uid, info.gid, info.owner, info.group) == (0, 0, "root", "root"), info
    os.chown(f, NOBODY, NOBODY)
    info = stat_(s, f)
    assert (info.uid, info.gid, info.owner, info.group) == (NOBODY, NOBODY, "nobody", "nogroup"), info
    os.chown(f, 54321, 54322)  # no such user or group
    info = stat_(s, f)
    assert (info.uid, info.gid, info.owner, info.group) == (54321, 54322, "", ""), info
    assert m.stop() == 0


# --- List ----------------------------------------------------------------

def _list(s, path, depth, **kw):
    return list(s.List(pb().ListRequest(path=path, depth=depth, **kw), timeout=30))


def test_list_depths():
    """Depth 0 and 1: one level; deeper: a directory's entries after it.
    Absolute paths; the listed directory itself is no entry; a symlink
    is an entry of its own, not descended."""
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    for sub in ("s", "s/t", "s/t/u", "e"):
        os.mkdir(os.path.join(d, sub))
    for name, size in (("a", 1), ("s/b", 22), ("s/t/c", 333), ("s/t/u/v", 4)):
        put_file(os.path.join(d, name), b"x" * size)
    os.symlink("s", os.path.join(d, "l"))
    kinds = {"a": F.FILE, "s": F.DIRECTORY, "e": F.DIRECTORY, "l": F.SYMLINK, "s/b": F.FILE,
             "s/t": F.DIRECTORY, "s/t/c": F.FILE, "s/t/u": F.DIRECTORY, "s/t/u/v": F.FILE}
    want = {0: {"a", "s", "e", "l"}, 1: {"a", "s", "e", "l"}, 2: {"a", "s", "e", "l", "s/b", "s/t"},
            3: {"a", "s", "e", "l", "s/b", "s/t", "s/t/c", "s/t/u"}, 10: set(kinds)}
    for depth, names in want.items():
        got = _list(s, d, depth)
        paths = [e.path for e in got]
        assert len(paths) == len(set(paths)), paths
        assert set(paths) == {os.path.join(d, n) for n in names}, (depth, sorted(paths))
        for e in got:
            rel = os.path.relpath(e.path, d)
            assert e.type == kinds[rel], (rel, e.type)
            _check_info(e, e.path, kinds[rel], size=None if e.type == F.SYMLINK else os.lstat(e.path).st_size)
            parent = os.path.dirname(e.path)
            if parent != d:
                assert paths.index(parent) < paths.index(e.path), (depth, paths)
        assert next(e for e in got if e.path == os.path.join(d, "l")).symlink_target == "s"
    assert _list(s, os.path.join(d, "e"), 1) == []
    code, details = _err(_list, s, os.path.join(d, "missing"), 1)
    assert code == "NOT_FOUND", (code, details)
    code, details = _err(_list, s, os.path.join(d, "a"), 1)
    assert code == "FAILED_PRECONDITION" and os.path.join(d, "a") in details, (code, details)
    assert m.stop() == 0


# --- MakeDirectory, Remove, Move -------------------------------------------

def test_make_directory():
    F = pb().FileInfo
    P = pb()
    old_umask = os.umask(0o077)  # maitred's umask: the modes given all the same
    try:
        m = maitred()
    finally:
        os.umask(old_umask)
    s = stubs(m.addr)
    d = open_dir()
    for name, mode in (("a", 0o750), ("b", 0o1777), ("c", 0o2711)):
        p = os.path.join(d, name)
        info = s.MakeDirectory(P.MakeDirectoryRequest(path=p, mode=mode), timeout=30)
        assert _mode(p) == mode, (name, oct(_mode(p)))
        _check_info(info, p, F.DIRECTORY, mode=mode)
    info = s.MakeDirectory(P.MakeDirectoryRequest(path=os.path.join(d, "dflt")), timeout=30)
    assert info.type == F.DIRECTORY and os.path.isdir(os.path.join(d, "dflt"))
    deep = os.path.join(d, "p", "q", "r")
    code, details = _err(s.MakeDirectory, P.MakeDirectoryRequest(path=deep), timeout=30)
    assert code == "NOT_FOUND", (code, details)
    assert not os.path.exists(os.path.join(d, "p"))
    info = s.MakeDirectory(P.MakeDirectoryRequest(path=deep, parents=True, mode=0o700), timeout=30)
    _check_info(info, deep, F.DIRECTORY, mode=0o700)
    assert os.path.isdir(os.path.join(d, "p", "q"))
    code, details = _err(s.MakeDirectory, P.MakeDirectoryRequest(path=os.path.join(d, "a")), timeout=30)
    assert code == "ALREADY_EXISTS" and os.path.join(d, "a") in details, (code, details)
    assert _mode(os.path.join(d, "a")) == 0o750
    assert m.stop() == 0


def test_remove():
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()

    def rm(path, recursive=False):
        return s.Remove(P.RemoveRequest(path=path, recursive=recursive), timeout=30).removed

    f = os.path.join(d, "f")
    put_file(f, b"f")
    assert rm(f) == 1 and not os.path.lexists(f)
    # A symlink: the link goes, its target stays (a file, and a directory
    # even with recursive).
    target, link = os.path.join(d, "target"), os.path.join(d, "link")
    put_file(target, b"stays")
    os.symlink(target, link)
    assert rm(link) == 1 and not os.path.lexists(link) and _get(target) == b"stays"
    tdir, dlink = os.path.join(d, "tdir"), os.path.join(d, "dlink")
    os.mkdir(tdir)
    put_file(os.path.join(tdir, "inside"), b"stays too")
    os.symlink(tdir, dlink)
    assert rm(dlink, recursive=True) == 1 and not os.path.lexists(dlink)
    assert _get(os.path.join(tdir, "inside")) == b"stays too"
    e = os.path.join(d, "empty")
    os.mkdir(e)
    assert rm(e) == 1 and not os.path.exists(e)
    # Non-empty without recursive: ENOTEMPTY, nothing removed.
    code, details = _err(rm, tdir)
    assert code == "FAILED_PRECONDITION" and tdir in details, (code, details)
    assert _get(os.path.join(tdir, "inside")) == b"stays too"
    # A tree: every entry, the symlink in it without its target.
    t = os.path.join(d, "tree")
    for sub in ("", "b", "b/d"):
        os.mkdir(os.path.join(t, sub))
    for name in ("a", "b/c", "b/d/e"):
        put_file(os.path.join(t, name), b"x")
    os.symlink(tdir, os.path.join(t, "b", "l"))
    os.chmod(os.path.join(t, "b", "d"), 0o500)  # root removes from it all the same
    assert rm(t, recursive=True) == 7
    assert not os.path.lexists(t)
    assert _get(os.path.join(tdir, "inside")) == b"stays too"
    code, details = _err(rm, os.path.join(d, "missing"))
    assert code == "NOT_FOUND", (code, details)
    assert listing(d) == ["target", "tdir"]
    assert m.stop() == 0


def test_remove_root_is_refused_in_a_sandbox():
    """Remove refuses `/`. maitred runs chrooted into a tmpfs of its own
    mount namespace (system directories bound read-only), so that a
    service that did not refuse could not harm this machine: what its `/`
    holds is still there afterwards."""
    import valet
    r = open_dir()
    build = valet.BUILD
    setup = f"""R={r}
mount -t tmpfs -o size=16m,mode=0755 tmpfs "$R"
for d in usr etc dev proc; do mkdir "$R/$d"; mount --bind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"; done
for l in bin sbin lib lib64; do ln -s usr/$l "$R/$l"; done
mkdir -p "$R{build}"; mount --bind "{build}" "$R{build}"; mount -o remount,bind,ro "$R{build}"
D=$(pwd); mkdir -p "$R$D"; mount --bind "$D" "$R$D"
mkdir "$R/canary"; echo keep >"$R/canary/file"
cd /; exec chroot "$R" "$0" "$@" """
    m = maitred(wrap=["unshare", "--mount", "--propagation", "private", "sh", "-ec", setup])
    s = stubs(m.addr)
    P = pb()
    for recursive in (False, True):
        code, details = _err(s.Remove, P.RemoveRequest(path="/", recursive=recursive), timeout=30)
        assert code != "OK" and "/" in details, (code, details)
    with open(ns_path(m, "/canary/file")) as f:
        assert f.read() == "keep\n"
    alive(s)
    assert m.stop() == 0


def test_move():
    F = pb().FileInfo
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    a, b, c = (os.path.join(d, n) for n in "abc")
    put_file(a, b"AAA", 0o600)
    ino = os.stat(a).st_ino
    info = s.Move(P.MoveRequest(source=a, destination=b), timeout=30)
    _check_info(info, b, F.FILE, size=3, mode=0o600)
    assert not os.path.lexists(a) and _get(b) == b"AAA" and os.stat(b).st_ino == ino
    put_file(c, b"CCCC")
    code, details = _err(s.Move, P.MoveRequest(source=b, destination=c, no_replace=True), timeout=30)
    assert code == "ALREADY_EXISTS" and c in details, (code, details)
    assert _get(b) == b"AAA" and _get(c) == b"CCCC"
    info = s.Move(P.MoveRequest(source=b, destination=c), timeout=30)
    assert _get(c) == b"AAA" and not os.path.lexists(b) and info.size == 3
    # A directory moves with its contents; a symlink moves as itself.
    os.mkdir(os.path.join(d, "dir"))
    put_file(os.path.join(d, "dir", "x"), b"x")
    info = s.Move(P.MoveRequest(source=os.path.join(d, "dir"), destination=os.path.join(d, "dir2")), timeout=30)
    _check_info(info, os.path.join(d, "dir2"), F.DIRECTORY)
    assert _get(os.path.join(d, "dir2", "x")) == b"x"
    os.symlink("c", os.path.join(d, "l"))
    info = s.Move(P.MoveRequest(source=os.path.join(d, "l"), destination=os.path.join(d, "l2")), timeout=30)
    assert (info.type, info.symlink_target) == (F.SYMLINK, "c") and os.readlink(os.path.join(d, "l2")) == "c"
    code, details = _err(s.Move, P.MoveRequest(source=os.path.join(d, "missing"), destination=a), timeout=30)
    assert code == "NOT_FOUND", (code, details)
    code, details = _err(s.Move, P.MoveRequest(source=c, destination=os.path.join(d, "no", "x")), timeout=30)
    assert code == "NOT_FOUND", (code, details)
    assert listing(d) == ["c", "dir2", "l2"]
    assert m.stop() == 0


# --- WriteTree and ReadTree ------------------------------------------------

T0 = 1600000000 * 10**9


def _tree_spec():
    """(entries, data per file path): directories with modes (a read-only
    one filled all the same), files with modes and mtimes, symlinks (one
    dangling, one absolute), hard links, a file of several MiB."""
    F = pb().FileInfo
    big = os.urandom(3 * MiB + 1)
    data = {"bin/tool": os.urandom(70000), "etc/conf": b"a=1\n", "etc/empty": b"", "ro/inside": b"read only",
            "ro/sub/deep": b"#!/bin/sh\n", "big": big}
    E = []

    def d(path, mode, t):
        E.append(dict(path=path, type=F.DIRECTORY, mode=mode, mtime=_ts(T0 + t)))

    def f(path, mode, t):
        E.append(dict(path=path, type=F.FILE, mode=mode, size=len(data[path]), mtime=_ts(T0 + t)))

    def l(path, target, t):
        E.append(dict(path=path, type=F.SYMLINK, symlink_target=target, mtime=_ts(T0 + t)))

    def h(path, to):
        E.append(dict(path=path, type=F.FILE, hardlink_to=to))

    d("bin", 0o755, 1)
    f("bin/tool", 0o755, 2 * 10**9 + 5)
    h("bin/tool2", "bin/tool")
    d("etc", 0o750, 3)
    f("etc/conf", 0o640, 4)
    f("etc/empty", 0o600, 5)
    l("etc/link-rel", "conf", 6)
    l("etc/link-abs", "/nonexistent/dangling", 7)
    h("etc/conf-hard", "etc/conf")
    d("ro", 0o555, 8)
    f("ro/inside", 0o444, 9)
    d("ro/sub", 0o700, 10)
    f("ro/sub/deep", 0o4755, 11)
    h("ro/sub/link-up", "etc/conf")
    f("big", 0o644, 12)
    d("empty-dir", 0o711, 13)
    return E, data


def _tree_requests(root, entries, data, **header):
    P = pb()
    yield P.TreeRequest(header=P.TreeHeader(root=root, **header))
    for e in entries:
        yield P.TreeRequest(entry=P.TreeEntry(**e))
        if e["path"] in data and not e.get("hardlink_to"):
            for c in odd_chunks(data[e["path"]], (MiB + 3, 4093, 1)):
                yield P.TreeRequest(data=c)


def _expected_walk(entries, data):
    """walk()'s view of the tree the entries describe."""
    F = pb().FileInfo
    out = {}
    for e in entries:
        p = e["path"]
        if e.get("hardlink_to"):
            continue
        if e["type"] == F.DIRECTORY:
            out[p] = ("dir", oct(e["mode"]), _ns(e["mtime"]))
        elif e["type"] == F.SYMLINK:
            out[p] = ("symlink", e["symlink_target"], _ns(e["mtime"]))
        else:
            out[p] = ["file", oct(e["mode"]), _ns(e["mtime"]), len(data[p]), sha(data[p]).hex(), p]
    for e in entries:
        if e.get("hardlink_to"):
            out[e["path"]] = list(out[e["hardlink_to"]])
    groups = {}
    for p, v in out.items():
        if v[0] == "file":
            groups.setdefault(v[5], []).append(p)
    for p, v in out.items():
        if v[0] == "file":
            v[5] = min(groups[v[5]])
            out[p] = tuple(v)
    return out


def _read_tree(s, root, **kw):
    """ReadTree: [(TreeEntry, data)], checking that each file entry is
    followed by exactly its size in data and nothing else has data."""
    entries = []
    for r in s.ReadTree(pb().ReadTreeRequest(root=root, **kw), timeout=60):
        if r.WhichOneof("part") == "entry":
            if entries:
                e, got = entries[-1]
                want = 0 if e.hardlink_to else e.size
                assert len(got) == want, (e.path, len(got), want)
            entries.append((r.entry, bytearray()))
        else:
            assert entries, "data before any entry"
            entries[-1][1].extend(r.data)
    if entries:
        e, got = entries[-1]
        assert len(got) == (0 if e.hardlink_to else e.size), (e.path, len(got))
    return [(e, bytes(b)) for e, b in entries]


def test_tree_written_then_read_back_identical():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    base = open_dir()
    r1 = os.path.join(base, "r1")
    os.mkdir(r1)
    entries, data = _tree_spec()
    summary = s.WriteTree(_tree_requests(r1, entries, data), timeout=60)
    nfiles = sum(1 for e in entries if e["type"] == F.FILE)
    assert (summary.files, summary.directories, summary.symlinks, summary.bytes) == \
        (nfiles, 5, 2, sum(len(v) for v in data.values())), summary
    want = _expected_walk(entries, data)
    assert walk(r1) == want, diff(walk(r1), want)
    assert all(v == (0, 0) for v in owners(r1).values())

    # Read back: every entry once, a directory before its contents, the
    # data of each file right after it; a hard link as hardlink_to an
    # earlier path of its group.
    got = _read_tree(s, r1)
    seen = []
    for e, b in got:
        assert not e.path.startswith("/") and e.path not in seen, e.path
        parent = os.path.dirname(e.path)
        assert not parent or parent in seen, (e.path, seen)
        seen.append(e.path)
        assert (e.uid, e.gid) == (0, 0), e
        if e.hardlink_to:
            assert e.type == F.FILE and e.hardlink_to in seen and want[e.path][5] == want[e.hardlink_to][5], e
            continue
        w = want[e.path]
        if e.type == F.DIRECTORY:
            assert ("dir", oct(e.mode), _ns(e.mtime)) == w, (e, w)
        elif e.type == F.SYMLINK:
            assert ("symlink", e.symlink_target, _ns(e.mtime)) == w, (e, w)
        else:
            assert (oct(e.mode), _ns(e.mtime), e.size, sha(b).hex()) == w[1:5], (e.path, w)
    assert sorted(seen) == sorted(want), (sorted(seen), sorted(want))

    # Its own output written elsewhere gives the same tree, again.
    P = pb()

    def again():
        yield P.TreeRequest(header=P.TreeHeader(root=os.path.join(base, "r2")))
        for e, b in got:
            yield P.TreeRequest(entry=e)
            for c in odd_chunks(b, (65536 + 1,)):
                yield P.TreeRequest(data=c)

    os.mkdir(os.path.join(base, "r2"))
    summary2 = s.WriteTree(again(), timeout=60)
    assert summary2 == summary, (summary2, summary)
    assert walk(os.path.join(base, "r2")) == want, diff(walk(os.path.join(base, "r2")), want)
    # An empty tree: nothing, zero counts.
    os.mkdir(os.path.join(base, "r3"))
    summary = s.WriteTree(iter([P.TreeRequest(header=P.TreeHeader(root=os.path.join(base, "r3")))]), timeout=30)
    assert (summary.files, summary.directories, summary.symlinks, summary.bytes) == (0, 0, 0, 0)
    assert _read_tree(s, os.path.join(base, "r3")) == []
    assert no_temporaries(os.path.join(base, "r3")) == []
    assert m.stop() == 0


def test_tree_directory_times_after_contents_in_any_order():
    """Directory modes and mtimes are applied after their contents: also
    when the entries of a directory do not come together (a walk in
    another order than depth first, a hard link added to a directory
    whose other entries came earlier)."""
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    root = open_dir()
    E = [dict(path="d1", type=F.DIRECTORY, mode=0o750, mtime=_ts(T0 + 1)),
         dict(path="d2", type=F.DIRECTORY, mode=0o555, mtime=_ts(T0 + 2)),
         dict(path="d1/x", type=F.FILE, mode=0o644, size=1, mtime=_ts(T0 + 3)),
         dict(path="d2/y", type=F.FILE, mode=0o644, size=1, mtime=_ts(T0 + 4)),
         dict(path="d1/z", type=F.SYMLINK, symlink_target="x", mtime=_ts(T0 + 5)),
         dict(path="d2/h", type=F.FILE, hardlink_to="d1/x")]
    data = {"d1/x": b"x", "d2/y": b"y"}
    s.WriteTree(_tree_requests(root, E, data), timeout=30)
    assert walk(root) == _expected_walk(E, data), diff(walk(root), _expected_walk(E, data))
    # As a user (no root bypass): a read-only directory is filled all the
    # same when its entries do not come together.
    root2 = open_dir(0o777)
    E2 = [dict(path="d", type=F.DIRECTORY, mode=0o555, mtime=_ts(T0 + 1)),
          dict(path="e", type=F.DIRECTORY, mode=0o755, mtime=_ts(T0 + 2)),
          dict(path="d/x", type=F.FILE, mode=0o644, size=1, mtime=_ts(T0 + 3))]
    s.WriteTree(_tree_requests(root2, E2, {"d/x": b"x"}, user="nobody"), timeout=30)
    assert walk(root2) == _expected_walk(E2, {"d/x": b"x"}), diff(walk(root2), _expected_walk(E2, {"d/x": b"x"}))
    assert m.stop() == 0


def test_tree_make_parents_and_keep_owners():
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    base = open_dir()
    E = [dict(path="d", type=F.DIRECTORY, mode=0o755, uid=4321, gid=4322),
         dict(path="d/f", type=F.FILE, mode=0o644, size=2, uid=NOBODY, gid=NOBODY),
         dict(path="d/l", type=F.SYMLINK, symlink_target="f", uid=1111, gid=2222)]
    data = {"d/f": b"ok"}
    root = os.path.join(base, "x", "y", "root")
    code, details = _err(s.WriteTree, _tree_requests(root, E, data), timeout=30)
    assert code == "NOT_FOUND", (code, details)
    assert listing(base) == []
    s.WriteTree(_tree_requests(root, E, data, make_parents=True, keep_owners=True), timeout=30)
    got = owners(root)
    assert (got["d"], got["d/f"], got["d/l"]) == ((4321, 4322), (NOBODY, NOBODY), (1111, 2222)), got
    ids = {e.path: (e.uid, e.gid) for e, _ in _read_tree(s, root)}
    assert ids == {"d": (4321, 4322), "d/f": (NOBODY, NOBODY), "d/l": (1111, 2222)}, ids
    # Without keep_owners, everything is the acting user's (root here).
    root2 = os.path.join(base, "root2")
    os.mkdir(root2)
    s.WriteTree(_tree_requests(root2, E, data), timeout=30)
    assert set(owners(root2).values()) == {(0, 0)}, owners(root2)
    assert m.stop() == 0


def test_tree_stream_errors():
    """A file entry is followed by exactly its size in data: fewer at the
    end or more are refused, and the unfinished file is not left; data
    before any entry, and entries without a header, are bad arguments;
    `..`, absolute paths and empty components are INVALID_ARGUMENT naming
    the entry; so is a mode above 07777."""
    F = pb().FileInfo
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    base = open_dir()

    def run(reqs):
        return _err(s.WriteTree, iter(reqs), timeout=30)

    hdr = P.TreeRequest(header=P.TreeHeader(root=base))
    fe = P.TreeRequest(entry=P.TreeEntry(path="f", type=F.FILE, mode=0o644, size=10))
    assert run([hdr, fe, P.TreeRequest(data=b"short")])[0] == "INVALID_ARGUMENT"
    assert run([hdr, fe, P.TreeRequest(data=b"0123456789abc")])[0] == "INVALID_ARGUMENT"
    assert run([hdr, fe, P.TreeRequest(data=b"01234"), P.TreeRequest(entry=P.TreeEntry(
        path="g", type=F.FILE, mode=0o644, size=0))])[0] == "INVALID_ARGUMENT"
    assert run([hdr, P.TreeRequest(data=b"x")])[0] == "INVALID_ARGUMENT"
    assert run([fe, P.TreeRequest(data=b"0123456789")])[0] == "INVALID_ARGUMENT"
    assert run([])[0] == "INVALID_ARGUMENT"
    for path in ("a/../b", "..", "/abs/x", "a//b", "", "a/./b", "a/"):
        code, details = run([hdr, P.TreeRequest(entry=P.TreeEntry(path=path, type=F.DIRECTORY, mode=0o755))])
        assert code == "INVALID_ARGUMENT", (path, code, details)
        assert not path or path in details, (path, details)
    code, details = run([hdr, P.TreeRequest(entry=P.TreeEntry(path="m", type=F.DIRECTORY, mode=0o10000))])
    assert code == "INVALID_ARGUMENT" and "m" in details, (code, details)
    code, details = run([hdr, P.TreeRequest(entry=P.TreeEntry(path="h", type=F.FILE, hardlink_to="nothing"))])
    assert code != "OK", code
    assert no_temporaries(base) == []
    alive(s)
    assert m.stop() == 0


def test_tree_of_many_small_files_waits_for_a_stopped_worker():
    """2 000 small files in one WriteTree (maitred gathers entries and data
    in packets for the worker), the worker stopped after the first ones:
    its socket fills, maitred stops taking the client's messages and the
    call waits; continued, every file arrives whole, and the tree over
    itself again (every name taken: replaced) too."""
    import signal
    F = pb().FileInfo
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    root = os.path.join(open_dir(), "t")
    files = {f"d{i // 100}/f{i}": os.urandom(1 + (i * 37) % 4096) for i in range(2000)}
    stopped = []

    def requests(stop):
        yield P.TreeRequest(header=P.TreeHeader(root=root))
        for i, (path, data) in enumerate(files.items()):
            if i % 100 == 0:
                yield P.TreeRequest(entry=P.TreeEntry(path=path.split("/")[0], type=F.DIRECTORY, mode=0o755))
            if stop and i == 100:
                kids = wait_until(m.children, 10, what="the call's worker")
                os.kill(kids[0], signal.SIGSTOP)
                stopped.append(kids[0])
            yield P.TreeRequest(entry=P.TreeEntry(path=path, type=F.FILE, mode=0o640, size=len(data)))
            yield P.TreeRequest(data=data)

    for stop in (True, False):
        fut = s.WriteTree.future(requests(stop), timeout=60)
        if stop:
            wait_until(lambda: stopped, 10, what="the worker stopped")
            time.sleep(0.5)
            assert not fut.done(), "a WriteTree finished with its worker stopped"
            os.kill(stopped[0], signal.SIGCONT)
        summary = fut.result()
        assert (summary.files, summary.directories, summary.bytes) == \
            (len(files), 20, sum(len(v) for v in files.values())), summary
        for path, data in files.items():
            p = os.path.join(root, path)
            assert _get(p) == data and _mode(p) == 0o640, path
        assert len(no_temporaries(root)) == len(files) + 20
    alive(s)
    assert m.stop() == 0


# --- user, arguments, the errno table --------------------------------------

def test_user_on_every_method():
    """As `nobody`: what it creates is nobody's, and its own permissions
    are checked (root's bypasses are not used)."""
    F = pb().FileInfo
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    base = open_dir()
    pub = os.path.join(base, "pub")        # 0777: nobody may create here
    priv = os.path.join(base, "priv")      # root 0755: nobody may not
    closed = os.path.join(base, "closed")  # root 0700: nobody may not enter
    for p, mode in ((pub, 0o777), (priv, 0o755), (closed, 0o700)):
        os.mkdir(p)
        os.chmod(p, mode)
    put_file(os.path.join(priv, "public"), b"readable", 0o644)
    put_file(os.path.join(priv, "secret"), b"root only", 0o600)
    put_file(os.path.join(closed, "f"), b"x")
    U = dict(user="nobody")

    # Write
    r = write(s, os.path.join(pub, "w"), [b"mine"], **U)
    st = os.stat(os.path.join(pub, "w"))
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY) and (r.info.uid, r.info.owner) == (NOBODY, "nobody")
    code, details = _err(write, s, os.path.join(priv, "w"), [b"no"], **U)
    assert code == "PERMISSION_DENIED" and os.path.join(priv, "w") in details, (code, details)
    assert listing(priv) == ["public", "secret"]
    code, _ = _err(write, s, os.path.join(priv, "public"), [b"no"], **U)
    assert code == "PERMISSION_DENIED" and _get(os.path.join(priv, "public")) == b"readable"
    # Read
    info, got, _, _ = read(s, os.path.join(priv, "public"), **U)
    assert got == b"readable"
    code, details = _err(read, s, os.path.join(priv, "secret"), **U)
    assert code == "PERMISSION_DENIED" and os.path.join(priv, "secret") in details, (code, details)
    # Stat: search permission on the way.
    assert stat_(s, os.path.join(priv, "secret"), **U).size == 9
    assert _err(stat_, s, os.path.join(closed, "f"), **U)[0] == "PERMISSION_DENIED"
    # List
    assert {e.path for e in _list(s, priv, 1, **U)} == {os.path.join(priv, n) for n in ("public", "secret")}
    assert _err(_list, s, closed, 1, **U)[0] == "PERMISSION_DENIED"
    # MakeDirectory
    info = s.MakeDirectory(P.MakeDirectoryRequest(path=os.path.join(pub, "d"), **U), timeout=30)
    assert (os.stat(os.path.join(pub, "d")).st_uid, info.uid) == (NOBODY, NOBODY)
    code, _ = _err(s.MakeDirectory, P.MakeDirectoryRequest(path=os.path.join(priv, "d"), **U), timeout=30)
    assert code == "PERMISSION_DENIED" and listing(priv) == ["public", "secret"]
    # Remove
    code, _ = _err(s.Remove, P.RemoveRequest(path=os.path.join(priv, "public"), **U), timeout=30)
    assert code == "PERMISSION_DENIED" and os.path.exists(os.path.join(priv, "public"))
    assert s.Remove(P.RemoveRequest(path=os.path.join(pub, "d"), **U), timeout=30).removed == 1
    # Move
    code, _ = _err(s.Move, P.MoveRequest(source=os.path.join(priv, "public"), destination=os.path.join(pub, "p"),
                                         **U), timeout=30)
    assert code == "PERMISSION_DENIED" and os.path.exists(os.path.join(priv, "public"))
    s.Move(P.MoveRequest(source=os.path.join(pub, "w"), destination=os.path.join(pub, "w2"), **U), timeout=30)
    assert _get(os.path.join(pub, "w2")) == b"mine"
    # WriteTree: everything the acting user's; keep_owners is root's only.
    E = [dict(path="t", type=F.DIRECTORY, mode=0o755, uid=0, gid=0),
         dict(path="t/f", type=F.FILE, mode=0o644, size=1, uid=0, gid=0),
         dict(path="t/l", type=F.SYMLINK, symlink_target="f")]
    data = {"t/f": b"1"}
    tr = os.path.join(pub, "tree")
    os.mkdir(tr)
    os.chmod(tr, 0o777)
    s.WriteTree(_tree_requests(tr, E, data, **U), timeout=30)
    assert {k: v for k, v in owners(tr).items() if k != "."} == \
        {"t": (NOBODY, NOBODY), "t/f": (NOBODY, NOBODY), "t/l": (NOBODY, NOBODY)}
    tr2 = os.path.join(pub, "tree2")
    os.mkdir(tr2)
    os.chmod(tr2, 0o777)
    code, _ = _err(s.WriteTree, _tree_requests(tr2, E, data, keep_owners=True, **U), timeout=30)
    assert code != "OK" and listing(tr2) == []
    code, _ = _err(s.WriteTree, _tree_requests(priv, E, data, **U), timeout=30)
    assert code == "PERMISSION_DENIED" and listing(priv) == ["public", "secret"]
    # ReadTree
    assert {e.path for e, _ in _read_tree(s, tr, **U)} == {"t", "t/f", "t/l"}
    assert _err(_read_tree, s, closed, **U)[0] == "PERMISSION_DENIED"
    alive(s)
    assert m.stop() == 0


def _every_method(s, path, **fields):
    """One call of each method on path, with fields: (name, callable)."""
    P = pb()
    F = P.FileInfo
    return [
        ("Write", lambda: write(s, path, [b"x"], **fields)),
        ("Read", lambda: read(s, path, **fields)),
        ("Stat", lambda: stat_(s, path, **fields)),
        ("List", lambda: _list(s, path, 1, **fields)),
        ("MakeDirectory", lambda: s.MakeDirectory(P.MakeDirectoryRequest(path=path, **fields), timeout=30)),
        ("Remove", lambda: s.Remove(P.RemoveRequest(path=path, **fields), timeout=30)),
        ("Move", lambda: s.Move(P.MoveRequest(source=path, destination=path + "-moved", **fields), timeout=30)),
        ("WriteTree", lambda: s.WriteTree(_tree_requests(path, [dict(path="f", type=F.FILE, mode=0o644, size=1)],
                                                         {"f": b"x"}, **fields), timeout=30)),
        ("ReadTree", lambda: _read_tree(s, path, **fields)),
    ]


def test_unknown_user_on_every_method():
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    p = os.path.join(d, "x")
    os.mkdir(p)
    for name, call in _every_method(s, p, user="no-such-user-here"):
        code, details = _err(call)
        assert code == "INVALID_ARGUMENT" and "no-such-user-here" in details, (name, code, details)
    assert no_temporaries(d) == ["x"]
    alive(s)
    assert m.stop() == 0


def test_invalid_arguments_on_every_method():
    """Relative paths, a NUL byte, an empty path: INVALID_ARGUMENT, the
    message naming the path (or the field); a mode above 07777 too."""
    P = pb()
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    for bad in ("relative/x", "x", d + "/a\0b", ""):
        for name, call in _every_method(s, bad):
            code, details = _err(call)
            assert code == "INVALID_ARGUMENT", (name, bad, code, details)
            if "/" in bad[:1]:  # the NUL: the path up to it, or the field
                named = d + "/a" in details or any(w in details.lower() for w in ("path", "root", "source"))
            elif bad:
                named = bad in details
            else:
                named = any(w in details.lower() for w in ("path", "root", "source"))
            assert named, (name, repr(bad), details)
    # Move's destination is checked as well as its source.
    put_file(os.path.join(d, "src"), b"s")
    code, details = _err(s.Move, P.MoveRequest(source=os.path.join(d, "src"), destination="rel"), timeout=30)
    assert code == "INVALID_ARGUMENT" and "rel" in details, (code, details)
    for mode in (0o10000, 0o177777, 2**32 - 1):
        code, details = _err(write, s, os.path.join(d, "m"), [b"x"], mode=mode)
        assert code == "INVALID_ARGUMENT" and "mode" in details, (mode, code, details)
        code, details = _err(s.MakeDirectory, P.MakeDirectoryRequest(path=os.path.join(d, "m"), mode=mode),
                             timeout=30)
        assert code == "INVALID_ARGUMENT" and "mode" in details, (mode, code, details)
    assert listing(d) == ["src"]
    alive(s)
    assert m.stop() == 0


def test_errno_table_in_a_mount_namespace():
    """EROFS (a read-only tmpfs), EBUSY (a mount point inside a tree being
    removed: Remove does not leave the mount it started on), EXDEV (not in
    the table: INTERNAL with strerror), ENOTEMPTY, EISDIR, ENOTDIR,
    EEXIST, ENOENT, EACCES — each as its code."""
    P = pb()
    d = open_dir()
    m = maitred_in_ns(f"""mkdir {d}/ro {d}/tree {d}/tree/sub {d}/tree/mnt {d}/small
mount -t tmpfs -o ro,size=1m tmpfs {d}/ro
mount -t tmpfs -o size=1m tmpfs {d}/tree/mnt
echo keep >{d}/tree/mnt/kept
mount -t tmpfs -o size=1m tmpfs {d}/small
echo x >{d}/small/x""")
    s = stubs(m.addr)
    ro = os.path.join(d, "ro")
    code, details = _err(write, s, os.path.join(ro, "f"), [b"x"])
    assert code == "FAILED_PRECONDITION" and os.path.join(ro, "f") in details, (code, details)
    code, _ = _err(s.MakeDirectory, P.MakeDirectoryRequest(path=os.path.join(ro, "d")), timeout=30)
    assert code == "FAILED_PRECONDITION", code
    tree = os.path.join(d, "tree")
    code, details = _err(s.Remove, P.RemoveRequest(path=tree, recursive=True), timeout=30)
    assert code == "FAILED_PRECONDITION", (code, details)
    with open(ns_path(m, os.path.join(tree, "mnt", "kept"))) as f:
        assert f.read() == "keep\n"
    code, details = _err(s.Move, P.MoveRequest(source=os.path.join(d, "small", "x"),
                                               destination=os.path.join(d, "x")), timeout=30)
    assert code == "INTERNAL" and os.strerror(18) in details, (code, details)  # EXDEV
    assert os.path.exists(ns_path(m, os.path.join(d, "small", "x")))
    alive(s)
    assert m.stop() == 0
