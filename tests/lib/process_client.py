"""A grpcio client of valet.v1.Process for the integration tests, written
from the contract (shared/spec's valet-v1.md, "valet.v1.Process") and
proto/valet/v1/process.proto: the classes are generated with protoc at test
time, the calls made through grpcio's generic stubs. Also what the tests
share: collecting a call's events per stream, a process's state in /proc."""
import importlib.util
import os
import subprocess
import sys

import valet
from valet import Maitred, tmpdir

MiB = 1 << 20
SERVICE = "/valet.v1.Process/"


def pb():
    """process_pb2 (valet/v1/process.proto), generated once per process."""
    name = "valet_v1_process_pb2"
    if name in sys.modules:
        return sys.modules[name]
    out = tmpdir()
    pdir = os.path.join(valet.ROOT, "proto")
    subprocess.run(["protoc", "-I" + pdir, "--python_out=" + out, os.path.join(pdir, "valet", "v1", "process.proto")],
                   check=True)
    spec = importlib.util.spec_from_file_location(name, os.path.join(out, "valet", "v1", "process_pb2.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def stubs(addr):
    import grpc
    from google.protobuf import empty_pb2
    m = pb()
    ch = grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", 8 * MiB),
                                              ("grpc.max_send_message_length", 8 * MiB)])

    def method(kind, name, req, resp):
        return getattr(ch, kind)(SERVICE + name, request_serializer=req.SerializeToString,
                                 response_deserializer=resp.FromString)

    class S:
        channel = ch
        Start = method("unary_stream", "Start", m.StartRequest, m.ProcessEvent)
        Connect = method("unary_stream", "Connect", m.ConnectRequest, m.ProcessEvent)
        List = method("unary_unary", "List", m.ListProcessesRequest, m.ListProcessesResponse)
        SendInput = method("unary_unary", "SendInput", m.SendInputRequest, empty_pb2.Empty)
        SendSignal = method("unary_unary", "SendSignal", m.SendSignalRequest, empty_pb2.Empty)
        Resize = method("unary_unary", "Resize", m.ResizeRequest, empty_pb2.Empty)
    return S


def maitred(args=(), wrap=()):
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"] + list(args), wrap=wrap)


class Run:
    """What a Start or Connect call delivered: started, the bytes per stream
    (checked contiguous: each Output's offset minus its dropped is where the
    previous one ended), the dropped counts, exited."""

    def __init__(self, base=None):
        self.started = None
        self.data = {1: bytearray(), 2: bytearray(), 3: bytearray()}
        self.next = dict(base or {1: 0, 2: 0, 3: 0})
        self.dropped = {1: 0, 2: 0, 3: 0}
        self.exited = None
        self.events = 0

    def add(self, ev):
        self.events += 1
        kind = ev.WhichOneof("event")
        assert self.exited is None, ("event after exited", ev)
        if kind == "started":
            assert self.started is None and self.events == 1, ev
            self.started = ev.started
        elif kind == "output":
            o = ev.output
            assert o.offset - o.dropped == self.next[o.stream], (o.stream, o.offset, o.dropped, self.next[o.stream])
            self.dropped[o.stream] += o.dropped
            self.data[o.stream] += o.data
            self.next[o.stream] = o.offset + len(o.data)
        elif kind == "exited":
            self.exited = ev.exited
        else:
            raise AssertionError(ev)

    def consume(self, call, until=None):
        for ev in call:
            self.add(ev)
            if until and until(self):
                return self
        return self

    @property
    def out(self):
        return bytes(self.data[1])

    @property
    def err(self):
        return bytes(self.data[2])

    @property
    def pty(self):
        return bytes(self.data[3])


def run(s, argv, timeout=60, **fields):
    r = Run()
    r.consume(s.Start(pb().StartRequest(argv=argv, **fields), timeout=timeout))
    assert r.exited is not None, "no Exited"
    return r


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children_of(pid):
    """The pids whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out
