"""The Python types the SDK answers with: enums, frozen dataclasses,
``datetime`` (always timezone-aware, UTC) and ``ipaddress`` values instead of
protobuf messages."""
from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import List, Optional

__all__ = [
    "KernelVersion", "LaunchStatus", "LaunchResult", "ResizeStatus", "ResizeProgress", "FileType", "FileInfo",
    "TreeSummary", "Stream", "Started", "Output", "Exited", "Event", "ProcessInfo", "Result", "Restored",
]


@dataclass(frozen=True)
class KernelVersion:
    """The guest kernel's ``uname -r`` (release) and ``uname -v`` (version)."""
    release: str
    version: str


class LaunchStatus(enum.IntEnum):
    """What ``launch_process`` reports (vm_tools.ProcessStatus)."""
    UNKNOWN = 0
    EXITED = 1
    SIGNALED = 2
    LAUNCHED = 3
    FAILED = 4


@dataclass(frozen=True)
class LaunchResult:
    """``status``, and ``code``: the exit status (EXITED) or the signal (SIGNALED)."""
    status: LaunchStatus
    code: int


class ResizeStatus(enum.IntEnum):
    """What ``resize_filesystem`` answers."""
    FAILED = 0
    ALREADY_IN_PROGRESS = 1
    STARTED = 2


@dataclass(frozen=True)
class ResizeProgress:
    """``resize_status()``: whether a resize runs, the sizes in bytes."""
    in_progress: bool
    current_size: int
    target_size: int


class FileType(enum.IntEnum):
    """The type of a guest file (valet.v1.FileInfo.Type)."""
    UNSPECIFIED = 0
    FILE = 1
    DIRECTORY = 2
    SYMLINK = 3
    OTHER = 4


@dataclass(frozen=True)
class FileInfo:
    """One guest file. ``mode`` holds the permission bits only (07777);
    ``owner``/``group`` are names, empty when the guest has none for the ids;
    ``mtime_ns`` is exact, ``mtime`` the same as a datetime (microseconds)."""
    path: str
    type: FileType
    size: int
    mode: int
    uid: int
    gid: int
    mtime: _dt.datetime
    mtime_ns: int
    symlink_target: str = ""
    owner: str = ""
    group: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == FileType.DIRECTORY

    @property
    def is_file(self) -> bool:
        return self.type == FileType.FILE

    @property
    def is_symlink(self) -> bool:
        return self.type == FileType.SYMLINK


@dataclass(frozen=True)
class TreeSummary:
    """What a tree transfer moved: counts and file bytes."""
    files: int
    directories: int
    symlinks: int
    bytes: int


class Stream(enum.IntEnum):
    """Which output an ``Output`` event carries."""
    UNSPECIFIED = 0
    STDOUT = 1
    STDERR = 2
    PTY = 3


@dataclass(frozen=True)
class Started:
    """A process started (or was attached to): valet's ``id``, the kernel's ``pid``, its ``tag``."""
    id: int
    pid: int
    tag: str


@dataclass(frozen=True)
class Output:
    """Bytes of one stream at ``offset`` (bytes of that stream since the
    start); ``dropped`` bytes were lost before it (the guest's ring buffer had
    moved on)."""
    stream: Stream
    offset: int
    data: bytes
    dropped: int = 0


@dataclass(frozen=True)
class Exited:
    """The end of a process: ``exit_code`` (-1 when killed) and ``signal`` (0 when it exited)."""
    exit_code: int
    signal: int
    core_dumped: bool = False
    ended: Optional[_dt.datetime] = None


Event = "Started | Output | Exited"


@dataclass(frozen=True)
class ProcessInfo:
    """A process the guest's valet started and still remembers."""
    id: int
    pid: int
    tag: str
    argv: List[str]
    running: bool
    exited: Optional[Exited]
    pty: bool
    user: str
    started: Optional[_dt.datetime]


@dataclass
class Result:
    """A finished process: its output and how it ended. ``exit_code`` is -1
    and ``signal`` non-zero when a signal killed it."""
    argv: List[str]
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = -1
    signal: int = 0
    core_dumped: bool = False
    id: int = 0
    pid: int = 0
    tag: str = ""
    dropped: int = field(default=0, repr=False)

    @property
    def ok(self) -> bool:
        """True when the process exited with 0."""
        return self.exit_code == 0 and self.signal == 0

    @property
    def text(self) -> str:
        """stdout as text (UTF-8, undecodable bytes replaced)."""
        return self.stdout.decode(errors="replace")


@dataclass(frozen=True)
class Restored:
    """``restored()``: how far the guest clock was stepped and the generation it had before."""
    clock_step: _dt.timedelta
    previous_generation: str
