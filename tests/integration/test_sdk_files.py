"""guest.files (valet.v1.Files through the SDK) against a real maitred:
every method, sync and asyncio, each kind of source and destination,
progress callbacks, trees both ways with links, modes and mtimes kept, the
errors as exception classes; a local source that fails half-way leaves
nothing in the guest; a hostile tree stream writes nothing outside the
local directory."""
import asyncio
import hashlib
import io
import os

import sdk
from sdk import raises
from files_client import DATA_MAX, MiB, diff, listing, no_temporaries, open_dir, walk
from valet import tmpdir




def _get(p):
    with open(p, "rb") as f:
        return f.read()


def test_write_and_read_every_source_and_destination():
    v = sdk.load()
    m = sdk.maitred()
    d = open_dir()
    data = os.urandom(3 * MiB + 12345)
    local = os.path.join(tmpdir(), "local.bin")
    with open(local, "wb") as f:
        f.write(data)
    with v.Guest(m.addr) as g:
        seen = []
        info = g.files.write(f"{d}/from-bytes", data, mode=0o600, progress=lambda done, total: seen.append(
            (done, total)))
        assert (info.path, info.type, info.size, info.mode) == (f"{d}/from-bytes", v.FileType.FILE, len(data), 0o600)
        assert info.is_file and not info.is_dir and info.owner == "root"
        assert _get(f"{d}/from-bytes") == data
        assert seen[-1] == (len(data), len(data)) and len(seen) > 10, seen[-3:]
        assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
        assert info.mtime_ns == os.stat(f"{d}/from-bytes").st_mtime_ns
        assert abs(info.mtime.timestamp() - os.stat(f"{d}/from-bytes").st_mtime) < 1e-3
        g.files.write(f"{d}/from-path", local)
        with open(local, "rb") as f:
            g.files.write(f"{d}/from-file", f)
        g.files.write(f"{d}/from-str-io", io.BytesIO(b"small"))
        g.files.write(f"{d}/empty", b"")
        assert _get(f"{d}/from-path") == data and _get(f"{d}/from-file") == data
        assert _get(f"{d}/from-str-io") == b"small" and _get(f"{d}/empty") == b""
        # mtime, sha256 checked by the guest, make_parents.
        g.files.write(f"{d}/deep/er/f", b"x", make_parents=True, mtime=1700000000.5,
                      sha256=hashlib.sha256(b"x").digest())
        assert os.stat(f"{d}/deep/er/f").st_mtime_ns == 1700000000_500000000
        # Reading: bytes, a range, into a path (atomic), into a file object.
        assert g.files.read(f"{d}/from-bytes") == data
        assert g.files.read(f"{d}/from-bytes", offset=MiB, length=1000) == data[MiB:MiB + 1000]
        assert g.files.read(f"{d}/from-bytes", offset=len(data) - 5) == data[-5:]
        assert g.files.read(f"{d}/empty") == b""
        out = os.path.join(tmpdir(), "out.bin")
        seen.clear()
        info = g.files.read(f"{d}/from-bytes", out, progress=lambda done, total: seen.append((done, total)))
        assert _get(out) == data and info.size == len(data) and oct(os.stat(out).st_mode & 0o777) == "0o600"
        assert seen[-1] == (len(data), len(data)), seen[-1]
        assert listing(os.path.dirname(out)) == ["out.bin"]
        buf = io.BytesIO()
        assert g.files.read(f"{d}/from-path", buf).size == len(data) and buf.getvalue() == data
    assert m.stop() == 0


def test_messages_up_to_the_limit_and_a_source_failing_half_way_leaves_nothing():
    v = sdk.load()
    m = sdk.maitred()
    d = open_dir()

    class Failing(io.RawIOBase):
        def __init__(self):
            self.n = 0

        def readable(self):
            return True

        def read(self, size=-1):
            self.n += 1
            if self.n > 5:
                raise OSError(5, "the local disk failed")
            return b"y" * size

    with v.Guest(m.addr) as g:
        e = raises(OSError, g.files.write, f"{d}/half", Failing())
        assert "the local disk failed" in str(e) and not isinstance(e, v.Error), e
        assert no_temporaries(d) == [], no_temporaries(d)
        # A digest that differs: DataLoss, the old file kept.
        g.files.write(f"{d}/kept", b"old")
        e = raises(v.DataLoss, g.files.write, f"{d}/kept", b"new", sha256=b"\0" * 32)
        assert _get(f"{d}/kept") == b"old" and f"{d}/kept" in str(e), str(e)
        assert listing(d) == ["kept"]
        big = os.urandom(DATA_MAX + 1)
        assert g.files.write(f"{d}/big", big).size == len(big)
        assert g.files.read(f"{d}/big") == big
    assert m.stop() == 0


def test_stat_list_mkdir_move_remove_and_their_errors():
    v = sdk.load()
    m = sdk.maitred()
    d = open_dir()
    with v.Guest(m.addr) as g:
        info = g.files.mkdir(f"{d}/a/b", parents=True, mode=0o750)
        assert info.is_dir and info.mode == 0o750 and info.path == f"{d}/a/b"
        g.files.mkdir(f"{d}/a/b", parents=True)  # exists: fine with parents
        e = raises(v.AlreadyExists, g.files.mkdir, f"{d}/a/b")
        assert isinstance(e, FileExistsError) and f"{d}/a/b" in str(e)
        g.files.write(f"{d}/a/b/f", b"12345")
        os.symlink("b/f", f"{d}/a/link")
        st = g.files.stat(f"{d}/a/link")
        assert st.is_symlink and st.symlink_target == "b/f"
        st = g.files.stat(f"{d}/a/link", follow_symlinks=True)
        assert st.is_file and st.size == 5
        assert [i.path for i in g.files.list(f"{d}/a")] == sorted([f"{d}/a/b", f"{d}/a/link"])
        assert [i.path for i in g.files.list(d, depth=3)] == [f"{d}/a", f"{d}/a/b", f"{d}/a/b/f", f"{d}/a/link"]
        assert g.files.exists(f"{d}/a/b/f") and not g.files.exists(f"{d}/nope")
        moved = g.files.move(f"{d}/a/b/f", f"{d}/g")
        assert moved.path == f"{d}/g" and moved.size == 5 and not os.path.exists(f"{d}/a/b/f")
        g.files.write(f"{d}/h", b"h")
        e = raises(v.AlreadyExists, g.files.move, f"{d}/g", f"{d}/h", no_replace=True)
        e = raises(v.FailedPrecondition, g.files.remove, f"{d}/a")
        assert "not empty" in str(e).lower() or f"{d}/a" in str(e), str(e)
        assert g.files.remove(f"{d}/a", recursive=True) == 3
        assert g.files.remove(f"{d}/g") == 1
        assert listing(d) == ["h"]
        # The errno table and argument errors, as classes with the guest's message.
        e = raises(v.NotFound, g.files.stat, f"{d}/missing")
        assert isinstance(e, FileNotFoundError) and e.code.name == "NOT_FOUND" and f"{d}/missing" in str(e)
        raises(v.NotFound, g.files.read, f"{d}/missing")
        raises(v.NotFound, g.files.list, f"{d}/missing")
        e = raises(v.InvalidArgument, g.files.stat, "relative/path")
        assert "relative/path" in str(e), str(e)
        raises(v.InvalidArgument, g.files.write, "relative", b"x")
        raises(v.FailedPrecondition, g.files.read, d)
        e = raises(v.PermissionDenied, g.files.write, "/proc/version", b"x", user="nobody")
        e = raises(v.InvalidArgument, g.files.stat, "/", user="no-such-user")
        raises(ValueError, g.files.mkdir, f"{d}/m", mode=0o17777)
        # User: the file belongs to nobody.
        shared = open_dir(0o777)
        info = g.files.write(f"{shared}/mine", b"n", user="nobody")
        assert (info.uid, info.owner) == (65534, "nobody"), info
        # Still serving after all of it.
        assert g.files.stat("/").is_dir
    assert m.stop() == 0


def _tree(root):
    os.makedirs(f"{root}/src/pkg/sub")
    os.makedirs(f"{root}/src/empty")
    with open(f"{root}/src/pkg/mod.py", "w") as f:
        f.write("X = 1\n")
    with open(f"{root}/src/pkg/sub/big", "wb") as f:
        f.write(os.urandom(2 * MiB + 7))
    open(f"{root}/src/zero", "w").close()
    os.chmod(f"{root}/src/pkg/mod.py", 0o640)
    os.chmod(f"{root}/src/empty", 0o700)
    os.link(f"{root}/src/pkg/mod.py", f"{root}/src/hard")
    os.symlink("pkg/mod.py", f"{root}/src/link")
    os.symlink("/nowhere", f"{root}/src/dangling")
    os.utime(f"{root}/src/pkg/sub/big", ns=(1600000000_123456789, 1600000000_123456789))
    os.utime(f"{root}/src/pkg", ns=(1500000000_000000001, 1500000000_000000001))
    return f"{root}/src"


def test_upload_and_download_keep_the_tree():
    v = sdk.load()
    m = sdk.maitred()
    local = tmpdir()
    src = _tree(local)
    d = open_dir()
    with v.Guest(m.addr) as g:
        seen = []
        s = g.files.upload(src, f"{d}/up", progress=lambda done, total: seen.append((done, total)))
        total = 2 * MiB + 7 + 6
        assert s == v.TreeSummary(files=4, directories=3, symlinks=2, bytes=total), s
        assert seen[-1] == (total, total), seen[-1]
        assert diff(walk(f"{d}/up"), walk(src)) == {}
        s2 = g.files.download(f"{d}/up", f"{local}/back")
        assert (s2.files, s2.directories, s2.symlinks, s2.bytes) == (4, 3, 2, total), s2
        assert diff(walk(f"{local}/back"), walk(src)) == {}
        # A missing local directory, a missing guest tree, a bad root.
        raises(NotADirectoryError, g.files.upload, f"{local}/nope", f"{d}/x")
        raises(v.NotFound, g.files.download, f"{d}/nope", f"{local}/x")
        raises(v.InvalidArgument, g.files.upload, src, "relative")
        assert listing(d) == ["up"]
    assert m.stop() == 0


def test_a_hostile_tree_stream_writes_nothing_outside_the_local_directory():
    v = sdk.load()
    from valet_sdk._proto import files_pb2
    from valet_sdk.files import TreeWriter
    F = files_pb2.FileInfo
    root = tmpdir()
    outside = tmpdir()
    cases = [
        [files_pb2.TreeEntry(path="../escape", type=F.FILE, size=1)],
        [files_pb2.TreeEntry(path="/abs", type=F.FILE, size=1)],
        [files_pb2.TreeEntry(path="a//b", type=F.DIRECTORY)],
        [files_pb2.TreeEntry(path="l", type=F.SYMLINK, symlink_target=outside),
         files_pb2.TreeEntry(path="l/x", type=F.FILE, size=1)],
        [files_pb2.TreeEntry(path="h", type=F.FILE, hardlink_to="../../etc/passwd")],
    ]
    for i, entries in enumerate(cases):
        w = TreeWriter(f"{root}/{i}", None)
        try:
            for e in entries:
                w.entry(e)
            raise AssertionError(f"case {i} was accepted")
        except v.ProtocolError as e:
            assert "outside" in str(e) or "bad path" in str(e), str(e)
        w.abort()
    w = TreeWriter(f"{root}/more", None)
    w.entry(files_pb2.TreeEntry(path="f", type=F.FILE, size=2))
    raises(v.ProtocolError, w.data, b"123")
    w.abort()
    w = TreeWriter(f"{root}/short", None)
    w.entry(files_pb2.TreeEntry(path="f", type=F.FILE, size=2))
    w.data(b"1")
    raises(v.ProtocolError, w.finish)
    w.abort()
    assert os.listdir(outside) == []


def test_async_files_do_the_same():
    v = sdk.load()
    m = sdk.maitred()
    d = open_dir()
    local = tmpdir()
    src = _tree(local)
    data = os.urandom(MiB + 3)

    async def main():
        async with v.AsyncGuest(m.addr) as g:
            info = await g.files.write(f"{d}/f", data, mode=0o640)
            assert info.size == len(data) and info.mode == 0o640
            assert await g.files.read(f"{d}/f") == data
            assert await g.files.read(f"{d}/f", offset=10, length=10) == data[10:20]
            out = os.path.join(local, "copy")
            assert (await g.files.read(f"{d}/f", out)).size == len(data) and _get(out) == data
            assert (await g.files.stat(f"{d}/f")).is_file
            assert await g.files.exists(f"{d}/f") and not await g.files.exists(f"{d}/nope")
            await g.files.mkdir(f"{d}/dir")
            assert [i.path for i in await g.files.list(d)] == [f"{d}/dir", f"{d}/f"]
            assert (await g.files.move(f"{d}/f", f"{d}/dir/f")).path == f"{d}/dir/f"
            s = await g.files.upload(src, f"{d}/up")
            assert s.files == 4 and s.symlinks == 2
            await g.files.download(f"{d}/up", f"{local}/back")
            assert diff(walk(f"{local}/back"), walk(src)) == {}
            assert await g.files.remove(f"{d}/dir", recursive=True) == 2
            try:
                await g.files.stat(f"{d}/dir")
                raise AssertionError("removed")
            except v.NotFound as e:
                assert f"{d}/dir" in str(e)
            try:
                await g.files.write(f"{d}/x", b"1", sha256=b"\1" * 32)
                raise AssertionError("digest")
            except v.DataLoss:
                pass
    asyncio.run(main())
    assert listing(d) == ["up"]
    assert m.stop() == 0
