"""Errors: one exception class per gRPC status code, all under valet.Error.

A call the guest refuses raises the class of its status code with the
guest's own message (which names the path or the field). Where Python has a
matching built-in exception the class is that too, so that code written for
local files keeps working: ``except FileNotFoundError`` catches
``valet.NotFound``.
"""
from __future__ import annotations

import errno as _errno
from typing import Dict, Optional, Type

import grpc

__all__ = [
    "Error", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "Internal", "Unavailable", "DataLoss", "Unauthenticated", "ProtocolError", "ProcessError",
]


class Error(Exception):
    """Every error the SDK raises. ``code`` is the gRPC status code (None for
    errors that are not a call's status), ``message`` the guest's text."""

    code: Optional[grpc.StatusCode] = None

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class Cancelled(Error):
    """The call was cancelled (CANCELLED)."""
    code = grpc.StatusCode.CANCELLED


class Unknown(Error):
    """UNKNOWN."""
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(Error, ValueError):
    """A bad or missing argument (INVALID_ARGUMENT): a relative path, an unknown user..."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(Error, TimeoutError):
    """The call's timeout passed (DEADLINE_EXCEEDED)."""
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(Error, FileNotFoundError):
    """NOT_FOUND: a missing path, process or tag."""
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(Error, FileExistsError):
    """ALREADY_EXISTS."""
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(Error, PermissionError):
    """PERMISSION_DENIED: the user may not, or the method is disabled on the guest."""
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(Error):
    """RESOURCE_EXHAUSTED: a full disk, too many open files, a message too large."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """FAILED_PRECONDITION: not a directory, a non-empty directory, a read-only or frozen file system."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(Error):
    """ABORTED."""
    code = grpc.StatusCode.ABORTED


class OutOfRange(Error):
    """OUT_OF_RANGE."""
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(Error):
    """UNIMPLEMENTED: the guest does not serve this method (an older valet, another agent)."""
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(Error):
    """INTERNAL: an unexpected failure in the guest (its message carries strerror)."""
    code = grpc.StatusCode.INTERNAL


class Unavailable(Error, ConnectionError):
    """UNAVAILABLE: the guest cannot be reached, or a tunnel's target refused."""
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(Error):
    """DATA_LOSS: a digest that does not match."""
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(Error):
    """UNAUTHENTICATED."""
    code = grpc.StatusCode.UNAUTHENTICATED


class ProtocolError(Error):
    """The peer broke a protocol the SDK speaks itself (vsh frames, the hybrid vsock handshake)."""


class ProcessError(Error):
    """``run(..., check=True)`` of a process that did not exit with 0; ``result`` is its Result."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


_BY_CODE: Dict[grpc.StatusCode, Type[Error]] = {
    c.code: c for c in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
                        PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
                        Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated)
}

# The errno table of the valet.v1 conventions, for the Maitred methods that
# answer with an errno (Mount, Mount9P).
_BY_ERRNO: Dict[int, Type[Error]] = {
    _errno.ENOENT: NotFound, _errno.EEXIST: AlreadyExists, _errno.EACCES: PermissionDenied,
    _errno.EPERM: PermissionDenied, _errno.ENOSPC: ResourceExhausted, _errno.EDQUOT: ResourceExhausted,
    _errno.EMFILE: ResourceExhausted, _errno.ENOTDIR: FailedPrecondition, _errno.EISDIR: FailedPrecondition,
    _errno.ENOTEMPTY: FailedPrecondition, _errno.EBUSY: FailedPrecondition, _errno.EROFS: FailedPrecondition,
    _errno.EINVAL: InvalidArgument,
}


def from_status(code: grpc.StatusCode, message: str) -> Error:
    """The exception for a status code and its message."""
    cls = _BY_CODE.get(code, Unknown)
    return cls(message or code.name, code)


def from_rpc_error(e: grpc.RpcError) -> Error:
    """The exception for a failed grpcio call (sync or asyncio)."""
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    return from_status(code or grpc.StatusCode.UNKNOWN, details or "")


def from_errno(err: int, what: str) -> Error:
    """The exception for an errno a Maitred method answered with."""
    cls = _BY_ERRNO.get(err, Internal)
    return cls(f"{what}: {_errno_text(err)}")


def _errno_text(err: int) -> str:
    import os
    return f"{os.strerror(err)} (errno {err})"
