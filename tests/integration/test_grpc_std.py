"""The standard gRPC services of maitred, grpc.health.v1.Health and server
reflection (grpc.reflection.v1 and v1alpha), driven by clients that are
not ours: Debian's grpcio with classes generated here by protoc from the
.proto files gRPC itself publishes (shipped in its npm packages
@grpc/reflection and grpc-health-check, pinned in
tests/interop/package-lock.json), and on Debian's node the reflection
client grpc-reflection-js and gRPC's grpc-health-check. A method is called
purely from what reflection returned (its descriptors, no .proto file).

Expected services: vm_tools.Maitred, health, both reflections, and the
valet.v1 services this build serves (each probed with a call:
VALET_SERVICES)."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import valet
from valet import Maitred, grpc_error, tmpdir, wait_until

NPM_CACHE = os.path.expanduser(os.environ.get("VALET_NPM_CACHE", "~/.cache/valet-npm"))
MODS = os.path.join(NPM_CACHE, "node_modules")
NODE = "/usr/bin/node"  # Debian's nodejs
INTEROP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "interop")
STD_SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"]

NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED = 5, 3, 12


def _grpc_proto_roots():
    """Where gRPC's own .proto files are: (reflection root, health root)."""
    refl = os.path.join(MODS, "@grpc", "reflection", "build", "proto")
    health = os.path.join(MODS, "grpc-health-check", "proto")
    assert os.path.isdir(refl) and os.path.isdir(health), \
        f"gRPC's npm packages are not installed in {NPM_CACHE}: run scripts/install-deps.sh check"
    return refl, health


_PB = {}


def _pb(name):
    """gRPC's message classes: 'v1', 'v1alpha' (reflection) or 'health'.
    Generated once per process; loaded under names of their own, since a
    directory named grpc/ would shadow the grpc package."""
    if not _PB:
        refl, health = _grpc_proto_roots()
        out = tmpdir()
        subprocess.run(["protoc", "-I" + refl, "--python_out=" + out, "grpc/reflection/v1/reflection.proto",
                        "grpc/reflection/v1alpha/reflection.proto"], check=True)
        subprocess.run(["protoc", "-I" + health, "--python_out=" + out, "health/v1/health.proto"], check=True)
        for key, path in (("v1", "grpc/reflection/v1/reflection_pb2.py"),
                          ("v1alpha", "grpc/reflection/v1alpha/reflection_pb2.py"),
                          ("health", "health/v1/health_pb2.py")):
            spec = importlib.util.spec_from_file_location("grpc_std_" + key + "_pb2", os.path.join(out, path))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            _PB[key] = mod
    return _PB[name]


def maitred(*args):
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"] + list(args))


def _channel(m):
    import grpc
    return grpc.insecure_channel(m.addr, options=[("grpc.max_receive_message_length", 8 << 20)])


def reflect(ch, requests, version="v1", timeout=20):
    """Sends the requests on one ServerReflectionInfo stream; returns the
    responses (the stream ends when the requests are all sent)."""
    pb = _pb(version)
    info = ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                            request_serializer=pb.ServerReflectionRequest.SerializeToString,
                            response_deserializer=pb.ServerReflectionResponse.FromString)
    return list(info(iter(requests), timeout=timeout))


def req(version="v1", **kw):
    return _pb(version).ServerReflectionRequest(**kw)


def health_stubs(ch):
    pb = _pb("health")

    class H:
        Check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=pb.HealthCheckRequest.SerializeToString,
                               response_deserializer=pb.HealthCheckResponse.FromString)
        Watch = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=pb.HealthCheckRequest.SerializeToString,
                                response_deserializer=pb.HealthCheckResponse.FromString)
        List = ch.unary_unary("/grpc.health.v1.Health/List", request_serializer=pb.HealthListRequest.SerializeToString,
                              response_deserializer=pb.HealthListResponse.FromString)
    return H


def status_name(v):
    return _pb("health").HealthCheckResponse.ServingStatus.Name(v)


def served(ch, path):
    """A valet.v1 service is served once it is merged: a call of path with
    an empty request (refused for its arguments, changing nothing) answers
    anything but UNIMPLEMENTED then."""
    import grpc
    call = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(b"", timeout=10)
    except grpc.RpcError as e:
        return e.code() != grpc.StatusCode.UNIMPLEMENTED
    return True


def tunnel_served(ch):
    """valet.v1.Tunnel likewise: a Connect without any message ends OK
    (a bidirectional call) when it is served."""
    import grpc
    connect = ch.stream_stream("/valet.v1.Tunnel/Connect", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    try:
        list(connect(iter([]), timeout=10))
    except grpc.RpcError as e:
        return e.code() != grpc.StatusCode.UNIMPLEMENTED
    return True


# In the order maitred registers them (main.c), each with a call that
# changes nothing.
VALET_SERVICES = (("valet.v1.Files", lambda ch: served(ch, "/valet.v1.Files/Stat")),
                  ("valet.v1.Process", lambda ch: served(ch, "/valet.v1.Process/List")),
                  ("valet.v1.Snapshot", lambda ch: served(ch, "/valet.v1.Snapshot/Restored")),
                  ("valet.v1.Tunnel", tunnel_served))


def expected_services(ch):
    return ["vm_tools.Maitred"] + [name for name, probe in VALET_SERVICES if probe(ch)] + STD_SERVICES


def pool_from(blobs):
    """A descriptor pool of the serialized FileDescriptorProtos, each added
    after its imports; every import must be among them."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    files = {}
    for b in blobs:
        fd = descriptor_pb2.FileDescriptorProto.FromString(b)
        files[fd.name] = fd
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(fd):
        for dep in fd.dependency:
            assert dep in files, f"{fd.name} imports {dep}, which the response lacks"
            if dep not in added:
                add(files[dep])
        pool.Add(fd)
        added.add(fd.name)

    for fd in files.values():
        if fd.name not in added:
            add(fd)
    return pool


def dynamic_unary(ch, pool, service, method):
    """A unary callable and its request class, from the descriptors alone."""
    from google.protobuf import message_factory
    m = pool.FindServiceByName(service).methods_by_name[method]
    factory = message_factory.MessageFactory(pool)
    req_cls = factory.GetPrototype(m.input_type)
    resp_cls = factory.GetPrototype(m.output_type)
    return ch.unary_unary(f"/{service}/{method}", request_serializer=req_cls.SerializeToString,
                          response_deserializer=resp_cls.FromString), req_cls


def _battery(version):
    m = maitred()
    ch = _channel(m)
    want = expected_services(ch)

    # list_services: what is served, in registration order, nothing else.
    (r,) = reflect(ch, [req(version, host="guest", list_services="*")], version)
    assert r.WhichOneof("message_response") == "list_services_response", r
    assert [s.name for s in r.list_services_response.service] == want
    assert r.valid_host == "guest" and r.original_request.list_services == "*"

    # Every listed service: its file, with its imports, from which each
    # method's input and output types resolve.
    for svc in want:
        (r,) = reflect(ch, [req(version, file_containing_symbol=svc)], version)
        assert r.WhichOneof("message_response") == "file_descriptor_response", (svc, r)
        pool = pool_from(r.file_descriptor_response.file_descriptor_proto)
        sd = pool.FindServiceByName(svc)
        assert sd.methods, svc
        for meth in sd.methods:
            assert meth.input_type.full_name and meth.output_type.full_name
            (r2,) = reflect(ch, [req(version, file_containing_symbol=f"{svc}.{meth.name}")], version)
            assert r2.file_descriptor_response.file_descriptor_proto[0] == \
                r.file_descriptor_response.file_descriptor_proto[0], (svc, meth.name)

    # A call made from the descriptors alone.
    (r,) = reflect(ch, [req(version, file_containing_symbol="vm_tools.Maitred.GetKernelVersion")], version)
    pool = pool_from(r.file_descriptor_response.file_descriptor_proto)
    call, req_cls = dynamic_unary(ch, pool, "vm_tools.Maitred", "GetKernelVersion")
    assert call(req_cls(), timeout=10).kernel_release == os.uname().release
    (r,) = reflect(ch, [req(version, file_containing_symbol="grpc.health.v1.Health")], version)
    pool = pool_from(r.file_descriptor_response.file_descriptor_proto)
    call, req_cls = dynamic_unary(ch, pool, "grpc.health.v1.Health", "Check")
    assert call(req_cls(service="vm_tools.Maitred"), timeout=10).status == 1  # SERVING
    if "valet.v1.Files" in want:
        (r,) = reflect(ch, [req(version, file_containing_symbol="valet.v1.Files.Stat")], version)
        pool = pool_from(r.file_descriptor_response.file_descriptor_proto)
        call, req_cls = dynamic_unary(ch, pool, "valet.v1.Files", "Stat")
        info = call(req_cls(path=m.dir), timeout=10)
        assert (info.path, info.type, info.mode) == (m.dir, 2, 0o755), info  # DIRECTORY

    if "valet.v1.Snapshot" in want:
        (r,) = reflect(ch, [req(version, file_containing_symbol="valet.v1.Snapshot.Thaw")], version)
        pool = pool_from(r.file_descriptor_response.file_descriptor_proto)
        call, req_cls = dynamic_unary(ch, pool, "valet.v1.Snapshot", "Thaw")
        assert list(call(req_cls(), timeout=10).thawed) == []  # nothing frozen

    # file_by_filename: the file first, then its imports.
    from google.protobuf import descriptor_pb2
    (r,) = reflect(ch, [req(version, file_by_filename="guest.proto")], version)
    names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
             for b in r.file_descriptor_response.file_descriptor_proto]
    assert names[0] == "guest.proto" and sorted(names[1:]) == ["common.proto", "google/protobuf/timestamp.proto"], names
    # The valet.v1 files are all there, served or not yet.
    for f in ("valet/v1/files.proto", "valet/v1/process.proto", "valet/v1/tunnel.proto", "valet/v1/snapshot.proto"):
        (r,) = reflect(ch, [req(version, file_by_filename=f)], version)
        fd = descriptor_pb2.FileDescriptorProto.FromString(r.file_descriptor_response.file_descriptor_proto[0])
        assert fd.name == f and fd.package == "valet.v1", (f, r)

    # Symbols of every kind, and the errors, on one stream, answered in order.
    asks = [("vm_tools.LaunchProcessRequest", "guest.proto"),            # message
            ("vm_tools.LaunchProcessRequest.argv", "guest.proto"),       # field
            ("vm_tools.EmptyMessage", "common.proto"),
            ("google.protobuf.Timestamp", "google/protobuf/timestamp.proto"),
            ("grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"),  # nested enum
            ("grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto"),        # enum value
            ("grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
             "grpc/reflection/v1alpha/reflection.proto"),
            ("vm_tools.Nope", None), ("", None), ("vm_tools", None)]
    requests = [req(version, file_containing_symbol=s) for s, _ in asks]
    requests += [req(version, file_by_filename="nope.proto"),
                 req(version, file_containing_extension=_pb(version).ExtensionRequest(
                     containing_type="vm_tools.LaunchProcessRequest", extension_number=100)),
                 req(version, all_extension_numbers_of_type="vm_tools.LaunchProcessRequest"),
                 req(version, all_extension_numbers_of_type="vm_tools.Maitred"),
                 req(version, list_services="")]
    rs = reflect(ch, requests, version)
    assert len(rs) == len(requests)
    for (sym, file), r in zip(asks, rs):
        assert r.original_request.file_containing_symbol == sym
        if file:
            fd = descriptor_pb2.FileDescriptorProto.FromString(r.file_descriptor_response.file_descriptor_proto[0])
            assert fd.name == file, (sym, fd.name)
        else:
            assert r.WhichOneof("message_response") == "error_response", (sym, r)
            assert (r.error_response.error_code, r.error_response.error_message) == \
                (NOT_FOUND, f"no symbol named '{sym}'")
    r = rs[len(asks)]
    assert (r.error_response.error_code, r.error_response.error_message) == \
        (NOT_FOUND, "no file named 'nope.proto'")
    r = rs[len(asks) + 1]
    assert r.error_response.error_code == NOT_FOUND and "vm_tools.LaunchProcessRequest" in \
        r.error_response.error_message, r
    r = rs[len(asks) + 2]
    assert r.WhichOneof("message_response") == "all_extension_numbers_response", r
    assert r.all_extension_numbers_response.base_type_name == "vm_tools.LaunchProcessRequest"
    assert list(r.all_extension_numbers_response.extension_number) == []
    r = rs[len(asks) + 3]  # a service is no message type
    assert r.error_response.error_code == NOT_FOUND, r
    r = rs[len(asks) + 4]
    assert [s.name for s in r.list_services_response.service] == want
    assert m.stop() == 0
    m.check_clean()


def test_reflection_v1():
    _battery("v1")


def test_reflection_v1alpha():
    _battery("v1alpha")


def test_reflection_bad_requests():
    """A request asking for nothing, a huge name, an undecodable message:
    each a clear error, the stream (or at least maitred) goes on."""
    m = maitred()
    ch = _channel(m)
    long_name = "é" * 5000  # 10000 bytes: cut for the message on a character boundary
    rs = reflect(ch, [req(host="h"), req(file_containing_symbol="x" * (1 << 20)),
                      req(file_containing_symbol=long_name), req(file_by_filename="guest.proto")])
    assert len(rs) == 4
    assert rs[0].error_response.error_code == UNIMPLEMENTED, rs[0]
    assert rs[0].error_response.error_message.startswith("a request this server does not know"), rs[0]
    assert rs[0].valid_host == "h"
    assert rs[1].error_response.error_code == INVALID_ARGUMENT, rs[1].error_response
    assert rs[1].error_response.error_message == "a request of 1048580 bytes; at most 16384 are accepted"
    assert not rs[1].HasField("original_request")
    assert rs[2].error_response.error_code == NOT_FOUND
    assert rs[2].error_response.error_message == "no symbol named '" + "é" * 100 + "...'"
    assert rs[2].original_request.file_containing_symbol == long_name
    assert rs[3].WhichOneof("message_response") == "file_descriptor_response"

    # Bytes that are no ServerReflectionRequest: the call fails, clearly.
    import grpc
    raw = ch.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                           request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        list(raw(iter([b"\x0a\xff\xff"]), timeout=10))
        raise AssertionError("an undecodable request was answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
    # A request of 4 MiB (the message limit): one error response.
    rs = reflect(ch, [req(file_by_filename="y" * ((4 << 20) - 64))])
    assert rs[0].error_response.error_code == INVALID_ARGUMENT
    # Still serving, on the same channel.
    (r,) = reflect(ch, [req(list_services="")])
    assert "vm_tools.Maitred" in [s.name for s in r.list_services_response.service]
    assert m.stop() == 0
    m.check_clean()


def test_reflection_many_requests_on_one_stream():
    """3000 requests on one stream, a whole file each: every one answered,
    in order (the send queue's back-pressure pauses the requests)."""
    from google.protobuf import descriptor_pb2
    m = maitred()
    ch = _channel(m)
    files = ["guest.proto", "valet/v1/files.proto", "grpc/health/v1/health.proto"]
    rs = reflect(ch, [req(file_by_filename=files[i % 3]) for i in range(3000)], timeout=120)
    assert len(rs) == 3000
    for i, r in enumerate(rs):
        fd = descriptor_pb2.FileDescriptorProto.FromString(r.file_descriptor_response.file_descriptor_proto[0])
        assert fd.name == files[i % 3]
    assert m.stop() == 0
    m.check_clean()


def test_disabled_services_are_not_listed_nor_serving():
    import grpc
    m = maitred("--disable", "grpc.reflection.v1.ServerReflection",
                "--disable", "vm_tools.Maitred/GetKernelVersion")
    ch = _channel(m)
    try:
        reflect(ch, [req(list_services="")], "v1")
        raise AssertionError("a disabled service answered")
    except grpc.RpcError as e:
        assert (e.code(), e.details()) == (grpc.StatusCode.PERMISSION_DENIED,
                                           "grpc.reflection.v1.ServerReflection is disabled on this guest "
                                           "(grpc.reflection.v1.ServerReflection/ServerReflectionInfo called)")
    (r,) = reflect(ch, [req("v1alpha", list_services="")], "v1alpha")
    names = [s.name for s in r.list_services_response.service]
    assert "grpc.reflection.v1.ServerReflection" not in names
    assert "vm_tools.Maitred" in names  # one method off, the service still served
    h = health_stubs(ch)
    pb = _pb("health")
    code, details = grpc_error(h.Check, pb.HealthCheckRequest(service="grpc.reflection.v1.ServerReflection"),
                               timeout=10)
    assert (code, details) == ("NOT_FOUND", "no service named 'grpc.reflection.v1.ServerReflection' is served here")
    assert h.Check(pb.HealthCheckRequest(service="vm_tools.Maitred"), timeout=10).status == 1
    listed = h.List(pb.HealthListRequest(), timeout=10).statuses
    assert "grpc.reflection.v1.ServerReflection" not in listed and "vm_tools.Maitred" in listed
    # Health switched off as a whole.
    m2 = maitred("--disable", "grpc.health.v1.Health")
    code, details = grpc_error(health_stubs(_channel(m2)).Check, pb.HealthCheckRequest(), timeout=10)
    assert code == "PERMISSION_DENIED", details
    (r,) = reflect(_channel(m2), [req(list_services="")])
    assert "grpc.health.v1.Health" not in [s.name for s in r.list_services_response.service]
    for x in (m, m2):
        assert x.stop() == 0
        x.check_clean()


def test_health_check_and_list():
    m = maitred()
    ch = _channel(m)
    h = health_stubs(ch)
    pb = _pb("health")
    for name in [""] + expected_services(ch):
        assert status_name(h.Check(pb.HealthCheckRequest(service=name), timeout=10).status) == "SERVING", name
    for name in ("nope", "vm_tools", "vm_tools.Maitred/GetKernelVersion", "x" * 100000):
        code, details = grpc_error(h.Check, pb.HealthCheckRequest(service=name), timeout=10)
        assert code == "NOT_FOUND", (name[:20], code)
        assert details.startswith("no service named '" + name[:200]), details[:300]
    statuses = h.List(pb.HealthListRequest(), timeout=10).statuses
    assert sorted(statuses) == sorted([""] + expected_services(ch))
    assert {status_name(v.status) for v in statuses.values()} == {"SERVING"}
    assert m.stop() == 0
    m.check_clean()


def test_health_watch_sends_at_once_and_ends_on_cancel():
    import grpc
    m = maitred()
    ch = _channel(m)
    h = health_stubs(ch)
    pb = _pb("health")
    baseline = m.fd_count()
    for name, want in (("", "SERVING"), ("vm_tools.Maitred", "SERVING"), ("nope", "SERVICE_UNKNOWN")):
        call = h.Watch(pb.HealthCheckRequest(service=name), timeout=60)
        assert status_name(next(call).status) == want, name
        # It stays open: nothing more comes while maitred serves.
        got = []
        t = threading.Thread(target=lambda: got.extend(call), daemon=True)
        t.start()
        t.join(0.3)
        assert t.is_alive() and not got
        call.cancel()
        t.join(10)
        assert not t.is_alive() and call.code() == grpc.StatusCode.CANCELLED
    # 50 watches at once on one connection, cancelled: maitred serves on.
    calls = [h.Watch(pb.HealthCheckRequest(), timeout=60) for _ in range(50)]
    assert all(status_name(next(c).status) == "SERVING" for c in calls)
    for c in calls:
        c.cancel()
    assert status_name(h.Check(pb.HealthCheckRequest(), timeout=10).status) == "SERVING"
    ch.close()
    wait_until(lambda: m.fd_count() <= baseline, 10, what="the connection closed")
    assert m.stop() == 0
    m.check_clean()


def test_health_watch_gets_not_serving_when_maitred_stops():
    """SIGTERM: an open Watch gets NOT_SERVING and ends (UNAVAILABLE), so
    that the orderly stop does not wait for the watcher."""
    import grpc
    m = maitred()
    ch = _channel(m)
    pb = _pb("health")
    call = health_stubs(ch).Watch(pb.HealthCheckRequest(service="vm_tools.Maitred"), timeout=60)
    assert status_name(next(call).status) == "SERVING"
    m.proc.send_signal(signal.SIGTERM)
    rest = []
    try:
        for r in call:  # ends by itself
            rest.append(status_name(r.status))
    except grpc.RpcError:
        pass
    assert rest == ["NOT_SERVING"], rest
    assert (call.code(), call.details()) == (grpc.StatusCode.UNAVAILABLE, "maitred is stopping")
    assert m.proc.wait(15) == 0
    m.check_clean()


def test_node_clients_reflect_and_call():
    """grpc-reflection-js (v1alpha) lists the services and fetches each
    one's descriptors, from which the script builds GetKernelVersion and
    Health.Check and calls them; grpc-js with gRPC's v1 reflection .proto
    (from @grpc/reflection) and gRPC's grpc-health-check client too."""
    assert os.path.isdir(os.path.join(MODS, "grpc-reflection-js")), \
        f"grpc-reflection-js is not installed in {NPM_CACHE}: run scripts/install-deps.sh check"
    m = maitred()
    want = expected_services(_channel(m))
    env = dict(os.environ, NODE_PATH=MODS)
    res = subprocess.run([NODE, os.path.join(INTEROP, "grpc-std-client.js"), m.addr], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["v1alpha_services"] == want
    assert out["v1_services"] == want
    # Every listed service resolved to its methods through the descriptors.
    assert sorted(out["methods"]) == sorted(want)
    assert "GetKernelVersion" in out["methods"]["vm_tools.Maitred"]
    assert out["methods"]["grpc.reflection.v1.ServerReflection"] == ["ServerReflectionInfo"]
    assert out["kernel_release"] == os.uname().release
    assert out["health_via_reflection"] == "SERVING"
    assert out["health_check"] == {"": "SERVING", "vm_tools.Maitred": "SERVING"}
    assert out["health_unknown"] == 5  # NOT_FOUND
    assert out["watch_first"] == "SERVING"
    assert out["v1_unknown_symbol"] == {"error_code": 5, "error_message": "no symbol named 'vm_tools.Nope'"}
    assert out["v1_guest_file"] == "guest.proto"
    assert m.stop() == 0
    m.check_clean()


def test_grpc_std_protos_match_grpc():
    """proto/grpc/*.proto, from which maitred's C and its reflection data
    are built, define what gRPC's own files define: the same messages,
    fields (names, numbers, types, labels, oneofs), enums and services."""
    from google.protobuf import descriptor_pb2
    refl, health = _grpc_proto_roots()
    ours = os.path.join(valet.ROOT, "proto")

    def load(root, path):
        out = os.path.join(tmpdir(), "set.pb")
        subprocess.run(["protoc", "-I" + root, "-o" + out, path], check=True)
        with open(out, "rb") as f:
            fd = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file[0]
        # Language options (java_package, ...) and the path are no part of
        # the wire.
        fd.ClearField("options")
        fd.ClearField("name")
        return fd

    pairs = [((refl, "grpc/reflection/v1/reflection.proto"), (ours, "grpc/reflection/v1/reflection.proto")),
             ((refl, "grpc/reflection/v1alpha/reflection.proto"), (ours, "grpc/reflection/v1alpha/reflection.proto")),
             ((health, "health/v1/health.proto"), (ours, "grpc/health/v1/health.proto"))]
    for theirs, mine in pairs:
        a, b = load(*theirs), load(*mine)
        assert a == b, f"{mine[1]} differs from gRPC's:\n{a}\n---\n{b}"


def _section(path, name):
    """(address, size) of an ELF section, from readelf."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 5 and f[1] == name:
            return int(f[3], 16), int(f[5], 16)
    raise AssertionError(f"no section {name} in {path}")


def _pages_present(pid, start, end):
    """How many of the whole pages in [start, end) are mapped (pagemap)."""
    import struct
    first, last = (start + 4095) // 4096, end // 4096
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        n = 0
        for page in range(first, last):
            f.seek(page * 8)
            n += struct.unpack("Q", f.read(8))[0] >> 63
    return n, last - first


def test_reflection_data_not_mapped_while_idle():
    """The descriptors built into maitred cost no memory until a
    reflection request reads them: none of their pages is mapped in an
    idle maitred (not even by the kernel's fault-around of neighbouring
    hot data), some are once a file has been asked for."""
    m = maitred()
    exe = valet.binary("maitred")
    addr, size = _section(exe, ".gcc_except_table")
    base = 0
    if subprocess.run(["readelf", "-hW", exe], capture_output=True, text=True).stdout.find("DYN (") >= 0:
        with open(f"/proc/{m.pid}/maps") as f:
            base = min(int(line.split("-")[0], 16) for line in f if line.rstrip().endswith(os.path.realpath(exe)))
    present, pages = _pages_present(m.pid, base + addr, base + addr + size)
    assert pages >= 5, (addr, size)  # about 32 KiB of descriptors and index
    assert present == 0, f"{present} of {pages} pages of the reflection data mapped in an idle maitred"
    (r,) = reflect(_channel(m), [req(file_by_filename="valet/v1/files.proto")])
    assert r.WhichOneof("message_response") == "file_descriptor_response"
    present, _ = _pages_present(m.pid, base + addr, base + addr + size)
    assert present > 0
    assert m.stop() == 0
    m.check_clean()
