"""valet: drive a valet guest (maitred, vshd) from Python.

    import valet

    with valet.Guest("vsock:3") as guest:
        print(guest.kernel_version().release)
        guest.files.write("/tmp/hello", b"hello\\n")
        print(guest.run(["cat", "/tmp/hello"]).stdout)

``Guest`` (blocking) and ``AsyncGuest`` (asyncio) have the same methods.
Errors are ``valet.Error`` and its subclasses, one per gRPC status code.
See docs/sdk.md.
"""
from .address import (MAITRED_PORT, STARTUP_LISTENER_PORT, VSH_PORT, Address, parse_address)
from .aio import AsyncFiles, AsyncForward, AsyncFrozen, AsyncGuest, AsyncProcess
from .errors import (Aborted, AlreadyExists, Cancelled, DataLoss, DeadlineExceeded, Error, FailedPrecondition,
                     Internal, InvalidArgument, NotFound, OutOfRange, PermissionDenied, ProcessError, ProtocolError,
                     ResourceExhausted, Unauthenticated, Unavailable, Unimplemented, Unknown)
from .files import Files
from .guest import Frozen, Guest, Network
from .process import Process
from .ready import ReadyListener, wait_ready
from .tunnel import Forward
from .types import (Exited, FileInfo, FileType, KernelVersion, LaunchResult, LaunchStatus, Output, ProcessInfo,
                    ResizeProgress, ResizeStatus, Restored, Result, Started, Stream, TreeSummary)

__version__ = "0.1.0"

__all__ = [
    "Guest", "AsyncGuest", "Files", "AsyncFiles", "Process", "AsyncProcess", "Forward", "AsyncForward", "Frozen",
    "AsyncFrozen", "Network", "wait_ready", "ReadyListener", "Address", "parse_address", "MAITRED_PORT", "VSH_PORT",
    "STARTUP_LISTENER_PORT",
    "Error", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "Internal", "Unavailable", "DataLoss", "Unauthenticated", "ProtocolError", "ProcessError",
    "KernelVersion", "LaunchStatus", "LaunchResult", "ResizeStatus", "ResizeProgress", "FileType", "FileInfo",
    "TreeSummary", "Stream", "Started", "Output", "Exited", "ProcessInfo", "Result", "Restored",
]
