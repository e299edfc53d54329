"""valet.v1.Files driven by a client that is not ours: @grpc/grpc-js on
Debian's node with classes from proto/valet/v1/files.proto through
@grpc/proto-loader (tests/interop/grpc-js-files.js, the versions of
tests/interop/package-lock.json). Every method, the streaming ones
included; what it saw is judged here, exactly, and checked on disk."""
import json
import os
import stat
import subprocess

import valet
from files_client import maitred, open_dir

NPM_CACHE = os.path.expanduser(os.environ.get("VALET_NPM_CACHE", "~/.cache/valet-npm"))
MiB = 1 << 20


def _info(path, typ, **over):
    st = os.lstat(path)
    d = {"path": path, "type": typ, "size": st.st_size, "mode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0,
         "owner": "root", "group": "root", "symlink_target": "", "mtime_ns": str(st.st_mtime_ns)}
    d.update(over)
    return d


def test_files_grpc_js_every_method():
    mods = os.path.join(NPM_CACHE, "node_modules")
    for pkg in ("grpc-js", "proto-loader"):
        assert os.path.isdir(os.path.join(mods, "@grpc", pkg)), \
            f"@grpc/{pkg} is not installed in {NPM_CACHE}: run scripts/install-deps.sh"
    m = maitred()
    d = open_dir()
    script = os.path.join(valet.ROOT, "tests", "interop", "grpc-js-files.js")
    res = subprocess.run(["/usr/bin/node", script, m.addr, os.path.join(valet.ROOT, "proto"), d],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, NODE_PATH=mods))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    moved = os.path.join(d, "sub", "moved.bin")
    js = os.path.join(d, "js.bin")

    w = out["write"]
    assert w["code"] == 0, w
    assert w["messages"] > 10 and w["sha256"] == w["sent"], w
    want = {"path": js, "type": "FILE", "size": 3 * MiB + 7, "mode": 0o640, "uid": 0, "gid": 0, "owner": "root",
            "group": "root", "symlink_target": "", "mtime_ns": str(1300000000 * 10**9 + 5)}
    assert w["info"] == want, (w["info"], want)
    assert out["write_no_replace"] == {"code": 6}, out["write_no_replace"]  # ALREADY_EXISTS
    assert out["write_mismatch"] == {"code": 15}, out["write_mismatch"]  # DATA_LOSS
    r = out["read"]
    assert r["code"] == 0 and r["kinds"] == ["info", "data", "sha256"] and r["same"], r
    assert r["info"] == want and r["sha256"] == w["sent"], r
    assert out["read_range"] == {"code": 0, "same": True}, out["read_range"]
    assert out["stat"] == {"code": 0, "info": want}, out["stat"]
    assert out["stat_missing"] == {"code": 5} and out["stat_relative"] == {"code": 3}, out  # NOT_FOUND, INVALID_ARG
    deeper = os.path.join(d, "sub", "deeper")
    assert out["mkdir"] == {"code": 0, "info": _info(deeper, "DIRECTORY", mode=0o750)}, out["mkdir"]
    assert out["move"] == {"code": 0, "info": dict(want, path=moved)}, out["move"]
    lst = out["list"]
    assert lst["code"] == 0, lst
    assert sorted(lst["entries"]) == sorted([[os.path.join(d, "sub"), "DIRECTORY"], [deeper, "DIRECTORY"],
                                             [moved, "FILE"]]), lst
    assert [p for p, _ in lst["entries"]].index(os.path.join(d, "sub")) < \
        [p for p, _ in lst["entries"]].index(moved), lst

    assert out["write_tree"] == {"code": 0, "summary": {"files": 2, "directories": 1, "symlinks": 1, "bytes": 5}}, \
        out["write_tree"]
    rt = out["read_tree"]
    assert rt["code"] == 0, rt
    entries = {e["path"]: e for e in rt["entries"]}
    assert [e["path"] for e in rt["entries"]][0] == "a" and sorted(entries) == ["a", "a/f", "a/h", "a/l"], rt
    assert entries["a"] == {"path": "a", "type": "DIRECTORY", "mode": 0o751, "size": entries["a"]["size"],
                            "symlink_target": "", "hardlink_to": "", "data": "",
                            "mtime_ns": str(1200000000 * 10**9)}, entries["a"]
    assert (entries["a/l"]["type"], entries["a/l"]["symlink_target"]) == ("SYMLINK", "f"), entries["a/l"]
    # The two names of one file: one carries the data, the other names it.
    first, second = sorted((entries["a/f"], entries["a/h"]), key=lambda e: e["hardlink_to"] != "")
    assert second["hardlink_to"] == first["path"] and second["data"] == "", (first, second)
    assert (first["type"], first["mode"], first["size"], first["data"], first["mtime_ns"]) == \
        ("FILE", 0o600, 5, "hello", str(1100000000 * 10**9 + 7)), first

    assert out["remove_tree"] == {"code": 0, "removed": 5}, out["remove_tree"]
    assert out["remove_nonempty"] == {"code": 9}, out["remove_nonempty"]  # FAILED_PRECONDITION
    assert out["remove_file"] == {"code": 0, "removed": 1}, out["remove_file"]
    # On disk: only the directories made; nothing left behind.
    found = sorted(os.path.relpath(os.path.join(t, n), d) for t, ds, fs in os.walk(d) for n in ds + fs)
    assert found == ["sub", "sub/deeper"], found
    assert m.stop() == 0
