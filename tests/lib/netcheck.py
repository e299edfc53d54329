"""Looking at a network namespace the test created: `ip -j` output as
Python values, and a namespace with a veth named eth0 (its peer up, so that
routes are not "linkdown")."""
import json
import socket
import struct
import subprocess

from valet import netns


def ip_json(ns, *args):
    out = subprocess.run(["ip", "-n", ns, "-j"] + list(args), check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def addrs(ns, dev):
    return sorted((a["local"], a["prefixlen"]) for link in ip_json(ns, "addr", "show", "dev", dev)
                  for a in link.get("addr_info", []) if a["family"] == "inet")


def default_routes(ns):
    return [(r.get("gateway"), r.get("dev")) for r in ip_json(ns, "-4", "route", "show", "default")]


def link_up(ns, dev):
    return "UP" in ip_json(ns, "link", "show", "dev", dev)[0]["flags"]


def s_addr(dotted):
    """The wire value: s_addr as inet_pton gives it, read as a host integer."""
    return struct.unpack("=I", socket.inet_aton(dotted))[0]


def setup_ns(hint="net"):
    ns = netns(hint)
    subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "vpeer"], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "vpeer", "up"], check=True)
    return ns
