"""A grpcio client of valet.v1.Tunnel for the integration tests and the
benchmark, written from the contract (shared/spec's valet-v1.md,
"valet.v1.Tunnel"): classes generated from proto/valet/v1/tunnel.proto with
protoc at test time, calls through grpcio's generic stubs. Also the guest
services the tests reach through it: small servers on loopback or unix
sockets, in threads, that record what they received."""
import hashlib
import importlib.util
import os
import queue
import socket
import subprocess
import sys
import threading

import valet
from valet import tmpdir

MiB = 1 << 20
METHOD = "/valet.v1.Tunnel/Connect"


def pb():
    """tunnel_pb2, generated once per process, under its own module name."""
    name = "valet_v1_tunnel_pb2"
    if name in sys.modules:
        return sys.modules[name]
    out = tmpdir()
    pdir = os.path.join(valet.ROOT, "proto")
    subprocess.run(["protoc", "-I" + pdir, "--python_out=" + out, os.path.join(pdir, "valet", "v1", "tunnel.proto")],
                   check=True)
    spec = importlib.util.spec_from_file_location(name, os.path.join(out, "valet", "v1", "tunnel_pb2.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def channel(addr, options=()):
    import grpc
    return grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", 8 * MiB),
                                                ("grpc.max_send_message_length", 8 * MiB)] + list(options))


def connect_stub(ch):
    m = pb()
    return ch.stream_stream(METHOD, request_serializer=m.TunnelRequest.SerializeToString,
                            response_deserializer=m.TunnelResponse.FromString)


def target(port=0, host="", unix_path=""):
    m = pb()
    return m.TunnelRequest(target=m.TunnelTarget(host=host, port=port, unix_path=unix_path))


def data(b):
    return pb().TunnelRequest(data=b)


def eof():
    return pb().TunnelRequest(eof=True)


class Tunnel:
    """One Connect call whose requests are pushed as the test goes:
    send(), eof(), close() (the half-close: the request stream ends)."""
    _END = object()

    def __init__(self, stub, first, timeout=60):
        self.q = queue.Queue()
        self.q.put(first)
        self.call = stub(iter(self.q.get, self._END), timeout=timeout)

    def send(self, b):
        self.q.put(data(b))

    def eof(self):
        self.q.put(eof())

    def close(self):
        self.q.put(self._END)

    def raw(self, msg):
        self.q.put(msg)

    def next(self):
        return next(self.call)

    def rest(self):
        """Every response until the end: (data received, ['connected',
        'data', 'eof'] collapsed, code name, details)."""
        import grpc
        got, kinds = [], []
        try:
            for r in self.call:
                k = r.WhichOneof("part")
                if k == "data":
                    got.append(r.data)
                if not kinds or kinds[-1] != k or k != "data":
                    kinds.append(k)
            code, details = "OK", ""
        except grpc.RpcError as e:
            code, details = e.code().name, e.details()
        return b"".join(got), kinds, code, details


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Service:
    """A guest service: accepts connections on loopback TCP (or a unix
    socket when unix=True) and runs handler(conn, record) for each in a
    thread. record is a dict the handler fills; records lists them in
    accept order."""

    def __init__(self, handler, unix=False, backlog=128):
        if unix:
            self.path = os.path.join(tmpdir(), "svc.sock")
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(self.path)
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.handler = handler
        self.records = []
        self.lock = threading.Lock()
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = {"done": threading.Event()}
            with self.lock:
                self.records.append(rec)
            t = threading.Thread(target=self._run, args=(c, rec), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, c, rec):
        try:
            self.handler(c, rec)
        except OSError as e:
            rec["error"] = e
        finally:
            c.close()
            rec["done"].set()

    def wait(self, n=1, timeout=30):
        valet.wait_until(lambda: len(self.records) >= n, timeout, what=f"{n} connections")
        for r in self.records[:n]:
            assert r["done"].wait(timeout), "a guest service connection did not end"
        return self.records[:n]

    def close(self):
        self.sock.close()


def read_all(c):
    out = []
    while True:
        b = c.recv(1 << 16)
        if not b:
            return b"".join(out)
        out.append(b)


def echo(c, rec):
    """Echoes until EOF, then ends its side."""
    n = 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        c.sendall(b)
        n += len(b)
    rec["bytes"] = n
    c.shutdown(socket.SHUT_WR)


def sha(b):
    return hashlib.sha256(b).hexdigest()
