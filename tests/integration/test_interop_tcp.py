"""TCP without stalls: every reply leaves at once (TCP_NODELAY). Without it,
a reply written while an earlier one on the same connection is still
unacknowledged waits for the client's delayed ACK (~40 ms): two calls in
flight on one channel, one answered at once (Mount) and one a moment later
(LaunchProcess waiting for `true`), showed it in 93 of 100 rounds."""
import socket
import time

from valet import Maitred, sanitized
from lanes import exclusive

# A loopback call takes about 1 ms here (a few under ASan); a delayed-ACK
# stall takes 40 ms or more. The acceptance threshold is 30 ms.
THRESHOLD_MS = 30
# The machine is shared (2 cores, other builds): a few calls may lose the
# CPU for longer than that. Nagle's stalls are systematic (1091 of 2000
# calls without TCP_NODELAY), so a handful of slow calls is tolerated.
MAX_SLOW = 10


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_maitred(args=()):
    port = free_tcp_port()
    m = Maitred(["--listen", f"tcp:127.0.0.1:{port}"] + list(args))
    m.wait_log(f"Server listening on tcp:127.0.0.1:{port}")
    return m, f"127.0.0.1:{port}"


class Channel:
    def __init__(self, target):
        import grpc
        import guest_pb2
        self.ch = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        self.mount = self.ch.unary_unary("/vm_tools.Maitred/Mount",
                                         request_serializer=guest_pb2.MountRequest.SerializeToString,
                                         response_deserializer=guest_pb2.MountResponse.FromString)
        self.launch = self.ch.unary_unary("/vm_tools.Maitred/LaunchProcess",
                                          request_serializer=guest_pb2.LaunchProcessRequest.SerializeToString,
                                          response_deserializer=guest_pb2.LaunchProcessResponse.FromString)


def timed_pair(c):
    """A waiting LaunchProcess and a Mount in flight together; the time of each."""
    import guest_pb2
    t = time.monotonic()
    done = {}
    f1 = c.launch.future(guest_pb2.LaunchProcessRequest(argv=["true"], wait_for_exit=True), timeout=10)
    f1.add_done_callback(lambda f: done.setdefault("launch", time.monotonic()))
    f2 = c.mount.future(guest_pb2.MountRequest(source="none", target="/nonexistent/valet", fstype="none"), timeout=10)
    f2.add_done_callback(lambda f: done.setdefault("mount", time.monotonic()))
    assert f1.result().status == guest_pb2.EXITED
    assert f2.result().error != 0
    return [(done[k] - t) * 1000 for k in ("launch", "mount")]


# Counts calls slower than 30 ms.
@exclusive
def test_tcp_two_thousand_sequential_calls_none_stalls():
    m, target = tcp_maitred()
    threshold = THRESHOLD_MS * (3 if sanitized() else 1)
    slow = {"new connection": [], "steady": []}
    # 400 calls on fresh connections (the replies follow the server's
    # SETTINGS), then 1600 on one connection.
    for _ in range(200):
        c = Channel(target)
        slow["new connection"] += [round(ms, 1) for ms in timed_pair(c) if ms > threshold]
        c.ch.close()
    c = Channel(target)
    timed_pair(c)  # connect outside the measurement
    for _ in range(800):
        slow["steady"] += [round(ms, 1) for ms in timed_pair(c) if ms > threshold]
    c.ch.close()
    assert len(slow["new connection"]) + len(slow["steady"]) <= MAX_SLOW, \
        f"more than {MAX_SLOW} calls over {threshold} ms: {len(slow['new connection'])}/400 on new connections " \
        f"{slow['new connection'][:8]}, {len(slow['steady'])}/1600 steady {slow['steady'][:8]}"
    assert m.stop() == 0
