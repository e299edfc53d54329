"""Boot A's steps for valet.v1.Files (issue 18, "In the VM test"): from the
host through python3-grpcio, into the guest's ext4 disk and back. Boot A
gives this module a disk of its own (/dev/vdc, ext4, made by the host),
mounted at /mnt/files through Maitred's Mount: boot A's main disk is 16 MiB
(its size is what the resize steps check), too small for a 64 MiB file.

The steps share state through a Files object kept on the scenario: the
64 MiB file's digest for the check after power-off, the tree written."""
import hashlib
import json
import os
import subprocess
import time

import files_client
from files_client import pb
import valet
import vm_suite  # its helpers, used once both modules are loaded

MiB = 1 << 20
MOUNT = "/mnt/files"
DEVICE = "/dev/vdc"
BIG = f"{MOUNT}/big.bin"
BIG_SIZE = 64 * MiB
CHUNK = MiB  # data per Write message (the limit is 4 MiB a message)
T0 = 1_600_000_000  # mtimes in the past (2020-09-13)


def gsh(v, script, timeout=60):
    return vm_suite.gsh(v, script, timeout=timeout)


def stubs(v):
    """valet.v1.Files through grpcio (files_client: the classes generated
    with protoc at test time from proto/valet/v1/files.proto)."""
    addr = v.maitred_addr()
    return files_client.stubs(addr[4:] if addr.startswith("tcp:") else addr)


def ts(sec, ns=0):
    from google.protobuf import timestamp_pb2
    return timestamp_pb2.Timestamp(seconds=sec, nanos=ns)


class Files:
    """What the steps share on one boot."""
    def __init__(self, image):
        self.image = image  # the host's file behind /dev/vdc
        self.big_sha = None  # set once the 64 MiB file is written
        self.tree_model = None  # tree-a's spec_model(), once written

    def mounted(self, v):
        """The disk at /mnt/files (mounted here when a step runs alone, -k)."""
        import guest_pb2
        if f" {MOUNT} " in gsh(v, "cat /proc/mounts"):
            return
        g = valet.grpc_stubs(v.maitred_addr())
        resp = g.Mount(guest_pb2.MountRequest(source=DEVICE, target=MOUNT, fstype="ext4", create_target=True),
                       timeout=30)
        assert resp.error == 0, resp


def make_image(path):
    # 256-byte inodes: nanosecond mtimes (the trees' mtimes carry some).
    with open(path, "wb") as f:
        f.truncate(160 * MiB)  # sparse
    subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "256", "-L", "valet-files", path], check=True)
    return Files(path)


# -- 1. 64 MiB in and out ----------------------------------------------------------

def write_read_64mib(s, f, v):
    m = pb()
    f.mounted(v)
    fs = stubs(v)
    data = os.urandom(BIG_SIZE)
    digest = hashlib.sha256(data).digest()

    def requests():
        yield m.WriteRequest(header=m.WriteHeader(path=BIG, mode=0o600, sha256=digest))
        for off in range(0, len(data), CHUNK):
            yield m.WriteRequest(data=data[off:off + CHUNK])
    start = time.monotonic()
    resp = fs.Write(requests(), timeout=300)
    wrote = time.monotonic() - start
    assert resp.sha256 == digest, resp.sha256.hex()
    i = resp.info
    assert (i.path, i.type, i.size, i.mode, i.uid) == (BIG, m.FileInfo.FILE, BIG_SIZE, 0o600, 0), i

    start = time.monotonic()
    kinds, chunks, info, sent_sha = [], [], None, None
    for r in fs.Read(m.ReadRequest(path=BIG, sha256=True), timeout=300):
        kind = r.WhichOneof("part")
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
        if kind == "info":
            info = r.info
        elif kind == "data":
            chunks.append(r.data)
        else:
            sent_sha = r.sha256
    read = time.monotonic() - start
    assert kinds == ["info", "data", "sha256"], kinds
    assert (info.path, info.size, info.mode) == (BIG, BIG_SIZE, 0o600), info
    back = b"".join(chunks)
    assert len(back) == BIG_SIZE and back == data, f"{len(back)} bytes read back, not the ones written"
    assert sent_sha == digest, sent_sha.hex()

    start = time.monotonic()
    out = gsh(v, f"sha256sum {BIG}; stat -c '%s %a' {BIG}; ls -a {MOUNT}", timeout=120)
    summed = time.monotonic() - start
    lines = out.split("\n")
    assert lines[0].split() == [digest.hex(), BIG], out
    assert lines[1] == f"{BIG_SIZE} 600", out
    # Nothing else there: no temporary left by the atomic write.
    assert sorted(lines[2:-1]) == [".", "..", "big.bin", "lost+found"], out
    f.big_sha = digest
    s.timings.update({"files_write_64mib_s": wrote, "files_read_64mib_s": read,
                      "files_write_64mib_mb_s": BIG_SIZE / wrote / 1e6, "files_read_64mib_mb_s": BIG_SIZE / read / 1e6,
                      "files_guest_sha256sum_64mib_s": summed})
    print(f"vm/files: 64 MiB Write {wrote:.2f} s ({BIG_SIZE / wrote / 1e6:.1f} MB/s), Read {read:.2f} s "
          f"({BIG_SIZE / read / 1e6:.1f} MB/s), guest sha256sum {summed:.2f} s", flush=True)


# -- 2. a tree, and the metadata calls -----------------------------------------------

def tree_spec():
    """(path, kind, mode, (sec, ns), payload): payload is the data of a
    file, the target of a symlink, the first name of a hard link."""
    rnd = os.urandom
    return [
        ("hard-a", "file", 0o604, (T0 + 1, 0), rnd(5000)),
        ("d", "dir", 0o700, (T0 + 2, 0), None),
        ("d/secret", "file", 0o640, (T0 + 3, 123456789), rnd(10000)),
        ("d/hard-b", "link", 0, (0, 0), "hard-a"),
        ("d/sub", "dir", 0o755, (T0 + 4, 500000000), None),
        ("d/sub/run.sh", "file", 0o755, (T0 + 5, 0), b"#!/bin/sh\necho ran\n"),
        ("big", "file", 0o644, (T0 + 6, 1), rnd(3 * MiB + 17)),
        ("empty", "file", 0o600, (T0 + 7, 0), b""),
        ("rel", "symlink", 0o777, (T0 + 8, 0), "d/secret"),
        ("abs", "symlink", 0o777, (T0 + 9, 0), "/proc/version"),
        ("dangling", "symlink", 0o777, (T0 + 10, 0), "no/such/file"),
        # A read-only directory, filled: its mode comes after its contents.
        ("ro", "dir", 0o555, (T0 + 11, 0), None),
        ("ro/inside", "file", 0o444, (T0 + 12, 0), b"inside\n"),
    ]


def tree_requests(root, spec):
    m = pb()
    T = m.FileInfo
    yield m.TreeRequest(header=m.TreeHeader(root=root))
    for path, kind, mode, (sec, ns), payload in spec:
        if kind == "dir":
            yield m.TreeRequest(entry=m.TreeEntry(path=path, type=T.DIRECTORY, mode=mode, mtime=ts(sec, ns)))
        elif kind == "symlink":
            yield m.TreeRequest(entry=m.TreeEntry(path=path, type=T.SYMLINK, mtime=ts(sec, ns),
                                                  symlink_target=payload))
        elif kind == "link":
            yield m.TreeRequest(entry=m.TreeEntry(path=path, type=T.FILE, hardlink_to=payload))
        else:
            yield m.TreeRequest(entry=m.TreeEntry(path=path, type=T.FILE, mode=mode, mtime=ts(sec, ns),
                                                  size=len(payload)))
            for off in range(0, len(payload), CHUNK):
                yield m.TreeRequest(data=payload[off:off + CHUNK])


def spec_model(spec):
    """path -> what a copy must keep: (type, mode, (sec, ns), size, sha256
    or target, the sorted names of its link group)."""
    groups = {}
    for path, kind, _, _, payload in spec:
        if kind == "link":
            groups.setdefault(payload, [payload]).append(path)
    out = {}
    by_path = {p[0]: p for p in spec}
    for path, kind, mode, t, payload in spec:
        if kind == "link":
            _, _, mode, t, payload = by_path[payload]
            kind = "file"
        if kind == "dir":
            out[path] = ("dir", mode, t, None, None, None)
        elif kind == "symlink":
            out[path] = ("symlink", 0o777, t, None, payload, None)
        else:
            first = next((g for g in groups.values() if path in g), [path])
            out[path] = ("file", mode, t, len(payload), hashlib.sha256(payload).hexdigest(), tuple(sorted(first)))
    return out


def read_tree(fs, root):
    """ReadTree as (the messages, in order; the same model as spec_model)."""
    m = pb()
    msgs, entries, data = [], [], {}
    cur = None
    for r in fs.ReadTree(m.ReadTreeRequest(root=root), timeout=60):
        msgs.append(r)
        if r.WhichOneof("part") == "entry":
            cur = r.entry
            entries.append(cur)
            data[cur.path] = []
        else:
            data[cur.path].append(r.data)
    seen = set()
    for e in entries:  # a directory before its contents
        parent = e.path.rpartition("/")[0]
        assert not parent or parent in seen, f"{e.path} came before {parent}"
        seen.add(e.path)
    groups = {}
    for e in entries:
        if e.hardlink_to:
            assert e.size == 0 and not data[e.path], e
            groups.setdefault(e.hardlink_to, [e.hardlink_to]).append(e.path)
    T = m.FileInfo
    out = {}
    for e in entries:
        t = (e.mtime.seconds, e.mtime.nanos)
        if e.type == T.DIRECTORY:
            out[e.path] = ("dir", e.mode, t, None, None, None)
        elif e.type == T.SYMLINK:
            out[e.path] = ("symlink", e.mode, t, None, e.symlink_target, None)
        else:
            src = e.hardlink_to or e.path
            body = b"".join(data[src])
            assert len(body) == next(x for x in entries if x.path == src).size, e
            group = next((g for g in groups.values() if e.path in g), [e.path])
            out[e.path] = ("file", e.mode, t, len(body), hashlib.sha256(body).hexdigest(), tuple(sorted(group)))
    return msgs, out


def guest_walk(v, root):
    """The guest's own view of a tree: path -> (type, mode, mtime with ns,
    size of files, sha256 or target, link group), and the SHA-256 of a tar
    of it (busybox tar, names sorted, numeric owners)."""
    out = gsh(v, f"cd {root} && for p in $(find . -mindepth 1 | sort); do"
                 " stat -c '%n|%F|%a|%Y|%y|%s|%h|%i' \"$p\" | tr '\\n' '|';"
                 " if [ -L \"$p\" ]; then readlink \"$p\";"
                 " elif [ -f \"$p\" ]; then sha256sum <\"$p\" | cut -d' ' -f1; else echo; fi; done;"
                 " tar --numeric-owner --no-recursion -c -f - $(find . -mindepth 1 | sort) | sha256sum")
    lines = out.splitlines()
    tar_sha = lines.pop().split()[0]
    rows = [ln.split("|") for ln in lines]
    inodes = {}
    for r in rows:
        if r[1] in ("regular file", "regular empty file"):
            inodes.setdefault(r[7], []).append(r[0][2:])
    walk = {}
    for name, kind, mode, sec, human, size, nlink, ino, extra in rows:
        path = name[2:]
        # %y is "2020-09-13 12:26:43.123456789 +0000": its nanoseconds.
        t = (int(sec), int(human.split()[1].split(".")[1]))
        if kind == "directory":
            walk[path] = ("dir", int(mode, 8), t, None, None, None)
        elif kind == "symbolic link":
            walk[path] = ("symlink", int(mode, 8), t, None, extra, None)
        else:
            assert int(nlink) == len(inodes[ino]), (path, nlink, inodes[ino])
            walk[path] = ("file", int(mode, 8), t, int(size), extra, tuple(sorted(inodes[ino])))
    return walk, tar_sha


def tree_round_trip(s, f, v):
    m = pb()
    f.mounted(v)
    fs = stubs(v)
    spec = tree_spec()
    want = spec_model(spec)
    a, b = f"{MOUNT}/tree-a", f"{MOUNT}/tree-b"
    gsh(v, f"rm -rf {a} {b}")  # when run again on the same boot (-k)

    start = time.monotonic()
    summary = fs.WriteTree(tree_requests(a, spec), timeout=60)
    wrote = time.monotonic() - start
    data_bytes = sum(len(p) for _, k, _, _, p in spec if k == "file")
    assert (summary.files, summary.directories, summary.symlinks, summary.bytes) == (7, 3, 3, data_bytes), summary

    start = time.monotonic()
    msgs, got = read_tree(fs, a)
    read = time.monotonic() - start
    assert got == want, files_client.diff(got, want)
    # The guest sees the same tree (modes, ns mtimes, contents, links).
    walk_a, tar_a = guest_walk(v, a)
    assert walk_a == want, files_client.diff(walk_a, want)

    # ReadTree's output, as it came, is a tree WriteTree takes: the copy is
    # the same to the tar byte (names, modes, mtimes, owners, links).
    copy = [m.TreeRequest(header=m.TreeHeader(root=b))]
    copy += [m.TreeRequest(entry=r.entry) if r.WhichOneof("part") == "entry" else m.TreeRequest(data=r.data)
             for r in msgs]
    again = fs.WriteTree(iter(copy), timeout=60)
    assert again == summary, again
    walk_b, tar_b = guest_walk(v, b)
    assert walk_b == want, files_client.diff(walk_b, want)
    assert tar_b == tar_a, (tar_a, tar_b)
    # The symlinks were written as symlinks, never followed.
    assert gsh(v, f"sha256sum <{b}/rel; cat {b}/abs; test -e {b}/dangling || echo dangling") == \
        gsh(v, f"sha256sum <{a}/d/secret; cat /proc/version") + "dangling\n"
    f.tree_model = want
    s.timings.update({"files_write_tree_s": wrote, "files_read_tree_s": read})
    print(f"vm/files: tree of {len(spec)} entries ({data_bytes} bytes) WriteTree {wrote:.2f} s, "
          f"ReadTree {read:.2f} s", flush=True)


def metadata_calls(s, f, v):
    import grpc
    m = pb()
    T = m.FileInfo
    f.mounted(v)
    fs = stubs(v)
    a, b = f"{MOUNT}/tree-a", f"{MOUNT}/tree-b"
    if f.tree_model is None:
        tree_round_trip(s, f, v)  # run on its own (-k)
    root_name = "root" if gsh(v, "grep -c '^root:' /etc/passwd; true").strip() == "1" else ""

    # Stat: a file, a symlink as itself and followed, a missing path.
    i = fs.Stat(m.StatRequest(path=f"{a}/d/secret"), timeout=10)
    assert (i.path, i.type, i.size, i.mode, i.uid, i.gid, i.owner) == \
        (f"{a}/d/secret", T.FILE, 10000, 0o640, 0, 0, root_name), i
    assert (i.mtime.seconds, i.mtime.nanos) == (T0 + 3, 123456789), i.mtime
    i = fs.Stat(m.StatRequest(path=f"{a}/rel"), timeout=10)
    assert (i.type, i.symlink_target) == (T.SYMLINK, "d/secret"), i
    i = fs.Stat(m.StatRequest(path=f"{a}/rel", follow_symlinks=True), timeout=10)
    assert (i.type, i.size, i.mode) == (T.FILE, 10000, 0o640), i
    try:
        fs.Stat(m.StatRequest(path=f"{a}/nope"), timeout=10)
        raise AssertionError("Stat of a missing path answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND and f"{a}/nope" in e.details(), (e.code(), e.details())

    # List to depth 2: what find sees to that depth, each directory first.
    listed = [i.path for i in fs.List(m.ListRequest(path=a, depth=2), timeout=10)]
    find = gsh(v, f"find {a} -mindepth 1 -maxdepth 2 | sort").split()
    assert sorted(listed) == find and len(listed) == len(set(listed)), (listed, find)
    for p in listed:
        parent = p.rpartition("/")[0]
        assert parent == a or listed.index(parent) < listed.index(p), f"{p} before {parent}"
    assert f"{a}/d/sub/run.sh" not in listed and f"{a}/d/sub" in listed

    # MakeDirectory with its parents, an exact mode.
    made = f"{MOUNT}/made/deeper"
    gsh(v, f"rm -rf {MOUNT}/made")
    i = fs.MakeDirectory(m.MakeDirectoryRequest(path=made, mode=0o750, parents=True), timeout=10)
    assert (i.path, i.type, i.mode) == (made, T.DIRECTORY, 0o750), i
    assert gsh(v, f"stat -c %a {made}").strip() == "750"

    # Move a 3 MiB file of the second tree there.
    want_sha = gsh(v, f"sha256sum {b}/big").split()[0]
    i = fs.Move(m.MoveRequest(source=f"{b}/big", destination=f"{made}/big"), timeout=10)
    assert (i.path, i.type, i.size) == (f"{made}/big", T.FILE, 3 * MiB + 17), i
    after = gsh(v, f"test -e {b}/big || echo gone; sha256sum {made}/big").split()
    assert after == ["gone", want_sha, f"{made}/big"], after

    # Remove the second tree: every name below it, and itself.
    count = int(gsh(v, f"find {b} | wc -l").strip())
    r = fs.Remove(m.RemoveRequest(path=b, recursive=True), timeout=30)
    assert r.removed == count, (r.removed, count)
    assert gsh(v, f"test -e {b} || echo gone").strip() == "gone"


# -- 3. maitctl cp ----------------------------------------------------------------------

def as_walk(model):
    """A spec_model() in the form of files_client.walk() (a tree on the host)."""
    out = {}
    for path, (kind, mode, (sec, ns), size, extra, group) in model.items():
        t = sec * 10**9 + ns
        if kind == "dir":
            out[path] = ("dir", oct(mode), t)
        elif kind == "symlink":
            out[path] = ("symlink", extra, t)
        else:
            out[path] = ("file", oct(mode), t, size, extra, group[0])
    return out


def cp_json(v, *args):
    res = valet.maitctl(v.maitred_addr(), "cp", *args, timeout=120, json=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def maitctl_cp(s, f, v):
    f.mounted(v)
    if f.tree_model is None:
        tree_round_trip(s, f, v)  # run on its own (-k)
    host = valet.tmpdir()
    data = os.urandom(4 * MiB + 1)
    digest = hashlib.sha256(data).hexdigest()
    src, back, guest = os.path.join(host, "in.bin"), os.path.join(host, "back.bin"), f"{MOUNT}/cp/in.bin"
    with open(src, "wb") as fh:
        fh.write(data)
    os.chmod(src, 0o640)
    gsh(v, f"rm -rf {MOUNT}/cp {MOUNT}/tree-c")  # when run again on the same boot (-k)

    # A file in (its parents made, the local mode kept) and out again.
    start = time.monotonic()
    res = cp_json(v, "-p", "--sha256", src, ":" + guest)
    went = time.monotonic() - start
    assert (res["path"], res["bytes"], res["sha256"]) == (guest, len(data), digest), res
    assert gsh(v, f"sha256sum {guest}; stat -c %a {guest}").split() == [digest, guest, "640"]
    start = time.monotonic()
    res = cp_json(v, "--sha256", ":" + guest, back)
    came = time.monotonic() - start
    assert (res["bytes"], res["sha256"]) == (len(data), digest), res
    with open(back, "rb") as fh:
        assert fh.read() == data, "maitctl cp brought back other bytes"

    # The tree out (-r) to the host, and back in as a third copy.
    local = os.path.join(host, "tree")
    cp_json(v, "-r", f":{MOUNT}/tree-a", local)
    got, want = files_client.walk(local), as_walk(f.tree_model)
    assert got == want, files_client.diff(got, want)
    cp_json(v, "-r", local, f":{MOUNT}/tree-c")
    walk_c, tar_c = guest_walk(v, f"{MOUNT}/tree-c")
    assert walk_c == f.tree_model, files_client.diff(walk_c, f.tree_model)
    assert tar_c == guest_walk(v, f"{MOUNT}/tree-a")[1]
    s.timings.update({"files_maitctl_cp_4mib_in_s": went, "files_maitctl_cp_4mib_out_s": came})
    print(f"vm/files: maitctl cp 4 MiB in {went:.2f} s, out {came:.2f} s", flush=True)


# -- 4. after power-off ----------------------------------------------------------------

def on_disk_after_power_off(f, v):
    if f.big_sha is None:
        raise AssertionError("needs vm/files_write_read_64mib on the same boot")
    if v.proc.poll() is None:  # the shutdown step did not run (-k)
        valet.grpc_stubs(v.maitred_addr()).Shutdown(pb_empty(), timeout=30)
        assert v.wait_exit(30) == 0
    # The file system is clean (unmounted at power-off), and the host reads
    # the file from the image: it reached the disk.
    fsck = subprocess.run(["e2fsck", "-fn", f.image], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    out = subprocess.run(["debugfs", "-R", "cat /big.bin", f.image], capture_output=True, check=True)
    assert len(out.stdout) == BIG_SIZE and hashlib.sha256(out.stdout).digest() == f.big_sha, len(out.stdout)


def pb_empty():
    import common_pb2
    return common_pb2.EmptyMessage()
