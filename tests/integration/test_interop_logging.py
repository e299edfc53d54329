"""Calls refused before any handler and connections refused at the cap are
logged once each, with the peer, and a flood is rate-limited (20 lines per
kind per 5 s, then one line counting the rest)."""
import os
import subprocess
import socket
import struct
import time

from valet import Maitred, binary, grpc_error, grpc_stubs, sanitizer_env, track, wait_until
from lanes import timing

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """HPACK literal header field without indexing, no Huffman (lengths < 127)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def raw_call(sock_path, headers, body):
    """One request on a raw HTTP/2 connection; returns once the server closed
    the stream or the connection went quiet."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    block = b"".join(literal(n, v) for n, v in headers)
    s.sendall(PREFACE + frame(4, 0, 0, b"") + frame(1, 4, 1, block) + frame(0, 1, 1, body))
    return s


def rejected_lines(m):
    return [line for line in m.log().splitlines() if ": rejected: " in line]


def test_rejected_calls_are_logged_with_the_peer():
    import guest_pb2
    m = Maitred()
    g = grpc_stubs(m.addr)
    me = f"unix pid {os.getpid()} uid {os.geteuid()}"
    assert grpc_error(g.raw("/vm_tools.Maitred/Nope"), b"", timeout=5)[0] == "UNIMPLEMENTED"
    m.wait_log(f"/vm_tools.Maitred/Nope from unix pid ")
    # Oversized message, oversized headers.
    assert grpc_error(g.raw("/vm_tools.Maitred/Mount"), b"\x0a\x80\x80\x80\x03" + b"x" * (6 << 20),
                      timeout=20)[0] == "RESOURCE_EXHAUSTED"
    m.wait_log("rejected: RESOURCE_EXHAUSTED: request message of")
    assert grpc_error(g.Mount, guest_pb2.MountRequest(), metadata=(("x-pad", "a" * 20000),),
                      timeout=5)[0] == "RESOURCE_EXHAUSTED"
    m.wait_log("rejected: RESOURCE_EXHAUSTED: request headers larger than the limit of 16384 bytes")
    # An encoding nobody can inflate, from a raw client (grpc libraries
    # only send the ones they know).
    s = raw_call(m.sock, [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/vm_tools.Maitred/Mount"),
                          (b":authority", b"x"), (b"content-type", b"application/grpc"),
                          (b"grpc-encoding", b"br")], b"\x01\x00\x00\x00\x01\x00")
    m.wait_log("grpc-encoding 'br' is not supported")
    s.close()
    lines = rejected_lines(m)
    assert len(lines) == 4, lines
    assert "UNIMPLEMENTED: grpc-encoding 'br' is not supported (accepted: identity,deflate,gzip)" in lines[3]
    # The grpcio calls came from this process (through its own threads).
    assert all(" from unix pid " in line for line in lines)
    assert sum(me in line for line in lines) >= 3, (me, lines)
    assert m.stop() == 0


def test_connections_refused_at_the_cap_are_logged():
    # Refused only when every connection has a call in flight (an idle one
    # would make room instead): one slot, held by a waiting LaunchProcess.
    m = Maitred(["--max-connections", "1"])
    m.wait_log("Server listening on")
    waiting = track(subprocess.Popen([binary("maitctl"), "--addr", m.addr, "launch", "--wait", "--", "sleep", "30"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=sanitizer_env()))
    m.wait_log("started, waiting")
    b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    b.settimeout(5)
    b.connect(m.sock)
    assert b.recv(100) == b""  # closed at once
    m.wait_log(f"refused connection from unix pid {os.getpid()} uid {os.geteuid()}: too many connections")
    b.close()
    waiting.kill()
    waiting.wait()
    assert m.stop() == 0


@timing
def test_a_flood_of_rejections_is_rate_limited():
    m = Maitred()
    g = grpc_stubs(m.addr)
    call = g.raw("/vm_tools.Maitred/Nope")
    for _ in range(100):
        assert grpc_error(call, b"", timeout=5)[0] == "UNIMPLEMENTED"
    assert len(rejected_lines(m)) == 20
    # The count of what was left out comes with the first line of the next
    # interval (5 s on the monotonic clock).
    time.sleep(5.2)
    assert grpc_error(call, b"", timeout=5)[0] == "UNIMPLEMENTED"
    m.wait_log("80 more rejected calls not logged (rate limit)")
    assert len(rejected_lines(m)) == 21
    assert m.stop() == 0
