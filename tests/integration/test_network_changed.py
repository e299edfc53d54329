"""OnHostNetworkChanged / ResetIPv6 and ConfigureNetwork's resolv_config,
inside a network namespace the test creates (a veth named eth0): never on
this machine's own interfaces."""
import json
import os
import subprocess

from valet import Maitred, grpc_error, grpc_stubs, maitctl, netns, tmpdir
from netcheck import addrs, default_routes, ip_json, s_addr, setup_ns  # noqa: E402


def neighbours(ns):
    return sorted((n["dst"], n.get("state", [])[0] if n.get("state") else "")
                  for n in ip_json(ns, "neigh", "show", "dev", "eth0"))


def sysctl(ns, path):
    return subprocess.run(["ip", "netns", "exec", ns, "cat", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_network_changed_reasserts_ipv4_and_flushes_learned_neighbours():
    import common_pb2
    ns = setup_ns("netchg")
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none"], wrap=["ip", "netns", "exec", ns])
    g = grpc_stubs(m.addr)
    # Before any ConfigureNetwork: nothing to set again, still a success.
    g.OnHostNetworkChanged(common_pb2.EmptyMessage(), timeout=10)
    assert maitctl(m.addr, "network", "--address", "10.9.8.7/24", "--gateway", "10.9.8.1").returncode == 0
    # Something removed the address (and with it the route): set again.
    subprocess.run(["ip", "-n", ns, "addr", "flush", "dev", "eth0"], check=True)
    assert addrs(ns, "eth0") == [] and default_routes(ns) == []
    r = maitctl(m.addr, "network-changed", json=True)
    assert r.returncode == 0 and json.loads(r.stdout) == {}, r
    assert addrs(ns, "eth0") == [("10.9.8.7", 24)]
    assert default_routes(ns) == [("10.9.8.1", "eth0")]
    # The kernel learned two neighbours; one entry is static and stays.
    for dst, nud in [("10.9.8.50", "stale"), ("10.9.8.51", "reachable"), ("10.9.8.99", "permanent")]:
        subprocess.run(["ip", "-n", ns, "neigh", "replace", dst, "lladdr", "02:00:00:00:00:01", "dev", "eth0",
                        "nud", nud], check=True)
    assert len(neighbours(ns)) == 3, neighbours(ns)
    assert maitctl(m.addr, "network-changed").returncode == 0
    assert neighbours(ns) == [("10.9.8.99", "PERMANENT")], neighbours(ns)
    assert sysctl(ns, "/proc/sys/net/ipv6/conf/eth0/disable_ipv6") == "0"
    assert "OnHostNetworkChanged from" in m.log() and "2 neighbour entries flushed, IPv6 reset" in m.log()
    # The deprecated name does the same.
    subprocess.run(["ip", "-n", ns, "neigh", "replace", "10.9.8.52", "lladdr", "02:00:00:00:00:02", "dev", "eth0",
                    "nud", "stale"], check=True)
    g.ResetIPv6(common_pb2.EmptyMessage(), timeout=10)
    assert maitctl(m.addr, "network-changed", "--reset-ipv6").returncode == 0
    assert neighbours(ns) == [("10.9.8.99", "PERMANENT")]
    assert "ResetIPv6 from" in m.log()
    assert m.stop() == 0


def test_network_changed_flushes_more_neighbours_than_one_batch():
    """The flush collected at most 256 entries per call and answered OK with
    the rest still there (1 000 stale entries left 744). 700 IPv4 and 500
    IPv6 learned entries (each family's table holds 1024 by default) and
    three permanent ones that stay."""
    import common_pb2
    ns = setup_ns("netmany")
    subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)
    subprocess.run(["ip", "-n", ns, "addr", "add", "10.20.0.1/16", "dev", "eth0"], check=True)
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none"], wrap=["ip", "netns", "exec", ns])
    lines = [f"neigh replace 10.20.{i // 250}.{i % 250 + 2} lladdr 02:00:00:00:{i // 256:02x}:{i % 256:02x} "
             f"dev eth0 nud stale" for i in range(700)]
    lines += [f"neigh replace fd00::{i + 2:x} lladdr 02:00:00:01:{i // 256:02x}:{i % 256:02x} dev eth0 nud stale"
              for i in range(500)]
    lines += [f"neigh replace 10.20.9.{i} lladdr 02:00:00:02:00:0{i} dev eth0 nud permanent" for i in range(1, 4)]
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)
    before = neighbours(ns)
    assert len(before) == 1203, len(before)
    grpc_stubs(m.addr).OnHostNetworkChanged(common_pb2.EmptyMessage(), timeout=30)
    left = neighbours(ns)
    assert left == [(f"10.20.9.{i}", "PERMANENT") for i in range(1, 4)], (len(left), left[:5])
    assert "1200 neighbour entries flushed" in m.log(), m.log()
    assert m.stop() == 0


def test_network_changed_without_the_interface_is_failed_precondition():
    import common_pb2
    ns = netns("empty")
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none"], wrap=["ip", "netns", "exec", ns])
    code, details = grpc_error(grpc_stubs(m.addr).OnHostNetworkChanged, common_pb2.EmptyMessage(), timeout=10)
    assert code == "FAILED_PRECONDITION" and "interface eth0" in details, details
    assert m.stop() == 0


def test_configure_network_writes_resolv_config_or_changes_nothing():
    import guest_pb2
    ns = setup_ns("netchg")
    resolv = os.path.join(tmpdir(), "resolv.conf")
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none", "--resolv-conf", resolv],
                wrap=["ip", "netns", "exec", ns])
    g = grpc_stubs(m.addr)
    cfg = guest_pb2.IPv4Config(address=s_addr("100.115.92.6"), netmask=s_addr("255.255.255.252"),
                               gateway=s_addr("100.115.92.5"))
    bad = guest_pb2.NetworkConfigRequest(ipv4_config=cfg, resolv_config=guest_pb2.ResolvConfig(
        nameservers=["100.115.92.5", "not-an-ip"]))
    code, details = grpc_error(g.ConfigureNetwork, bad, timeout=10)
    assert code == "INVALID_ARGUMENT" and 'nameserver "not-an-ip"' in details, details
    assert addrs(ns, "eth0") == [] and not os.path.exists(resolv), "a refused request changed something"
    req = guest_pb2.NetworkConfigRequest(ipv4_config=cfg, resolv_config=guest_pb2.ResolvConfig(
        nameservers=["100.115.92.5"], search_domains=["vm.example"]))
    # Field 2 follows field 1 on the wire: old bytes, then 0x12 LEN ...
    assert req.SerializeToString().startswith(bytes.fromhex("0a0f0d64735c0615fffffffc1d64735c05") + b"\x12")
    g.ConfigureNetwork(req, timeout=10)
    assert addrs(ns, "eth0") == [("100.115.92.6", 30)]
    with open(resolv) as f:
        assert f.read().splitlines()[1:] == ["nameserver 100.115.92.5", "search vm.example"]
    # Without field 2 the file is left alone.
    g.ConfigureNetwork(guest_pb2.NetworkConfigRequest(ipv4_config=cfg), timeout=10)
    with open(resolv) as f:
        assert "nameserver 100.115.92.5" in f.read()
    assert m.stop() == 0
