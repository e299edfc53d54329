"""valet.v1.Tunnel against a real maitred, from the contract alone
(shared/spec's valet-v1.md, "valet.v1.Tunnel"; docs/tunnel.md): Debian's
grpcio with classes generated at test time (tests/lib/tunnel_client.py).
The guest services are small servers on loopback and unix sockets of this
test; maitred connects to them as it would inside a guest."""
import os
import random
import socket
import struct
import threading
import time

import valet
from files_client import maitred
from lanes import timing
from tunnel_client import (MiB, Service, Tunnel, channel, connect_stub, data, echo, eof, free_port, read_all, sha,
                           target)


def _random(n, seed):
    return random.Random(seed).randbytes(n)


def _chunks(b, sizes=(1, 4093, 65537, MiB + 3, 7, 300001)):
    out, off, i = [], 0, 0
    while off < len(b):
        out.append(b[off:off + sizes[i % len(sizes)]])
        off += sizes[i % len(sizes)]
        i += 1
    return out


def _setup():
    m = maitred()
    ch = channel(m.addr)
    return m, ch, connect_stub(ch)


def _still_serving(stub):
    """A fresh tunnel to a fresh echo service works, byte-exact."""
    svc = Service(echo)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    t.send(b"still here")
    t.eof()
    t.close()
    assert t.rest() == (b"still here", ["data", "eof"], "OK", ""), "maitred stopped serving tunnels"
    svc.close()


def test_tunnel_binary_both_ways_exact():
    m, ch, stub = _setup()
    up, down = _random(6 * MiB + 17, 1), _random(5 * MiB + 3, 2)

    def service(c, rec):
        # Sends while it receives: both directions at once.
        sender = threading.Thread(target=lambda: (c.sendall(down), c.shutdown(socket.SHUT_WR)))
        sender.start()
        rec["got"] = read_all(c)
        sender.join()

    svc = Service(service)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    for c in _chunks(up):
        t.send(c)
    t.eof()
    t.close()
    got, kinds, code, details = t.rest()
    assert (code, details) == ("OK", ""), (code, details)
    assert kinds == ["data", "eof"], kinds
    assert sha(got) == sha(down) and len(got) == len(down), (len(got), len(down))
    rec = svc.wait()[0]
    assert sha(rec["got"]) == sha(up) and len(rec["got"]) == len(up), (len(rec["got"]), len(up))
    m.stop()


def test_tunnel_half_close_by_the_client():
    """The client's eof is the service's EOF; the service answers after it."""
    m, ch, stub = _setup()

    def service(c, rec):
        rec["got"] = read_all(c)
        c.sendall(b"answer after your eof: " + rec["got"])

    svc = Service(service)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    t.send(b"question")
    t.eof()
    # The request stream stays open: the eof message alone ends that way.
    r = t.next()
    assert r.data == b"answer after your eof: question", r
    assert t.next().eof
    t.close()
    assert t.rest() == (b"", [], "OK", "")
    assert svc.wait()[0]["got"] == b"question"
    m.stop()


def test_tunnel_half_close_by_the_service():
    """The service's shutdown(SHUT_WR) is an eof response; the client may
    still send, and the service still reads."""
    m, ch, stub = _setup()
    ready = threading.Event()

    def service(c, rec):
        c.sendall(b"banner")
        c.shutdown(socket.SHUT_WR)
        ready.set()
        rec["got"] = read_all(c)

    svc = Service(service)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    assert t.next().data == b"banner"
    assert t.next().eof
    assert ready.wait(10)
    t.send(b"sent after the service's eof")
    t.send(b", in two messages")
    t.eof()
    t.close()
    assert t.rest() == (b"", [], "OK", "")
    assert svc.wait()[0]["got"] == b"sent after the service's eof, in two messages"
    m.stop()


def test_tunnel_half_close_is_the_request_stream_ending_too():
    """No eof message: the end of the request stream is the client's eof."""
    m, ch, stub = _setup()
    svc = Service(echo)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    t.send(b"x" * 100000)
    t.close()
    assert t.rest() == (b"x" * 100000, ["data", "eof"], "OK", "")
    m.stop()


def test_tunnel_refused_port_is_unavailable():
    m, ch, stub = _setup()
    port = free_port()
    t = Tunnel(stub, target(port))
    t.close()
    assert t.rest() == (b"", [], "UNAVAILABLE", f"connect to tcp:127.0.0.1:{port}: Connection refused")
    _still_serving(stub)
    m.stop()


def test_tunnel_unix_socket_target():
    m, ch, stub = _setup()
    svc = Service(echo, unix=True)
    payload = _random(3 * MiB, 3)
    t = Tunnel(stub, target(unix_path=svc.path))
    assert t.next().connected
    for c in _chunks(payload):
        t.send(c)
    t.eof()
    t.close()
    got, kinds, code, details = t.rest()
    assert (code, kinds) == ("OK", ["data", "eof"]) and got == payload, (code, details, kinds, len(got))
    # A path with nothing there: NOT_FOUND, naming it.
    missing = svc.path + ".missing"
    t = Tunnel(stub, target(unix_path=missing))
    t.close()
    assert t.rest() == (b"", [], "NOT_FOUND", f"connect to unix:{missing}: No such file or directory")
    m.stop()


def test_tunnel_service_closes_mid_transfer():
    m, ch, stub = _setup()
    # 1: the service sends half of what it meant to and closes; the client
    # gets exactly that, then eof, and ends the call OK with its own eof.
    sent = _random(MiB + 5, 4)

    def short_writer(c, rec):
        c.sendall(sent)

    svc = Service(short_writer)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    got = []
    while True:
        r = t.next()
        if r.WhichOneof("part") != "data":
            break
        got.append(r.data)
    assert r.eof and b"".join(got) == sent
    t.eof()
    t.close()
    assert t.rest() == (b"", [], "OK", "")
    # 2: the service reads 100 000 bytes of 8 MiB and closes: the client's
    # further data cannot be delivered, the call ends UNAVAILABLE naming
    # the target (a reset, or a broken pipe: whichever the kernel says).
    def short_reader(c, rec):
        n = 0
        while n < 100000:
            b = c.recv(100000 - n)
            if not b:
                break
            n += len(b)
        rec["got"] = n

    svc2 = Service(short_reader)
    t = Tunnel(stub, target(svc2.port))
    assert t.next().connected
    for c in _chunks(_random(8 * MiB, 5), sizes=(65536,)):
        t.send(c)
    t.eof()
    t.close()
    got, kinds, code, details = t.rest()
    assert code == "UNAVAILABLE", (code, details)
    assert details.startswith(f"writing to tcp:127.0.0.1:{svc2.port}: ") or \
        details.startswith(f"reading from tcp:127.0.0.1:{svc2.port}: "), details
    assert details.endswith(("Connection reset by peer", "Broken pipe")), details
    assert svc2.wait()[0]["got"] == 100000
    _still_serving(stub)
    m.stop()


def test_tunnel_service_resets():
    """SO_LINGER 0: the service's close is a reset, the call's status."""
    m, ch, stub = _setup()
    gate = threading.Event()

    def resetter(c, rec):
        c.sendall(b"partial answer")
        gate.wait(10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    svc = Service(resetter)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    assert t.next().data == b"partial answer"
    gate.set()
    got, kinds, code, details = t.rest()
    assert (got, kinds, code, details) == \
        (b"", [], "UNAVAILABLE", f"reading from tcp:127.0.0.1:{svc.port}: Connection reset by peer")
    _still_serving(stub)
    m.stop()


def test_tunnel_host_that_stops_reading():
    """A client that stops reading stops the guest service: maitred holds
    a bounded amount (the call's send marks, the stream's window, the
    socket buffers), and another tunnel on the same connection goes on."""
    m, ch, stub = _setup()
    total = 64 * MiB
    blob = _random(MiB, 6)
    progress = {"sent": 0}

    def firehose(c, rec):
        for _ in range(total // MiB):
            c.sendall(blob)
            progress["sent"] += MiB
        c.shutdown(socket.SHUT_WR)
        read_all(c)

    svc = Service(firehose)
    # grpcio's BDP probe would grow its window to many MiB: fixed here, so
    # that what the host takes without reading is known (64 KiB).
    ch.close()
    ch = channel(m.addr, options=[("grpc.http2.bdp_probe", 0)])
    stub = connect_stub(ch)
    rss0 = m.rss_kib()
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    first = t.next().data
    assert len(first) > 0
    # Not reading: the service stops once everything in between is full.
    time.sleep(1)
    valet.wait_until(lambda: (s := progress["sent"], time.sleep(0.5))[0] == progress["sent"], 20,
                     what="the service to block")
    stalled = progress["sent"]
    grown = m.rss_kib() - rss0
    assert stalled < 16 * MiB, f"{stalled} bytes left the service with nobody reading"
    if not valet.sanitized():
        assert grown < 8 * 1024, f"maitred grew by {grown} KiB for one stalled tunnel"
    # Another tunnel on the same connection is unaffected.
    _still_serving(stub)
    # Reading again: every byte, in order.
    t.eof()
    t.close()
    got, kinds, code, details = t.rest()
    assert (kinds, code, details) == (["data", "eof"], "OK", ""), (kinds, code, details)
    got = first + got
    assert len(got) == total and got == blob * (total // MiB), len(got)
    m.stop()


def test_tunnel_bad_targets_and_messages():
    m, ch, stub = _setup()
    gate = threading.Event()

    def holder(c, rec):
        # Keeps its side open: the call cannot end OK under the test.
        read_all(c)
        gate.wait(30)

    svc = Service(holder)
    cases = [
        (target(0), "Connect: target: set port (1-65535) or unix_path"),
        (target(0, host="127.0.0.1"), "Connect: port 0 is out of range (1-65535)"),
        (target(70000), "Connect: port 70000 is out of range (1-65535)"),
        (target(unix_path="run/x.sock"), "Connect: unix_path 'run/x.sock' is not absolute"),
        (target(80, unix_path="/run/x.sock"), "Connect: target: set either unix_path or host and port, not both"),
        (target(80, host="example.com"),
         "Connect: host 'example.com' is not a numeric IPv4 or IPv6 address or localhost (the guest agent "
         "resolves no names)"),
        (data(b"no target"), "Connect: the first message must be the target"),
        (eof(), "Connect: the first message must be the target"),
    ]
    for first, want in cases:
        t = Tunnel(stub, first)
        t.close()
        assert t.rest() == (b"", [], "INVALID_ARGUMENT", want), (first, want)
    # After a good target: a second target, data after eof, a second eof,
    # an empty message.
    later = [
        ([target(svc.port)], "Connect: only the first message names the target"),
        ([eof(), data(b"late")], "Connect: data after eof"),
        ([eof(), eof()], "Connect: a second eof"),
        ([valet_empty()], "Connect: a message with neither data nor eof"),
    ]
    for msgs, want in later:
        t = Tunnel(stub, target(svc.port))
        assert t.next().connected
        for msg in msgs:
            t.raw(msg)
        got, kinds, code, details = t.rest()
        t.close()
        assert (code, details) == ("INVALID_ARGUMENT", want), (msgs, code, details)
    gate.set()
    _still_serving(stub)
    m.stop()


def valet_empty():
    from tunnel_client import pb
    return pb().TunnelRequest()


def test_tunnel_localhost_and_ipv6_targets():
    m, ch, stub = _setup()
    svc = Service(echo)
    for host in ("localhost", "127.0.0.1"):
        t = Tunnel(stub, target(svc.port, host=host))
        assert t.next().connected
        t.send(host.encode())
        t.close()
        assert t.rest() == (host.encode(), ["data", "eof"], "OK", "")
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    s6.listen(4)
    port6 = s6.getsockname()[1]
    for host in ("::1", "[::1]"):
        t = Tunnel(stub, target(port6, host=host))
        c, _ = s6.accept()
        assert t.next().connected
        c.sendall(b"six")
        c.close()
        t.close()
        assert t.rest() == (b"six", ["data", "eof"], "OK", "")
    m.stop()


def test_tunnel_hundred_at_once():
    m, ch, stub = _setup()
    svc = Service(echo)
    results = [None] * 100

    def one(i):
        payload = _random(200000 + i, 100 + i)
        t = Tunnel(stub, target(svc.port), timeout=120)
        assert t.next().connected
        for c in _chunks(payload, sizes=(65536,)):
            t.send(c)
        t.eof()
        t.close()
        got, kinds, code, details = t.rest()
        results[i] = (code, details, got == payload, kinds)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(180)
    assert results == [("OK", "", True, ["data", "eof"])] * 100, [r for r in results if r != ("OK", "", True,
                                                                                               ["data", "eof"])][:3]
    assert len(svc.wait(100)) == 100
    m.stop()


def test_tunnel_cancel_closes_the_socket_at_once():
    m, ch, stub = _setup()

    def service(c, rec):
        rec["got"] = read_all(c)

    svc = Service(service)
    t = Tunnel(stub, target(svc.port))
    assert t.next().connected
    t.send(b"before the cancel")
    valet.wait_until(lambda: svc.records, 10, what="the connection")
    time.sleep(0.2)
    t.call.cancel()
    rec = svc.wait()[0]
    assert rec["got"] == b"before the cancel", rec
    valet.wait_until(lambda: m.socket_count() == 2, 10, what="maitred to hold its listener and the connection only")
    m.stop()


# A target that never answers SYN (a listener whose accept queue is full
# drops them): the call's deadline ends it, nothing else waits.
@timing
def test_tunnel_target_that_never_answers():
    m, ch, stub = _setup()
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(2):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    time.sleep(0.2)
    start = time.monotonic()
    t = Tunnel(stub, target(port), timeout=2)
    _still_serving(stub)
    t.close()
    got, kinds, code, details = t.rest()
    assert code == "DEADLINE_EXCEEDED", (code, details)
    assert 1.5 < time.monotonic() - start < 10
    valet.wait_until(lambda: m.socket_count() == 2, 10, what="the connect to be given up")
    m.stop()


def test_tunnel_data_sent_while_connecting_small_then_window_sized():
    """The client sends before maitred is connected (its receiver not set
    yet): a small message, then one that fits the stream's 16 KiB window
    but not what is left of it. Delivered in full once connected (the rpc
    core admits such a message instead of waiting for a window update
    that never comes)."""
    m, ch, stub = _setup()
    slow = socket.socket()
    slow.bind(("127.0.0.1", 0))
    slow.listen(0)
    port = slow.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the accept queue: SYNs are dropped
    time.sleep(0.2)
    small, big = b"s" * 100, _random(16 * 1024 - 14, 9)
    t = Tunnel(stub, target(port))
    t.send(small)
    t.send(big)
    t.eof()
    time.sleep(0.5)
    slow.accept()[0].close()  # the queue empties; the tunnel's SYN is retried within seconds
    slow.settimeout(30)
    c, _ = slow.accept()
    c.settimeout(30)
    got = read_all(c)
    c.close()
    t.close()
    assert got == small + big, (len(got), len(small + big))
    assert t.rest() == (b"", ["connected", "eof"], "OK", ""), "the call did not end"
    filler.close()
    m.stop()
