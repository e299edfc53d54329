"""Messages to the SDK's Python types and back (pure functions, shared by
Guest and AsyncGuest)."""
from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import Any, Iterable, Optional, Union

from ._proto import files_pb2, guest_pb2, process_pb2
from .types import (Exited, FileInfo, FileType, Output, ProcessInfo, Started, Stream, TreeSummary)

UTC = _dt.timezone.utc
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)

TimeLike = Union[_dt.datetime, float, int]


def timestamp(when: TimeLike, ts) -> None:
    """Fills a google.protobuf.Timestamp from a datetime (naive = local
    time, as Python does) or seconds since the epoch."""
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.astimezone()
        delta = when - EPOCH
        total_us = (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds
        ts.seconds, us = divmod(total_us, 10**6)
        ts.nanos = us * 1000
    else:
        ns = int(round(when * 10**9))
        ts.seconds, ts.nanos = divmod(ns, 10**9)


def from_timestamp(ts) -> _dt.datetime:
    return EPOCH + _dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def ns_of(ts) -> int:
    return ts.seconds * 10**9 + ts.nanos


def file_info(m: files_pb2.FileInfo) -> FileInfo:
    return FileInfo(path=m.path, type=FileType(m.type), size=m.size, mode=m.mode, uid=m.uid, gid=m.gid,
                    mtime=from_timestamp(m.mtime), mtime_ns=ns_of(m.mtime), symlink_target=m.symlink_target,
                    owner=m.owner, group=m.group)


def tree_summary(m: files_pb2.TreeSummary) -> TreeSummary:
    return TreeSummary(files=m.files, directories=m.directories, symlinks=m.symlinks, bytes=m.bytes)


def ipv4_fixed32(addr: ipaddress.IPv4Address) -> int:
    """vm_tools.IPv4Config's fixed32 fields hold the address in network byte
    order as it sits in memory (what inet_pton gives), read little-endian."""
    return int.from_bytes(addr.packed, "little")


def ipv4_config(address, gateway) -> guest_pb2.IPv4Config:
    iface = ipaddress.IPv4Interface(address)
    gw = ipaddress.IPv4Address(gateway)
    return guest_pb2.IPv4Config(address=ipv4_fixed32(iface.ip), netmask=ipv4_fixed32(iface.netmask),
                                gateway=ipv4_fixed32(gw))


def resolv_config(nameservers: Iterable, search_domains: Iterable[str]) -> guest_pb2.ResolvConfig:
    return guest_pb2.ResolvConfig(nameservers=[str(ipaddress.ip_address(n)) for n in nameservers],
                                  search_domains=list(search_domains))


def exited(m) -> Exited:
    return Exited(exit_code=m.exit_code, signal=m.signal, core_dumped=m.core_dumped,
                  ended=from_timestamp(m.ended) if m.HasField("ended") else None)


def event(m: process_pb2.ProcessEvent):
    """A ProcessEvent as Started, Output or Exited (None for an empty one)."""
    kind = m.WhichOneof("event")
    if kind == "started":
        return Started(id=m.started.id, pid=m.started.pid, tag=m.started.tag)
    if kind == "output":
        o = m.output
        return Output(stream=Stream(o.stream), offset=o.offset, data=o.data, dropped=o.dropped)
    if kind == "exited":
        return exited(m.exited)
    return None


def process_info(m: process_pb2.ProcessInfo) -> ProcessInfo:
    return ProcessInfo(id=m.id, pid=m.pid, tag=m.tag, argv=list(m.argv), running=m.running,
                       exited=None if m.running or not m.HasField("exited") else exited(m.exited), pty=m.pty,
                       user=m.user, started=from_timestamp(m.started) if m.HasField("started") else None)


def argv_of(argv) -> list:
    """A command as argv: a string runs through /bin/sh -c."""
    if isinstance(argv, str):
        return ["/bin/sh", "-c", argv]
    out = [str(a) for a in argv]
    if not out:
        raise ValueError("argv is empty")
    return out


def start_request(argv, *, env=None, cwd: str = "", user: str = "", pty: bool = False, rows: int = 0,
                  cols: int = 0, tag: str = "", stdin: bool = False, buffer_bytes: int = 0,
                  kill_on_disconnect: bool = False, clear_env: bool = False) -> process_pb2.StartRequest:
    """A terminal always takes input (keys, ^C): pty implies stdin."""
    return process_pb2.StartRequest(argv=argv_of(argv), env=dict(env or {}), cwd=str(cwd), user=user, pty=pty,
                                    rows=rows, cols=cols, tag=tag, stdin=stdin or pty, buffer_bytes=buffer_bytes,
                                    kill_on_disconnect=kill_on_disconnect, clear_env=clear_env)


def run_request(argv: Any, has_input: bool, *, env: Any, cwd: str, user: str, pty: bool, rows: int, cols: int,
                clear_env: bool) -> process_pb2.StartRequest:
    """run()'s Start: tied to its caller (kill_on_disconnect), stdin only with input."""
    return start_request(argv, env=env, cwd=cwd, user=user, pty=pty, rows=rows if pty else 0,
                         cols=cols if pty else 0, stdin=has_input, kill_on_disconnect=True, clear_env=clear_env)


def connect_request(target: Union[int, str], stdout_offset: int, stderr_offset: int) -> process_pb2.ConnectRequest:
    if isinstance(target, int):
        return process_pb2.ConnectRequest(id=target, stdout_offset=stdout_offset, stderr_offset=stderr_offset)
    return process_pb2.ConnectRequest(tag=target, stdout_offset=stdout_offset, stderr_offset=stderr_offset)


def optional_mode(mode: Optional[int]) -> dict:
    if mode is None:
        return {}
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {mode:#o} is not within 0..0o7777")
    return {"mode": mode}
