"""The methods the SDK calls: path, kind and message classes, written over
grpcio's generic multicallables (``channel.unary_unary`` and friends), which
work the same on a ``grpc.Channel`` and a ``grpc.aio.Channel``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

from google.protobuf import empty_pb2

from ._proto import common_pb2, files_pb2, guest_pb2, process_pb2, snapshot_pb2, tunnel_pb2

# The largest message either side sends: the 4 MiB of valet.v1, with room.
MAX_MESSAGE = 8 << 20
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]


@dataclass(frozen=True)
class Method:
    path: str
    kind: str  # unary_unary, unary_stream, stream_unary, stream_stream
    request: Any
    response: Any


def _table(service: str, kinds: Dict[str, tuple]) -> Dict[str, Method]:
    return {name: Method(f"/{service}/{name}", kind, req, resp) for name, (kind, req, resp) in kinds.items()}


E = common_pb2.EmptyMessage
U = "unary_unary"

MAITRED = _table("vm_tools.Maitred", {
    "ConfigureNetwork": (U, guest_pb2.NetworkConfigRequest, E),
    "Shutdown": (U, E, E),
    "LaunchProcess": (U, guest_pb2.LaunchProcessRequest, guest_pb2.LaunchProcessResponse),
    "Mount": (U, guest_pb2.MountRequest, guest_pb2.MountResponse),
    "SetResolvConfig": (U, guest_pb2.SetResolvConfigRequest, E),
    "SetTime": (U, guest_pb2.SetTimeRequest, E),
    "SetTimezone": (U, guest_pb2.SetTimezoneRequest, E),
    "GetKernelVersion": (U, E, guest_pb2.GetKernelVersionResponse),
    "GetAvailableSpace": (U, E, guest_pb2.GetAvailableSpaceResponse),
    "ResizeFilesystem": (U, guest_pb2.ResizeFilesystemRequest, guest_pb2.ResizeFilesystemResponse),
    "GetResizeStatus": (U, E, guest_pb2.GetResizeStatusResponse),
    "GetResizeBounds": (U, E, guest_pb2.GetResizeBoundsResponse),
    "PrepareToSuspend": (U, E, E),
    "OnHostNetworkChanged": (U, E, E),
    "ResetIPv6": (U, E, E),
    "Mount9P": (U, guest_pb2.Mount9PRequest, guest_pb2.MountResponse),
})

FILES = _table("valet.v1.Files", {
    "Write": ("stream_unary", files_pb2.WriteRequest, files_pb2.WriteResponse),
    "Read": ("unary_stream", files_pb2.ReadRequest, files_pb2.ReadResponse),
    "Stat": (U, files_pb2.StatRequest, files_pb2.FileInfo),
    "List": ("unary_stream", files_pb2.ListRequest, files_pb2.FileInfo),
    "MakeDirectory": (U, files_pb2.MakeDirectoryRequest, files_pb2.FileInfo),
    "Remove": (U, files_pb2.RemoveRequest, files_pb2.RemoveResponse),
    "Move": (U, files_pb2.MoveRequest, files_pb2.FileInfo),
    "WriteTree": ("stream_unary", files_pb2.TreeRequest, files_pb2.TreeSummary),
    "ReadTree": ("unary_stream", files_pb2.ReadTreeRequest, files_pb2.TreeResponse),
})

PROCESS = _table("valet.v1.Process", {
    "Start": ("unary_stream", process_pb2.StartRequest, process_pb2.ProcessEvent),
    "Connect": ("unary_stream", process_pb2.ConnectRequest, process_pb2.ProcessEvent),
    "List": (U, process_pb2.ListProcessesRequest, process_pb2.ListProcessesResponse),
    "SendInput": (U, process_pb2.SendInputRequest, empty_pb2.Empty),
    "SendSignal": (U, process_pb2.SendSignalRequest, empty_pb2.Empty),
    "Resize": (U, process_pb2.ResizeRequest, empty_pb2.Empty),
})

TUNNEL = _table("valet.v1.Tunnel", {
    "Connect": ("stream_stream", tunnel_pb2.TunnelRequest, tunnel_pb2.TunnelResponse),
})

SNAPSHOT = _table("valet.v1.Snapshot", {
    "Freeze": (U, snapshot_pb2.FreezeRequest, snapshot_pb2.FreezeResponse),
    "Thaw": (U, empty_pb2.Empty, snapshot_pb2.ThawResponse),
    "Restored": (U, snapshot_pb2.RestoredRequest, snapshot_pb2.RestoredResponse),
})

STARTUP_LISTENER_SERVICE = "vm_tools.StartupListener"


class Stubs:
    """Multicallables of every method on one channel, made on first use."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._made: Dict[str, Any] = {}

    def __call__(self, m: Method) -> Any:
        c = self._made.get(m.path)
        if c is None:
            c = getattr(self._channel, m.kind)(m.path, request_serializer=m.request.SerializeToString,
                                               response_deserializer=m.response.FromString)
            self._made[m.path] = c
        return c
