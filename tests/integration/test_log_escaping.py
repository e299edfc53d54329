"""Peer strings in the daemons' logs (issue 17, defect 14): a client's zone
name, argv, mount source or vsh user with a newline or a terminal escape in
it must stay on its own log line, escaped (base/escape.c); on the old code
each of these forged a log line of its own."""

from valet import Maitred, Vshd, grpc_error, grpc_stubs, vsh

FORGED = "FAKE: forged line"


def _forged(log):
    """The log lines that start with the forged text."""
    return [line for line in log.splitlines() if line.startswith("FAKE")]


def test_maitred_logs_peer_strings_escaped():
    import guest_pb2
    m = Maitred(args=["--no-startup-processes", "--vm-ready", "none"],
                wrap=["unshare", "--mount", "--propagation", "private"])
    g = grpc_stubs(m.addr)
    code, _ = grpc_error(g.SetTimezone, guest_pb2.SetTimezoneRequest(timezone_name="Etc/UTC\n" + FORGED + " 1"),
                         timeout=10)
    assert code == "INVALID_ARGUMENT"
    # The refusal's reason quotes the character: it must not carry it raw.
    code, details = grpc_error(g.SetTimezone, guest_pb2.SetTimezoneRequest(timezone_name="Etc\x1b[2J"), timeout=10)
    assert code == "INVALID_ARGUMENT" and "byte 0x1b" in details, (code, details)
    r = g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["no-such-program\n" + FORGED + " 2\x1b[2J"],
                                                       wait_for_exit=True), timeout=10)
    assert r.status == guest_pb2.FAILED, r
    r = g.Mount(guest_pb2.MountRequest(source="none\n" + FORGED + " 3", target="/nonexistent/valet\r\n" + FORGED,
                                       fstype="tmpfs"), timeout=10)
    assert r.error != 0, r
    m.wait_log("Mount from")
    log = m.log()
    assert _forged(log) == [], ("forged lines", _forged(log))
    assert 'zone "Etc/UTC\\nFAKE: forged line 1"' in log, log
    assert "no-such-program\\nFAKE: forged line 2\\x1b[2J" in log, log
    assert '"none\\nFAKE: forged line 3" on "/nonexistent/valet\\r\\nFAKE: forged line"' in log, log
    assert "\x1b" not in log and "\r" not in log
    # Every line is one of maitred's: nothing a peer sent started a line.
    assert [line for line in log.splitlines() if not line.startswith("maitred: ")] == [], log
    assert m.stop() == 0


def test_vshd_logs_peer_strings_escaped():
    d = Vshd()
    r = vsh(d.addr, "--user=nobody\n" + FORGED, "--", "true")
    assert r.returncode == 1 and b"could not find user" in r.stderr, r
    # The session logs once it has answered.
    d.wait_log("could not find user")
    log = d.log()
    assert _forged(log) == [], ("forged lines", _forged(log))
    assert "could not find user: nobody\\nFAKE: forged line" in log, log
    # The client prints the server's description escaped as well.
    assert b"nobody\\nFAKE: forged line" in r.stderr and b"\nFAKE" not in r.stderr, r
    assert d.stop() == 0
