"""AsyncGuest: the same methods as Guest, for asyncio (grpc.aio)."""
from __future__ import annotations

import asyncio
import os
import signal as _signal
from typing import Any, AsyncIterator, Callable, Iterable, List, Mapping, Optional, Sequence, Union

import grpc
import grpc.aio

from . import _convert as cv
from . import _ops as ops
from ._channel import DEFAULT, DEFAULT_TIMEOUT, GuestCore
from ._methods import CHANNEL_OPTIONS, FILES, PROCESS, TUNNEL, Stubs
from ._ops import Network
from ._proto import files_pb2, process_pb2, tunnel_pb2
from .address import Address, parse_address
from .errors import DeadlineExceeded, Error, InvalidArgument, ProtocolError
from .files import AtomicFile, Dest, Guarded, Progress, ReadSink, Source, TreeWriter, tree_requests, write_requests
from .process import Collector, InputSource, check_result, deadline_error, input_chunks, seen
from .types import (Exited, FileInfo, KernelVersion, LaunchResult, Output, ProcessInfo, ResizeProgress, ResizeStatus,
                    Restored, Result, Started, TreeSummary)

__all__ = ["AsyncGuest", "AsyncFiles", "AsyncProcess", "AsyncForward", "AsyncFrozen", "wait_ready"]

Timeout = Optional[float]


class AsyncFrozen:
    """``await guest.freeze()``, also ``async with guest.freeze():`` (thaws at the end)."""

    def __init__(self, guest: "AsyncGuest", timeout_seconds: int, timeout: Any) -> None:
        self._guest, self._args = guest, (timeout_seconds, timeout)
        self.filesystems: List[str] = []
        self.thawed: Optional[List[str]] = None

    async def _freeze(self) -> "AsyncFrozen":
        self.filesystems = await self._guest._op(ops.freeze(self._args[0]), self._args[1])
        return self

    def __await__(self) -> Any:
        return self._freeze().__await__()

    async def thaw(self) -> List[str]:
        if self.thawed is None:
            self.thawed = await self._guest.thaw()
        return self.thawed

    async def __aenter__(self) -> "AsyncFrozen":
        return await self._freeze()

    async def __aexit__(self, *exc: Any) -> None:
        await self.thaw()


class AsyncGuest(GuestCore):
    """Guest for asyncio: the same constructor and methods, as coroutines
    (``await guest.kernel_version()``); ``events()`` and ``list()`` results
    are awaited or iterated with ``async for`` where Guest's are iterated.
    Create it inside the running event loop."""

    def __init__(self, address: Union[str, Address] = "vsock:3", *, timeout: Timeout = DEFAULT_TIMEOUT,
                 vsh_address: Union[str, Address, None] = None) -> None:
        super().__init__(address, timeout, vsh_address)
        self.channel = grpc.aio.insecure_channel(self._endpoint.target, options=CHANNEL_OPTIONS)
        self._stubs = Stubs(self.channel)
        self.files = AsyncFiles(self)

    async def __aenter__(self) -> "AsyncGuest":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()
        self._endpoint.close()

    def _call(self, method: Any) -> Any:
        return self._stubs(method)

    async def _op(self, op: ops.Op, timeout: Any = DEFAULT) -> Any:
        try:
            r = await self._stubs(op.method)(op.request, timeout=self._deadline(timeout))
        except grpc.RpcError as e:
            raise self._error(e) from None
        return op.convert(r)

    # -- vm_tools.Maitred: see Guest for what each does ----------------------

    async def configure_network(self, address: str, gateway: str, nameservers: Iterable[str] = (),
                                search_domains: Iterable[str] = (), *, timeout: Timeout = DEFAULT) -> None:
        """Guest.configure_network."""
        await self._op(ops.configure_network(address, gateway, nameservers, search_domains), timeout)

    async def shutdown(self, *, timeout: Timeout = DEFAULT) -> None:
        """Guest.shutdown."""
        await self._op(ops.empty("Shutdown"), timeout)

    async def launch_process(self, argv: Union[str, Sequence[str]], env: Optional[Mapping[str, str]] = None, *,
                             respawn: bool = False, use_console: bool = False, wait_for_exit: bool = False,
                             timeout: Timeout = DEFAULT) -> LaunchResult:
        """Guest.launch_process."""
        return await self._op(ops.launch_process(argv, env, respawn, use_console, wait_for_exit), timeout)

    async def mount(self, source: str, target: str, fstype: str, flags: int = 0, options: str = "", *,
                    create_target: bool = False, permissions: int = 0, mkfs_if_needed: bool = False,
                    timeout: Timeout = DEFAULT) -> None:
        """Guest.mount."""
        await self._op(ops.mount(source, target, fstype, flags, options, create_target, permissions,
                                 mkfs_if_needed), timeout)

    async def mount_9p(self, port: int, target: str, *, timeout: Timeout = DEFAULT) -> None:
        """Guest.mount_9p."""
        await self._op(ops.mount_9p(port, target), timeout)

    async def set_resolv_config(self, nameservers: Iterable[str], search_domains: Iterable[str] = (), *,
                                timeout: Timeout = DEFAULT) -> None:
        """Guest.set_resolv_config."""
        await self._op(ops.set_resolv_config(nameservers, search_domains), timeout)

    async def set_time(self, when: Optional[cv.TimeLike] = None, *, timeout: Timeout = DEFAULT) -> None:
        """Guest.set_time."""
        await self._op(ops.set_time(when), timeout)

    async def set_timezone(self, name: str, *, bind_mount: bool = False, timeout: Timeout = DEFAULT) -> None:
        """Guest.set_timezone."""
        await self._op(ops.set_timezone(name, bind_mount), timeout)

    async def kernel_version(self, *, timeout: Timeout = DEFAULT) -> KernelVersion:
        """Guest.kernel_version."""
        return await self._op(ops.kernel_version(), timeout)

    async def available_space(self, *, timeout: Timeout = DEFAULT) -> int:
        """Guest.available_space."""
        return await self._op(ops.available_space(), timeout)

    async def resize_filesystem(self, size: int, *, timeout: Timeout = DEFAULT) -> ResizeStatus:
        """Guest.resize_filesystem."""
        return await self._op(ops.resize_filesystem(size), timeout)

    async def resize_status(self, *, timeout: Timeout = DEFAULT) -> ResizeProgress:
        """Guest.resize_status."""
        return await self._op(ops.resize_status(), timeout)

    async def resize_bounds(self, *, timeout: Timeout = DEFAULT) -> int:
        """Guest.resize_bounds."""
        return await self._op(ops.resize_bounds(), timeout)

    async def prepare_to_suspend(self, *, timeout: Timeout = DEFAULT) -> None:
        """Guest.prepare_to_suspend."""
        await self._op(ops.empty("PrepareToSuspend"), timeout)

    async def host_network_changed(self, *, timeout: Timeout = DEFAULT) -> None:
        """Guest.host_network_changed."""
        await self._op(ops.empty("OnHostNetworkChanged"), timeout)

    async def reset_ipv6(self, *, timeout: Timeout = DEFAULT) -> None:
        """Guest.reset_ipv6."""
        await self._op(ops.empty("ResetIPv6"), timeout)

    # -- valet.v1.Process --------------------------------------------------

    async def run(self, argv: Union[str, Sequence[str]], *, input: InputSource = None,
                  env: Optional[Mapping[str, str]] = None, cwd: str = "", user: str = "", timeout: Timeout = None,
                  pty: bool = False, rows: int = 24, cols: int = 80, clear_env: bool = False, check: bool = False,
                  on_stdout: Optional[Callable[[bytes], None]] = None,
                  on_stderr: Optional[Callable[[bytes], None]] = None) -> Result:
        """Guest.run."""
        req = cv.run_request(argv, input is not None, env=env, cwd=cwd, user=user, pty=pty, rows=rows, cols=cols,
                             clear_env=clear_env)
        call = self._call(PROCESS["Start"])(req, timeout=timeout)
        collector = Collector(Result(argv=list(req.argv)), on_stdout, on_stderr)
        result = collector.result
        feeder: Optional[asyncio.Task] = None

        async def feed(pid: int) -> None:
            for chunk in input_chunks(input):
                await self._op(ops.send_input(pid, chunk), None)
            await self._op(ops.send_input(pid, eof=True), None)

        try:
            async for m in call:
                ev = cv.event(m)
                if collector.take(ev):
                    break
                if isinstance(ev, Started) and input is not None:
                    feeder = asyncio.ensure_future(feed(ev.id))
        except grpc.RpcError as e:
            collector.finish()
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and result.id:
                # kill_on_disconnect ends it too: this is the belt to those braces.
                try:
                    await self._op(ops.send_signal(result.id, 9, True), 5)
                except Error:
                    pass
                raise deadline_error(result, timeout) from None
            raise self._error(e) from None
        finally:
            call.cancel()
        if feeder is not None:
            try:
                await asyncio.wait_for(feeder, 5)
            except Error:
                # A process that exits without reading all its input is no error.
                pass
        collector.finish()
        if not collector.ended:
            raise Error(f"the guest ended the call of {result.argv[0]} before the process ended")
        return check_result(result, check)

    async def start(self, argv: Union[str, Sequence[str]], *, env: Optional[Mapping[str, str]] = None,
                    cwd: str = "", user: str = "", tag: str = "", stdin: bool = False, pty: bool = False,
                    rows: int = 24, cols: int = 80, buffer_bytes: int = 0, kill_on_disconnect: bool = False,
                    clear_env: bool = False) -> "AsyncProcess":
        """Guest.start."""
        req = cv.start_request(argv, env=env, cwd=cwd, user=user, pty=pty, rows=rows if pty else 0,
                               cols=cols if pty else 0, tag=tag, stdin=stdin, buffer_bytes=buffer_bytes,
                               kill_on_disconnect=kill_on_disconnect, clear_env=clear_env)
        return await AsyncProcess.open(self, PROCESS["Start"], req, list(req.argv))

    async def attach(self, target: Union[int, str], *, stdout_offset: int = 0,
                     stderr_offset: int = 0) -> "AsyncProcess":
        """Guest.attach."""
        return await AsyncProcess.open(self, PROCESS["Connect"], cv.connect_request(target, stdout_offset,
                                                                                    stderr_offset), [])

    async def processes(self, *, include_exited: bool = False, timeout: Timeout = DEFAULT) -> List[ProcessInfo]:
        """Guest.processes."""
        return await self._op(ops.processes(include_exited), timeout)

    # -- valet.v1.Tunnel ---------------------------------------------------

    async def forward(self, guest_port: int = 0, *, host: str = "127.0.0.1", unix_path: str = "",
                      local: str = "tcp:127.0.0.1:0") -> "AsyncForward":
        """Guest.forward: ``async with await guest.forward(8080) as fwd:``."""
        f = AsyncForward(self, guest_port, host=host, unix_path=unix_path)
        await f._listen(local)
        return f

    # -- valet.v1.Snapshot -------------------------------------------------

    def freeze(self, timeout_seconds: int = 60, *, timeout: Timeout = DEFAULT) -> AsyncFrozen:
        """Guest.freeze: ``async with guest.freeze():`` or ``frozen = await guest.freeze()``."""
        return AsyncFrozen(self, timeout_seconds, timeout)

    async def thaw(self, *, timeout: Timeout = DEFAULT) -> List[str]:
        """Guest.thaw."""
        return await self._op(ops.thaw(), timeout)

    async def restored(self, *, time: Optional[cv.TimeLike] = None, entropy: Optional[bytes] = None,
                       network: Optional[Network] = None, generation: str = "",
                       timeout: Timeout = DEFAULT) -> Restored:
        """Guest.restored."""
        return await self._op(ops.restored(time, entropy, network, generation), timeout)

    # -- vsh ---------------------------------------------------------------

    async def shell(self, argv: Optional[Sequence[str]] = None, *, user: str = "",
                    env: Optional[Mapping[str, str]] = None, cwd: str = "", pty: Optional[bool] = None,
                    stdin: Any = None, stdout: Any = None, stderr: Any = None) -> int:
        """Guest.shell, in a worker thread (signals of the terminal are not
        forwarded from there: window size changes and ^C in raw mode are)."""
        from .shell import run_shell
        if self._vsh is None:
            raise Error(f"no vsh address for {self.address}: pass vsh_address= to AsyncGuest")
        vsh = self._vsh
        return await asyncio.get_running_loop().run_in_executor(None, lambda: run_shell(
            vsh, argv, user=user, env=env, cwd=cwd, pty=pty, stdin=stdin, stdout=stdout, stderr=stderr))


class AsyncProcess:
    """Process for asyncio: ``async for ev in p.events()``, ``await p.wait()``..."""

    def __init__(self, guest: AsyncGuest, call: Any, started: Started, argv: List[str]) -> None:
        self._guest = guest
        self._call = call
        self.id, self.pid, self.tag = started.id, started.pid, started.tag
        self.argv = argv
        self.stdout_offset = 0
        self.stderr_offset = 0
        self.exited: Optional[Exited] = None
        self._detached = False

    @classmethod
    async def open(cls, guest: AsyncGuest, method: Any, request: Any, argv: List[str]) -> "AsyncProcess":
        call = guest._call(method)(request)
        try:
            m = await call.read()
        except grpc.RpcError as e:
            raise guest._error(e) from None
        if m is grpc.aio.EOF:
            try:
                await call
            except grpc.RpcError as e:
                raise guest._error(e) from None
            raise ProtocolError("the guest ended the process call before it started")
        ev = cv.event(m)
        if not isinstance(ev, Started):
            raise ProtocolError(f"the guest's first process event was not 'started' but {ev!r}")
        return cls(guest, call, ev, argv)

    def __repr__(self) -> str:
        return f"<valet.AsyncProcess id={self.id} pid={self.pid} tag={self.tag!r} exited={self.exited}>"

    async def __aenter__(self) -> "AsyncProcess":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.detach()

    async def events(self) -> AsyncIterator[Union[Output, Exited]]:
        """Process.events."""
        if self._detached:
            self._call, self._detached = self._guest._call(PROCESS["Connect"])(process_pb2.ConnectRequest(
                id=self.id, stdout_offset=self.stdout_offset, stderr_offset=self.stderr_offset)), False
        try:
            while True:
                m = await self._call.read()
                if m is grpc.aio.EOF:
                    return
                ev = seen(self, cv.event(m))
                if isinstance(ev, (Output, Exited)):
                    yield ev
                if isinstance(ev, Exited):
                    return
        except asyncio.CancelledError:
            raise
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and self._detached:
                return
            raise self._guest._error(e) from None

    async def wait(self, timeout: Optional[float] = None, *, on_stdout: Optional[Callable[[bytes], None]] = None,
                   on_stderr: Optional[Callable[[bytes], None]] = None) -> Result:
        """Process.wait."""
        collector = Collector(Result(argv=self.argv, id=self.id, pid=self.pid, tag=self.tag), on_stdout, on_stderr)

        async def drain() -> None:
            async for ev in self.events():
                collector.take(ev)
        try:
            await asyncio.wait_for(drain(), timeout)
        except asyncio.TimeoutError:
            self.detach()
            raise DeadlineExceeded(f"process {self.id} still runs after {timeout} s") from None
        if self.exited is None:
            raise Error(f"the process call of {self.id} ended before the process did")
        return collector.finish()

    async def send_input(self, data: Union[bytes, str]) -> None:
        """Process.send_input."""
        for chunk in input_chunks(data.encode() if isinstance(data, str) else data):
            await self._guest._op(ops.send_input(self.id, chunk))

    async def close_stdin(self) -> None:
        """Process.close_stdin."""
        await self._guest._op(ops.send_input(self.id, eof=True))

    async def signal(self, sig: int = _signal.SIGTERM, *, group: bool = False) -> None:
        """Process.signal."""
        await self._guest._op(ops.send_signal(self.id, sig, group))

    async def kill(self) -> None:
        """Process.kill."""
        await self.signal(_signal.SIGKILL, group=True)

    async def resize(self, rows: int, cols: int) -> None:
        """Process.resize."""
        await self._guest._op(ops.resize(self.id, rows, cols))

    async def attach(self, from_offset: int = 0, *, stderr_offset: Optional[int] = None) -> "AsyncProcess":
        """Process.attach."""
        return await self._guest.attach(self.id, stdout_offset=from_offset,
                                        stderr_offset=from_offset if stderr_offset is None else stderr_offset)

    def detach(self) -> None:
        """Process.detach."""
        self._detached = True
        self._call.cancel()


class AsyncFiles:
    """Files for asyncio: the same methods as coroutines."""

    def __init__(self, guest: AsyncGuest) -> None:
        self._g = guest

    async def write(self, path: str, source: Source, *, mode: Optional[int] = None, user: str = "",
                    make_parents: bool = False, no_replace: bool = False, mtime: Optional[cv.TimeLike] = None,
                    sha256: Optional[bytes] = None, progress: Optional[Progress] = None,
                    timeout: Optional[float] = None) -> FileInfo:
        """Files.write."""
        requests, opened = write_requests(path, source, mode=mode, user=user, make_parents=make_parents,
                                          no_replace=no_replace, mtime=mtime, sha256=sha256, progress=progress)
        guarded = Guarded(requests)
        try:
            r = await self._g._call(FILES["Write"])(guarded, timeout=timeout)
        except grpc.RpcError as e:
            guarded.check()
            raise self._g._error(e) from None
        finally:
            if opened is not None:
                opened.close()
        return cv.file_info(r.info)

    async def read(self, path: str, into: Optional[Dest] = None, *, offset: int = 0, length: int = 0,
                   user: str = "", progress: Optional[Progress] = None,
                   timeout: Optional[float] = None) -> Union[bytes, FileInfo]:
        """Files.read."""
        req = files_pb2.ReadRequest(path=path, offset=offset, length=length, user=user)
        if into is None:
            parts: List[bytes] = []
            await self._read(req, parts.append, progress, timeout)
            return b"".join(parts)
        if isinstance(into, (str, os.PathLike)):
            with AtomicFile(into) as f:
                return f.commit(await self._read(req, f.write, progress, timeout))
        return await self._read(req, into.write, progress, timeout)

    async def _read(self, req: files_pb2.ReadRequest, sink: Callable[[bytes], Any], progress: Optional[Progress],
                    timeout: Optional[float]) -> FileInfo:
        reader = ReadSink(req, sink, progress)
        try:
            async for m in self._g._call(FILES["Read"])(req, timeout=timeout):
                reader.take(m)
        except grpc.RpcError as e:
            raise self._g._error(e) from None
        return reader.info()

    async def stat(self, path: str, *, follow_symlinks: bool = False, user: str = "",
                   timeout: Any = DEFAULT) -> FileInfo:
        """Files.stat."""
        return await self._g._op(ops.stat(path, follow_symlinks, user), timeout)

    async def exists(self, path: str, *, user: str = "") -> bool:
        """Files.exists."""
        from .errors import NotFound
        try:
            await self.stat(path, user=user)
            return True
        except NotFound:
            return False

    async def list(self, path: str, *, depth: int = 1, user: str = "", timeout: Any = DEFAULT) -> List[FileInfo]:
        """Files.list."""
        try:
            msgs = [m async for m in self._g._call(FILES["List"])(ops.list_request(path, depth, user),
                                                                   timeout=self._g._deadline(timeout))]
        except grpc.RpcError as e:
            raise self._g._error(e) from None
        return ops.file_infos(msgs)

    async def mkdir(self, path: str, *, mode: Optional[int] = None, parents: bool = False, user: str = "",
                    timeout: Any = DEFAULT) -> FileInfo:
        """Files.mkdir."""
        return await self._g._op(ops.mkdir(path, mode, parents, user), timeout)

    async def remove(self, path: str, *, recursive: bool = False, user: str = "", timeout: Any = DEFAULT) -> int:
        """Files.remove."""
        return await self._g._op(ops.remove(path, recursive, user), timeout)

    async def move(self, source: str, destination: str, *, no_replace: bool = False, user: str = "",
                   timeout: Any = DEFAULT) -> FileInfo:
        """Files.move."""
        return await self._g._op(ops.move(source, destination, no_replace, user), timeout)

    async def upload(self, local_dir: Union[str, "os.PathLike[str]"], guest_root: str, *, user: str = "",
                     make_parents: bool = False, keep_owners: bool = False, progress: Optional[Progress] = None,
                     timeout: Optional[float] = None) -> TreeSummary:
        """Files.upload."""
        guarded = Guarded(tree_requests(local_dir, guest_root, user=user, make_parents=make_parents,
                                        keep_owners=keep_owners, progress=progress))
        try:
            summary = await self._g._call(FILES["WriteTree"])(guarded, timeout=timeout)
        except grpc.RpcError as e:
            guarded.check()
            raise self._g._error(e) from None
        guarded.check()
        return cv.tree_summary(summary)

    async def download(self, guest_root: str, local_dir: Union[str, "os.PathLike[str]"], *, user: str = "",
                       progress: Optional[Progress] = None, timeout: Optional[float] = None) -> TreeSummary:
        """Files.download."""
        with TreeWriter(os.fspath(local_dir), progress) as writer:
            try:
                async for m in self._g._call(FILES["ReadTree"])(
                        files_pb2.ReadTreeRequest(root=guest_root, user=user), timeout=timeout):
                    writer.take(m)
            except grpc.RpcError as e:
                raise self._g._error(e) from None
            return writer.finish()


class AsyncForward:
    """Forward for asyncio: ``async with await guest.forward(8080) as fwd``."""

    def __init__(self, guest: AsyncGuest, guest_port: int, *, host: str, unix_path: str) -> None:
        if not unix_path and not 0 < guest_port < 65536:
            raise InvalidArgument(f"guest port {guest_port} is not within 1..65535")
        self._guest = guest
        self._target = tunnel_pb2.TunnelTarget(host=host if not unix_path else "", port=guest_port,
                                               unix_path=unix_path)
        self.errors: List[Error] = []
        self._tasks: dict = {}
        self.address, self.host, self.port = "", "", 0

    async def _listen(self, local: str) -> None:
        a = parse_address(local, 0)
        if a.kind == "tcp":
            self._server = await asyncio.start_server(self._serve, a.host, a.port)
            sockname = self._server.sockets[0].getsockname()
            self.host, self.port = sockname[0], sockname[1]
            self.address = f"tcp:{a.host if ':' not in a.host else '[' + a.host + ']'}:{self.port}"
            self._path = ""
        elif a.kind == "unix":
            self._server = await asyncio.start_unix_server(self._serve, a.path)
            self.address, self._path = f"unix:{a.path}", a.path
        else:
            raise InvalidArgument(f"cannot listen on {local}: a local address is tcp:HOST:PORT or unix:PATH")

    async def __aenter__(self) -> "AsyncForward":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()

        async def requests() -> AsyncIterator[tunnel_pb2.TunnelRequest]:
            yield tunnel_pb2.TunnelRequest(target=self._target)
            while True:
                b = await reader.read(64 * 1024)
                if not b:
                    yield tunnel_pb2.TunnelRequest(eof=True)
                    return
                yield tunnel_pb2.TunnelRequest(data=b)

        call = self._guest._call(TUNNEL["Connect"])(requests())
        self._tasks[task] = call
        try:
            async for r in call:
                kind = r.WhichOneof("part")
                if kind == "data":
                    writer.write(r.data)
                    await writer.drain()
                elif kind == "eof" and writer.can_write_eof():
                    writer.write_eof()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(self._guest._error(e))
            writer.transport.abort()
        except (OSError, asyncio.CancelledError):
            call.cancel()
            writer.transport.abort()
        finally:
            self._tasks.pop(task, None)
            writer.close()

    async def close(self) -> None:
        """Forward.close."""
        self._server.close()
        # The calls are cancelled, not their tasks: grpc.aio 1.51 fails on
        # a task cancelled inside a streaming read (UnboundLocalError).
        tasks = list(self._tasks.items())
        for _, call in tasks:
            call.cancel()
        await asyncio.gather(*(t for t, _ in tasks), return_exceptions=True)
        await self._server.wait_closed()
        if self._path:
            try:
                os.unlink(self._path)
            except OSError:
                pass


async def wait_ready(address: Union[str, Address] = "vsock:-1:7777", timeout: Optional[float] = None) -> str:
    """valet.wait_ready, without blocking the event loop."""
    from .ready import wait_ready as blocking
    return await asyncio.get_running_loop().run_in_executor(None, blocking, address, timeout)
