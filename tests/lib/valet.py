"""Helpers for the integration tests: start the real binaries of one build,
talk to them with maitctl and with the official gRPC library, clean up
everything a test started (only by the PIDs and names it created)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = None
_procs = []
_netns = []
_tmpdirs = []


def configure(build):
    """Points the helpers at a build directory and makes its protos importable."""
    global BUILD
    BUILD = build
    py = os.path.join(build, "py")
    pdir = os.path.join(ROOT, "proto")
    protos = [os.path.join(pdir, p) for p in sorted(os.listdir(pdir)) if p.endswith(".proto")]
    done = os.path.join(py, "guest_pb2.py")
    # Regenerated when a .proto is newer; google/protobuf/timestamp.proto is
    # found by protoc itself (and timestamp_pb2 ships with python3-protobuf).
    if not os.path.exists(done) or max(os.path.getmtime(p) for p in protos) > os.path.getmtime(done):
        os.makedirs(py, exist_ok=True)
        subprocess.run(["protoc", "-I" + pdir, "--python_out=" + py] + protos, check=True)
    # The generated modules are the same for every build: import them once.
    if py not in sys.path:
        sys.path.insert(0, py)


def binary(name):
    return os.path.join(BUILD, "src", name)


def sanitized():
    """True for the ASan+UBSan build, where RSS says nothing about leaks."""
    return "asan" in os.path.basename(BUILD or "")


def sanitizer_env(extra=None):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=86"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:exitcode=87"
    env["LSAN_OPTIONS"] = "exitcode=88"
    if extra:
        env.update(extra)
    return env


def tmpdir():
    d = tempfile.mkdtemp(prefix="valet-test-")
    _tmpdirs.append(d)
    return d


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Maitred:
    """maitred on a unix socket in a temporary directory."""
    program = "maitred"

    def __init__(self, args=(), wrap=(), env=None):
        self.dir = tmpdir()
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, self.program + ".sock")
        self.addr = "unix:" + self.sock
        self.log_path = os.path.join(self.dir, self.program + ".log")
        self.log_file = open(self.log_path, "w")
        cmd = list(wrap) + [binary(self.program), "--listen", self.addr] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=sanitizer_env(env), cwd=self.dir)
        _procs.append(self.proc)
        wait_until(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, 10,
                   what=self.program + " socket")
        # As for vshd below: the socket file appears at bind(), before
        # listen(); maitred logs "Server listening on" once it listens.
        wait_until(lambda: "listening on" in self.log() or self.proc.poll() is not None, 10,
                   what=self.program + " listening")
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.program} exited at start ({self.proc.returncode}): {self.log()}")

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, text, timeout=10):
        wait_until(lambda: text in self.log(), timeout, what=f"log line {text!r}")

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def socket_count(self):
        """Sockets maitred holds: its listener plus one per connection."""
        n = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                n += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
            except FileNotFoundError:
                pass
        return n

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def children(self):
        kids = []
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            with open(f"/proc/{self.pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
        return kids

    def zombies(self):
        z = []
        for pid in self.children():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        z.append(pid)
            except (FileNotFoundError, ProcessLookupError):
                pass
        return z

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops maitred; returns its exit status, failing on sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.check_clean()
        return rc

    def check_clean(self):
        log = self.log()
        for mark in SANITIZER_MARKS:
            if mark in log:
                raise AssertionError(f"sanitizer report in maitred's output:\n{log[-4000:]}")


class Vshd(Maitred):
    """vshd on a unix socket in a temporary directory."""
    program = "vshd"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        # The socket file appears at bind(), before listen(): a client
        # connecting in between is refused. vshd logs once it listens.
        self.wait_log("listening on")


def vsh(addr, *args, input=None, timeout=60, env=None, **kw):
    """Runs vsh in pipe mode; returns the CompletedProcess (bytes)."""
    cmd = [binary("vsh"), "--addr", addr] + list(args)
    res = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=sanitizer_env(env), **kw)
    for mark in SANITIZER_MARKS:
        if mark.encode() in res.stderr:
            raise AssertionError(f"sanitizer report in vsh:\n{res.stderr.decode(errors='replace')}")
    return res


def maitctl(addr, *args, timeout=30, json=False):
    cmd = [binary("maitctl"), "--addr", addr] + (["--json"] if json else []) + list(args)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=sanitizer_env())
    for mark in SANITIZER_MARKS:
        if mark in res.stderr:
            raise AssertionError(f"sanitizer report in maitctl:\n{res.stderr}")
    return res


def grpc_stubs(addr, options=()):
    """Callables for the RPCs through the official gRPC library."""
    import grpc
    import common_pb2
    import guest_pb2

    assert addr.startswith("unix:") or addr.startswith("tcp:")
    # grpc spells TCP targets HOST:PORT (the VM's forwarded port).
    ch = grpc.insecure_channel(addr[4:] if addr.startswith("tcp:") else addr, options=list(options))

    def m(name, req_cls, resp_cls):
        return ch.unary_unary(f"/vm_tools.Maitred/{name}", request_serializer=req_cls.SerializeToString,
                              response_deserializer=resp_cls.FromString)

    class Stubs:
        channel = ch
        ConfigureNetwork = m("ConfigureNetwork", guest_pb2.NetworkConfigRequest, common_pb2.EmptyMessage)
        Shutdown = m("Shutdown", common_pb2.EmptyMessage, common_pb2.EmptyMessage)
        LaunchProcess = m("LaunchProcess", guest_pb2.LaunchProcessRequest, guest_pb2.LaunchProcessResponse)
        Mount = m("Mount", guest_pb2.MountRequest, guest_pb2.MountResponse)
        # The methods added after 2017.
        E = common_pb2.EmptyMessage
        SetTime = m("SetTime", guest_pb2.SetTimeRequest, E)
        SetTimezone = m("SetTimezone", guest_pb2.SetTimezoneRequest, E)
        SetResolvConfig = m("SetResolvConfig", guest_pb2.SetResolvConfigRequest, E)
        GetKernelVersion = m("GetKernelVersion", E, guest_pb2.GetKernelVersionResponse)
        GetAvailableSpace = m("GetAvailableSpace", E, guest_pb2.GetAvailableSpaceResponse)
        ResizeFilesystem = m("ResizeFilesystem", guest_pb2.ResizeFilesystemRequest,
                             guest_pb2.ResizeFilesystemResponse)
        GetResizeStatus = m("GetResizeStatus", E, guest_pb2.GetResizeStatusResponse)
        GetResizeBounds = m("GetResizeBounds", E, guest_pb2.GetResizeBoundsResponse)
        PrepareToSuspend = m("PrepareToSuspend", E, E)
        OnHostNetworkChanged = m("OnHostNetworkChanged", E, E)
        ResetIPv6 = m("ResetIPv6", E, E)
        Mount9P = m("Mount9P", guest_pb2.Mount9PRequest, guest_pb2.MountResponse)

        @staticmethod
        def raw(path):
            return ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)

    return Stubs


class StartupListener:
    """The host's vm_tools.StartupListener, served by the official gRPC
    library on address ("127.0.0.1:0", "unix:PATH"); records VmReady calls
    as (monotonic time, peer)."""

    def __init__(self, address):
        import threading
        from concurrent import futures

        import grpc
        import common_pb2

        self.calls = []
        self.event = threading.Event()

        def vm_ready(request, context):
            self.calls.append((time.monotonic(), context.peer()))
            self.event.set()
            return common_pb2.EmptyMessage()

        handler = grpc.method_handlers_generic_handler("vm_tools.StartupListener", {
            "VmReady": grpc.unary_unary_rpc_method_handler(
                vm_ready, request_deserializer=common_pb2.EmptyMessage.FromString,
                response_serializer=common_pb2.EmptyMessage.SerializeToString)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port(address)
        self.server.start()

    def stop(self):
        self.server.stop(0)


def proto_module(rel):
    """The Python module of proto/REL (valet/v1/files.proto ->
    valet_v1_files_pb2), generated with protoc once per process and loaded
    by path under that name (`valet` is these helpers)."""
    import importlib.util
    name = rel.replace("/", "_").replace(".proto", "_pb2")
    if name in sys.modules:
        return sys.modules[name]
    out = tmpdir()
    pdir = os.path.join(ROOT, "proto")
    subprocess.run(["protoc", "-I" + pdir, "--python_out=" + out, os.path.join(pdir, rel)], check=True)
    spec = importlib.util.spec_from_file_location(name, os.path.join(out, rel.replace(".proto", "_pb2.py")))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def service_stubs(addr, service, methods, max_message=8 << 20):
    """grpcio's generic stubs of one service: methods maps a name to (kind,
    request class, response class), kind as grpcio's channel methods
    ("unary_stream", ...). Returns an object with the channel and a
    callable per method."""
    import grpc
    ch = grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", max_message),
                                              ("grpc.max_send_message_length", max_message)])
    stubs = type("Stubs", (), {})()
    stubs.channel = ch
    for name, (kind, req, resp) in methods.items():
        setattr(stubs, name, getattr(ch, kind)(f"/{service}/{name}", request_serializer=req.SerializeToString,
                                               response_deserializer=resp.FromString))
    return stubs


def grpc_error(fn, *args, **kw):
    """Calls fn and returns (code name, details) of the RpcError it must raise."""
    import grpc
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code().name, e.details()
    raise AssertionError("call succeeded, an error was expected")


def netns(name_hint):
    """Creates a network namespace owned by this test run."""
    name = f"valet-{name_hint}-{os.getpid()}-{len(_netns)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    _netns.append(name)
    return name


def track(proc):
    _procs.append(proc)
    return proc


def cleanup():
    while _procs:
        p = _procs.pop()
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    while _netns:
        subprocess.run(["ip", "netns", "del", _netns.pop()], stderr=subprocess.DEVNULL)
    while _tmpdirs:
        shutil.rmtree(_tmpdirs.pop(), ignore_errors=True)
