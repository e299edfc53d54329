"""valet.v1.Files' Stat answered in maitred's loop (docs/files.md, "Stat
in maitred's loop"): with no `user`, when the kernel's caches hold the
path, the inode and the names' files, maitred answers without a worker
(none is forked: maitred has no child); otherwise a worker answers. The
answer is the same either way: every case is compared with the worker's
answer to the same Stat made with user "root" (a worker always; as root
it sees what maitred sees)."""
import os
import subprocess
import time

from files_client import in_ns, maitred, maitred_in_ns, open_dir, pb, put_file, stat_, stubs
from process_client import children_of
from valet import grpc_error, wait_until


def _answer(s, path, **kw):
    """The FileInfo, or (code, details) of the error."""
    import grpc
    try:
        return stat_(s, path, **kw)
    except grpc.RpcError as e:
        return (e.code().name, e.details())


def _owned_file(d):
    """An empty file d/f of uid 54321 and gid 54322, names the tests give."""
    f = os.path.join(d, "f")
    put_file(f, b"")
    os.chown(f, 54321, 54322)
    return f


def _same_as_worker(s, path, **kw):
    here = _answer(s, path, **kw)
    there = _answer(s, path, user="root", **kw)
    assert here == there, (path, kw, here, there)
    return here


def _no_worker(m):
    assert children_of(m.pid) == [], "a worker was started"


def test_cached_stat_starts_no_worker():
    """Files, directories, a symlink followed, a path too long or not
    absolute: answered with no worker at all, correctly."""
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    f = os.path.join(d, "f")
    put_file(f, b"12345", 0o640)
    link = os.path.join(d, "l")
    os.symlink("f", link)
    # Following a symlink whose atime is not after its change (relatime)
    # writes the atime: the kernel leaves that to a walk that may wait,
    # a worker's. Here it is ahead already.
    os.utime(link, ns=(time.time_ns() + 10 * 10**9, os.lstat(link).st_mtime_ns), follow_symlinks=False)
    os.stat(link)  # the test's own lookups fill the caches
    info = stat_(s, f)
    assert (info.path, info.type, info.size, info.mode, info.owner, info.group) == (f, F.FILE, 5, 0o640, "root",
                                                                                    "root"), info
    assert (info.mtime.seconds * 10**9 + info.mtime.nanos) == os.stat(f).st_mtime_ns
    assert stat_(s, d).type == F.DIRECTORY
    assert stat_(s, "/").type == F.DIRECTORY
    info = stat_(s, os.path.join(d, "l"), follow_symlinks=True)
    assert (info.path, info.type, info.size, info.symlink_target) == (os.path.join(d, "l"), F.FILE, 5, ""), info
    assert _answer(s, d + "/" + "x" * 256)[0] == "INVALID_ARGUMENT"
    assert _answer(s, "/" + "x/" * 2100 + "x")[0] == "INVALID_ARGUMENT"
    assert _answer(s, "relative")[0] == "INVALID_ARGUMENT"
    _no_worker(m)
    # Many in a row: still none.
    for _ in range(50):
        assert stat_(s, f).size == 5
    _no_worker(m)
    assert m.stop() == 0


def test_same_answers_as_a_worker():
    """Every kind of answer, with and without following, is the worker's:
    file, directory, symlink (not followed: a worker reads its target),
    dangling symlink, missing, through a file (ENOTDIR), a symlink loop
    (ELOOP), names too long, a device, a FIFO."""
    m = maitred()
    s = stubs(m.addr)
    d = open_dir()
    f = os.path.join(d, "f")
    put_file(f, b"abc")
    os.chown(f, 65534, 65534)
    os.mkdir(os.path.join(d, "sub"))
    os.symlink("f", os.path.join(d, "l"))
    os.symlink(os.path.join(d, "nowhere"), os.path.join(d, "dangling"))
    os.symlink("loop2", os.path.join(d, "loop1"))
    os.symlink("loop1", os.path.join(d, "loop2"))
    os.mkfifo(os.path.join(d, "fifo"))
    names = ["f", "sub", "l", "dangling", "loop1", "missing", "f/x", "fifo", "sub/../f", "x" * 256]
    for name in names:
        p = os.path.join(d, name)
        for follow in (False, True):
            for _ in range(2):  # the second time, the worker's lookup is cached
                _same_as_worker(s, p, follow_symlinks=follow)
    for p in ("/dev/null", "/"):
        _same_as_worker(s, p)
    assert _answer(s, os.path.join(d, "missing"))[0] == "NOT_FOUND"
    assert _answer(s, os.path.join(d, "f/x"))[0] == "FAILED_PRECONDITION"
    assert _answer(s, os.path.join(d, "l")).symlink_target == "f"
    info = _answer(s, f)
    assert (info.owner, info.group) == ("nobody", "nogroup"), info
    assert m.stop() == 0


def test_a_user_or_a_symlink_goes_to_a_worker():
    """`user` set: a worker acts as that user (a directory only root may
    enter is PERMISSION_DENIED for nobody, and fine without a user). A
    symlink not followed: a worker reads its target."""
    F = pb().FileInfo
    m = maitred()
    s = stubs(m.addr)
    d = open_dir(0o700)
    f = os.path.join(d, "f")
    put_file(f, b"x")
    os.symlink("f", os.path.join(d, "l"))
    os.lstat(os.path.join(d, "l"))
    assert stat_(s, f).size == 1
    _no_worker(m)
    code, details = grpc_error(stat_, s, f, user="nobody")
    assert code == "PERMISSION_DENIED" and f in details, (code, details)
    wait_until(lambda: children_of(m.pid) == [], 10, what="the user's worker gone")
    info = stat_(s, os.path.join(d, "l"))
    assert (info.type, info.symlink_target) == (F.SYMLINK, "f"), info
    assert len(children_of(m.pid)) == 1, "no worker for a symlink"
    assert m.stop() == 0


def test_uncached_lookup_goes_to_a_worker():
    """A file system mounted just now (an overlay: its lookups are its
    own, none done yet) has nothing in the dentry cache: the first Stat
    of each path is a worker's, and answered correctly; the second finds
    the path cached."""
    F = pb().FileInfo
    d = open_dir()
    lower, lower2, mnt = (os.path.join(d, n) for n in ("lower", "lower2", "mnt"))
    for x in (lower, lower2, mnt):
        os.mkdir(x)
    put_file(os.path.join(lower, "f"), b"overlay")
    m = maitred_in_ns(f"mount -t overlay overlay -o lowerdir={lower}:{lower2} {mnt}")
    s = stubs(m.addr)
    _no_worker(m)
    info = stat_(s, os.path.join(mnt, "f"))
    assert (info.type, info.size) == (F.FILE, 7), info
    assert len(children_of(m.pid)) == 1, "the first Stat on a new mount needs a worker"
    assert _answer(s, os.path.join(mnt, "missing"))[0] == "NOT_FOUND"
    assert stat_(s, os.path.join(mnt, "f")).size == 7
    assert m.stop() == 0


def test_names_follow_passwd_and_group():
    """/etc/passwd and /etc/group (the test's own, bind-mounted in
    maitred's namespace) read in maitred's loop: a changed file gives the
    new names at the next Stat, with no worker; a removed name gives ""."""
    d = open_dir()
    passwd, group = os.path.join(d, "passwd"), os.path.join(d, "group")
    put_file(passwd, b"root:x:0:0:root:/root:/bin/sh\nalice:x:54321:54321::/:/bin/sh\n")
    put_file(group, b"root:x:0:\nteam:x:54322:\n")
    f = _owned_file(d)
    m = maitred_in_ns(f"mount --bind {passwd} /etc/passwd\nmount --bind {group} /etc/group")
    s = stubs(m.addr)
    info = _same_as_worker(s, f)
    assert (info.owner, info.group) == ("alice", "team"), info
    wait_until(lambda: children_of(m.pid) == [], 10, what="root's worker gone")
    for _ in range(3):
        info = stat_(s, f)
        assert (info.owner, info.group) == ("alice", "team"), info
    _no_worker(m)
    # Rewritten in place (a bind mount keeps the inode): new names.
    put_file(passwd, b"root:x:0:0:root:/root:/bin/sh\nbob:x:54321:54321::/:/bin/sh\n")
    info = stat_(s, f)
    assert (info.owner, info.group) == ("bob", "team"), info
    put_file(group, b"root:x:0:\nsquad:x:54322:\n")
    info = stat_(s, f)
    assert (info.owner, info.group) == ("bob", "squad"), info
    put_file(passwd, b"root:x:0:0:root:/root:/bin/sh\n")
    info = stat_(s, f)
    assert (info.owner, info.group) == ("", "squad"), info
    _no_worker(m)
    assert _same_as_worker(s, f) == info
    assert m.stop() == 0


def _private_etc(d):
    """A copy of /etc mounted over /etc in maitred's namespace, the test's
    to change from outside through etc."""
    etc = os.path.join(d, "etc")
    os.mkdir(etc)
    subprocess.run(["cp", "-a", "/etc/.", etc], check=True)
    with open(os.path.join(etc, "passwd"), "ab") as f:
        f.write(b"alice:x:54321:54321::/:/bin/sh\n")
    with open(os.path.join(etc, "group"), "ab") as f:
        f.write(b"team:x:54322:\n")
    return etc


def _replace(path, data):
    """As useradd and vipw do: a new file renamed over the old one."""
    put_file(path + ".new", data)
    os.rename(path + ".new", path)


def test_names_follow_files_renamed_over_passwd_and_group():
    """/etc/passwd and /etc/group replaced by a rename (a new inode, in a
    private /etc): the very next Stat, answered with no worker, has the
    new names; so after a file is removed and created again."""
    d = open_dir()
    etc = _private_etc(d)
    f = _owned_file(d)
    m = maitred_in_ns(f"mount --bind {etc} /etc")
    s = stubs(m.addr)
    info = stat_(s, f)
    assert (info.owner, info.group) == ("alice", "team"), info
    passwd = open(os.path.join(etc, "passwd"), "rb").read()
    group = open(os.path.join(etc, "group"), "rb").read()
    for i in range(3):  # at once after each change: no second's grace
        _replace(os.path.join(etc, "passwd"), passwd.replace(b"alice:", f"bob{i}:".encode()))
        info = stat_(s, f)
        assert (info.owner, info.group) == (f"bob{i}", f"squad{i - 1}" if i else "team"), info
        _replace(os.path.join(etc, "group"), group.replace(b"team:", f"squad{i}:".encode()))
        info = stat_(s, f)
        assert (info.owner, info.group) == (f"bob{i}", f"squad{i}"), info
    os.unlink(os.path.join(etc, "passwd"))
    assert stat_(s, f).owner == ""
    put_file(os.path.join(etc, "passwd"), passwd)
    assert stat_(s, f).owner == "alice"
    # Rewritten in place, a new inode's contents: seen too.
    put_file(os.path.join(etc, "group"), group.replace(b"team:", b"crew:"))
    assert stat_(s, f).group == "crew"
    _no_worker(m)
    assert m.stop() == 0


def test_names_follow_a_mount_over_passwd_within_a_second():
    """A file mounted over /etc/passwd after maitred started: no inotify
    event says so, the check made once a second anyway does."""
    d = open_dir()
    f = _owned_file(d)
    passwd = os.path.join(d, "passwd")
    put_file(passwd, b"root:x:0:0:root:/root:/bin/sh\ncarol:x:54321:54321::/:/bin/sh\n")
    m = maitred_in_ns("true")
    s = stubs(m.addr)
    assert stat_(s, f).owner == ""
    in_ns(m, "mount", "--bind", passwd, "/etc/passwd")
    start = time.monotonic()
    wait_until(lambda: stat_(s, f).owner == "carol", 5, 0.05, what="the mounted file's names")
    assert time.monotonic() - start < 2.5
    _no_worker(m)
    assert m.stop() == 0
