"""valet.v1.Process driven by a client that is not ours: @grpc/grpc-js on
Debian's node with classes from proto/valet/v1/process.proto through
@grpc/proto-loader (tests/interop/grpc-js-process.js, the versions of
tests/interop/package-lock.json). Every method; what it saw is judged here,
exactly."""
import json
import os
import subprocess

import valet
from process_client import maitred

NPM_CACHE = os.path.expanduser(os.environ.get("VALET_NPM_CACHE", "~/.cache/valet-npm"))

OK, INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE = 0, 3, 5, 11


def test_process_grpc_js_every_method():
    mods = os.path.join(NPM_CACHE, "node_modules")
    for pkg in ("grpc-js", "proto-loader"):
        assert os.path.isdir(os.path.join(mods, "@grpc", pkg)), \
            f"@grpc/{pkg} is not installed in {NPM_CACHE}: run scripts/install-deps.sh"
    m = maitred()
    script = os.path.join(valet.ROOT, "tests", "interop", "grpc-js-process.js")
    res = subprocess.run(["/usr/bin/node", script, m.addr, os.path.join(valet.ROOT, "proto")],
                         capture_output=True, text=True, timeout=180, env=dict(os.environ, NODE_PATH=mods))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    ended = {"exit_code": 4, "signal": 0, "core_dumped": False, "has_ended": True}
    assert out["start"] == {"code": OK, "started": True, "stdout": "out", "stderr": "err", "pty": "",
                            "exited": ended, "gaps": 0, "tag": "js-one", "pid_positive": True}, out["start"]
    assert out["killed"] == {"exit_code": -1, "signal": 9, "core_dumped": False, "has_ended": True}, out["killed"]
    assert out["reattach"] == {"code": OK, "same": True, "gaps": 0, "dropped": "0", "same_id": True,
                               "exited": dict(ended, exit_code=3)}, out["reattach"]
    assert out["list_running"] == [{"argv": ["cat"], "running": True, "pty": False, "user": "root",
                                     "has_started": True}], out["list_running"]
    assert "send_input" not in out and out["send_input_eof"] == OK, out
    assert out["cat"] == {"code": OK, "same": True, "exited": dict(ended, exit_code=0)}, out["cat"]
    assert (out["resize"], out["pty_input"]) == (OK, OK), out
    pty = out["pty"]
    assert pty["code"] == OK and pty["exited"]["exit_code"] == 0, pty
    assert pty["pty"].startswith("20 70\r\n") and pty["pty"].endswith("go\r\n40 90\r\n"), pty["pty"]
    assert out["signal"] == OK, out["signal"]
    assert out["tree"] == {"code": OK, "stdout": "started\n",
                           "exited": {"exit_code": -1, "signal": 15, "core_dumped": False, "has_ended": True}}, out
    # The ends only a Start call was sent are still remembered; js-tree's
    # too unless its peeking Connect was sent the Exited before its cancel
    # arrived (a race the test cannot order: both are right).
    every = out["list_all"]
    assert every[:4] == [["js-one", False, 4], ["", False, -1], ["", False, 0], ["js-pty", False, 0]], every
    assert every[4:] in ([], [["js-tree", False, -1]]), every
    assert out["list_after"] == 0, out["list_after"]
    assert out["errors"] == {"start_empty": INVALID_ARGUMENT, "start_missing": NOT_FOUND,
                             "connect_unknown": NOT_FOUND, "connect_beyond": OUT_OF_RANGE,
                             "input_unknown": NOT_FOUND, "signal_bad": NOT_FOUND,
                             "resize_unknown": NOT_FOUND}, out["errors"]
