"""Processes in the guest (valet.v1.Process) for Guest: the handle of a
started process, and run()."""
from __future__ import annotations

import signal as _signal
import threading
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Union

import grpc

from . import _convert as cv
from . import _ops as ops
from ._methods import PROCESS
from ._proto import process_pb2
from .errors import DeadlineExceeded, Error, ProcessError, ProtocolError
from .types import Exited, Output, Result, Started, Stream

if TYPE_CHECKING:
    from .guest import Guest

__all__ = ["Process", "InputSource"]

InputSource = Union[None, bytes, str, IO[bytes]]
# Input goes in pieces of this size; each SendInput waits for its answer,
# so the guest's pipe is the back-pressure.
INPUT_CHUNK = 64 * 1024


def input_chunks(source: InputSource) -> Iterator[bytes]:
    if source is None:
        return
    if isinstance(source, str):
        source = source.encode()
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for off in range(0, len(view), INPUT_CHUNK):
            yield bytes(view[off:off + INPUT_CHUNK])
        return
    while True:
        b = source.read(INPUT_CHUNK)
        if not b:
            return
        yield b


class Collector:
    """Output and end of a process, gathered from its events into a Result;
    the callbacks see each piece of output as it comes."""

    def __init__(self, result: Result, on_stdout: Optional[Callable[[bytes], None]] = None,
                 on_stderr: Optional[Callable[[bytes], None]] = None) -> None:
        self.result = result
        self.on_stdout, self.on_stderr = on_stdout, on_stderr
        self.out: List[bytes] = []
        self.err: List[bytes] = []
        self.ended = False

    def take(self, ev: Any) -> bool:
        """Takes one event; True once the process has ended."""
        r = self.result
        if isinstance(ev, Started):
            r.id, r.pid, r.tag = ev.id, ev.pid, ev.tag
        elif isinstance(ev, Output):
            r.dropped += ev.dropped
            if ev.stream == Stream.STDERR:
                self.err.append(ev.data)
                if self.on_stderr:
                    self.on_stderr(ev.data)
            else:
                self.out.append(ev.data)
                if self.on_stdout:
                    self.on_stdout(ev.data)
        elif isinstance(ev, Exited):
            r.exit_code, r.signal, r.core_dumped = ev.exit_code, ev.signal, ev.core_dumped
            self.ended = True
        return self.ended

    def finish(self) -> Result:
        self.result.stdout, self.result.stderr = b"".join(self.out), b"".join(self.err)
        return self.result


def seen(handle: Any, ev: Any) -> Any:
    """Notes an event on a process handle (Process or AsyncProcess): the
    offsets of the output seen so far, the end; returns the event."""
    if isinstance(ev, Output):
        if ev.stream == Stream.STDERR:
            handle.stderr_offset = ev.offset + len(ev.data)
        else:
            handle.stdout_offset = ev.offset + len(ev.data)
    elif isinstance(ev, Exited):
        handle.exited = ev
    return ev


def check_result(result: Result, check: bool) -> Result:
    if check and not result.ok:
        how = f"signal {result.signal}" if result.signal else f"exit status {result.exit_code}"
        raise ProcessError(f"{result.argv[0]} ended with {how}", result)
    return result


class Process:
    """A process in the guest, started or attached to. ``id`` is valet's
    (never reused while the guest's maitred runs), ``pid`` the kernel's.
    ``events()`` gives what happens to it; ``wait()`` collects its output to
    its end. ``stdout_offset``/``stderr_offset`` count the bytes of each
    stream seen so far (for ``attach(from_offset=...)`` after a disconnect).
    """

    def __init__(self, guest: "Guest", call: Any, started: Started, argv: List[str]) -> None:
        self._guest = guest
        self._call = call
        self.id = started.id
        self.pid = started.pid
        self.tag = started.tag
        self.argv = argv
        self.stdout_offset = 0
        self.stderr_offset = 0
        self.exited: Optional[Exited] = None
        self._detached = False

    @classmethod
    def open(cls, guest: "Guest", method: Any, request: Any, argv: List[str],
             timeout: Optional[float] = None) -> "Process":
        """Makes the call and reads up to its Started event."""
        call = guest._call(method)(request, timeout=timeout)
        try:
            for m in call:
                ev = cv.event(m)
                if isinstance(ev, Started):
                    return cls(guest, call, ev, argv)
                raise ProtocolError(f"the guest's first process event was not 'started' but {ev!r}")
        except grpc.RpcError as e:
            raise guest._error(e) from None
        raise ProtocolError("the guest ended the process call before it started")

    def __repr__(self) -> str:
        return f"<valet.Process id={self.id} pid={self.pid} tag={self.tag!r} exited={self.exited}>"

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def events(self) -> Iterator[Union[Output, Exited]]:
        """The process's output (``Output``) in order, then its end
        (``Exited``), as they come. Stops early if ``detach()`` is called
        meanwhile; after a ``detach()`` it follows the process again from
        where it stopped."""
        if self._detached:
            self._call, self._detached = self._reconnect(), False
        try:
            for m in self._call:
                ev = seen(self, cv.event(m))
                if isinstance(ev, (Output, Exited)):
                    yield ev
                if isinstance(ev, Exited):
                    return
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and self._detached:
                return
            raise self._guest._error(e) from None

    def wait(self, timeout: Optional[float] = None, *, on_stdout: Optional[Callable[[bytes], None]] = None,
             on_stderr: Optional[Callable[[bytes], None]] = None) -> Result:
        """Reads the process's output to its end; returns it in a Result.
        ``timeout`` bounds the wait (``DeadlineExceeded``: the process keeps
        running, unless started with ``kill_on_disconnect``, and the handle
        stays usable)."""
        collector = Collector(Result(argv=self.argv, id=self.id, pid=self.pid, tag=self.tag), on_stdout, on_stderr)
        timer = None
        timed_out = threading.Event()
        if timeout is not None:
            def expire() -> None:
                timed_out.set()
                self.detach()
            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        try:
            for ev in self.events():
                collector.take(ev)
        finally:
            if timer:
                timer.cancel()
        result = collector.finish()
        if self.exited is None:
            if timed_out.is_set():
                # The next events() or wait() follows it again from here.
                raise DeadlineExceeded(f"process {self.id} ({self._name()}) still runs after {timeout} s")
            raise Error(f"the process call of {self.id} ended before the process did")
        return result

    def _name(self) -> str:
        return self.argv[0] if self.argv else self.tag or str(self.id)

    def _reconnect(self) -> Any:
        req = process_pb2.ConnectRequest(id=self.id, stdout_offset=self.stdout_offset,
                                         stderr_offset=self.stderr_offset)
        return self._guest._call(PROCESS["Connect"])(req)

    def send_input(self, data: Union[bytes, str]) -> None:
        """Writes to the process's stdin (or its terminal)."""
        if isinstance(data, str):
            data = data.encode()
        for chunk in input_chunks(data):
            self._guest._op(ops.send_input(self.id, chunk))

    def close_stdin(self) -> None:
        """Ends the process's input (EOF)."""
        self._guest._op(ops.send_input(self.id, eof=True))

    def signal(self, sig: int = _signal.SIGTERM, *, group: bool = False) -> None:
        """Sends a signal (a number or ``signal.SIGINT``...) to the process,
        or with ``group`` to its whole process group (a tree started through
        ``sh -c``)."""
        self._guest._op(ops.send_signal(self.id, sig, group))

    def kill(self) -> None:
        """SIGKILL to the whole process group."""
        self.signal(_signal.SIGKILL, group=True)

    def resize(self, rows: int, cols: int) -> None:
        """Sets the size of the process's terminal (``pty=True``)."""
        self._guest._op(ops.resize(self.id, rows, cols))

    def attach(self, from_offset: int = 0, *, stderr_offset: Optional[int] = None) -> "Process":
        """A new handle on the same process, its output replayed from
        ``from_offset`` of stdout (and of stderr, unless ``stderr_offset``)."""
        return self._guest.attach(self.id, stdout_offset=from_offset,
                                  stderr_offset=from_offset if stderr_offset is None else stderr_offset)

    def detach(self) -> None:
        """Stops following the process (it keeps running in the guest unless
        started with ``kill_on_disconnect``). A later ``events()`` or
        ``wait()`` follows it again from the offsets seen so far."""
        self._detached = True
        self._call.cancel()


def run_process(guest: "Guest", argv: Any, *, input: InputSource, env: Any, cwd: str, user: str,
                timeout: Optional[float], pty: bool, rows: int, cols: int, clear_env: bool, check: bool,
                on_stdout: Optional[Callable[[bytes], None]],
                on_stderr: Optional[Callable[[bytes], None]]) -> Result:
    req = cv.run_request(argv, input is not None, env=env, cwd=cwd, user=user, pty=pty, rows=rows, cols=cols,
                         clear_env=clear_env)
    call = guest._call(PROCESS["Start"])(req, timeout=timeout)
    collector = Collector(Result(argv=list(req.argv)), on_stdout, on_stderr)
    result = collector.result
    feeder: Optional[threading.Thread] = None
    feed_error: List[BaseException] = []

    def feed(pid: int) -> None:
        try:
            for chunk in input_chunks(input):
                guest._op(ops.send_input(pid, chunk), None)
            guest._op(ops.send_input(pid, eof=True), None)
        except Error as e:
            # A process that exits without reading all its input is no error.
            if not collector.ended and not call.done():
                feed_error.append(e)

    try:
        for m in call:
            ev = cv.event(m)
            if collector.take(ev):
                break
            if isinstance(ev, Started) and input is not None:
                feeder = threading.Thread(target=feed, args=(ev.id,), daemon=True)
                feeder.start()
    except grpc.RpcError as e:
        collector.finish()
        if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and result.id:
            # kill_on_disconnect ends it too: this is the belt to those braces.
            try:
                guest._op(ops.send_signal(result.id, 9, True), 5)
            except Error:
                pass
            raise deadline_error(result, timeout) from None
        raise guest._error(e) from None
    finally:
        call.cancel()
    if feeder is not None:
        feeder.join(5)
    collector.finish()
    if not collector.ended:
        raise Error(f"the guest ended the call of {result.argv[0]} before the process ended")
    if feed_error:
        raise feed_error[0]
    return check_result(result, check)


def deadline_error(result: Result, timeout: Optional[float]) -> DeadlineExceeded:
    """What run() raises once its deadline passed and the process was
    killed, with the output so far as ``.result``."""
    x = DeadlineExceeded(f"{result.argv[0]} did not end within {timeout} s; it was killed")
    x.result = result  # type: ignore[attr-defined]
    return x
