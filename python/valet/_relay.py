"""A local unix socket in front of an address grpcio cannot dial itself
(vsock, hybrid vsock): each connection grpcio makes to it is relayed to a
new connection to the address, in two threads. The relay's directory is
private (0700) and removed when the relay closes."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from typing import Callable, Optional

from .address import Address
from .errors import Error

_CHUNK = 256 * 1024


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Copies src to dst until EOF or an error, then half-closes dst."""
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if not n:
                break
            dst.sendall(view[:n])
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def bridge(a: socket.socket, b: socket.socket) -> None:
    """Relays both ways until both directions ended; closes both."""
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()
    a.close()
    b.close()


class AcceptLoop:
    """A listening socket served in a thread: each connection accepted goes
    to ``serve(conn)`` in a thread of its own, until ``stop()``."""

    def __init__(self, sock: socket.socket, serve: Callable[[socket.socket], None], name: str) -> None:
        self.sock = sock
        self._serve = serve
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stopped:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def stop(self, unlink: str = "") -> None:
        """Stops accepting (connections being served go on); removes the
        unix socket file ``unlink`` when given."""
        if self._stopped:
            return
        self._stopped = True
        try:
            # Wakes accept() up: shutdown on a listening socket makes it fail.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)
        if unlink:
            try:
                os.unlink(unlink)
            except OSError:
                pass


class Relay:
    """Listens on ``target`` (a ``unix:`` grpc target) and relays to address."""

    def __init__(self, address: Address, connect_timeout: float = 30.0) -> None:
        self.address = address
        self.last_error: Optional[str] = None
        self._timeout = connect_timeout
        self._dir = tempfile.mkdtemp(prefix="valet-relay-")
        path = os.path.join(self._dir, "s")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.bind(path)
        sock.listen(16)
        self.target = "unix:" + path
        self._loop = AcceptLoop(sock, self._serve, f"valet relay {address}")

    def _serve(self, conn: socket.socket) -> None:
        try:
            up = self.address.connect(self._timeout)
        except Error as e:
            self.last_error = str(e)
            conn.close()
            return
        self.last_error = None
        bridge(conn, up)

    def close(self) -> None:
        self._loop.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
