"""Port forwarding into the guest (valet.v1.Tunnel) for Guest: a local
listener whose every connection is one Tunnel.Connect call."""
from __future__ import annotations

import socket
import struct
import threading
from typing import TYPE_CHECKING, Any, Iterator, List

import grpc

from ._methods import TUNNEL
from ._proto import tunnel_pb2
from ._relay import AcceptLoop
from .address import parse_address
from .errors import Error, InvalidArgument

if TYPE_CHECKING:
    from .guest import Guest

__all__ = ["Forward"]

_CHUNK = 64 * 1024


def _abort(conn: socket.socket) -> None:
    """Closes with a reset, so that the local client sees the failure."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes the request thread's recv() without sending a FIN.
        conn.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    conn.close()


def _finish(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


class Forward:
    """A local address forwarded to a port in the guest; a context manager.
    ``address`` is the local address (``tcp:127.0.0.1:PORT`` or
    ``unix:PATH``), ``host``/``port`` its parts for TCP; ``errors`` lists
    why connections failed (a refused guest port is ``Unavailable``)."""

    def __init__(self, guest: "Guest", guest_port: int, *, host: str = "127.0.0.1", unix_path: str = "",
                 local: str = "tcp:127.0.0.1:0") -> None:
        if not unix_path and not 0 < guest_port < 65536:
            raise InvalidArgument(f"guest port {guest_port} is not within 1..65535")
        self._guest = guest
        self._target = tunnel_pb2.TunnelTarget(host=host if not unix_path else "", port=guest_port,
                                               unix_path=unix_path)
        a = parse_address(local, 0)
        if a.kind == "tcp":
            family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((a.host, a.port))
            self.host, self.port = self._sock.getsockname()[:2]
            self.address = f"tcp:{a.host if ':' not in a.host else '[' + a.host + ']'}:{self.port}"
            self._path = ""
        elif a.kind == "unix":
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self._sock.bind(a.path)
            self.host, self.port, self._path = "", 0, a.path
            self.address = f"unix:{a.path}"
        else:
            raise InvalidArgument(f"cannot listen on {local}: a local address is tcp:HOST:PORT or unix:PATH")
        self._sock.listen(64)
        self.errors: List[Error] = []
        self._calls: List[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self._loop = AcceptLoop(self._sock, self._serve, f"valet forward {self.address}")

    def __enter__(self) -> "Forward":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<valet.Forward {self.address} -> guest {self._target.unix_path or self._target.port}>"

    def _serve(self, conn: socket.socket) -> None:
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The request stream: the target, then what the client sends, then
        # the half-close. grpcio pulls it in a thread of its own.
        stop = threading.Event()

        def requests() -> Iterator[tunnel_pb2.TunnelRequest]:
            yield tunnel_pb2.TunnelRequest(target=self._target)
            while not stop.is_set():
                try:
                    b = conn.recv(_CHUNK)
                except OSError:
                    return
                if not b:
                    yield tunnel_pb2.TunnelRequest(eof=True)
                    return
                yield tunnel_pb2.TunnelRequest(data=b)

        call = self._guest._call(TUNNEL["Connect"])(requests())
        with self._lock:
            self._calls.append(call)
        failed = False
        try:
            for r in call:
                kind = r.WhichOneof("part")
                if kind == "data":
                    conn.sendall(r.data)
                elif kind == "eof":
                    conn.shutdown(socket.SHUT_WR)
        except grpc.RpcError as e:
            if not self._closed:
                self.errors.append(self._guest._error(e))
            failed = True
        except OSError:
            # The local client went away: the guest side ends with the call.
            call.cancel()
            failed = True
        finally:
            stop.set()
            with self._lock:
                if call in self._calls:
                    self._calls.remove(call)
        if failed:
            _abort(conn)
        else:
            _finish(conn)

    def close(self) -> None:
        """Stops listening and ends every forwarded connection."""
        if self._closed:
            return
        self._closed = True
        self._loop.stop(unlink=self._path)
        with self._lock:
            calls = list(self._calls)
        for c in calls:
            c.cancel()
