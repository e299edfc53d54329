"""maitctl's valet.v1.Files commands against a real maitred: cp of files
and trees both ways (byte-exact, modes, mtimes, symlinks, hard links),
--sha256, --no-replace, --user, local errors before any connection, the
progress line on a terminal only, --json, and stat, ls, mkdir, rm, mv.
Guest and host are the same machine here, so every result is compared
with the files themselves."""
import hashlib
import json
import os
import pty
import select
import signal
import stat
import subprocess
import sys

import valet
from valet import SANITIZER_MARKS, Maitred, binary, sanitizer_env, tmpdir, wait_until

CHUNK = 256 * 1024  # maitctl's data messages (cp.h)
NOWHERE = "unix:/nonexistent/maitred.sock"


def files_pb():
    """files_pb2 (proto/valet/v1/files.proto), generated once per run."""
    if "files_pb2" in sys.modules:
        return sys.modules["files_pb2"]
    out = tmpdir()
    pdir = os.path.join(valet.ROOT, "proto", "valet", "v1")
    subprocess.run(["protoc", "-I" + pdir, "--python_out=" + out, os.path.join(pdir, "files.proto")], check=True)
    sys.path.insert(0, out)
    import files_pb2
    return files_pb2


def maitred():
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"])


def mc(addr, *args, input=None, json_out=False, timeout=120, user=None):
    """maitctl, bytes in and out; user: run it as that user (setpriv)."""
    cmd = [binary("maitctl"), "--addr", addr] + (["--json"] if json_out else []) + list(args)
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups"] + cmd
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=sanitizer_env())
    for mark in SANITIZER_MARKS:
        assert mark.encode() not in r.stderr, r.stderr.decode(errors="replace")
    return r


def shared_dir():
    """A directory every user may reach (tmpdir() is 0700)."""
    d = tmpdir()
    os.chmod(d, 0o755)
    return d


def sha(data):
    return hashlib.sha256(data).hexdigest()


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, data, mode=None):
    with open(p, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(p, mode)


def test_cp_file_both_ways_byte_exact():
    m = maitred()
    d = shared_dir()
    for size in (0, 1, CHUNK - 1, CHUNK + 7, 3 * CHUNK + 12345):
        data = os.urandom(size)
        src = os.path.join(d, f"src-{size}")
        write(src, data, 0o640)
        guest = os.path.join(d, f"guest-{size}")
        r = mc(m.addr, "cp", src, ":" + guest, json_out=True)
        assert r.returncode == 0 and r.stderr == b"", r
        res = json.loads(r.stdout)
        assert (res["path"], res["bytes"], res["sha256"]) == (guest, size, sha(data)), res
        assert res["elapsed"] >= 0
        assert read(guest) == data
        # The local file's permission bits, as scp gives them.
        assert stat.S_IMODE(os.stat(guest).st_mode) == 0o640
        os.chmod(guest, 0o604)
        back = os.path.join(d, f"back-{size}")
        r = mc(m.addr, "cp", ":" + guest, back, json_out=True)
        assert r.returncode == 0 and r.stderr == b"", r
        res = json.loads(r.stdout)
        assert (res["path"], res["bytes"], res["sha256"]) == (back, size, None), res
        assert read(back) == data
        assert stat.S_IMODE(os.stat(back).st_mode) == 0o604  # the guest's mode
    # Text mode prints nothing on success (no terminal: no progress line).
    r = mc(m.addr, "cp", "--mode", "600", src, ":" + os.path.join(d, "quiet"))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), r
    assert stat.S_IMODE(os.stat(os.path.join(d, "quiet")).st_mode) == 0o600
    assert sorted(os.listdir(d)) == sorted([f"{k}-{s}" for k in ("src", "guest", "back")
                                            for s in (0, 1, CHUNK - 1, CHUNK + 7, 3 * CHUNK + 12345)] + ["quiet"])
    assert m.stop() == 0


def test_cp_64mib_with_sha256_both_ways():
    m = maitred()
    d = shared_dir()
    data = os.urandom(64 << 20)
    src, guest, back = (os.path.join(d, n) for n in ("src", "guest", "back"))
    write(src, data)
    r = mc(m.addr, "cp", "--sha256", src, ":" + guest, json_out=True)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["sha256"] == sha(data)
    assert read(guest) == data
    r = mc(m.addr, "cp", "--sha256", ":" + guest, back, json_out=True)
    assert r.returncode == 0, r
    res = json.loads(r.stdout)
    assert (res["bytes"], res["sha256"]) == (64 << 20, sha(data))
    assert read(back) == data
    assert m.stop() == 0


def test_cp_stdin_and_stdout():
    m = maitred()
    d = shared_dir()
    data = os.urandom(CHUNK * 2 + 3)
    guest = os.path.join(d, "from-stdin")
    r = mc(m.addr, "cp", "--sha256", "-", ":" + guest, input=data, json_out=True)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["sha256"] == sha(data)
    assert read(guest) == data
    assert stat.S_IMODE(os.stat(guest).st_mode) == 0o644  # the guest's default
    r = mc(m.addr, "cp", "--sha256", ":" + guest, "-")
    assert r.returncode == 0 and r.stdout == data, r.stderr
    # Standard input into a guest directory has no name to take.
    r = mc(m.addr, "cp", "-", ":" + d, input=b"x")
    assert r.returncode == 1 and b"standard input needs a file name" in r.stderr, r
    r = mc(m.addr, "cp", "-r", "-", ":" + guest)
    assert r.returncode == 2 and b"-r copies a directory" in r.stderr, r
    assert m.stop() == 0


def test_cp_into_existing_directories_takes_the_source_name():
    m = maitred()
    d = shared_dir()
    gdir, ldir = os.path.join(d, "gdir"), os.path.join(d, "ldir")
    os.mkdir(gdir)
    os.mkdir(ldir)
    write(os.path.join(d, "f"), b"hello")
    assert mc(m.addr, "cp", os.path.join(d, "f"), ":" + gdir).returncode == 0
    assert read(os.path.join(gdir, "f")) == b"hello"
    # A trailing slash says "a directory" without asking the guest.
    assert mc(m.addr, "cp", os.path.join(d, "f"), ":" + gdir + "/").returncode == 0
    assert mc(m.addr, "cp", ":" + os.path.join(gdir, "f"), ldir).returncode == 0
    assert read(os.path.join(ldir, "f")) == b"hello"
    # -p makes the missing parents, locally and in the guest.
    r = mc(m.addr, "cp", "-p", os.path.join(d, "f"), ":" + os.path.join(d, "new", "deep", "g"))
    assert r.returncode == 0, r
    assert read(os.path.join(d, "new", "deep", "g")) == b"hello"
    r = mc(m.addr, "cp", "-p", ":" + os.path.join(gdir, "f"), os.path.join(d, "lnew", "x", "g"))
    assert r.returncode == 0, r
    assert read(os.path.join(d, "lnew", "x", "g")) == b"hello"
    # Without -p: the guest's NOT_FOUND.
    r = mc(m.addr, "cp", os.path.join(d, "f"), ":" + os.path.join(d, "missing", "g"))
    assert r.returncode == 1 and b"NOT_FOUND" in r.stderr, r
    assert m.stop() == 0


def make_tree(root):
    os.makedirs(os.path.join(root, "a", "b"))
    os.mkdir(os.path.join(root, "empty"))
    write(os.path.join(root, "a", "f"), b"file f\n", 0o640)
    write(os.path.join(root, "a", "b", "exe"), os.urandom(CHUNK + 99), 0o755)
    write(os.path.join(root, "zero"), b"", 0o600)
    os.link(os.path.join(root, "a", "f"), os.path.join(root, "a", "b", "hard"))
    os.symlink("../f", os.path.join(root, "a", "b", "rel"))
    os.symlink("/etc/passwd", os.path.join(root, "abs"))
    os.mkfifo(os.path.join(root, "fifo"))
    os.chmod(os.path.join(root, "a", "b"), 0o750)
    os.chmod(os.path.join(root, "empty"), 0o700)
    t = 1_600_000_000
    for i, p in enumerate(("a/f", "a/b/exe", "zero", "a/b/rel", "abs", "a/b", "a", "empty")):
        os.utime(os.path.join(root, p), ns=((t + i) * 10**9 + 123456789,) * 2, follow_symlinks=False)


def walk(root):
    """Everything tests compare of a tree: per path its type, mode, mtime
    and content or target; hard links as groups of paths."""
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                what = ("d",)
            elif stat.S_ISREG(st.st_mode):
                what = ("f", sha(read(p)))
                inodes.setdefault(st.st_ino, []).append(rel)
            else:
                what = ("other",)
            out[rel] = what + (stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    links = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return out, links


def test_cp_tree_both_ways():
    m = maitred()
    d = shared_dir()
    src = os.path.join(d, "src")
    make_tree(src)
    want, links = walk(src)
    del want["fifo"]
    assert links == [["a/b/hard", "a/f"]]
    guest = os.path.join(d, "guest")
    r = mc(m.addr, "cp", "-r", src, ":" + guest, json_out=True)
    assert r.returncode == 0, r
    # The FIFO is skipped, with a warning naming it.
    assert r.stderr == f"maitctl cp: warning: {src}/fifo: not a file, directory or symlink; skipped\n".encode()
    res = json.loads(r.stdout)
    size = CHUNK + 99 + len(b"file f\n")
    assert (res["path"], res["files"], res["directories"], res["symlinks"], res["bytes"]) == \
        (guest, 4, 3, 2, size), res
    assert walk(guest) == (want, links)
    back = os.path.join(d, "back")
    r = mc(m.addr, "cp", "-r", ":" + guest, back, json_out=True)
    assert r.returncode == 0 and r.stderr == b"", r
    res = json.loads(r.stdout)
    assert (res["path"], res["files"], res["directories"], res["symlinks"], res["bytes"]) == \
        (back, 4, 3, 2, size), res
    assert walk(back) == (want, links)
    # Into an existing directory: under the source's name, both ways.
    r = mc(m.addr, "cp", "-r", ":" + guest, back)
    assert r.returncode == 0, r
    assert walk(os.path.join(back, "guest")) == (want, links)
    os.mkdir(os.path.join(d, "gparent"))
    r = mc(m.addr, "cp", "-r", back + "/a", ":" + os.path.join(d, "gparent"))
    assert r.returncode == 0, r
    assert walk(os.path.join(d, "gparent", "a"))[0] == {k[2:]: v for k, v in want.items() if k.startswith("a/")}
    # -r of a single file copies the file.
    r = mc(m.addr, "cp", "-r", ":" + os.path.join(guest, "zero"), os.path.join(d, "z"))
    assert r.returncode == 0 and read(os.path.join(d, "z")) == b"", r
    # Without -r a directory is refused locally, before any connection;
    # options a tree cannot carry are refused, not ignored.
    r = mc(NOWHERE, "cp", src, ":/x")
    assert r.returncode == 1 and b"is a directory (use -r)" in r.stderr, r
    for opt in (["--sha256"], ["--no-replace"], ["--mode", "600"]):
        r = mc(NOWHERE, "cp", "-r", *opt, src, ":/x")
        assert r.returncode == 2 and f"{opt[0]} is for single files, not trees".encode() in r.stderr, r
    r = mc(m.addr, "cp", "-r", "--sha256", ":" + guest, os.path.join(d, "nope"))
    assert r.returncode == 2 and b"--sha256 is for single files, not trees" in r.stderr, r
    assert not os.path.exists(os.path.join(d, "nope"))
    assert m.stop() == 0


def test_cp_no_replace_keeps_the_old_file():
    m = maitred()
    d = shared_dir()
    old, new = os.path.join(d, "old"), os.path.join(d, "new")
    write(old, b"old content")
    write(new, b"new content")
    r = mc(m.addr, "cp", "--no-replace", new, ":" + old)
    assert r.returncode == 1 and r.stderr.startswith(b"maitctl: ALREADY_EXISTS: "), r
    assert read(old) == b"old content"
    r = mc(m.addr, "cp", "--no-replace", new, ":" + old, json_out=True)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == "ALREADY_EXISTS", r
    # Downloading over an existing local file: refused before the call.
    r = mc(NOWHERE, "cp", "--no-replace", ":" + new, old)
    assert r.returncode == 1 and r.stderr == f"maitctl: ALREADY_EXISTS: {old}: exists\n".encode(), r
    assert read(old) == b"old content"
    assert sorted(os.listdir(d)) == ["new", "old"]
    # Without it the file is replaced.
    assert mc(m.addr, "cp", new, ":" + old).returncode == 0 and read(old) == b"new content"
    assert m.stop() == 0


def test_cp_as_a_user_without_the_right():
    m = maitred()
    d = shared_dir()  # root's, 0755
    write(os.path.join(d, "f"), b"data")
    r = mc(m.addr, "cp", "--user", "nobody", os.path.join(d, "f"), ":" + os.path.join(d, "g"))
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr, r
    write(os.path.join(d, "secret"), b"secret", 0o600)
    out = shared_dir()
    r = mc(m.addr, "cp", "--user", "nobody", ":" + os.path.join(d, "secret"), os.path.join(out, "s"))
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr, r
    assert os.listdir(out) == []
    assert sorted(os.listdir(d)) == ["f", "secret"]
    # A user who may write there: the file is theirs.
    os.chmod(d, 0o777)
    r = mc(m.addr, "cp", "--user", "nobody", os.path.join(d, "f"), ":" + os.path.join(d, "g"))
    assert r.returncode == 0, r
    assert os.stat(os.path.join(d, "g")).st_uid == 65534
    assert m.stop() == 0


def test_local_errors_come_before_any_connection():
    d = shared_dir()
    missing = os.path.join(d, "missing")
    r = mc(NOWHERE, "cp", missing, ":/tmp/x")
    assert (r.returncode, r.stderr) == (1, f"maitctl: NOT_FOUND: {missing}: No such file or directory\n".encode()), r
    r = mc(NOWHERE, "cp", missing, ":/tmp/x", json_out=True)
    assert json.loads(r.stdout) == {"code": "NOT_FOUND", "message": f"{missing}: No such file or directory"}
    # The local destination's directory: missing, not a directory, not writable.
    write(os.path.join(d, "file"), b"")
    r = mc(NOWHERE, "cp", ":/etc/hostname", os.path.join(d, "nodir", "x"))
    assert r.returncode == 1 and b"NOT_FOUND" in r.stderr and b"nodir" in r.stderr, r
    r = mc(NOWHERE, "cp", ":/etc/hostname", os.path.join(d, "file", "x"))
    assert r.returncode == 1 and b"FAILED_PRECONDITION" in r.stderr, r
    r = mc(NOWHERE, "cp", ":/etc/hostname", os.path.join(d, "x"), user="nobody")
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr and b"cannot write in its directory" in r.stderr, r
    # An unreadable source, as a user who may not read it.
    write(os.path.join(d, "secret"), b"s", 0o600)
    r = mc(NOWHERE, "cp", os.path.join(d, "secret"), ":/tmp/x", user="nobody")
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr and b"secret" in r.stderr, r
    assert b"UNAVAILABLE" not in r.stderr
    assert sorted(os.listdir(d)) == ["file", "secret"]
    # Usage errors.
    for args, text in [(["a", "b"], b"exactly one of SRC and DST"), ([":/a", ":/b"], b"exactly one of SRC and DST"),
                       (["a", ":rel"], b"guest path ':rel' is not absolute"), (["a"], b"expected SRC DST"),
                       (["--mode", "9", "a", ":/b"], b"invalid --mode '9'"),
                       (["--mode", "600", ":/a", "b"], b"--mode is for copies into the guest")]:
        r = mc(NOWHERE, "cp", *args)
        assert r.returncode == 2 and text in r.stderr, (args, r)


def test_failed_download_leaves_nothing():
    """maitred killed in the middle of a large download: maitctl fails and
    the destination directory holds nothing, not even a temporary file."""
    m = maitred()
    d = shared_dir()
    big = os.path.join(d, "big")
    with open(big, "wb") as f:
        f.truncate(4 << 30)  # sparse: read fast, never fully sent before the kill
    out = shared_dir()
    dest = os.path.join(out, "dest")
    p = subprocess.Popen([binary("maitctl"), "--addr", m.addr, "cp", ":" + big, dest],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sanitizer_env())

    def writing():
        for fd in os.listdir(f"/proc/{p.pid}/fd"):
            try:
                t = os.readlink(f"/proc/{p.pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if t.startswith(out) and os.path.exists(f"/proc/{p.pid}/fdinfo/{fd}"):
                with open(f"/proc/{p.pid}/fdinfo/{fd}") as f:
                    pos = int(f.readline().split()[1])
                if pos > 0:
                    return True
        return False
    wait_until(lambda: p.poll() is not None or writing(), 60, what="maitctl writing the download")
    assert p.poll() is None, p.communicate()
    os.kill(m.pid, signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and b"UNAVAILABLE" in err, err
    assert os.listdir(out) == []
    m.stop()


def test_sha256_mismatch_on_download_leaves_nothing():
    """A guest that sends a wrong digest: DATA_LOSS and no local file. The
    guest here is a stand-in that answers Read with a digest of other bytes."""
    import grpc
    from concurrent import futures
    files_pb2 = files_pb()

    def read(request, context):
        yield files_pb2.ReadResponse(info=files_pb2.FileInfo(path=request.path, type=1, size=5, mode=0o644))
        yield files_pb2.ReadResponse(data=b"hello")
        yield files_pb2.ReadResponse(sha256=hashlib.sha256(b"other").digest())

    handler = grpc.method_handlers_generic_handler("valet.v1.Files", {
        "Read": grpc.unary_stream_rpc_method_handler(read, request_deserializer=files_pb2.ReadRequest.FromString,
                                                     response_serializer=files_pb2.ReadResponse.SerializeToString)})
    d = shared_dir()
    sock = os.path.join(d, "liar.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("unix:" + sock)
    server.start()
    try:
        out = shared_dir()
        r = mc("unix:" + sock, "cp", "--sha256", ":/x", os.path.join(out, "x"))
        assert r.returncode == 1 and b"DATA_LOSS" in r.stderr, r
        assert os.listdir(out) == []
        # Without --sha256 nothing is checked and the file is there.
        r = mc("unix:" + sock, "cp", ":/x", os.path.join(out, "x"))
        with open(os.path.join(out, "x"), "rb") as f:
            assert r.returncode == 0 and f.read() == b"hello", r
    finally:
        server.stop(0)


def read_pty(cmd):
    """Runs cmd with stderr on a terminal: (status, stdout, the terminal's bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=sanitizer_env())
    os.close(slave)
    term = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        term += chunk
    out, _ = p.communicate(timeout=60)
    os.close(master)
    return p.returncode, out, term


def test_progress_line_on_a_terminal_only():
    m = maitred()
    d = shared_dir()
    src = os.path.join(d, "src")
    write(src, os.urandom(32 << 20))
    rc, out, term = read_pty([binary("maitctl"), "--addr", m.addr, "cp", src, ":" + os.path.join(d, "g")])
    assert rc == 0 and out == b"", (rc, out, term)
    text = term.decode().replace("\r\n", "\n")  # the terminal's own newline translation
    # Redrawn in place ("\r", erased to the end of the line), with a rate,
    # and ended by one newline with the whole size.
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1, text
    last = text.rstrip("\n").split("\r")[-1]
    assert "32.0 MiB / 32.0 MiB (100%)" in last and "/s" in last, repr(text)
    assert "\033[K" in text
    # Downloads too.
    rc, out, term = read_pty([binary("maitctl"), "--addr", m.addr, "cp", ":" + src, os.path.join(d, "b")])
    assert rc == 0 and b"32.0 MiB / 32.0 MiB (100%)" in term and term.endswith(b"\n"), term
    # Without a terminal: nothing on stderr.
    r = mc(m.addr, "cp", src, ":" + os.path.join(d, "g2"))
    assert (r.returncode, r.stderr) == (0, b""), r
    assert m.stop() == 0


def test_stat():
    m = maitred()
    d = shared_dir()
    f = os.path.join(d, "f")
    write(f, b"12345", 0o4751)
    os.utime(f, ns=(1_600_000_000_123456789,) * 2)
    os.symlink("f", os.path.join(d, "l"))
    r = mc(m.addr, "stat", ":" + f, json_out=True)
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == {"path": f, "type": "file", "size": 5, "mode": "4751", "uid": 0, "gid": 0,
                                    "owner": "root", "group": "root", "mtime": "2020-09-13T12:26:40.123456789Z"}
    r = mc(m.addr, "stat", f)  # the colon is optional for guest-only commands
    assert r.returncode == 0 and b"  Mode: 4751 (-rwsr-x--x)\n" in r.stdout and b"  Size: 5\n" in r.stdout, r
    r = mc(m.addr, "stat", ":" + os.path.join(d, "l"), json_out=True)
    assert json.loads(r.stdout)["type"] == "symlink" and json.loads(r.stdout)["symlink_target"] == "f"
    r = mc(m.addr, "stat", "-L", ":" + os.path.join(d, "l"), json_out=True)
    assert json.loads(r.stdout)["type"] == "file"
    r = mc(m.addr, "stat", ":" + os.path.join(d, "nope"))
    assert r.returncode == 1 and r.stderr == f"maitctl: NOT_FOUND: {d}/nope: No such file or directory\n".encode(), r
    r = mc(m.addr, "stat", "relative")
    assert r.returncode == 2 and b"guest path 'relative' is not absolute" in r.stderr, r
    assert m.stop() == 0


def test_ls():
    m = maitred()
    d = shared_dir()
    os.makedirs(os.path.join(d, "a", "b"))
    write(os.path.join(d, "a", "b", "deep"), b"x")
    write(os.path.join(d, "f"), b"abc", 0o600)
    os.utime(os.path.join(d, "f"), (1_600_000_000, 1_600_000_000))
    os.symlink("f", os.path.join(d, "l"))
    r = mc(m.addr, "ls", ":" + d)
    assert r.returncode == 0 and sorted(r.stdout.decode().split("\n")) == ["", "a", "f", "l"], r
    r = mc(m.addr, "ls", "-R", ":" + d)
    lines = r.stdout.decode().split("\n")[:-1]
    assert sorted(lines) == ["a", "a/b", "a/b/deep", "f", "l"], r
    assert lines.index("a") < lines.index("a/b") < lines.index("a/b/deep")
    r = mc(m.addr, "ls", "--depth", "2", ":" + d)
    assert sorted(r.stdout.decode().split("\n")[:-1]) == ["a", "a/b", "f", "l"], r
    r = mc(m.addr, "ls", "-l", ":" + d)
    lines = sorted(r.stdout.decode().split("\n")[:-1], key=lambda s: s.split()[-1] if "->" not in s else "l")
    assert lines[1] == "-rw------- root     root              3 2020-09-13 12:26 f", lines
    assert lines[2].startswith("lrwxrwxrwx root") and lines[2].endswith(" l -> f"), lines
    r = mc(m.addr, "ls", "-R", ":" + d, json_out=True)
    entries = [json.loads(line) for line in r.stdout.decode().split("\n")[:-1]]
    assert sorted(e["path"] for e in entries) == [os.path.join(d, p) for p in ("a", "a/b", "a/b/deep", "f", "l")]
    r = mc(m.addr, "ls", ":" + os.path.join(d, "nope"))
    assert r.returncode == 1 and b"NOT_FOUND" in r.stderr and r.stdout == b"", r
    r = mc(m.addr, "ls", "--depth", "0", ":" + d)
    assert r.returncode == 2 and b"invalid --depth '0'" in r.stderr
    assert m.stop() == 0


def test_mkdir_rm_mv():
    m = maitred()
    d = shared_dir()
    r = mc(m.addr, "mkdir", "--mode", "750", ":" + os.path.join(d, "x"), json_out=True)
    assert r.returncode == 0 and json.loads(r.stdout)["mode"] == "0750", r
    assert stat.S_IMODE(os.stat(os.path.join(d, "x")).st_mode) == 0o750
    r = mc(m.addr, "mkdir", ":" + os.path.join(d, "x"))
    assert r.returncode == 1 and b"ALREADY_EXISTS" in r.stderr, r
    r = mc(m.addr, "mkdir", ":" + os.path.join(d, "p", "q"))
    assert r.returncode == 1 and b"NOT_FOUND" in r.stderr, r
    r = mc(m.addr, "mkdir", "-p", ":" + os.path.join(d, "p", "q"))
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), r
    assert os.path.isdir(os.path.join(d, "p", "q"))
    r = mc(m.addr, "mkdir", "--user", "nobody", ":" + os.path.join(d, "no"))
    assert r.returncode == 1 and b"PERMISSION_DENIED" in r.stderr, r
    # mv: a rename; --no-replace refuses an existing destination.
    write(os.path.join(d, "a"), b"A")
    write(os.path.join(d, "b"), b"B")
    r = mc(m.addr, "mv", "--no-replace", ":" + os.path.join(d, "a"), ":" + os.path.join(d, "b"))
    assert r.returncode == 1 and b"ALREADY_EXISTS" in r.stderr, r
    assert read(os.path.join(d, "b")) == b"B"
    r = mc(m.addr, "mv", ":" + os.path.join(d, "a"), os.path.join(d, "c"), json_out=True)
    assert r.returncode == 0 and json.loads(r.stdout)["path"] == os.path.join(d, "c"), r
    assert read(os.path.join(d, "c")) == b"A" and not os.path.exists(os.path.join(d, "a"))
    r = mc(m.addr, "mv", ":" + os.path.join(d, "a"), ":" + os.path.join(d, "e"))
    assert r.returncode == 1 and b"NOT_FOUND" in r.stderr, r
    # rm: a tree needs -r.
    r = mc(m.addr, "rm", ":" + os.path.join(d, "p"))
    assert r.returncode == 1 and b"FAILED_PRECONDITION" in r.stderr, r
    r = mc(m.addr, "rm", "-r", ":" + os.path.join(d, "p"), json_out=True)
    assert r.returncode == 0 and json.loads(r.stdout) == {"removed": 2}, r
    assert not os.path.exists(os.path.join(d, "p"))
    r = mc(m.addr, "rm", ":" + os.path.join(d, "c"))
    assert (r.returncode, r.stdout) == (0, b"") and not os.path.exists(os.path.join(d, "c"))
    r = mc(m.addr, "rm", ":" + os.path.join(d, "c"), json_out=True)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == "NOT_FOUND", r
    assert sorted(os.listdir(d)) == ["b", "x"]
    assert m.stop() == 0


def test_help_of_the_file_commands():
    for cmd in ("cp", "stat", "ls", "mkdir", "rm", "mv"):
        r = subprocess.run([binary("maitctl"), cmd, "--help"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.startswith(f"Usage: maitctl {cmd}"), (cmd, r)
