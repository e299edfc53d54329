"""wait_ready(): the host's end of VmReady (vm_tools.StartupListener)."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from concurrent import futures
from typing import Any, List, Optional, Union

import grpc

from ._methods import STARTUP_LISTENER_SERVICE
from ._proto import common_pb2
from ._relay import AcceptLoop, bridge
from .address import Address, STARTUP_LISTENER_PORT, parse_address
from .errors import DeadlineExceeded, InvalidArgument, Unavailable

__all__ = ["wait_ready", "ReadyListener"]

# After VmReady is answered: time for the answer to reach the guest.
_GRACE = 0.2


def wait_ready(address: Union[str, Address] = "vsock:-1:7777", timeout: Optional[float] = None) -> str:
    """Serves vm_tools.StartupListener on ``address`` until a guest's
    maitred calls VmReady; returns who called (grpcio's peer string).

    ``address`` is where the host listens: ``vsock:-1:7777`` (any CID, the
    default), ``unix:PATH``, ``tcp:HOST:PORT``, or ``hvsock:PATH:PORT``
    (a Firecracker / Cloud Hypervisor VM's guest-initiated connections to
    PORT arrive at the unix socket ``PATH_PORT``). Raises DeadlineExceeded
    when no guest called within ``timeout`` seconds. To listen before the
    VM starts (QEMU's guestfwd connects when QEMU starts), use
    ``ReadyListener``."""
    with ReadyListener(address) as listener:
        return listener.wait(timeout)


class ReadyListener:
    """vm_tools.StartupListener, listening from construction until
    ``close()`` (a context manager): start it, then the VM, then ``wait()``.
    ``port`` is the TCP port (useful with ``tcp:127.0.0.1:0``)."""

    def __init__(self, address: Union[str, Address] = "vsock:-1:7777") -> None:
        a = address if isinstance(address, Address) else parse_address(address, STARTUP_LISTENER_PORT)
        self._ready = threading.Event()
        self._peers: List[str] = []

        def vm_ready(request: Any, context: Any) -> common_pb2.EmptyMessage:
            self._peers.append(context.peer())
            self._ready.set()
            return common_pb2.EmptyMessage()

        handler = grpc.method_handlers_generic_handler(STARTUP_LISTENER_SERVICE, {
            "VmReady": grpc.unary_unary_rpc_method_handler(
                vm_ready, request_deserializer=common_pb2.EmptyMessage.FromString,
                response_serializer=common_pb2.EmptyMessage.SerializeToString)})
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((handler,))
        self._front: Optional[_Front] = None
        self._unlink = ""
        self.port = 0
        try:
            target = a.grpc_target()
            if target is None:
                self._front = _Front(a)
                target = self._front.target
            elif a.kind == "unix":
                if os.path.exists(a.path):
                    raise InvalidArgument(f"cannot listen on {a}: {a.path} exists")
                self._unlink = a.path
            try:
                port = self._server.add_insecure_port(target)
            except RuntimeError as e:
                raise Unavailable(f"cannot listen on {a}: {e}") from None
            if a.kind == "tcp":
                if port == 0:
                    raise Unavailable(f"cannot listen on {a}")
                self.port = port
                a = Address("tcp", host=a.host, port=port)
            self._server.start()
        except BaseException:
            self.close()
            raise
        self.address = a

    def wait(self, timeout: Optional[float] = None) -> str:
        """Waits for VmReady; returns the caller's peer string. Raises
        DeadlineExceeded after ``timeout`` seconds."""
        if not self._ready.wait(timeout):
            raise DeadlineExceeded(f"no VmReady on {self.address} within {timeout} s")
        # The answer's time to reach the guest before the server stops.
        time.sleep(_GRACE)
        return self._peers[0]

    def close(self) -> None:
        self._server.stop(0)
        if self._front is not None:
            self._front.close()
            self._front = None
        if self._unlink:
            try:
                os.unlink(self._unlink)
            except OSError:
                pass
            self._unlink = ""

    def __enter__(self) -> "ReadyListener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Front:
    """A vsock or hybrid vsock listener in front of the grpcio server's
    private unix socket (grpcio listens on neither)."""

    def __init__(self, a: Address) -> None:
        self._dir = tempfile.mkdtemp(prefix="valet-ready-")
        self.path = os.path.join(self._dir, "s")
        self.target = "unix:" + self.path
        try:
            if a.kind == "vsock":
                self._sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                self._sock.bind((a.cid, a.port))
                self._unlink = ""
            else:
                self._unlink = f"{a.path}_{a.port}"
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                self._sock.bind(self._unlink)
            self._sock.listen(16)
        except OSError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise Unavailable(f"cannot listen on {a}: {e.strerror or e}") from None
        self._loop = AcceptLoop(self._sock, self._serve, f"valet ready {a}")

    def _serve(self, conn: socket.socket) -> None:
        try:
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            up.connect(self.path)
        except OSError:
            conn.close()
            return
        bridge(conn, up)

    def close(self) -> None:
        self._loop.stop(unlink=self._unlink)
        shutil.rmtree(self._dir, ignore_errors=True)
