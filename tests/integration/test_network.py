"""ConfigureNetwork inside a network namespace the test creates, with a veth
named eth0, checked with `ip -j addr` and `ip -j route`."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawh2  # noqa: E402
from valet import Maitred, grpc_error, grpc_stubs, maitctl, netns  # noqa: E402
from netcheck import addrs, default_routes, link_up, s_addr, setup_ns  # noqa: E402


def test_configure_network_maitctl():
    ns = setup_ns()
    m = Maitred(wrap=["ip", "netns", "exec", ns])
    assert not link_up(ns, "lo") and not link_up(ns, "eth0")
    r = maitctl(m.addr, "network", "--address", "100.115.92.6", "--netmask", "255.255.255.252",
                "--gateway", "100.115.92.5")
    assert r.returncode == 0 and r.stdout.strip() == "OK", r
    assert addrs(ns, "eth0") == [("100.115.92.6", 30)]
    assert default_routes(ns) == [("100.115.92.5", "eth0")]
    assert link_up(ns, "eth0") and link_up(ns, "lo")
    # Repeating succeeds, and a new address replaces the old one.
    r = maitctl(m.addr, "network", "--address", "100.115.92.6/30", "--gateway", "100.115.92.5")
    assert r.returncode == 0, r
    r = maitctl(m.addr, "network", "--address", "10.9.8.7/24", "--gateway", "10.9.8.1")
    assert r.returncode == 0, r
    assert addrs(ns, "eth0") == [("10.9.8.7", 24)]
    assert default_routes(ns) == [("10.9.8.1", "eth0")]
    assert "ConfigureNetwork from" in m.log() and "OK: eth0 address 10.9.8.7/24" in m.log()
    assert m.stop() == 0


def test_configure_network_grpc_same_result():
    import guest_pb2
    ns = setup_ns()
    m = Maitred(wrap=["ip", "netns", "exec", ns])
    g = grpc_stubs(m.addr)
    cfg = guest_pb2.IPv4Config(address=s_addr("100.115.92.6"), netmask=s_addr("255.255.255.252"),
                               gateway=s_addr("100.115.92.5"))
    # The upstream worked example: these exact bytes on the wire.
    req = guest_pb2.NetworkConfigRequest(ipv4_config=cfg)
    assert req.SerializeToString().hex() == "0a0f0d64735c0615fffffffc1d64735c05"
    g.ConfigureNetwork(req, timeout=10)
    assert addrs(ns, "eth0") == [("100.115.92.6", 30)]
    assert default_routes(ns) == [("100.115.92.5", "eth0")]
    g.ConfigureNetwork(req, timeout=10)  # idempotent
    assert addrs(ns, "eth0") == [("100.115.92.6", 30)]
    assert m.stop() == 0


def test_configure_network_validation():
    import guest_pb2
    ns = setup_ns()
    m = Maitred(wrap=["ip", "netns", "exec", ns])
    g = grpc_stubs(m.addr)
    a, n, gw = s_addr("10.0.0.2"), s_addr("255.255.255.0"), s_addr("10.0.0.1")
    cases = [
        (guest_pb2.NetworkConfigRequest(), "IPv4 address cannot be 0"),
        (guest_pb2.NetworkConfigRequest(ipv4_config=guest_pb2.IPv4Config(netmask=n, gateway=gw)),
         "IPv4 address cannot be 0"),
        (guest_pb2.NetworkConfigRequest(ipv4_config=guest_pb2.IPv4Config(address=a, gateway=gw)),
         "IPv4 netmask cannot be 0"),
        (guest_pb2.NetworkConfigRequest(ipv4_config=guest_pb2.IPv4Config(address=a, netmask=n)),
         "IPv4 gateway cannot be 0"),
        (guest_pb2.NetworkConfigRequest(ipv4_config=guest_pb2.IPv4Config()), "IPv4 address cannot be 0"),
    ]
    for req, msg in cases:
        assert grpc_error(g.ConfigureNetwork, req, timeout=5) == ("INVALID_ARGUMENT", msg)
    # The same through maitctl.
    r = maitctl(m.addr, "network", "--address", "0.0.0.0/24", "--gateway", "10.0.0.1")
    assert r.returncode == 1 and "INVALID_ARGUMENT: IPv4 address cannot be 0" in r.stderr, r
    r = maitctl(m.addr, "network", "--address", "10.0.0.2", "--netmask", "0.0.0.0", "--gateway", "10.0.0.1")
    assert "INVALID_ARGUMENT: IPv4 netmask cannot be 0" in r.stderr, r
    r = maitctl(m.addr, "network", "--address", "10.0.0.2/24", "--gateway", "0.0.0.0")
    assert "INVALID_ARGUMENT: IPv4 gateway cannot be 0" in r.stderr, r
    r = maitctl(m.addr, "network", "--address", "10.0.0.2", "--netmask", "255.0.255.0", "--gateway", "10.0.0.1")
    assert r.returncode == 1 and "not contiguous" in r.stderr, r
    # A gateway the kernel cannot reach is the kernel's error, INTERNAL.
    code, msg = grpc_error(g.ConfigureNetwork, guest_pb2.NetworkConfigRequest(
        ipv4_config=guest_pb2.IPv4Config(address=a, netmask=n, gateway=s_addr("192.0.2.1"))), timeout=5)
    assert code == "INTERNAL" and msg.startswith("failed to set IPv4 gateway: "), (code, msg)
    # Nothing was configured by the rejected requests above it... and maitred still serves.
    g.ConfigureNetwork(guest_pb2.NetworkConfigRequest(ipv4_config=guest_pb2.IPv4Config(
        address=a, netmask=n, gateway=gw)), timeout=5)
    assert default_routes(ns) == [("10.0.0.1", "eth0")]
    assert m.stop() == 0


def test_configure_network_without_interface():
    ns = netns("noeth")
    m = Maitred(wrap=["ip", "netns", "exec", ns])
    r = maitctl(m.addr, "--json", "network", "--address", "10.0.0.2/24", "--gateway", "10.0.0.1")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"code": "INTERNAL", "message": "failed to set IPv4 address: No such device"}
    # --interface picks another name.
    subprocess.run(["ip", "-n", ns, "link", "add", "ens3", "type", "veth", "peer", "name", "p"], check=True)
    m2 = Maitred(args=["--interface", "ens3"], wrap=["ip", "netns", "exec", ns])
    r = maitctl(m2.addr, "network", "--address", "10.0.0.2/24", "--gateway", "10.0.0.1")
    assert r.returncode == 0, r
    assert addrs(ns, "ens3") == [("10.0.0.2", 24)]
    assert m.stop() == 0 and m2.stop() == 0


def test_expired_deadline_changes_no_network():
    import guest_pb2
    ns = setup_ns()
    m = Maitred(wrap=["ip", "netns", "exec", ns])
    cfg = guest_pb2.IPv4Config(address=s_addr("10.9.8.7"), netmask=s_addr("255.255.255.0"),
                               gateway=s_addr("10.9.8.1"))
    req = guest_pb2.NetworkConfigRequest(ipv4_config=cfg).SerializeToString()
    assert rawh2.trailers_only(rawh2.unary(m.sock, "/vm_tools.Maitred/ConfigureNetwork", req, timeout="1n"))
    assert maitctl(m.addr, "launch", "--wait", "--", "true").returncode == 0
    assert addrs(ns, "eth0") == [] and default_routes(ns) == []
    assert not link_up(ns, "eth0") and not link_up(ns, "lo")
    assert "info: ConfigureNetwork from" not in m.log()
    assert "/vm_tools.Maitred/ConfigureNetwork from unix pid " in m.log() and "rejected: DEADLINE_EXCEEDED" in m.log()
    assert m.stop() == 0
