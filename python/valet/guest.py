"""Guest: one guest's agent, driven from blocking code."""
from __future__ import annotations

from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Union

import grpc

from . import _convert as cv
from . import _ops as ops
from ._channel import DEFAULT, DEFAULT_TIMEOUT, GuestCore
from ._methods import CHANNEL_OPTIONS, PROCESS, Stubs
from ._ops import Network
from .address import Address
from .errors import Error
from .files import Files
from .process import Process, InputSource, run_process
from .tunnel import Forward
from .types import (KernelVersion, LaunchResult, ProcessInfo, ResizeProgress, ResizeStatus, Restored, Result)

__all__ = ["Guest", "Frozen", "Network"]

Timeout = Optional[float]
Command = Union[str, Sequence[str]]


class Frozen:
    """The guest's file systems, frozen by ``Guest.freeze()``; leaving the
    ``with`` block thaws them. ``filesystems`` lists the mount points frozen."""

    def __init__(self, guest: "Guest", filesystems: List[str]) -> None:
        self._guest = guest
        self.filesystems = filesystems
        self.thawed: Optional[List[str]] = None

    def thaw(self) -> List[str]:
        """Thaws now (once); returns the mount points thawed."""
        if self.thawed is None:
            self.thawed = self._guest.thaw()
        return self.thawed

    def __enter__(self) -> "Frozen":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.thaw()


class Guest(GuestCore):
    """A guest's maitred at ``address`` (``vsock:CID[:PORT]``, ``unix:PATH``,
    ``tcp:HOST[:PORT]``, ``hvsock:PATH[:PORT]``; port 8888 by default).

    ``timeout`` is the default deadline, in seconds, of every call that is
    not a transfer or a process (those have none unless given); None for no
    deadline. ``vsh_address`` is the guest's vshd for ``shell()`` (by
    default the same CID or hybrid vsock socket, port 9001). Nothing
    connects before the first call. Use it as a context manager, or call
    ``close()``.
    """

    def __init__(self, address: Union[str, Address] = "vsock:3", *, timeout: Timeout = DEFAULT_TIMEOUT,
                 vsh_address: Union[str, Address, None] = None) -> None:
        super().__init__(address, timeout, vsh_address)
        self.channel = grpc.insecure_channel(self._endpoint.target, options=CHANNEL_OPTIONS)
        self._stubs = Stubs(self.channel)
        self.files = Files(self)
        """Files of the guest (valet.v1.Files): see ``valet.Files``."""

    # -- plumbing ----------------------------------------------------------

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel (calls in flight end with CANCELLED)."""
        self.channel.close()
        self._endpoint.close()

    def _unary(self, method: Any, request: Any, timeout: Any = DEFAULT) -> Any:
        try:
            return self._stubs(method)(request, timeout=self._deadline(timeout))
        except grpc.RpcError as e:
            raise self._error(e) from None

    def _call(self, method: Any) -> Any:
        return self._stubs(method)

    def _op(self, op: ops.Op, timeout: Any = DEFAULT) -> Any:
        return op.convert(self._unary(op.method, op.request, timeout))

    # -- vm_tools.Maitred --------------------------------------------------

    def configure_network(self, address: str, gateway: str, nameservers: Iterable[str] = (),
                          search_domains: Iterable[str] = (), *, timeout: Timeout = DEFAULT) -> None:
        """ConfigureNetwork: the IPv4 ``address`` with its prefix
        (``"10.0.2.15/24"``, or an ``ipaddress.IPv4Interface``) and default
        route via ``gateway`` on eth0; with nameservers or search domains,
        resolv.conf too."""
        self._op(ops.configure_network(address, gateway, nameservers, search_domains), timeout)

    def shutdown(self, *, timeout: Timeout = DEFAULT) -> None:
        """Shutdown: powers the guest off (maitred as PID 1) or stops maitred."""
        self._op(ops.empty("Shutdown"), timeout)

    def launch_process(self, argv: Command, env: Optional[Mapping[str, str]] = None, *, respawn: bool = False,
                       use_console: bool = False, wait_for_exit: bool = False,
                       timeout: Timeout = DEFAULT) -> LaunchResult:
        """LaunchProcess: starts a program maitred keeps (``respawn``), or
        waits for its end (``wait_for_exit``). For programs whose output you
        want, use ``run()``."""
        return self._op(ops.launch_process(argv, env, respawn, use_console, wait_for_exit), timeout)

    def mount(self, source: str, target: str, fstype: str, flags: int = 0, options: str = "", *,
              create_target: bool = False, permissions: int = 0, mkfs_if_needed: bool = False,
              timeout: Timeout = DEFAULT) -> None:
        """Mount: mount(2) ``source`` on ``target``. A failure raises the
        exception of its errno (``NotFound`` for ENOENT, ...)."""
        self._op(ops.mount(source, target, fstype, flags, options, create_target, permissions, mkfs_if_needed),
                 timeout)

    def mount_9p(self, port: int, target: str, *, timeout: Timeout = DEFAULT) -> None:
        """Mount9P (ChromeOS's 9P server on a vsock port)."""
        self._op(ops.mount_9p(port, target), timeout)

    def set_resolv_config(self, nameservers: Iterable[str], search_domains: Iterable[str] = (), *,
                          timeout: Timeout = DEFAULT) -> None:
        """SetResolvConfig: the guest's /etc/resolv.conf (addresses as
        strings or ``ipaddress`` objects)."""
        self._op(ops.set_resolv_config(nameservers, search_domains), timeout)

    def set_time(self, when: Optional[cv.TimeLike] = None, *, timeout: Timeout = DEFAULT) -> None:
        """SetTime: the guest's wall clock to ``when`` (a datetime or seconds
        since the epoch; now by default)."""
        self._op(ops.set_time(when), timeout)

    def set_timezone(self, name: str, *, bind_mount: bool = False, timeout: Timeout = DEFAULT) -> None:
        """SetTimezone: a zoneinfo name (``"Europe/Paris"``); ``bind_mount``
        mounts the zone file on /etc/localtime instead of a symlink."""
        self._op(ops.set_timezone(name, bind_mount), timeout)

    def kernel_version(self, *, timeout: Timeout = DEFAULT) -> KernelVersion:
        """GetKernelVersion: the guest kernel's release and version."""
        return self._op(ops.kernel_version(), timeout)

    def available_space(self, *, timeout: Timeout = DEFAULT) -> int:
        """GetAvailableSpace: free bytes on the guest's main file system."""
        return self._op(ops.available_space(), timeout)

    def resize_filesystem(self, size: int, *, timeout: Timeout = DEFAULT) -> ResizeStatus:
        """ResizeFilesystem: starts resizing the main file system to ``size`` bytes."""
        return self._op(ops.resize_filesystem(size), timeout)

    def resize_status(self, *, timeout: Timeout = DEFAULT) -> ResizeProgress:
        """GetResizeStatus: whether a resize runs, current and target size."""
        return self._op(ops.resize_status(), timeout)

    def resize_bounds(self, *, timeout: Timeout = DEFAULT) -> int:
        """GetResizeBounds: the smallest size ``resize_filesystem`` accepts, in bytes."""
        return self._op(ops.resize_bounds(), timeout)

    def prepare_to_suspend(self, *, timeout: Timeout = DEFAULT) -> None:
        """PrepareToSuspend: the host is about to suspend the VM."""
        self._op(ops.empty("PrepareToSuspend"), timeout)

    def host_network_changed(self, *, timeout: Timeout = DEFAULT) -> None:
        """OnHostNetworkChanged: the host's network changed."""
        self._op(ops.empty("OnHostNetworkChanged"), timeout)

    def reset_ipv6(self, *, timeout: Timeout = DEFAULT) -> None:
        """ResetIPv6, OnHostNetworkChanged's deprecated predecessor."""
        self._op(ops.empty("ResetIPv6"), timeout)

    # -- valet.v1.Process --------------------------------------------------

    def run(self, argv: Command, *, input: InputSource = None, env: Optional[Mapping[str, str]] = None,
            cwd: str = "", user: str = "", timeout: Timeout = None, pty: bool = False, rows: int = 24,
            cols: int = 80, clear_env: bool = False, check: bool = False,
            on_stdout: Optional[Callable[[bytes], None]] = None,
            on_stderr: Optional[Callable[[bytes], None]] = None) -> Result:
        """Runs a command to its end and returns its output and exit status.

        ``argv`` is a list, or a string run by ``/bin/sh -c``. ``input``
        (bytes, str, or a binary file object) is its stdin, else it reads
        /dev/null. ``on_stdout``/``on_stderr`` get each piece of output as it
        comes (it is in the Result all the same). With ``timeout`` (seconds)
        a process still running then is killed with its process group, and
        ``DeadlineExceeded`` is raised. ``check`` raises ``ProcessError`` for
        anything but exit 0. The process dies if this client goes away."""
        return run_process(self, argv, input=input, env=env, cwd=cwd, user=user, timeout=timeout, pty=pty,
                           rows=rows, cols=cols, clear_env=clear_env, check=check, on_stdout=on_stdout,
                           on_stderr=on_stderr)

    def start(self, argv: Command, *, env: Optional[Mapping[str, str]] = None, cwd: str = "", user: str = "",
              tag: str = "", stdin: bool = False, pty: bool = False, rows: int = 24, cols: int = 80,
              buffer_bytes: int = 0, kill_on_disconnect: bool = False, clear_env: bool = False) -> Process:
        """Starts a command and returns its handle once it runs. It keeps
        running when this client goes away (unless ``kill_on_disconnect``),
        its output kept in the guest (the last ``buffer_bytes`` of each
        stream, 1 MiB by default): ``attach()`` comes back to it, by id or
        ``tag``. ``stdin`` gives it a pipe (``send_input``) instead of
        /dev/null; ``pty`` a terminal of ``rows`` x ``cols``."""
        req = cv.start_request(argv, env=env, cwd=cwd, user=user, pty=pty, rows=rows if pty else 0,
                               cols=cols if pty else 0, tag=tag, stdin=stdin, buffer_bytes=buffer_bytes,
                               kill_on_disconnect=kill_on_disconnect, clear_env=clear_env)
        return Process.open(self, PROCESS["Start"], req, list(req.argv))

    def attach(self, target: Union[int, str], *, stdout_offset: int = 0, stderr_offset: int = 0) -> Process:
        """Connects to a process started earlier, by id (int) or tag (str):
        its output from the given offsets (what the guest still keeps of
        it), then what comes. A process that has ended gives its output and
        its end."""
        req = cv.connect_request(target, stdout_offset, stderr_offset)
        return Process.open(self, PROCESS["Connect"], req, [])

    def processes(self, *, include_exited: bool = False, timeout: Timeout = DEFAULT) -> List[ProcessInfo]:
        """The processes valet started and still remembers (running ones, and
        with ``include_exited`` those whose end nobody has seen yet)."""
        return self._op(ops.processes(include_exited), timeout)

    # -- valet.v1.Tunnel ---------------------------------------------------

    def forward(self, guest_port: int = 0, *, host: str = "127.0.0.1", unix_path: str = "",
                local: str = "tcp:127.0.0.1:0") -> Forward:
        """Forwards a local address to a TCP port (or a unix socket) inside
        the guest, through maitred's own connection (the guest needs no
        network). Use it as a context manager; ``.address`` is the local
        address (``tcp:127.0.0.1:PORT`` by default: a free port), ``.port``
        its port. Every connection to it is one connection in the guest."""
        return Forward(self, guest_port, host=host, unix_path=unix_path, local=local)

    # -- valet.v1.Snapshot -------------------------------------------------

    def freeze(self, timeout_seconds: int = 60, *, timeout: Timeout = DEFAULT) -> Frozen:
        """Syncs and freezes the guest's writable block-device file systems,
        so that a disk copy or VM snapshot taken now is consistent. Use the
        result as a context manager (``with guest.freeze():``) to thaw when
        the block ends; the guest thaws by itself after ``timeout_seconds``
        (at most 600)."""
        return Frozen(self, self._op(ops.freeze(timeout_seconds), timeout))

    def thaw(self, *, timeout: Timeout = DEFAULT) -> List[str]:
        """Thaws what ``freeze()`` froze; returns the mount points thawed."""
        return self._op(ops.thaw(), timeout)

    def restored(self, *, time: Optional[cv.TimeLike] = None, entropy: Optional[bytes] = None,
                 network: Optional[Network] = None, generation: str = "",
                 timeout: Timeout = DEFAULT) -> Restored:
        """Tells the guest it was just restored from a snapshot: steps its
        clock to ``time`` (now by default), reseeds its random generator
        with ``entropy`` (64 fresh random bytes by default; at least 32),
        applies ``network`` and records ``generation``. Returns the clock
        step and the previous generation."""
        return self._op(ops.restored(time, entropy, network, generation), timeout)

    # -- vsh ---------------------------------------------------------------

    def shell(self, argv: Optional[Sequence[str]] = None, *, user: str = "", env: Optional[Mapping[str, str]] = None,
              cwd: str = "", pty: Optional[bool] = None, stdin: Any = None, stdout: Any = None,
              stderr: Any = None) -> int:
        """An interactive shell (or ``argv``) in the guest over the vsh
        protocol, on this program's terminal: raw mode, window size and its
        changes, output as it comes. Returns the remote exit status (128+N
        for signal N). ``pty`` defaults to whether stdin is a terminal;
        stdin/stdout/stderr default to this process's (file objects or fds).
        Needs the guest's vshd (``vsh_address``)."""
        from .shell import run_shell
        if self._vsh is None:
            raise Error(f"no vsh address for {self.address}: pass vsh_address= to Guest")
        return run_shell(self._vsh, argv, user=user, env=env, cwd=cwd, pty=pty, stdin=stdin, stdout=stdout,
                         stderr=stderr)
