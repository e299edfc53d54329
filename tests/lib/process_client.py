"""A grpcio client of valet.v1.Process for the integration tests, written
from the contract (shared/spec's valet-v1.md, "valet.v1.Process") and
proto/valet/v1/process.proto: the classes are generated with protoc at test
time, the calls made through grpcio's generic stubs. Also what the tests
share: collecting a call's events per stream, a process's state in /proc."""
import os

import valet
from valet import Maitred

MiB = 1 << 20


def pb():
    """process_pb2 (valet/v1/process.proto), generated once per process."""
    return valet.proto_module("valet/v1/process.proto")


def stubs(addr):
    from google.protobuf import empty_pb2
    m = pb()
    return valet.service_stubs(addr, "valet.v1.Process", {
        "Start": ("unary_stream", m.StartRequest, m.ProcessEvent),
        "Connect": ("unary_stream", m.ConnectRequest, m.ProcessEvent),
        "List": ("unary_unary", m.ListProcessesRequest, m.ListProcessesResponse),
        "SendInput": ("unary_unary", m.SendInputRequest, empty_pb2.Empty),
        "SendSignal": ("unary_unary", m.SendSignalRequest, empty_pb2.Empty),
        "Resize": ("unary_unary", m.ResizeRequest, empty_pb2.Empty),
    })


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
    except (FileNotFoundError, ProcessLookupError):
        # Gone before the open, or between the open and the read (ESRCH).
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
