"""Files of the guest (valet.v1.Files) for Guest: ``guest.files``."""
from __future__ import annotations

import io
import os
import stat as _stat
import tempfile
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union, overload

import grpc

from . import _convert as cv
from . import _ops as ops
from ._channel import DEFAULT
from ._methods import FILES
from ._proto import files_pb2
from .errors import Error, ProtocolError
from .types import FileInfo, TreeSummary

if TYPE_CHECKING:
    from .guest import Guest

__all__ = ["Files", "Progress", "CHUNK"]

# Data messages just under 16 KiB: one fits the stream's initial HTTP/2
# window, so maitred takes it without a reservation (docs/benchmarks.md,
# maitctl cp measured it), and Python handles few enough of them.
CHUNK = 16 * 1024 - 64
Progress = Callable[[int, Optional[int]], None]
"""A progress callback: (bytes done, bytes in all or None when unknown)."""
Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]
Dest = Union[str, "os.PathLike[str]", IO[bytes]]


def _chunks_of(source: Any, progress: Optional[Progress]) -> Tuple[Iterator[bytes], Optional[int], Any]:
    """(chunks, total size or None, file to close or None)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        total = len(view)

        def gen_bytes() -> Iterator[bytes]:
            for off in range(0, total, CHUNK):
                yield bytes(view[off:off + CHUNK])
                if progress:
                    progress(min(off + CHUNK, total), total)
        return gen_bytes(), total, None
    opened = None
    if isinstance(source, (str, os.PathLike)):
        opened = source = open(source, "rb")
    try:
        total = os.fstat(source.fileno()).st_size if hasattr(source, "fileno") else None
    except (OSError, io.UnsupportedOperation, AttributeError):
        total = None

    def gen_file() -> Iterator[bytes]:
        done = 0
        while True:
            b = source.read(CHUNK)
            if not b:
                return
            done += len(b)
            yield b
            if progress:
                progress(done, total)
    return gen_file(), total, opened


class Files:
    """The guest's files. Paths in the guest are absolute; ``user`` (a name
    from the guest's /etc/passwd, root when empty) makes a call act as that
    user. Transfers have no deadline unless ``timeout`` is given; the others
    take the guest's default. A failed or cancelled call leaves nothing
    half-written in the guest."""

    def __init__(self, guest: "Guest") -> None:
        self._g = guest

    def _stream(self, name: str) -> Any:
        return self._g._call(FILES[name])

    # -- one file ----------------------------------------------------------

    def write(self, path: str, source: Source, *, mode: Optional[int] = None, user: str = "",
              make_parents: bool = False, no_replace: bool = False, mtime: Optional[cv.TimeLike] = None,
              sha256: Optional[bytes] = None, progress: Optional[Progress] = None,
              timeout: Optional[float] = None) -> FileInfo:
        """Creates or replaces the guest file ``path``, atomically, from
        ``source``: bytes, a local path (str or PathLike), or a binary file
        object. ``mode`` defaults to 0644 or the replaced file's;
        ``no_replace`` raises AlreadyExists instead of replacing; ``sha256``
        (the expected digest) raises DataLoss on a mismatch, the target
        untouched. Returns the new file's FileInfo."""
        requests, opened = write_requests(path, source, mode=mode, user=user, make_parents=make_parents,
                                          no_replace=no_replace, mtime=mtime, sha256=sha256, progress=progress)
        guarded = Guarded(requests)
        try:
            r = self._stream("Write")(guarded, timeout=timeout)
        except grpc.RpcError as e:
            guarded.check()
            raise self._g._error(e) from None
        finally:
            if opened is not None:
                opened.close()
        return cv.file_info(r.info)

    @overload
    def read(self, path: str, into: None = None, *, offset: int = 0, length: int = 0, user: str = "",
             progress: Optional[Progress] = None, timeout: Optional[float] = None) -> bytes: ...

    @overload
    def read(self, path: str, into: Dest, *, offset: int = 0, length: int = 0, user: str = "",
             progress: Optional[Progress] = None, timeout: Optional[float] = None) -> FileInfo: ...

    def read(self, path: str, into: Optional[Dest] = None, *, offset: int = 0, length: int = 0, user: str = "",
             progress: Optional[Progress] = None, timeout: Optional[float] = None) -> Union[bytes, FileInfo]:
        """Reads the guest file ``path`` (from ``offset``, ``length`` bytes
        when not 0). Without ``into`` returns the bytes; with ``into`` (a
        local path or a binary file object) writes them there and returns the
        guest file's FileInfo. A local path is replaced atomically (a
        temporary file beside it, renamed at the end)."""
        req = files_pb2.ReadRequest(path=path, offset=offset, length=length, user=user)
        if into is None:
            parts: List[bytes] = []
            self._read(req, parts.append, progress, timeout)
            return b"".join(parts)
        if isinstance(into, (str, os.PathLike)):
            with AtomicFile(into) as f:
                return f.commit(self._read(req, f.write, progress, timeout))
        return self._read(req, into.write, progress, timeout)

    def _read(self, req: files_pb2.ReadRequest, sink: Callable[[bytes], Any], progress: Optional[Progress],
              timeout: Optional[float]) -> FileInfo:
        reader = ReadSink(req, sink, progress)
        try:
            for m in self._stream("Read")(req, timeout=timeout):
                reader.take(m)
        except grpc.RpcError as e:
            raise self._g._error(e) from None
        return reader.info()

    def stat(self, path: str, *, follow_symlinks: bool = False, user: str = "", timeout: Any = DEFAULT) -> FileInfo:
        """One guest file's FileInfo (a symlink's own unless ``follow_symlinks``). NotFound when missing."""
        return self._g._op(ops.stat(path, follow_symlinks, user), timeout)

    def exists(self, path: str, *, user: str = "") -> bool:
        """Whether ``path`` exists in the guest (a dangling symlink does)."""
        from .errors import NotFound
        try:
            self.stat(path, user=user)
            return True
        except NotFound:
            return False

    def list(self, path: str, *, depth: int = 1, user: str = "", timeout: Any = DEFAULT) -> List[FileInfo]:
        """A directory's entries (absolute paths); ``depth`` > 1 goes deeper,
        each level after its directory."""
        try:
            return ops.file_infos(list(self._stream("List")(ops.list_request(path, depth, user),
                                                            timeout=self._g._deadline(timeout))))
        except grpc.RpcError as e:
            raise self._g._error(e) from None

    def mkdir(self, path: str, *, mode: Optional[int] = None, parents: bool = False, user: str = "",
              timeout: Any = DEFAULT) -> FileInfo:
        """Makes a directory (``parents``: and its missing parents; an
        existing directory is then no error)."""
        return self._g._op(ops.mkdir(path, mode, parents, user), timeout)

    def remove(self, path: str, *, recursive: bool = False, user: str = "", timeout: Any = DEFAULT) -> int:
        """Removes a file, a symlink (never what it points to), an empty
        directory, or with ``recursive`` a tree; returns how many entries went."""
        return self._g._op(ops.remove(path, recursive, user), timeout)

    def move(self, source: str, destination: str, *, no_replace: bool = False, user: str = "",
             timeout: Any = DEFAULT) -> FileInfo:
        """Renames within the guest; returns the destination's FileInfo."""
        return self._g._op(ops.move(source, destination, no_replace, user), timeout)

    # -- trees -------------------------------------------------------------

    def upload(self, local_dir: Union[str, "os.PathLike[str]"], guest_root: str, *, user: str = "",
               make_parents: bool = False, keep_owners: bool = False, progress: Optional[Progress] = None,
               timeout: Optional[float] = None) -> TreeSummary:
        """Copies the local directory tree ``local_dir`` to ``guest_root``
        (created; what is there is merged into): files, directories,
        symlinks (as they are) and hard links, with modes and mtimes.
        Other file types (sockets, devices, fifos) are skipped. Everything
        belongs to ``user`` unless ``keep_owners`` (as root)."""
        requests = tree_requests(local_dir, guest_root, user=user, make_parents=make_parents,
                                 keep_owners=keep_owners, progress=progress)
        guarded = Guarded(requests)
        try:
            summary = self._stream("WriteTree")(guarded, timeout=timeout)
        except grpc.RpcError as e:
            guarded.check()
            raise self._g._error(e) from None
        guarded.check()
        return cv.tree_summary(summary)

    def download(self, guest_root: str, local_dir: Union[str, "os.PathLike[str]"], *, user: str = "",
                 progress: Optional[Progress] = None, timeout: Optional[float] = None) -> TreeSummary:
        """Copies the guest tree ``guest_root`` into the local directory
        ``local_dir`` (created if missing): files, directories, symlinks,
        hard links, modes and mtimes. Nothing is written outside
        ``local_dir``: an entry naming a path outside it, or through a
        symlink, raises ProtocolError."""
        with TreeWriter(os.fspath(local_dir), progress) as writer:
            try:
                for m in self._stream("ReadTree")(files_pb2.ReadTreeRequest(root=guest_root, user=user),
                                                  timeout=timeout):
                    writer.take(m)
            except grpc.RpcError as e:
                raise self._g._error(e) from None
            return writer.finish()


def write_requests(path: str, source: Any, *, mode: Optional[int], user: str, make_parents: bool,
                   no_replace: bool, mtime: Optional[cv.TimeLike], sha256: Optional[bytes],
                   progress: Optional[Progress]) -> Tuple[Iterator[files_pb2.WriteRequest], Any]:
    """A Write's messages (the header, then the data), and the local file
    opened for it (to close at the end) or None."""
    header = files_pb2.WriteHeader(path=path, user=user, make_parents=make_parents, no_replace=no_replace,
                                   **cv.optional_mode(mode))
    if mtime is not None:
        cv.timestamp(mtime, header.mtime)
    if sha256 is not None:
        header.sha256 = sha256
    chunks, _, opened = _chunks_of(source, progress)

    def requests() -> Iterator[files_pb2.WriteRequest]:
        yield files_pb2.WriteRequest(header=header)
        for c in chunks:
            yield files_pb2.WriteRequest(data=c)
    return requests(), opened


class AtomicFile:
    """A local file replaced atomically: written to a temporary file beside
    it, renamed over it by ``commit()``; removed if the block fails first."""

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.target = os.fspath(path)
        fd, self.tmp = tempfile.mkstemp(prefix=".valet-", dir=os.path.dirname(os.path.abspath(self.target)))
        self.file = os.fdopen(fd, "wb")
        self.write = self.file.write

    def commit(self, info: FileInfo) -> FileInfo:
        """Takes the guest file's permission bits and puts the file in place."""
        os.fchmod(self.file.fileno(), info.mode & 0o777)
        self.file.close()
        os.replace(self.tmp, self.target)
        self.tmp = ""
        return info

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.tmp:
            self.file.close()
            os.unlink(self.tmp)


class ReadSink:
    """A Read's answers: the info, then data handed to a sink in order."""

    def __init__(self, req: files_pb2.ReadRequest, sink: Callable[[bytes], Any], progress: Optional[Progress]) -> None:
        self.req, self.sink, self.progress = req, sink, progress
        self._info: Optional[FileInfo] = None
        self.done = 0
        self.total: Optional[int] = None

    def take(self, m: files_pb2.ReadResponse) -> None:
        kind = m.WhichOneof("part")
        if kind == "data":
            self.sink(m.data)
            self.done += len(m.data)
            if self.progress:
                self.progress(self.done, self.total)
        elif kind == "info":
            self._info = cv.file_info(m.info)
            total = max(0, self._info.size - self.req.offset)
            self.total = min(total, self.req.length) if self.req.length else total

    def info(self) -> FileInfo:
        if self._info is None:
            raise ProtocolError(f"the guest's answer to reading {self.req.path} had no file info")
        return self._info


def tree_requests(local_dir: Any, guest_root: str, *, user: str, make_parents: bool, keep_owners: bool,
                  progress: Optional[Progress]) -> Iterator[files_pb2.TreeRequest]:
    """A WriteTree's messages: the header, then each entry with its data.
    The local tree is walked now (a missing directory raises here)."""
    entries, total = _local_tree(os.fspath(local_dir))
    header = files_pb2.TreeHeader(root=guest_root, user=user, make_parents=make_parents, keep_owners=keep_owners)

    def gen() -> Iterator[files_pb2.TreeRequest]:
        yield files_pb2.TreeRequest(header=header)
        done = 0
        for full, entry in entries:
            yield files_pb2.TreeRequest(entry=entry)
            if entry.type != files_pb2.FileInfo.FILE or entry.hardlink_to:
                continue
            left = entry.size
            with open(full, "rb") as f:
                while left:
                    b = f.read(min(CHUNK, left))
                    if not b:
                        raise Error(f"{full} shrank while it was uploaded")
                    left -= len(b)
                    done += len(b)
                    yield files_pb2.TreeRequest(data=b)
                    if progress:
                        progress(done, total)
    return gen()


class Guarded:
    """A request iterator whose exception is kept: grpcio cancels the call
    when its request iterator raises (so the guest commits nothing: ending
    the stream instead would commit a short file), but answers with its own
    status; the caller should see why."""

    def __init__(self, it: Iterator[Any]) -> None:
        self.it = it
        self.error: Optional[BaseException] = None

    def __iter__(self) -> "Guarded":
        return self

    def __next__(self) -> Any:
        try:
            return next(self.it)
        except StopIteration:
            raise
        except BaseException as e:
            self.error = e
            raise

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def _local_tree(root: str) -> Tuple[List[Tuple[str, files_pb2.TreeEntry]], int]:
    """The entries of a local tree in order (a directory before what it
    holds), with the total of file bytes."""
    if not os.path.isdir(root):
        raise NotADirectoryError(f"{root} is not a directory")
    out: List[Tuple[str, files_pb2.TreeEntry]] = []
    links: Dict[Tuple[int, int], str] = {}
    total = 0
    for top, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + names):
            full = os.path.join(top, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            e = files_pb2.TreeEntry(path=rel, mode=_stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
            e.mtime.seconds, e.mtime.nanos = divmod(st.st_mtime_ns, 10**9)
            if _stat.S_ISDIR(st.st_mode):
                e.type = files_pb2.FileInfo.DIRECTORY
            elif _stat.S_ISLNK(st.st_mode):
                e.type = files_pb2.FileInfo.SYMLINK
                e.symlink_target = os.readlink(full)
            elif _stat.S_ISREG(st.st_mode):
                e.type = files_pb2.FileInfo.FILE
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    e.hardlink_to = links[key]
                else:
                    links[key] = rel
                    e.size = st.st_size
                    total += st.st_size
            else:
                continue
            out.append((full, e))
    return out, total


class TreeWriter:
    """Writes a ReadTree stream's entries below a local root, never outside."""

    def __init__(self, root: str, progress: Optional[Progress]) -> None:
        os.makedirs(root, exist_ok=True)
        self.root = os.path.realpath(root)
        self.progress = progress
        self.done = 0
        self.file: Optional[int] = None
        self.left = 0
        self.current = ""
        self.dirs: List[Tuple[str, int, int]] = []
        self.counts = {"files": 0, "directories": 0, "symlinks": 0, "bytes": 0}

    def _place(self, rel: str) -> str:
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ProtocolError(f"the guest sent a tree entry with a bad path {rel!r}")
        full = os.path.join(self.root, *parts)
        parent = os.path.realpath(os.path.dirname(full))
        if parent != self.root and not parent.startswith(self.root + os.sep):
            raise ProtocolError(f"the tree entry {rel!r} would be written outside {self.root} (through a symlink)")
        return full

    def take(self, m: files_pb2.TreeResponse) -> None:
        if m.WhichOneof("part") == "entry":
            self.entry(m.entry)
        else:
            self.data(m.data)

    def entry(self, e: files_pb2.TreeEntry) -> None:
        if self.left:
            raise ProtocolError(f"the guest's tree stream left {self.current} {self.left} bytes short")
        self._close()
        full = self._place(e.path)
        mtime_ns = cv.ns_of(e.mtime)
        if e.type == files_pb2.FileInfo.DIRECTORY:
            if not os.path.isdir(full) or os.path.islink(full):
                os.mkdir(full, 0o700)
            self.dirs.append((full, e.mode, mtime_ns))
            self.counts["directories"] += 1
        elif e.type == files_pb2.FileInfo.SYMLINK:
            if os.path.lexists(full):
                os.unlink(full)
            os.symlink(e.symlink_target, full)
            os.utime(full, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
            self.counts["symlinks"] += 1
        elif e.type == files_pb2.FileInfo.FILE and e.hardlink_to:
            if os.path.lexists(full):
                os.unlink(full)
            os.link(self._place(e.hardlink_to), full, follow_symlinks=False)
            self.counts["files"] += 1
        elif e.type == files_pb2.FileInfo.FILE:
            if os.path.islink(full):
                os.unlink(full)
            self.file = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            self.current, self.left = full, e.size
            self.mode, self.mtime_ns = e.mode, mtime_ns
            self.counts["files"] += 1
            if not self.left:
                self._close()
        else:
            raise ProtocolError(f"the guest sent a tree entry of unknown type {e.type} ({e.path!r})")

    def data(self, b: bytes) -> None:
        if self.file is None or len(b) > self.left:
            raise ProtocolError("the guest sent more file data than its tree entry announced")
        view = memoryview(b)
        while view:
            n = os.write(self.file, view)
            view = view[n:]
        self.left -= len(b)
        self.done += len(b)
        self.counts["bytes"] += len(b)
        if self.progress:
            self.progress(self.done, None)
        if not self.left:
            self._close()

    def _close(self) -> None:
        if self.file is not None:
            os.fchmod(self.file, self.mode & 0o7777)
            os.utime(self.file, ns=(self.mtime_ns, self.mtime_ns))
            os.close(self.file)
            self.file = None

    def finish(self) -> TreeSummary:
        if self.left:
            raise ProtocolError(f"the guest's tree stream ended {self.left} bytes short of {self.current}")
        self._close()
        # Directories after their contents, deepest first.
        for full, mode, mtime_ns in reversed(self.dirs):
            os.chmod(full, mode & 0o7777)
            os.utime(full, ns=(mtime_ns, mtime_ns))
        return TreeSummary(**self.counts)

    def abort(self) -> None:
        if self.file is not None:
            os.close(self.file)
            self.file = None

    def __enter__(self) -> "TreeWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.abort()
