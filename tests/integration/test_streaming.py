"""Streaming calls through the rpc core, driven by a client that is not
ours: Debian's grpcio against tests/unit/rpc-stream-server (the streamtest
service of tests/proto/streamtest.proto), Python classes generated here
with protoc. The four kinds of call, 256 MiB through a bidirectional echo,
a client that stops reading (the server's memory stays bounded), cancel
and deadline mid-stream."""
import hashlib
import os
import subprocess
import sys
import threading
import time

import valet
from valet import sanitized, sanitizer_env, tmpdir, track, wait_until
from lanes import timing

MiB = 1024 * 1024


def _pb():
    """streamtest_pb2, generated once per run into a temporary directory."""
    if "streamtest_pb2" in sys.modules:
        return sys.modules["streamtest_pb2"]
    out = tmpdir()
    pdir = os.path.join(valet.ROOT, "tests", "proto")
    subprocess.run(["protoc", "-I" + pdir, "--python_out=" + out, os.path.join(pdir, "streamtest.proto")],
                   check=True)
    sys.path.insert(0, out)
    import streamtest_pb2
    return streamtest_pb2


class StreamServer:
    def __init__(self):
        self.dir = tmpdir()
        self.addr = "unix:" + os.path.join(self.dir, "stream.sock")
        self.log_path = os.path.join(self.dir, "server.log")
        self.log_file = open(self.log_path, "w")
        exe = os.path.join(valet.BUILD, "tests", "unit", "rpc-stream-server")
        self.proc = track(subprocess.Popen([exe, self.addr], stdout=self.log_file, stderr=subprocess.STDOUT,
                                           env=sanitizer_env()))
        wait_until(lambda: "listening" in self.log() or self.proc.poll() is not None, 10, what="listening")
        assert self.proc.poll() is None, self.log()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def cancels(self):
        return self.log().count("cancelled")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(30) == 0, self.log()
        for mark in valet.SANITIZER_MARKS:
            assert mark not in self.log(), self.log()[-4000:]


def _stubs(addr, compression=None):
    import grpc
    pb = _pb()
    ch = grpc.insecure_channel(addr, compression=compression,
                               options=[("grpc.max_receive_message_length", 4 * MiB + 64)])

    class S:
        channel = ch
        Echo = ch.stream_stream("/streamtest.Stream/Echo", request_serializer=pb.Chunk.SerializeToString,
                                response_deserializer=pb.Chunk.FromString)
        Add = ch.stream_unary("/streamtest.Stream/Add", request_serializer=pb.Chunk.SerializeToString,
                              response_deserializer=pb.Sum.FromString)
        Countdown = ch.unary_stream("/streamtest.Stream/Countdown", request_serializer=pb.Count.SerializeToString,
                                    response_deserializer=pb.Chunk.FromString)
    return S


def _still_serving(s):
    pb = _pb()
    assert s.Add(iter([pb.Chunk(value=2), pb.Chunk(value=3)]), timeout=30).total == 5


def test_streaming_grpcio_four_kinds():
    import grpc
    pb = _pb()
    srv = StreamServer()
    for comp in (None, grpc.Compression.Gzip, grpc.Compression.Deflate):
        s = _stubs(srv.addr, comp)
        sizes = [0, 1, 16 * 1024, MiB, 4 * MiB - 7]
        got = list(s.Echo(iter([pb.Chunk(data=bytes([i]) * n, value=i) for i, n in enumerate(sizes)]),
                          timeout=60))
        assert [(len(c.data), c.value) for c in got] == [(n, i) for i, n in enumerate(sizes)]
        assert all(c.data == bytes([i]) * len(c.data) for i, c in enumerate(got))
        total = s.Add(iter(pb.Chunk(value=i, data=b"x" * i) for i in range(1, 1001)), timeout=60)
        assert (total.total, total.count, total.bytes) == (500500, 1000, 500500)
        values = [c.value for c in s.Countdown(pb.Count(**{"from": 1000, "size": 100}), timeout=60)]
        assert values == list(range(1000, 0, -1))
        # Unary-shaped calls of each kind, and the empty client stream.
        assert [c.value for c in s.Echo(iter([pb.Chunk(value=7)]), timeout=10)] == [7]
        assert list(s.Echo(iter([]), timeout=10)) == []  # bidirectional, nothing asked: OK
        assert list(s.Countdown(pb.Count(**{"from": 0}), timeout=10)) == []
        try:
            s.Add(iter([]), timeout=10)
            raise AssertionError("an empty client stream was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
            assert e.details() == "no request message"
        # Over the limit, per message: the call fails, the server serves on.
        try:
            list(s.Echo(iter([pb.Chunk(value=1), pb.Chunk(data=b"y" * (4 * MiB))]), timeout=30))
            raise AssertionError("a message over 4 MiB was accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
        _still_serving(s)
        s.channel.close()
    srv.stop()


def test_streaming_grpcio_256mib_echo_sha256():
    pb = _pb()
    srv = StreamServer()
    s = _stubs(srv.addr)
    block = os.urandom(MiB)
    sent = hashlib.sha256()
    received = hashlib.sha256()
    peak = [0]

    def requests():
        for i in range(256):
            data = block[i:] + block[:i]
            sent.update(data)
            if i % 16 == 0:
                peak[0] = max(peak[0], srv.rss_kib())
            yield pb.Chunk(data=data, value=i)

    start = time.monotonic()
    n = 0
    for c in s.Echo(requests(), timeout=600):
        assert c.value == n
        received.update(c.data)
        n += 1
    secs = time.monotonic() - start
    assert n == 256
    assert sent.hexdigest() == received.hexdigest()
    print(f"256 MiB echoed in {secs:.1f} s, server peak RSS {peak[0]} KiB")
    if not sanitized():
        # The queues are about 1 MiB each way, messages 1 MiB: a few MiB.
        assert peak[0] < 24 * 1024, peak[0]
    s.channel.close()
    srv.stop()


# RSS sampled for 2 s while the client does not read.
@timing
def test_streaming_client_stops_reading():
    pb = _pb()
    srv = StreamServer()
    s = _stubs(srv.addr)
    other = _stubs(srv.addr)
    idle = srv.rss_kib()
    # 4 GiB announced; the client reads one message and then nothing.
    it = s.Countdown(pb.Count(**{"from": 4096, "size": MiB}), timeout=120)
    first = next(it)
    assert first.value == 4096
    samples = []
    for _ in range(20):
        time.sleep(0.1)
        samples.append(srv.rss_kib())
    # Another call on another connection is answered meanwhile.
    _still_serving(other)
    print(f"idle {idle} KiB, while the client does not read: {samples[-5:]} KiB")
    if not sanitized():
        assert max(samples) - idle < 16 * 1024, (idle, samples)
        # Flat: the producer is held back, not buffering on.
        assert samples[-1] - samples[len(samples) // 2] < 1024, samples
    it.cancel()
    wait_until(lambda: srv.cancels() >= 1, 10, what="the handler's cancel")
    _still_serving(other)
    s.channel.close()
    other.channel.close()
    srv.stop()


def test_streaming_cancel_mid_stream():
    pb = _pb()
    srv = StreamServer()
    s = _stubs(srv.addr)
    gate = threading.Event()

    def requests():
        yield pb.Chunk(value=1, data=b"a" * 1000)
        gate.wait(30)  # the stream stays open

    call = s.Echo(requests(), timeout=60)
    assert next(call).value == 1
    call.cancel()
    wait_until(lambda: srv.cancels() == 1, 10, what="the handler's cancel")
    gate.set()
    _still_serving(s)
    time.sleep(0.2)
    assert srv.cancels() == 1
    s.channel.close()
    srv.stop()


# A 1 s deadline while the client streams for longer.
@timing
def test_streaming_deadline_mid_stream():
    import grpc
    pb = _pb()
    srv = StreamServer()
    s = _stubs(srv.addr)
    stop = threading.Event()

    def requests():
        for i in range(1000):
            if stop.is_set():
                return
            yield pb.Chunk(value=i)
            time.sleep(0.05)

    start = time.monotonic()
    try:
        for _ in s.Echo(requests(), timeout=1.0):
            pass
        raise AssertionError("the deadline did not end the call")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    stop.set()
    assert time.monotonic() - start < 5
    # The server's own deadline (grpc-timeout) cancels the handler once.
    wait_until(lambda: srv.cancels() == 1, 10, what="the handler's cancel")
    _still_serving(s)
    s.channel.close()
    srv.stop()


def test_streaming_grpc_js():
    """grpc-js (tests/interop's lockfile) for the three streaming kinds."""
    import json
    npm = os.path.expanduser(os.environ.get("VALET_NPM_CACHE", "~/.cache/valet-npm"))
    mods = os.path.join(npm, "node_modules")
    assert os.path.isdir(os.path.join(mods, "@grpc", "grpc-js")), \
        f"@grpc/grpc-js is not installed in {npm}: run scripts/install-deps.sh"
    srv = StreamServer()
    script = os.path.join(valet.ROOT, "tests", "interop", "grpc-js-stream.js")
    res = subprocess.run(["/usr/bin/node", script, srv.addr], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, NODE_PATH=mods))
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["echo"] == {"code": 0, "n": 64, "same": True}, out
    assert out["add"] == {"code": 0, "total": 5050, "count": 100}, out
    assert out["countdown"] == {"code": 0, "n": 300, "first": 300, "last": 1}, out
    srv.stop()
