"""The host SDK (python/valet) against a real maitred: every vm_tools.Maitred
method through Guest and AsyncGuest with Python types, the errors as
exception classes with the guest's message, timeouts, the four address
kinds (hybrid vsock through tests/lib/hvsock_relay.py), wait_ready. Files
are test_sdk_files.py's, processes, tunnels and snapshots
test_sdk_process.py's, shell() test_sdk_shell.py's."""
import asyncio
import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time

import sdk
from sdk import raises

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_hvsock import relay  # noqa: E402 - the VMM's side of hybrid vsock, started as that test does
from lanes import timing
from netcheck import addrs, default_routes, setup_ns
from valet import Maitred, tmpdir, track, wait_until

MiB = 1 << 20


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




# --- addresses -----------------------------------------------------------

def test_addresses_parse_like_the_programs_with_default_ports():
    v = sdk.load()
    P = v.parse_address
    assert P("vsock:3") == v.Address("vsock", cid=3, port=8888)
    assert P("vsock:3:1234") == v.Address("vsock", cid=3, port=1234)
    assert P("vsock:-1:7777").cid == 0xFFFFFFFF and str(P("vsock:-1:7777")) == "vsock:-1:7777"
    assert P("vsock:3", v.VSH_PORT).port == 9001
    assert P("unix:/run/x.sock") == v.Address("unix", path="/run/x.sock")
    assert P("tcp:127.0.0.1:99") == v.Address("tcp", host="127.0.0.1", port=99)
    assert P("tcp:10.0.2.15") == v.Address("tcp", host="10.0.2.15", port=8888)
    assert P("tcp:[::1]:5") == v.Address("tcp", host="::1", port=5) and str(P("tcp:[::1]:5")) == "tcp:[::1]:5"
    assert P("hvsock:/v/fc.sock:52") == v.Address("hvsock", path="/v/fc.sock", port=52)
    # A path may hold colons; a port may not: the last numeric part is the port.
    assert P("hvsock:/v/a:b.sock:52") == v.Address("hvsock", path="/v/a:b.sock", port=52)
    assert P("hvsock:/v/a:b.sock") == v.Address("hvsock", path="/v/a:b.sock", port=8888)
    for bad, why in [("vsock:x:1", "bad CID 'x'"), ("vsock:3:y", "bad port 'y'"), ("unix:", "the path is empty"),
                     ("tcp::5", "no host"), ("tcp:1.2.3.4:70000", "above 65535"), ("tcp:::1:5", "in brackets"),
                     ("http://x", "expected vsock:CID[:PORT]"), ("unix:/" + "a" * 200, "longer than 107 bytes"),
                     ("vsock:3:99999999999", "bad port")]:
        e = raises(v.InvalidArgument, P, bad)
        assert repr(bad) in str(e) and why in str(e), (bad, str(e))
        assert isinstance(e, ValueError) and isinstance(e, v.Error)
    raises(v.InvalidArgument, v.Guest, "nonsense:1")


def test_unix_tcp_and_hvsock_reach_the_same_maitred():
    v = sdk.load()
    port = free_tcp_port()
    m = sdk.maitred(["--listen", f"tcp:127.0.0.1:{port}"])
    m.wait_log(f"listening on tcp:127.0.0.1:{port}")
    vmm = relay({8888: m.sock})
    release = os.uname().release
    for addr in (m.addr, f"tcp:127.0.0.1:{port}", f"hvsock:{vmm}:8888", f"hvsock:{vmm}"):
        with v.Guest(addr) as g:
            assert g.kernel_version().release == release, addr
            # Several calls share the channel (and, through the relay, its connection).
            assert [g.kernel_version().release for _ in range(3)] == [release] * 3
    assert m.stop() == 0


def test_unreachable_guest_and_bad_vmm_answers_are_unavailable_with_the_reason():
    v = sdk.load()
    d = tmpdir()
    e = raises(v.Unavailable, v.Guest(f"unix:{d}/nothing.sock", timeout=5).kernel_version)
    assert isinstance(e, ConnectionError) and f"unix:{d}/nothing.sock" in str(e), str(e)
    refusing = relay({})
    e = raises(v.Unavailable, v.Guest(f"hvsock:{refusing}:8888", timeout=5).kernel_version)
    assert str(e) == (f"cannot connect to hvsock:{refusing}:8888: the VMM refused the port "
                      "(is anything listening on it in the guest?)"), str(e)
    garbage = relay(mode="garbage")
    e = raises(v.Unavailable, v.Guest(f"hvsock:{garbage}:8888", timeout=5).kernel_version)
    assert f"hvsock:{garbage}:8888: the VMM answered" in str(e) and 'not "OK <port>"' in str(e), str(e)
    err = relay(mode="err")
    e = raises(v.Unavailable, v.Guest(f"hvsock:{err}:8888", timeout=5).kernel_version)
    assert "the VMM refused the port: ERR" in str(e), str(e)
    # The address's own connect says the same, as the exception classes.
    raises(v.ProtocolError, v.parse_address(f"hvsock:{garbage}:1").connect, 5)
    raises(v.Unavailable, v.parse_address(f"hvsock:{refusing}:1").connect, 5)


@timing
def test_a_stalled_vmm_and_a_silent_guest_end_at_the_timeout():
    v = sdk.load()
    stall = relay(mode="stall")
    start = time.monotonic()
    e = raises(v.DeadlineExceeded, v.parse_address(f"hvsock:{stall}:8888").connect, 0.5)
    assert "no answer within 0.5 s" in str(e) and isinstance(e, TimeoutError), str(e)
    assert 0.5 <= time.monotonic() - start < 5
    # A guest that accepts and never answers: the call's deadline.
    d = tmpdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(f"{d}/silent.sock")
    s.listen(4)
    start = time.monotonic()
    with v.Guest(f"unix:{d}/silent.sock", timeout=0.5) as g:
        e = raises(v.DeadlineExceeded, g.kernel_version)
        took = time.monotonic() - start
        assert e.code.name == "DEADLINE_EXCEEDED" and 0.5 <= took < 5, (e, took)
        start = time.monotonic()
        raises(v.DeadlineExceeded, g.available_space, timeout=0.3)
        assert 0.3 <= time.monotonic() - start < 5
    s.close()


# --- vm_tools.Maitred ----------------------------------------------------

def test_kernel_version_space_suspend_network_changed_reset_ipv6():
    v = sdk.load()
    d = tmpdir()
    m = sdk.maitred(["--main-fs", d], wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                            f"mount -t tmpfs -o size=8m tmpfs {d} && exec \"$0\" \"$@\""])
    with v.Guest(m.addr) as g:
        kv = g.kernel_version()
        assert kv == v.KernelVersion(os.uname().release, os.uname().version), kv
        assert g.available_space() == 8 * MiB
        assert g.prepare_to_suspend() is None
        m.wait_log("file systems synced in")
        assert g.host_network_changed() is None
        assert g.reset_ipv6() is None
        assert "OnHostNetworkChanged from" in m.log() and "ResetIPv6 from" in m.log()
    assert m.stop() == 0


def test_set_time_timezone_and_resolv_config_with_python_types():
    v = sdk.load()
    d = tmpdir()
    resolv, lt = os.path.join(d, "resolv.conf"), os.path.join(d, "localtime")
    m = sdk.maitred(["--resolv-conf", resolv, "--localtime", lt],
                    wrap=["unshare", "--mount", "--propagation", "private"])
    with v.Guest(m.addr) as g:
        g.set_timezone("Europe/Paris")
        assert os.readlink(lt) == "/usr/share/zoneinfo/Europe/Paris"
        e = raises(v.InvalidArgument, g.set_timezone, "No/Such_Zone")
        assert "No/Such_Zone" in str(e), str(e)
        g.set_resolv_config([ipaddress.ip_address("10.0.0.1"), "2001:db8::1"], ["example.org"])
        text = open(resolv).read()
        assert "nameserver 10.0.0.1\nnameserver 2001:db8::1\n" in text and "search example.org" in text, text
        # A bad nameserver is refused here, before anything is sent.
        raises(ValueError, g.set_resolv_config, ["10.0.0"])
        # SetTime with datetimes: an implausible one is the guest's
        # INVALID_ARGUMENT (this machine's clock is never touched).
        e = raises(v.InvalidArgument, g.set_time, datetime.datetime(1971, 1, 1, tzinfo=datetime.timezone.utc))
        assert "not plausible" in str(e), str(e)
        raises(v.InvalidArgument, g.set_time, 0)
    assert "clock stepped" not in m.log()
    assert m.stop() == 0


def test_set_time_without_the_right_is_permission_denied():
    v = sdk.load()
    d = tmpdir()
    os.chmod(d, 0o777)
    sock = os.path.join(d, "m.sock")
    proc = track(subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         "--bounding-set=-sys_time", sdk.harness.binary("maitred"), "--listen", "unix:" + sock,
         "--no-startup-processes", "--vm-ready", "none"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=sdk.harness.sanitizer_env(), cwd=d))
    wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, 10, what="maitred socket")
    with v.Guest("unix:" + sock) as g:
        # Now (the default): this machine's own time, so nothing moves even if it worked.
        e = raises(v.PermissionDenied, g.set_time)
        assert isinstance(e, PermissionError) and "could not set the clock" in str(e), str(e)
    proc.terminate()
    out = proc.communicate(timeout=15)[0].decode()
    assert "clock stepped" not in out, out


def test_configure_network_with_ipaddress_values():
    v = sdk.load()
    ns = setup_ns("sdk")
    m = Maitred(wrap=["ip", "netns", "exec", ns])
    with v.Guest(m.addr) as g:
        g.configure_network("100.115.92.6/30", "100.115.92.5")
        assert addrs(ns, "eth0") == [("100.115.92.6", 30)]
        assert default_routes(ns) == [("100.115.92.5", "eth0")]
        g.configure_network(ipaddress.IPv4Interface("10.9.8.7/24"), ipaddress.IPv4Address("10.9.8.1"))
        assert addrs(ns, "eth0") == [("10.9.8.7", 24)]
        # A host address, not a network: refused before sending.
        raises(ValueError, g.configure_network, "10.9.8.7/33", "10.9.8.1")
        # The guest's own refusal: a gateway outside the network.
        e = raises(v.Error, g.configure_network, "10.9.8.7/24", "192.168.1.1")
        assert e.code is not None and str(e), e
        assert addrs(ns, "eth0") == [("10.9.8.7", 24)]
    assert m.stop() == 0


def test_launch_process_statuses():
    v = sdk.load()
    m = sdk.maitred()
    with v.Guest(m.addr) as g:
        assert g.launch_process(["sh", "-c", "exit 7"], wait_for_exit=True) == v.LaunchResult(v.LaunchStatus.EXITED, 7)
        r = g.launch_process("kill -9 $$", wait_for_exit=True)
        assert r == v.LaunchResult(v.LaunchStatus.SIGNALED, 9), r
        assert g.launch_process(["/no/such"], wait_for_exit=True).status == v.LaunchStatus.FAILED
        d = tmpdir()
        r = g.launch_process(["sh", "-c", f"echo $X >{d}/out"], {"X": "from-env"})
        assert r.status == v.LaunchStatus.LAUNCHED
        wait_until(lambda: os.path.exists(f"{d}/out") and open(f"{d}/out").read() == "from-env\n")
        raises(ValueError, g.launch_process, [])
        e = raises(v.InvalidArgument, g.launch_process, ["x"], respawn=True, wait_for_exit=True)
        assert str(e), e
    assert m.stop() == 0


def test_mount_errors_are_the_errno_classes_and_9p_is_refused():
    v = sdk.load()
    m = Maitred(wrap=["unshare", "--mount", "--propagation", "private"])
    with v.Guest(m.addr) as g:
        target = os.path.join(m.dir, "mnt")
        g.mount("tmpfs", target, "tmpfs", 2, "size=1m", create_target=True, permissions=0o700)
        with open(f"/proc/{m.pid}/mountinfo") as f:
            got = [line.split() for line in f if line.split()[4] == target]
        assert len(got) == 1 and "nosuid" in got[0][5], got
        e = raises(v.NotFound, g.mount, "/dev/no-such-device", os.path.join(m.dir, "x"), "ext4", create_target=True)
        assert isinstance(e, FileNotFoundError) and "mount /dev/no-such-device on" in str(e), str(e)
        assert "(errno 2)" in str(e), str(e)
        e = raises(v.NotFound, g.mount, "tmpfs", os.path.join(m.dir, "missing"), "tmpfs")
        e = raises(v.Unimplemented, g.mount_9p, 5000, "/mnt/x")
        assert "Mount9P belongs to ChromeOS's container stack" in str(e), str(e)
    assert m.stop() == 0


def test_resize_methods_on_a_loop_device():
    v = sdk.load()
    mnt = tmpdir()
    img = os.path.join(tmpdir(), "disk.img")
    with open(img, "wb") as f:
        f.truncate(16 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    dev = subprocess.run(["losetup", "--find", "--show", img], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        m = Maitred(args=["--no-startup-processes", "--vm-ready", "none", "--main-fs", mnt],
                    wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f"mount {dev} {mnt} && exec \"$0\" \"$@\""])
        with v.Guest(m.addr) as g:
            assert g.resize_bounds() == 16 * MiB
            assert g.resize_status() == v.ResizeProgress(False, 16 * MiB, 0)
            e = raises(v.InvalidArgument, g.resize_filesystem, 32 * MiB)
            assert f"larger than the device {dev}" in str(e), str(e)
            e = raises(v.FailedPrecondition, g.resize_filesystem, 8 * MiB)
            assert "ext4 cannot shrink while mounted" in str(e), str(e)
            os.truncate(img, 32 * MiB)
            subprocess.run(["losetup", "-c", dev], check=True)
            assert g.resize_filesystem(32 * MiB) == v.ResizeStatus.STARTED
            wait_until(lambda: not g.resize_status().in_progress, 30, what="the resize to end")
            st = g.resize_status()
            assert st.target_size == 32 * MiB and st.current_size in (16 * MiB, 32 * MiB), st
        assert m.stop() == 0
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def test_disabled_method_and_shutdown():
    v = sdk.load()
    m = sdk.maitred(["--disable", "vm_tools.Maitred/GetKernelVersion"])
    with v.Guest(m.addr) as g:
        e = raises(v.PermissionDenied, g.kernel_version)
        assert "is disabled on this guest" in str(e), str(e)
        assert g.available_space() > 0
        g.shutdown()
        m.proc.wait(15)
    assert m.proc.returncode == 0
    m.check_clean()


def test_errors_keep_the_status_code_and_message():
    v = sdk.load()
    import grpc
    for code in grpc.StatusCode:
        if code == grpc.StatusCode.OK:
            continue
        e = v.errors.from_status(code, "the guest's words") if hasattr(v, "errors") else None
        assert e is not None and e.code == code and str(e) == "the guest's words" and isinstance(e, v.Error), code
        assert type(e).__name__.upper().replace("_", "") == code.name.replace("_", ""), (type(e), code)
    assert issubclass(v.NotFound, FileNotFoundError) and issubclass(v.AlreadyExists, FileExistsError)
    assert issubclass(v.PermissionDenied, PermissionError) and issubclass(v.DeadlineExceeded, TimeoutError)


# --- AsyncGuest ------------------------------------------------------------

def test_async_guest_has_the_same_methods_and_answers():
    v = sdk.load()
    import inspect
    public = lambda cls: {n for n in dir(cls) if not n.startswith("_")}  # noqa: E731
    assert public(v.Guest) - {"channel", "files"} == public(v.AsyncGuest) - {"channel", "files"}
    assert public(v.Files) == public(v.AsyncFiles)
    assert public(v.Process) == public(v.AsyncProcess)
    for name in public(v.Guest) - {"channel", "files", "close", "freeze"}:
        a, b = getattr(v.Guest, name), getattr(v.AsyncGuest, name)
        assert inspect.signature(a).parameters.keys() == inspect.signature(b).parameters.keys(), name
        assert inspect.iscoroutinefunction(b), name
    d = tmpdir()
    m = sdk.maitred(["--main-fs", d, "--disable", "vm_tools.Maitred/ResetIPv6"],
                    wrap=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f"mount -t tmpfs -o size=8m tmpfs {d} && exec \"$0\" \"$@\""])
    vmm = relay({8888: m.sock})

    async def main():
        for addr in (m.addr, f"hvsock:{vmm}"):
            async with v.AsyncGuest(addr) as g:
                kv, space = await asyncio.gather(g.kernel_version(), g.available_space())
                assert kv.release == os.uname().release and space == 8 * MiB
                await g.prepare_to_suspend()
                await g.host_network_changed()
                r = await g.launch_process(["sh", "-c", "exit 3"], wait_for_exit=True)
                assert r == v.LaunchResult(v.LaunchStatus.EXITED, 3)
                try:
                    await g.reset_ipv6()
                    raise AssertionError("ResetIPv6 is disabled")
                except v.PermissionDenied as e:
                    assert "is disabled on this guest" in str(e)
        g = v.AsyncGuest(f"unix:{d}/none.sock", timeout=5)
        try:
            await g.kernel_version()
            raise AssertionError("nothing listens there")
        except v.Unavailable:
            pass
        await g.close()
        # A guest that accepts and never answers: the deadline.
        s = socket.socket(socket.AF_UNIX)
        s.bind(f"{d}/silent.sock")
        s.listen(4)
        async with v.AsyncGuest(f"unix:{d}/silent.sock", timeout=0.3) as g:
            try:
                await g.kernel_version()
                raise AssertionError("nothing answers there")
            except v.DeadlineExceeded:
                pass
        s.close()
    asyncio.run(main())
    assert m.stop() == 0


# --- wait_ready ------------------------------------------------------------

def test_wait_ready_over_unix_tcp_and_hybrid_vsock():
    v = sdk.load()
    d = tmpdir()
    results = {}

    def waiter(key, addr, timeout=30):
        try:
            results[key] = v.wait_ready(addr, timeout)
        except Exception as e:  # noqa: BLE001 - reported below
            results[key] = e
    sock = os.path.join(d, "ready.sock")
    t = threading.Thread(target=waiter, args=("unix", f"unix:{sock}"))
    t.start()
    wait_until(lambda: os.path.exists(sock), what="wait_ready's socket")
    m = sdk.harness.Maitred(args=["--vm-ready", f"unix:{sock}"])
    t.join(30)
    assert isinstance(results["unix"], str) and results["unix"].startswith("unix:"), results
    m.wait_log("Told the host")
    assert not os.path.exists(sock), "wait_ready left its socket"
    port = free_tcp_port()
    t = threading.Thread(target=waiter, args=("tcp", f"tcp:127.0.0.1:{port}"))
    t.start()
    wait_until(lambda: subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                      text=True).stdout.strip(), what="wait_ready listening")
    m2 = sdk.harness.Maitred(args=["--vm-ready", f"tcp:127.0.0.1:{port}"])
    t.join(30)
    assert isinstance(results["tcp"], str) and results["tcp"].startswith("ipv4:127.0.0.1:"), results
    # Hybrid vsock: the guest's connection to port 7777 arrives at PATH_7777.
    vm_sock = os.path.join(d, "vm.vsock")
    guest_side = os.path.join(d, "guest-7777.sock")
    t = threading.Thread(target=waiter, args=("hvsock", f"hvsock:{vm_sock}"))
    t.start()
    wait_until(lambda: os.path.exists(f"{vm_sock}_7777"), what="wait_ready's PATH_7777")
    relay(guest_ports={7777: guest_side}, path=vm_sock)
    m3 = sdk.harness.Maitred(args=["--vm-ready", f"unix:{guest_side}"])
    t.join(30)
    assert isinstance(results["hvsock"], str), results
    m3.wait_log("Told the host")
    assert not os.path.exists(f"{vm_sock}_7777")
    assert m.stop() == 0 and m2.stop() == 0 and m3.stop() == 0


@timing
def test_wait_ready_timeout_and_bad_addresses():
    v = sdk.load()
    d = tmpdir()
    start = time.monotonic()
    e = raises(v.DeadlineExceeded, v.wait_ready, f"unix:{d}/never.sock", 0.5)
    took = time.monotonic() - start
    assert str(e) == f"no VmReady on unix:{d}/never.sock within 0.5 s" and 0.5 <= took < 5, (str(e), took)
    assert not os.path.exists(f"{d}/never.sock")
    open(f"{d}/taken", "w").close()
    e = raises(v.InvalidArgument, v.wait_ready, f"unix:{d}/taken", 0.5)
    assert "exists" in str(e)
    raises(v.InvalidArgument, v.wait_ready, "tcp:", 1)
    e = raises(v.DeadlineExceeded, lambda: asyncio.run(v.aio.wait_ready(f"unix:{d}/never2.sock", 0.2)))
    # A ReadyListener on port 0: listening before the guest starts, its port known.
    with v.ReadyListener("tcp:127.0.0.1:0") as r:
        assert r.port > 0 and str(r.address) == f"tcp:127.0.0.1:{r.port}"
        m = sdk.harness.Maitred(args=["--vm-ready", f"tcp:127.0.0.1:{r.port}"])
        assert r.wait(30).startswith("ipv4:127.0.0.1:")
    m.wait_log("Told the host")
    assert m.stop() == 0
