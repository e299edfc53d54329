"""Each unary call as data: the method, the request built from Python
arguments, and the conversion of its answer. Guest runs them blocking,
AsyncGuest awaits them; the logic lives here once."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Mapping, Optional, Union

from google.protobuf import empty_pb2

from . import _convert as cv
from ._methods import FILES, MAITRED, PROCESS, SNAPSHOT, Method
from ._proto import common_pb2, files_pb2, guest_pb2, process_pb2, snapshot_pb2
from .errors import from_errno
from .types import (FileInfo, KernelVersion, LaunchResult, LaunchStatus, ProcessInfo, ResizeProgress, ResizeStatus,
                    Restored)


@dataclass(frozen=True)
class Op:
    method: Method
    request: Any
    convert: Callable[[Any], Any]


def _none(_: Any) -> None:
    return None


_E = common_pb2.EmptyMessage


class Network:
    """An IPv4 configuration (``restored(network=...)``): ``address`` with
    its prefix (``"10.0.2.15/24"``), ``gateway``, DNS servers and search
    domains."""

    def __init__(self, address: str, gateway: str, nameservers: Iterable[str] = (),
                 search_domains: Iterable[str] = ()) -> None:
        self.address = address
        self.gateway = gateway
        self.nameservers = list(nameservers)
        self.search_domains = list(search_domains)

    def message(self) -> guest_pb2.NetworkConfigRequest:
        m = guest_pb2.NetworkConfigRequest(ipv4_config=cv.ipv4_config(self.address, self.gateway))
        if self.nameservers or self.search_domains:
            m.resolv_config.CopyFrom(cv.resolv_config(self.nameservers, self.search_domains))
        return m


# -- vm_tools.Maitred ------------------------------------------------------

def configure_network(address: str, gateway: str, nameservers: Iterable[str], search_domains: Iterable[str]) -> Op:
    return Op(MAITRED["ConfigureNetwork"], Network(address, gateway, nameservers, search_domains).message(), _none)


def empty(name: str) -> Op:
    """The Maitred methods that take and give nothing."""
    return Op(MAITRED[name], _E(), _none)


def launch_process(argv: Any, env: Optional[Mapping[str, str]], respawn: bool, use_console: bool,
                   wait_for_exit: bool) -> Op:
    req = guest_pb2.LaunchProcessRequest(argv=cv.argv_of(argv), env=dict(env or {}), respawn=respawn,
                                         use_console=use_console, wait_for_exit=wait_for_exit)
    return Op(MAITRED["LaunchProcess"], req, lambda r: LaunchResult(LaunchStatus(r.status), r.code))


def _mount_result(what: str) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        if r.error:
            raise from_errno(r.error, what)
    return check


def mount(source: str, target: str, fstype: str, flags: int, options: str, create_target: bool, permissions: int,
          mkfs_if_needed: bool) -> Op:
    req = guest_pb2.MountRequest(source=source, target=target, fstype=fstype, mountflags=flags, options=options,
                                 create_target=create_target, permissions=permissions, mkfs_if_needed=mkfs_if_needed)
    return Op(MAITRED["Mount"], req, _mount_result(f"mount {source} on {target}"))


def mount_9p(port: int, target: str) -> Op:
    return Op(MAITRED["Mount9P"], guest_pb2.Mount9PRequest(port=port, target=target),
              _mount_result(f"9p mount of port {port} on {target}"))


def set_resolv_config(nameservers: Iterable[Any], search_domains: Iterable[str]) -> Op:
    return Op(MAITRED["SetResolvConfig"],
              guest_pb2.SetResolvConfigRequest(resolv_config=cv.resolv_config(nameservers, search_domains)), _none)


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def set_time(when: Optional[cv.TimeLike]) -> Op:
    req = guest_pb2.SetTimeRequest()
    cv.timestamp(now() if when is None else when, req.time)
    return Op(MAITRED["SetTime"], req, _none)


def set_timezone(name: str, bind_mount: bool) -> Op:
    return Op(MAITRED["SetTimezone"], guest_pb2.SetTimezoneRequest(timezone_name=name, use_bind_mount=bind_mount),
              _none)


def kernel_version() -> Op:
    return Op(MAITRED["GetKernelVersion"], _E(), lambda r: KernelVersion(r.kernel_release, r.kernel_version))


def available_space() -> Op:
    return Op(MAITRED["GetAvailableSpace"], _E(), lambda r: r.available_space)


def resize_filesystem(size: int) -> Op:
    return Op(MAITRED["ResizeFilesystem"], guest_pb2.ResizeFilesystemRequest(size=size),
              lambda r: ResizeStatus(r.status))


def resize_status() -> Op:
    return Op(MAITRED["GetResizeStatus"], _E(),
              lambda r: ResizeProgress(r.resize_in_progress, r.current_size, r.target_size))


def resize_bounds() -> Op:
    return Op(MAITRED["GetResizeBounds"], _E(), lambda r: r.minimum_size)


# -- valet.v1.Files (the unary ones) ---------------------------------------

def stat(path: str, follow_symlinks: bool, user: str) -> Op:
    return Op(FILES["Stat"], files_pb2.StatRequest(path=path, follow_symlinks=follow_symlinks, user=user),
              cv.file_info)


def mkdir(path: str, mode: Optional[int], parents: bool, user: str) -> Op:
    return Op(FILES["MakeDirectory"], files_pb2.MakeDirectoryRequest(path=path, parents=parents, user=user,
                                                                     **cv.optional_mode(mode)), cv.file_info)


def remove(path: str, recursive: bool, user: str) -> Op:
    return Op(FILES["Remove"], files_pb2.RemoveRequest(path=path, recursive=recursive, user=user),
              lambda r: r.removed)


def move(source: str, destination: str, no_replace: bool, user: str) -> Op:
    return Op(FILES["Move"], files_pb2.MoveRequest(source=source, destination=destination, no_replace=no_replace,
                                                   user=user), cv.file_info)


def list_request(path: str, depth: int, user: str) -> files_pb2.ListRequest:
    return files_pb2.ListRequest(path=path, depth=depth, user=user)


def file_infos(messages: List[Any]) -> List[FileInfo]:
    return [cv.file_info(m) for m in messages]


# -- valet.v1.Process (the unary ones) -------------------------------------

def processes(include_exited: bool) -> Op:
    return Op(PROCESS["List"], process_pb2.ListProcessesRequest(include_exited=include_exited),
              lambda r: [cv.process_info(p) for p in r.processes])


def send_input(pid: int, data: bytes = b"", eof: bool = False) -> Op:
    return Op(PROCESS["SendInput"], process_pb2.SendInputRequest(id=pid, data=data, eof=eof), _none)


def send_signal(pid: int, sig: int, group: bool) -> Op:
    return Op(PROCESS["SendSignal"], process_pb2.SendSignalRequest(id=pid, signal=int(sig), group=group), _none)


def resize(pid: int, rows: int, cols: int) -> Op:
    return Op(PROCESS["Resize"], process_pb2.ResizeRequest(id=pid, rows=rows, cols=cols), _none)


# -- valet.v1.Snapshot -----------------------------------------------------

def freeze(timeout_seconds: int) -> Op:
    return Op(SNAPSHOT["Freeze"], snapshot_pb2.FreezeRequest(timeout_seconds=timeout_seconds),
              lambda r: list(r.frozen))


def thaw() -> Op:
    return Op(SNAPSHOT["Thaw"], empty_pb2.Empty(), lambda r: list(r.thawed))


def restored(time: Optional[cv.TimeLike], entropy: Optional[bytes], network: Optional[Network],
             generation: str) -> Op:
    req = snapshot_pb2.RestoredRequest(entropy=os.urandom(64) if entropy is None else entropy, generation=generation)
    cv.timestamp(now() if time is None else time, req.time)
    if network is not None:
        req.network.CopyFrom(network.message())
    return Op(SNAPSHOT["Restored"], req,
              lambda r: Restored(_dt.timedelta(microseconds=r.clock_step_ns / 1000), r.previous_generation))


def freeze_result(frozen: List[str]) -> List[str]:
    return frozen


Target = Union[int, str]
ProcessList = List[ProcessInfo]
