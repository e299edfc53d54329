"""A grpcio client of valet.v1.Files for the integration tests, written
from the contract (shared/spec's valet-v1.md, "Conventions" and
"valet.v1.Files") and proto/valet/v1/files.proto: the Python classes are
generated here with protoc at test time, the calls made through grpcio's
generic stubs. Also what the tests share: a maitred in a mount namespace of
its own, a walk of a directory tree, "nothing left behind"."""
import hashlib
import os
import stat
import subprocess

import valet
from valet import Maitred, tmpdir

MiB = 1 << 20
SERVICE = "/valet.v1.Files/"


def pb():
    """files_pb2 (valet/v1/files.proto), generated once per process."""
    return valet.proto_module("valet/v1/files.proto")


def stubs(addr):
    m = pb()
    return valet.service_stubs(addr, "valet.v1.Files", {
        "Write": ("stream_unary", m.WriteRequest, m.WriteResponse),
        "Read": ("unary_stream", m.ReadRequest, m.ReadResponse),
        "Stat": ("unary_unary", m.StatRequest, m.FileInfo),
        "List": ("unary_stream", m.ListRequest, m.FileInfo),
        "MakeDirectory": ("unary_unary", m.MakeDirectoryRequest, m.FileInfo),
        "Remove": ("unary_unary", m.RemoveRequest, m.RemoveResponse),
        "Move": ("unary_unary", m.MoveRequest, m.FileInfo),
        "WriteTree": ("stream_unary", m.TreeRequest, m.TreeSummary),
        "ReadTree": ("unary_stream", m.ReadTreeRequest, m.TreeResponse),
    })


def write_requests(path, chunks, **header):
    m = pb()
    yield m.WriteRequest(header=m.WriteHeader(path=path, **header))
    for c in chunks:
        yield m.WriteRequest(data=c)


def write(s, path, chunks, timeout=60, **header):
    """A Write: the header (its fields as keywords), then one data message
    per chunk. Returns the WriteResponse."""
    return s.Write(write_requests(path, chunks, **header), timeout=timeout)


def read(s, path, timeout=60, **fields):
    """A Read: (info, data, sha256 or None, the kinds of the messages in
    the order they came, collapsed: ['info', 'data', 'sha256'])."""
    m = pb()
    info, data, digest, kinds = None, [], None, []
    for r in s.Read(m.ReadRequest(path=path, **fields), timeout=timeout):
        kind = r.WhichOneof("part")
        # Consecutive data messages count as one; an empty one as none.
        if (not kinds or kinds[-1] != kind or kind != "data") and (kind != "data" or r.data):
            kinds.append(kind)
        if kind == "info":
            info = r.info
        elif kind == "data":
            data.append(r.data)
        elif kind == "sha256":
            digest = r.sha256
    return info, b"".join(data), digest, kinds


def stat_(s, path, **fields):
    return s.Stat(pb().StatRequest(path=path, **fields), timeout=30)


def alive(s):
    """maitred still answers a unary Files call, correctly."""
    info = stat_(s, "/")
    assert (info.path, info.type) == ("/", pb().FileInfo.DIRECTORY), info


def sha(b):
    return hashlib.sha256(b).digest()


# The largest data a message of the 4 MiB limit holds: the field's tag (1
# byte) and length (4 bytes) count in the message.
DATA_MAX = 4 * MiB - 5


def odd_chunks(data, sizes=(1, 4093, 65537, MiB + 3, 7, DATA_MAX, 300001)):
    """data cut into messages of odd sizes, cycling through sizes."""
    out, off, i = [], 0, 0
    while off < len(data):
        n = sizes[i % len(sizes)]
        out.append(data[off:off + n])
        off += n
        i += 1
    return out


def maitred(args=(), wrap=()):
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"] + list(args), wrap=wrap)


def maitred_in_ns(setup):
    """maitred in a private mount namespace, after the shell commands of
    setup ran in it (mounts). Its cwd is its own directory."""
    return maitred(wrap=["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                         setup + "\nexec \"$0\" \"$@\""])


def in_ns(m, *cmd, check=True):
    return subprocess.run(["nsenter", "-t", str(m.pid), "-m", "--"] + list(cmd), capture_output=True,
                          text=True, check=check)


def ns_path(m, path):
    """A path as maitred sees it (its mount namespace and root)."""
    return f"/proc/{m.pid}/root{path}"


def open_dir(mode=0o755):
    """A temporary directory others may enter (tmpdir() is 0700)."""
    d = tmpdir()
    os.chmod(d, mode)
    return d


def put_file(path, data, mode=0o644):
    """A file with data and mode (chmod: the umask does not cut it)."""
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def listing(d):
    return sorted(os.listdir(d))


def no_temporaries(d):
    """No file, directory or temporary (.valet-tmp-*) left anywhere below d
    but what the test put there: returns every name below d, sorted."""
    names = []
    for top, dirs, files in os.walk(d):
        for n in dirs + files:
            names.append(os.path.relpath(os.path.join(top, n), d))
    return sorted(names)


def walk(root):
    """Everything a tree copy must keep, per relative path: type, mode,
    mtime (ns), size and SHA-256 of a file, symlink target, and for files
    with several links the first path (sorted) of its link group."""
    groups = {}
    out = {}
    for top, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(top, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(stat.S_IMODE(st.st_mode)), st.st_mtime_ns)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(p), st.st_mtime_ns)
            else:
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
                out[rel] = ["file", oct(stat.S_IMODE(st.st_mode)), st.st_mtime_ns, st.st_size, h, (st.st_dev,
                                                                                                  st.st_ino)]
    for rel, v in out.items():
        if v[0] == "file":
            v[5] = min(groups[v[5]])
            out[rel] = tuple(v)
    return out


def owners(root):
    """(uid, gid) of everything below root, per relative path, and of root."""
    out = {".": (os.lstat(root).st_uid, os.lstat(root).st_gid)}
    for top, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.lstat(os.path.join(top, n))
            out[os.path.relpath(os.path.join(top, n), root)] = (st.st_uid, st.st_gid)
    return out


def rss_tree_kib(pid):
    """RSS of a process and all its descendants (maitred and any worker)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def diff(got, want):
    """What differs between two walk()s: {path: (got, want)}."""
    return {k: (got.get(k), want.get(k)) for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)}
