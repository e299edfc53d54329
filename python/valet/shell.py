"""An interactive shell over the vsh protocol (vshd, port 9001): what the
``vsh`` program does, for Guest.shell().

The protocol: frames of a 4-byte little-endian length and a protobuf
message of at most 4096 bytes. The host sends a SetupConnectionRequest and
reads a SetupConnectionResponse (READY); then it sends GuestMessages (stdin
data, window sizes, signals; empty stdin data is EOF) and reads
HostMessages (output, and the status EXITED with the exit code)."""
from __future__ import annotations

import os
import selectors
import signal
import struct
import sys
import termios
import threading
import tty
from typing import Any, List, Mapping, Optional, Sequence

from ._proto import vsh_pb2
from .address import Address
from .errors import Error, ProtocolError, Unavailable

__all__ = ["run_shell", "encode_frame", "FrameReader", "MAX_MESSAGE", "MAX_DATA"]

MAX_MESSAGE = 4096
MAX_DATA = 4000
_FORWARDED = {signal.SIGINT: vsh_pb2.SIGNAL_INT, signal.SIGTERM: vsh_pb2.SIGNAL_TERM,
              signal.SIGHUP: vsh_pb2.SIGNAL_HUP, signal.SIGQUIT: vsh_pb2.SIGNAL_QUIT}


def encode_frame(msg: Any) -> bytes:
    body = msg.SerializeToString()
    if len(body) > MAX_MESSAGE:
        raise Error(f"a vsh message of {len(body)} bytes is larger than {MAX_MESSAGE} (too many arguments?)")
    return struct.pack("<I", len(body)) + body


class FrameReader:
    """Bytes in, whole messages out; a length above the limit is a ProtocolError."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> List[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from("<I", self.buf)
            if n > MAX_MESSAGE:
                raise ProtocolError(f"vshd sent a frame of {n} bytes, more than {MAX_MESSAGE}")
            if len(self.buf) < 4 + n:
                break
            out.append(bytes(self.buf[4:4 + n]))
            del self.buf[:4 + n]
        return out


def _fd(f: Any, default: Any) -> int:
    f = default if f is None else f
    return f if isinstance(f, int) else f.fileno()


def _window(fd: int) -> tuple:
    try:
        size = os.get_terminal_size(fd)
        return size.lines, size.columns
    except OSError:
        return 0, 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _setup(sock: Any, req: vsh_pb2.SetupConnectionRequest, address: Address) -> bytes:
    """Sends the request, reads the answer; returns bytes read beyond it."""
    sock.sendall(encode_frame(req))
    reader = FrameReader()
    sock.settimeout(30)
    while True:
        b = sock.recv(MAX_MESSAGE + 4)
        if not b:
            raise Unavailable(f"{address} closed the connection before answering")
        frames = reader.feed(b)
        if frames:
            break
    sock.settimeout(None)
    resp = vsh_pb2.SetupConnectionResponse.FromString(frames[0])
    if resp.status != vsh_pb2.READY:
        raise Error(f"vshd could not set up the session: {resp.description or vsh_pb2.ConnectionStatus.Name(resp.status)}")
    rest = b"".join(struct.pack("<I", len(f)) + f for f in frames[1:]) + bytes(reader.buf)
    return rest


def run_shell(address: Address, argv: Optional[Sequence[str]], *, user: str = "",
              env: Optional[Mapping[str, str]] = None, cwd: str = "", pty: Optional[bool] = None,
              stdin: Any = None, stdout: Any = None, stderr: Any = None) -> int:
    in_fd = _fd(stdin, sys.stdin)
    out_fd = _fd(stdout, sys.stdout)
    err_fd = _fd(stderr, sys.stderr)
    if pty is None:
        pty = os.isatty(in_fd)
    rows, cols = _window(in_fd) if os.isatty(in_fd) else _window(out_fd)
    full_env = {}
    if "TERM" in os.environ:
        full_env["TERM"] = os.environ["TERM"]
    full_env.update(env or {})
    req = vsh_pb2.SetupConnectionRequest(user=user, env=full_env, argv=list(argv or []), window_rows=rows,
                                         window_cols=cols, nopty=not pty, cwd=cwd)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError, AttributeError):
            pass
    sock = address.connect()
    try:
        return _session(sock, address, req, in_fd, out_fd, err_fd, pty)
    finally:
        sock.close()


def _session(sock: Any, address: Address, req: Any, in_fd: int, out_fd: int, err_fd: int, pty: bool) -> int:
    lock = threading.Lock()

    def send(msg: Any) -> None:
        with lock:
            sock.sendall(encode_frame(msg))

    # Signals are routed before the request goes (the target runs, and the
    # user may press ^C, before READY arrives), through a pipe into the loop.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    pending: List[int] = []
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signo: int, frame: Any) -> None:
            pending.append(signo)
            try:
                os.write(wake_w, b"s")
            except OSError:
                pass
        for s in [signal.SIGWINCH] + ([] if pty else list(_FORWARDED)):
            old_handlers[s] = signal.signal(s, on_signal)
    raw = pty and os.isatty(in_fd)
    saved = termios.tcgetattr(in_fd) if raw else None
    sel = selectors.DefaultSelector()
    try:
        rest = _setup(sock, req, address)
        if raw:
            tty.setraw(in_fd, termios.TCSANOW)
        reader = FrameReader()
        frames = reader.feed(rest)
        sel.register(sock, selectors.EVENT_READ, "sock")
        sel.register(wake_r, selectors.EVENT_READ, "wake")
        try:
            sel.register(in_fd, selectors.EVENT_READ, "stdin")
        except (PermissionError, ValueError):
            # A regular file cannot be polled: it is read in a thread
            # (reading it never blocks for long).
            threading.Thread(target=_feed_file, args=(in_fd, send), daemon=True).start()
        code: Optional[int] = None
        while code is None:
            for frame in frames:
                code = _on_frame(frame, out_fd, err_fd)
                if code is not None:
                    break
            if code is not None:
                break
            frames = []
            for key, _ in sel.select():
                if key.data == "sock":
                    b = sock.recv(65536)
                    if not b:
                        raise Unavailable(f"{address} closed the session before the command ended")
                    frames += reader.feed(b)
                elif key.data == "stdin":
                    b = os.read(in_fd, 16 * MAX_DATA)
                    for off in range(0, len(b), MAX_DATA):
                        send(_stdin_message(b[off:off + MAX_DATA]))
                    if not b:
                        send(_stdin_message(b""))
                        sel.unregister(in_fd)
                elif key.data == "wake":
                    try:
                        os.read(wake_r, 64)
                    except BlockingIOError:
                        pass
                    while pending:
                        s = pending.pop(0)
                        if s == signal.SIGWINCH:
                            r, c = _window(in_fd) if os.isatty(in_fd) else _window(out_fd)
                            send(vsh_pb2.GuestMessage(resize_message=vsh_pb2.WindowResizeMessage(rows=r, cols=c)))
                        else:
                            send(vsh_pb2.GuestMessage(signal=_FORWARDED[s]))
        return code
    finally:
        sel.close()
        if saved is not None:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        os.close(wake_r)
        os.close(wake_w)


def _stdin_message(b: bytes) -> Any:
    return vsh_pb2.GuestMessage(data_message=vsh_pb2.DataMessage(stream=vsh_pb2.STDIN_STREAM, data=b))


def _feed_file(fd: int, send: Any) -> None:
    try:
        while True:
            b = os.read(fd, MAX_DATA)
            send(_stdin_message(b))
            if not b:
                return
    except OSError:
        return


def _on_frame(frame: bytes, out_fd: int, err_fd: int) -> Optional[int]:
    m = vsh_pb2.HostMessage.FromString(frame)
    kind = m.WhichOneof("msg")
    if kind == "data_message":
        d = m.data_message
        if d.data:
            _write_all(err_fd if d.stream == vsh_pb2.STDERR_STREAM else out_fd, d.data)
        return None
    if kind == "status_message":
        st = m.status_message
        if st.status == vsh_pb2.EXITED:
            return st.code & 0xFF
        if st.status == vsh_pb2.READY:
            return None
        raise Error(f"the vsh session failed: {st.description or vsh_pb2.ConnectionStatus.Name(st.status)}")
    return None
