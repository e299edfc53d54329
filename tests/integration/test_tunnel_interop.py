"""valet.v1.Tunnel driven by a client that is not ours: @grpc/grpc-js on
Debian's node with classes from proto/valet/v1/tunnel.proto through
@grpc/proto-loader (tests/interop/grpc-js-tunnel.js, the versions of
tests/interop/package-lock.json). What it saw is judged here, exactly."""
import json
import os
import subprocess

import valet
from files_client import maitred
from tunnel_client import Service, echo, free_port

NPM_CACHE = os.path.expanduser(os.environ.get("VALET_NPM_CACHE", "~/.cache/valet-npm"))


def test_tunnel_grpc_js():
    mods = os.path.join(NPM_CACHE, "node_modules")
    for pkg in ("grpc-js", "proto-loader"):
        assert os.path.isdir(os.path.join(mods, "@grpc", pkg)), \
            f"@grpc/{pkg} is not installed in {NPM_CACHE}: run scripts/install-deps.sh"
    m = maitred()
    tcp, unix = Service(echo), Service(echo, unix=True)
    refused = free_port()
    script = os.path.join(valet.ROOT, "tests", "interop", "grpc-js-tunnel.js")
    res = subprocess.run(["/usr/bin/node", script, m.addr, os.path.join(valet.ROOT, "proto"), str(tcp.port),
                          unix.path, str(refused)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, NODE_PATH=mods))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["tcp"] == {"code": 0, "details": "", "kinds": ["connected", "data", "eof"], "sha": out["sent"],
                          "bytes": out["sent_bytes"]}, out["tcp"]
    assert out["unix"] == {"code": 0, "details": "", "kinds": ["connected", "data", "eof"],
                           "sha": out["unix_sent"], "bytes": 100000}, out["unix"]
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert out["refused"] == {"code": 14, "details": f"connect to tcp:127.0.0.1:{refused}: Connection refused",
                              "kinds": [], "sha": empty, "bytes": 0}, out["refused"]
    assert out["bad"] == {"code": 3, "details": "Connect: port 0 is out of range (1-65535)", "kinds": [],
                          "sha": empty, "bytes": 0}, out["bad"]
    assert [r["bytes"] for r in tcp.wait(1)] == [out["sent_bytes"]]
    m.stop()
