"""Addresses as valet's programs take them, and connecting to them.

``vsock:CID:PORT``, ``unix:PATH``, ``tcp:HOST:PORT`` (an IPv4 address or
``[IPv6]``; a name is resolved too) and ``hvsock:PATH:PORT`` (the unix
socket of a Firecracker or Cloud Hypervisor VM: the SDK writes
``CONNECT PORT\\n`` and reads ``OK ...\\n`` before the stream is the
guest's port). The port may be left out of vsock, tcp and hvsock
addresses: the service's default port is used (``MAITRED_PORT`` 8888,
``VSH_PORT`` 9001, ``STARTUP_LISTENER_PORT`` 7777).
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Optional

from .errors import DeadlineExceeded, Error, InvalidArgument, ProtocolError, Unavailable

__all__ = ["Address", "parse_address", "MAITRED_PORT", "VSH_PORT", "STARTUP_LISTENER_PORT", "VMADDR_CID_ANY"]

MAITRED_PORT = 8888
VSH_PORT = 9001
STARTUP_LISTENER_PORT = 7777
VMADDR_CID_ANY = 0xFFFFFFFF
_UNIX_PATH_MAX = 107
_HVSOCK_LINE_MAX = 64


@dataclass(frozen=True)
class Address:
    """A parsed address: ``kind`` is vsock, unix, tcp or hvsock; ``path``
    for unix and hvsock, ``host`` for tcp, ``cid`` for vsock, ``port`` for
    all but unix."""
    kind: str
    path: str = ""
    host: str = ""
    cid: int = 0
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "hvsock":
            return f"hvsock:{self.path}:{self.port}"
        if self.kind == "vsock":
            return f"vsock:{-1 if self.cid == VMADDR_CID_ANY else self.cid}:{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"

    def grpc_target(self) -> Optional[str]:
        """The target grpcio dials itself (unix, tcp), None for vsock and hvsock."""
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "tcp":
            return str(self)[4:]
        return None

    def connect(self, timeout: Optional[float] = 30.0) -> socket.socket:
        """A connected stream socket (the hybrid vsock handshake done), blocking.
        Raises Unavailable when it cannot connect, ProtocolError when a VMM
        answers the handshake with something else than OK."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if self.kind == "vsock":
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                target = (self.cid, self.port)
            elif self.kind in ("unix", "hvsock"):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                target = self.path
            else:
                infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                family, _, _, _, target = infos[0]
                s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise Unavailable(f"cannot connect to {self}: {e.strerror or e}") from e
        try:
            s.settimeout(timeout)
            s.connect(target)
            if self.kind == "hvsock":
                _hvsock_handshake(s, self, deadline)
            s.settimeout(None)
            return s
        except Error:
            # The handshake's own (Unavailable and DeadlineExceeded are OSErrors too).
            s.close()
            raise
        except socket.timeout as e:
            s.close()
            raise DeadlineExceeded(f"cannot connect to {self}: no answer within {timeout} s") from e
        except OSError as e:
            s.close()
            raise Unavailable(f"cannot connect to {self}: {e.strerror or e}") from e
        except BaseException:
            s.close()
            raise


def _hvsock_handshake(s: socket.socket, addr: Address, deadline: Optional[float]) -> None:
    s.sendall(f"CONNECT {addr.port}\n".encode())
    line = b""
    # A byte at a time: what follows the answer line is the guest's stream.
    while not line.endswith(b"\n"):
        if deadline is not None:
            s.settimeout(max(0.001, deadline - time.monotonic()))
        c = s.recv(1)
        if not c:
            if line:
                raise ProtocolError(f"{addr}: the VMM closed the connection in the middle of its answer")
            raise Unavailable(f"cannot connect to {addr}: the VMM refused the port "
                              "(is anything listening on it in the guest?)")
        line += c
        if len(line) > _HVSOCK_LINE_MAX:
            raise ProtocolError(f"{addr}: the VMM's answer is longer than {_HVSOCK_LINE_MAX} bytes")
    text = line.rstrip(b"\r\n")
    if text.startswith(b"ERR"):
        raise Unavailable(f"cannot connect to {addr}: the VMM refused the port: {text.decode(errors='replace')}")
    rest = text[3:]
    if not text.startswith(b"OK ") or not rest.isdigit():
        raise ProtocolError(f"{addr}: the VMM answered {text[:40]!r}, not \"OK <port>\"")


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise InvalidArgument(f"invalid address {whole!r}: bad port {text!r}")
    return int(text)


def parse_address(text: str, default_port: int = MAITRED_PORT) -> Address:
    """Parses an address; the port may be omitted (default_port is used).
    Raises InvalidArgument (a ValueError) naming the bad input."""
    if not isinstance(text, str):
        raise InvalidArgument(f"invalid address {text!r}: expected a string")
    syntax = "expected vsock:CID[:PORT], unix:PATH, tcp:HOST[:PORT] or hvsock:PATH[:PORT]"
    if text.startswith("unix:"):
        path = text[5:]
        if not path or len(path.encode()) > _UNIX_PATH_MAX:
            raise InvalidArgument(f"invalid address {text!r}: the path is empty or longer than 107 bytes")
        return Address("unix", path=path)
    if text.startswith("vsock:"):
        cid, _, port = text[6:].partition(":")
        if cid == "-1":
            cidn = VMADDR_CID_ANY
        elif cid.isdigit() and int(cid) <= 0xFFFFFFFF:
            cidn = int(cid)
        else:
            raise InvalidArgument(f"invalid address {text!r}: bad CID {cid!r}")
        return Address("vsock", cid=cidn, port=_port(port, text) if port else default_port)
    if text.startswith("hvsock:"):
        rest = text[7:]
        path, colon, port = rest.rpartition(":")
        # A path may hold colons, a port may not: without a numeric last
        # part, all of it is the path.
        if not colon or not port.isdigit():
            path, port = rest, ""
        if not path or len(path.encode()) > _UNIX_PATH_MAX:
            raise InvalidArgument(f"invalid address {text!r}: the path is empty or longer than 107 bytes")
        return Address("hvsock", path=path, port=_port(port, text) if port else default_port)
    if text.startswith("tcp:"):
        rest = text[4:]
        if rest.startswith("["):
            host, bracket, after = rest[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise InvalidArgument(f"invalid address {text!r}: {syntax}")
            port = after[1:]
        elif rest.count(":") > 1:
            raise InvalidArgument(f"invalid address {text!r}: an IPv6 address goes in brackets, tcp:[ADDR]:PORT")
        else:
            host, _, port = rest.partition(":")
        if not host:
            raise InvalidArgument(f"invalid address {text!r}: no host")
        p = _port(port, text) if port else default_port
        if p > 65535:
            raise InvalidArgument(f"invalid address {text!r}: port {p} is above 65535")
        return Address("tcp", host=host, port=p)
    raise InvalidArgument(f"invalid address {text!r}: {syntax}")
