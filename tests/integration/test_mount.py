"""Mount inside a private mount namespace: the outcome is a positive errno in
an OK response, the same through maitctl and the official client."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawh2  # noqa: E402
from valet import Maitred, grpc_error, grpc_stubs, maitctl  # noqa: E402


def mounts_of(pid):
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line.split() for line in f]


def mounted(pid, target):
    return [m for m in mounts_of(pid) if m[4] == target]


def private_maitred():
    return Maitred(wrap=["unshare", "--mount", "--propagation", "private"])


def test_mount_tmpfs_maitctl():
    m = private_maitred()
    target = os.path.join(m.dir, "mnt")
    os.mkdir(target)
    r = maitctl(m.addr, "mount", "tmpfs", target, "tmpfs", "--flags", "nosuid,nodev,ro", "--options",
                "size=1m,mode=0700", json=True)
    assert r.returncode == 0 and json.loads(r.stdout) == {"error": 0, "message": ""}, r
    got = mounted(m.pid, target)
    assert len(got) == 1, got
    opts = got[0][5].split(",")
    assert "ro" in opts and "nosuid" in opts and "nodev" in opts, got
    assert "size=1024k" in " ".join(got[0]) and "mode=700" in " ".join(got[0]), got
    # Only inside maitred's namespace: the test's own view is untouched.
    assert mounted(os.getpid(), target) == []
    assert m.stop() == 0


def test_mount_numeric_flags_and_grpc():
    import guest_pb2
    m = private_maitred()
    g = grpc_stubs(m.addr)
    t1, t2 = os.path.join(m.dir, "a"), os.path.join(m.dir, "b")
    os.mkdir(t1)
    os.mkdir(t2)
    r = maitctl(m.addr, "mount", "none", t1, "tmpfs", "--flags", "0x2")  # MS_NOSUID
    assert r.returncode == 0, r
    resp = g.Mount(guest_pb2.MountRequest(source="none", target=t2, fstype="tmpfs", mountflags=2), timeout=5)
    assert resp.error == 0
    assert resp.SerializeToString() == b""
    assert "nosuid" in mounted(m.pid, t1)[0][5] and "nosuid" in mounted(m.pid, t2)[0][5]
    assert m.stop() == 0


def test_mount_errors_are_positive_errno():
    import guest_pb2
    m = private_maitred()
    g = grpc_stubs(m.addr)
    resp = g.Mount(guest_pb2.MountRequest(source="none", target="/nonexistent/valet", fstype="tmpfs"), timeout=5)
    assert resp.error == 2
    assert resp.SerializeToString() == b"\x08\x04"  # zigzag 2
    r = maitctl(m.addr, "mount", "none", "/nonexistent/valet", "tmpfs", json=True)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": 2, "message": "No such file or directory"}
    resp = g.Mount(guest_pb2.MountRequest(source="none", target=m.dir, fstype="no-such-fs"), timeout=5)
    assert resp.error == 19  # ENODEV
    resp = g.Mount(guest_pb2.MountRequest(), timeout=5)
    assert resp.error != 0
    r = maitctl(m.addr, "mount", "a", "b")
    assert r.returncode == 2 and "expected SOURCE TARGET FSTYPE" in r.stderr
    r = maitctl(m.addr, "mount", "a", "b", "c", "--flags", "ro,bogus")
    assert r.returncode == 2 and "unknown flag 'bogus'" in r.stderr
    assert m.log().count("Mount from") == 4
    assert m.stop() == 0


def test_expired_deadline_mounts_nothing():
    import guest_pb2
    m = private_maitred()
    target = os.path.join(m.dir, "mnt")
    os.mkdir(target)
    req = guest_pb2.MountRequest(source="none", target=target, fstype="tmpfs").SerializeToString()
    assert rawh2.trailers_only(rawh2.unary(m.sock, "/vm_tools.Maitred/Mount", req, timeout="1n"))
    # Handled in order: after this answer, the expired call has been dealt with.
    assert maitctl(m.addr, "launch", "--wait", "--", "true").returncode == 0
    assert mounted(m.pid, target) == []
    assert "Mount from" not in m.log()
    assert m.stop() == 0


def test_nul_in_mount_fields_is_invalid_argument():
    import guest_pb2
    m = private_maitred()
    g = grpc_stubs(m.addr)
    target = os.path.join(m.dir, "mnt")
    os.mkdir(target)
    good = dict(source="none", target=target, fstype="tmpfs", options="size=1m")
    for field in ("source", "target", "fstype", "options"):
        req = dict(good)
        req[field] += "\0x"
        code, msg = grpc_error(g.Mount, guest_pb2.MountRequest(**req), timeout=5)
        assert (code, msg) == ("INVALID_ARGUMENT", f"string field '{field}' contains a NUL byte"), (field, msg)
    assert mounted(m.pid, target) == []
    assert "Mount from" not in m.log()
    assert g.Mount(guest_pb2.MountRequest(**good), timeout=5).error == 0
    assert len(mounted(m.pid, target)) == 1
    assert m.stop() == 0
