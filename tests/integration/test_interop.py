"""The interop suite: the shared case table (tests/interop/cases.py) run by
three independent gRPC stacks — python3-grpcio, @grpc/grpc-js on Debian's
node, Debian's grpc++ — over unix and tcp; and an h2load smoke."""
import os
import socket
import subprocess

import valet
from valet import Maitred, wait_until


HERE = os.path.dirname(os.path.abspath(__file__))
INTEROP = os.path.join(os.path.dirname(HERE), "interop")
NPM_CACHE = os.path.expanduser(os.environ.get("VALET_NPM_CACHE", "~/.cache/valet-npm"))
NODE = "/usr/bin/node"  # Debian's nodejs, not whatever node is on PATH


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cases():
    import sys
    if INTEROP not in sys.path:
        sys.path.insert(0, INTEROP)
    import cases
    return cases


def _driver_cmd(driver):
    if driver == "grpcio":
        return ["/usr/bin/python3", os.path.join(INTEROP, "grpcio-driver.py")], None
    if driver == "grpc-js":
        mods = os.path.join(NPM_CACHE, "node_modules")
        assert os.path.isdir(os.path.join(mods, "@grpc", "grpc-js")), \
            f"@grpc/grpc-js is not installed in {NPM_CACHE}: run scripts/install-deps.sh"
        return [NODE, os.path.join(INTEROP, "grpc-js-driver.js")], {"NODE_PATH": mods}
    exe = os.path.join(valet.BUILD, "tests", "interop", "grpcpp-driver")
    assert os.path.exists(exe), f"{exe} was not built: Debian's libgrpc++-dev and protobuf-compiler-grpc are missing"
    return [exe], None


def run_table(driver, transport, compression=None):
    """Runs the whole table; compression: every call compressed with it
    (the channel or call default), whatever the case says."""
    cases = _cases()
    table = cases._cases()
    if compression:
        for c in table:
            c["compression"] = compression
    if transport == "tcp":
        port = free_tcp_port()
        m = Maitred(["--listen", f"tcp:127.0.0.1:{port}"])
        m.wait_log(f"Server listening on tcp:127.0.0.1:{port}")
        target = f"127.0.0.1:{port}"
    else:
        m = Maitred()
        target = m.addr
    cmd, env_extra = _driver_cmd(driver)
    env = dict(os.environ)
    env.update(env_extra or {})
    res = subprocess.run(cmd + [target], input=cases.case_lines(table), capture_output=True, text=True,
                         timeout=300, env=env)
    results = cases.parse_results(res.stdout)
    problems = cases.judge(table, results)
    assert not problems, f"{driver} over {transport}: " + "; ".join(problems) + \
        f"\nstderr: {res.stderr[-2000:]}"
    # The last case was Shutdown: maitred ends by itself, cleanly.
    assert m.proc.wait(30) == 0
    m.check_clean()
    return m


def test_interop_grpcio_unix():
    run_table("grpcio", "unix")


def test_interop_grpcio_tcp():
    run_table("grpcio", "tcp")


def test_interop_grpc_js_unix():
    run_table("grpc-js", "unix")


def test_interop_grpc_js_tcp():
    run_table("grpc-js", "tcp")


def test_interop_grpcpp_unix():
    run_table("grpcpp", "unix")


def test_interop_grpcpp_tcp():
    run_table("grpcpp", "tcp")


# Every call compressed: grpc-js with gzip as the channel default failed
# every call, for good, before the server advertised grpc-accept-encoding.
def test_interop_grpc_js_gzip_default_unix():
    run_table("grpc-js", "unix", compression="gzip")


def test_interop_grpcio_deflate_default_tcp():
    run_table("grpcio", "tcp", compression="deflate")


def test_interop_grpcpp_gzip_default_tcp():
    run_table("grpcpp", "tcp", compression="gzip")


def test_h2load_smoke_hundred_thousand_calls():
    """h2load (Debian's nghttp2-client): 100 000 unary Mount calls over 100
    connections, 10 streams each: none fails, and maitred logged each one."""
    import struct

    import guest_pb2
    port = free_tcp_port()
    m = Maitred(["--listen", f"tcp:127.0.0.1:{port}"])
    m.wait_log(f"Server listening on tcp:127.0.0.1:{port}")
    body = os.path.join(m.dir, "mount.bin")
    msg = guest_pb2.MountRequest(source="none", target="/nonexistent/valet", fstype="none").SerializeToString()
    with open(body, "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(msg)) + msg)
    res = subprocess.run(["h2load", "-n", "100000", "-c", "100", "-m", "10", "-t", "1",
                          "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body,
                          f"http://127.0.0.1:{port}/vm_tools.Maitred/Mount"],
                         capture_output=True, text=True, timeout=300)
    summary = [line for line in res.stdout.splitlines() if line.startswith(("requests:", "status codes:"))]
    assert res.returncode == 0 and summary, res.stdout + res.stderr
    assert "100000 succeeded, 0 failed, 0 errored, 0 timeout" in summary[0], summary
    assert summary[1].startswith("status codes: 100000 2xx"), summary
    # Every call reached the handler and was logged once (grpc-status is
    # not h2load's business: the log says each Mount failed with ENOENT).
    wait_until(lambda: m.log().count("Mount from tcp 127.0.0.1: ") >= 100000, 60, interval=0.2,
               what="100000 Mount log lines")
    assert m.log().count("Mount from tcp 127.0.0.1: ") == 100000
    assert m.log().count(": failed: No such file or directory") == 100000
    assert m.stop() == 0
