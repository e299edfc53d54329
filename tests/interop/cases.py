"""The interop suite's one table of cases: what each call sends and what
must come back. Three drivers (grpcio-driver.py, grpc-js-driver.js,
grpcpp-driver.cc) run the same cases with their own gRPC stack; they only
report, this table judges.

Driver protocol: one case per stdin line, key=value words (name, rpc, req
as base64 bytes, and optional timeout_ms, cancel_ms, compression,
concurrent, repeat, newconn, keepalive_ms,
metadata_bytes: one x-valet-pad header of that many bytes). One result line per call:
name= i= code= ms= resp=BASE64 details=BASE64."""
import base64
import errno

MIB4 = 4 * 1024 * 1024

# gRPC status codes by name.
CODES = {"OK": 0, "CANCELLED": 1, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "RESOURCE_EXHAUSTED": 8,
         "UNIMPLEMENTED": 12}


def _cases():
    import common_pb2
    import guest_pb2

    def mount(source, target="/nonexistent/valet", fstype="none"):
        return guest_pb2.MountRequest(source=source, target=target, fstype=fstype).SerializeToString()

    def launch(*argv, wait=True):
        return guest_pb2.LaunchProcessRequest(argv=list(argv), wait_for_exit=wait).SerializeToString()

    def launched(status, code=0):
        def check(b):
            r = guest_pb2.LaunchProcessResponse.FromString(b)
            return r.status == status and r.code == code
        return check

    def mount_failed(err):
        return lambda b: guest_pb2.MountResponse.FromString(b).error == err

    # 4 MiB exactly: the source field's tag (1 byte) and length (4 bytes).
    big = "x" * (MIB4 - 5)
    assert len(mount(big, target="", fstype="")) == MIB4
    compressible = "/" + "valet/" * 500
    return [
        dict(name="mount", rpc="Mount", req=mount("none"), code="OK", resp=mount_failed(errno.ENOENT)),
        dict(name="launch_wait", rpc="LaunchProcess", req=launch("sh", "-c", "exit 3"), code="OK",
             resp=launched(guest_pb2.EXITED, 3)),
        dict(name="launch_nowait", rpc="LaunchProcess", req=launch("true", wait=False), code="OK",
             resp=launched(guest_pb2.LAUNCHED)),
        dict(name="configure_network", rpc="ConfigureNetwork", req=guest_pb2.NetworkConfigRequest(
             ipv4_config=guest_pb2.IPv4Config()).SerializeToString(),
             code="INVALID_ARGUMENT", details="IPv4 address cannot be 0"),
        dict(name="missing_argv", rpc="LaunchProcess", req=launch(), code="INVALID_ARGUMENT",
             details="missing argv"),
        dict(name="unknown_method", rpc="/vm_tools.Maitred/Nope", req=b"", code="UNIMPLEMENTED",
             details="unknown method /vm_tools.Maitred/Nope"),
        # The processes outlive their calls by 0.7 s; the keepalive case
        # below lasts longer, so they have ended before Shutdown (maitred
        # stopping with waited-for processes still running leaks their
        # waiters at exit, which LeakSanitizer reports).
        dict(name="deadline", rpc="LaunchProcess", req=launch("sleep", "1"), timeout_ms=300,
             code="DEADLINE_EXCEEDED"),
        dict(name="cancel", rpc="LaunchProcess", req=launch("sleep", "1"), cancel_ms=300, code="CANCELLED"),
        dict(name="gzip", rpc="Mount", req=mount(compressible), compression="gzip", code="OK",
             resp=mount_failed(errno.ENOENT)),
        dict(name="deflate", rpc="Mount", req=mount(compressible), compression="deflate", code="OK",
             resp=mount_failed(errno.ENOENT)),
        dict(name="gzip_launch", rpc="LaunchProcess", req=launch("sh", "-c", "exit 5"), compression="gzip",
             code="OK", resp=launched(guest_pb2.EXITED, 5)),
        dict(name="concurrent_50", rpc="LaunchProcess", req=launch("sh", "-c", "sleep 0.2; exit 7"),
             concurrent=50, code="OK", resp=launched(guest_pb2.EXITED, 7)),
        dict(name="keepalive", rpc="LaunchProcess", req=launch("sleep", "1"), keepalive_ms=100, code="OK",
             resp=launched(guest_pb2.EXITED, 0)),
        dict(name="metadata_over_16kib", rpc="Mount", req=mount("none"), metadata_bytes=20000,
             code="RESOURCE_EXHAUSTED", details="request headers larger than the limit of 16384 bytes"),
        dict(name="message_4mib", rpc="Mount", req=mount(big, target="", fstype=""), code="OK", resp=lambda b: True),
        dict(name="message_over_4mib", rpc="Mount", req=mount(big + "y", target="", fstype=""), code="RESOURCE_EXHAUSTED",
             details="larger than the limit"),
        dict(name="six_4mib_at_once", rpc="Mount", req=mount(big, target="", fstype=""), concurrent=6, code="OK",
             resp=lambda b: True),
        dict(name="sixteen_4mib_at_once", rpc="Mount", req=mount(big, target="", fstype=""), concurrent=16, code="OK",
             resp=lambda b: True),
        # Last: the server stops after it.
        dict(name="shutdown", rpc="Shutdown", req=common_pb2.EmptyMessage().SerializeToString(), code="OK"),
    ]


def case_lines(cases):
    keys = ("timeout_ms", "cancel_ms", "compression", "concurrent", "repeat", "newconn", "keepalive_ms",
            "metadata_bytes")
    lines = []
    for c in cases:
        words = [f"name={c['name']}", f"rpc={c['rpc']}", "req=" + base64.b64encode(c["req"]).decode()]
        words += [f"{k}={c[k]}" for k in keys if k in c]
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


def parse_results(text):
    out = []
    for line in text.splitlines():
        w = dict(x.split("=", 1) for x in line.split() if "=" in x)
        if "name" not in w:
            continue
        out.append(dict(name=w["name"], code=int(w["code"]), ms=float(w.get("ms", 0)),
                        resp=base64.b64decode(w.get("resp", "")),
                        details=base64.b64decode(w.get("details", "")).decode(errors="replace")))
    return out


def judge(cases, results):
    """Returns a list of problems (empty when every case behaved)."""
    problems = []
    by_name = {}
    for r in results:
        by_name.setdefault(r["name"], []).append(r)
    for c in cases:
        got = by_name.get(c["name"], [])
        want_n = c.get("concurrent", 1) * c.get("repeat", 1)
        if len(got) != want_n:
            problems.append(f"{c['name']}: {len(got)} results, expected {want_n}")
            continue
        for r in got:
            if r["code"] != CODES[c["code"]]:
                problems.append(f"{c['name']}: code {r['code']} ({r['details']!r}), expected {c['code']}")
            elif "details" in c and c["details"] not in r["details"]:
                problems.append(f"{c['name']}: details {r['details']!r}, expected {c['details']!r}")
            elif "resp" in c and not c["resp"](r["resp"]):
                problems.append(f"{c['name']}: unexpected response {r['resp'][:40]!r}")
            else:
                continue
            break
    return problems
