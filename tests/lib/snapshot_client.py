"""A grpcio client of valet.v1.Snapshot for the tests, written from the
contract (shared/spec's valet-v1.md, "valet.v1.Snapshot") and
proto/valet/v1/snapshot.proto, whose Python classes are generated here
with protoc at test time; and loop-device ext4 filesystems for Freeze to
act on, created and detached by the test."""
import contextlib
import importlib.util
import os
import subprocess
import sys

import valet
from valet import tmpdir

SERVICE = "/valet.v1.Snapshot/"


def pb():
    """snapshot_pb2, generated once per process (it imports guest_pb2,
    which valet.configure() made importable)."""
    name = "valet_v1_snapshot_pb2"
    if name in sys.modules:
        return sys.modules[name]
    out = tmpdir()
    pdir = os.path.join(valet.ROOT, "proto")
    subprocess.run(["protoc", "-I" + pdir, "--python_out=" + out,
                    os.path.join(pdir, "valet", "v1", "snapshot.proto")], check=True)
    spec = importlib.util.spec_from_file_location(name, os.path.join(out, "valet", "v1", "snapshot_pb2.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def stubs(addr):
    import grpc
    from google.protobuf import empty_pb2
    m = pb()
    # grpc spells TCP targets HOST:PORT (the VM's forwarded port).
    ch = grpc.insecure_channel(addr[4:] if addr.startswith("tcp:") else addr)

    def method(name, req, resp):
        return ch.unary_unary(SERVICE + name, request_serializer=req.SerializeToString,
                              response_deserializer=resp.FromString)

    class S:
        channel = ch
        Freeze = method("Freeze", m.FreezeRequest, m.FreezeResponse)
        Thaw = method("Thaw", empty_pb2.Empty, m.ThawResponse)
        Restored = method("Restored", m.RestoredRequest, m.RestoredResponse)
    return S


def thaw(s):
    from google.protobuf import empty_pb2
    return list(s.Thaw(empty_pb2.Empty(), timeout=30).thawed)


@contextlib.contextmanager
def loop_ext4(n=1, size=32 << 20):
    """n fresh ext4 images on loop devices of this test's own; detached at
    the end (the mounts live in maitred's mount namespace and go with it)."""
    devs = []
    try:
        for _ in range(n):
            img = os.path.join(tmpdir(), "disk.img")
            with open(img, "wb") as f:
                f.truncate(size)
            subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
            devs.append(subprocess.run(["losetup", "--find", "--show", img], check=True, capture_output=True,
                                       text=True).stdout.strip())
        yield devs
    finally:
        for d in devs:
            subprocess.run(["losetup", "-d", d], check=False)
