"""Method switches: maitred --disable NAME and the config file's
"disable NAME" lines. A switched-off service or method answers
PERMISSION_DENIED naming it; a name that matches nothing stops maitred
before it serves."""
import os
import subprocess

from valet import Maitred, binary, grpc_error, grpc_stubs, maitctl, sanitizer_env, tmpdir


def maitred(*args):
    return Maitred(args=["--no-startup-processes", "--vm-ready", "none"] + list(args))


def start_fails(*args):
    """maitred's exit status and output when it must not start."""
    d = tmpdir()
    cmd = [binary("maitred"), "--no-startup-processes", "--vm-ready", "none", "--listen",
           "unix:" + os.path.join(d, "m.sock")] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=sanitizer_env(), cwd=d)
    assert not os.path.exists(os.path.join(d, "m.sock")), "maitred listened before refusing its switches"
    return r.returncode, r.stderr


def test_disabled_method_is_permission_denied():
    import common_pb2
    import guest_pb2
    m = maitred("--disable", "vm_tools.Maitred/LaunchProcess")
    g = grpc_stubs(m.addr)
    code, details = grpc_error(g.LaunchProcess, guest_pb2.LaunchProcessRequest(argv=["true"]), timeout=10)
    assert (code, details) == ("PERMISSION_DENIED", "vm_tools.Maitred/LaunchProcess is disabled on this guest")
    # A 4 MiB body to it is refused the same way (decided from the headers).
    big = guest_pb2.LaunchProcessRequest(argv=["x" * ((4 << 20) - 64)])
    code, _ = grpc_error(g.LaunchProcess, big, timeout=10)
    assert code == "PERMISSION_DENIED"
    # The other methods are still served.
    assert g.GetKernelVersion(common_pb2.EmptyMessage(), timeout=10).kernel_release == os.uname().release
    r = maitctl(m.addr, "launch", "--", "true")
    assert r.returncode != 0
    assert "PERMISSION_DENIED: vm_tools.Maitred/LaunchProcess is disabled on this guest" in r.stderr, r
    # Logged as refused.
    m.wait_log("vm_tools.Maitred/LaunchProcess is disabled on this guest")
    assert "rejected: PERMISSION_DENIED: vm_tools.Maitred/LaunchProcess is disabled on this guest" in m.log(), m.log()
    assert m.stop() == 0
    m.check_clean()


def test_disabled_service_refuses_every_method():
    import common_pb2
    m = maitred("--disable", "vm_tools.Maitred")
    g = grpc_stubs(m.addr)
    for fn, name in ((g.GetKernelVersion, "GetKernelVersion"), (g.Shutdown, "Shutdown")):
        code, details = grpc_error(fn, common_pb2.EmptyMessage(), timeout=10)
        assert code == "PERMISSION_DENIED"
        assert details == f"vm_tools.Maitred is disabled on this guest (vm_tools.Maitred/{name} called)"
    # Shutdown refused too: the host cannot stop it through RPC; a signal can.
    assert m.proc.poll() is None
    assert m.stop() == 0
    m.check_clean()


def test_unknown_name_is_a_start_up_error():
    for name in ("vm_tools.Maitred/Lanch", "vm_tools.Maitre", "valet.v1.Nope", "vm_tools.Maitred/", ""):
        rc, err = start_fails("--disable", name)
        assert rc != 0
        assert f"--disable '{name}': no service or method of that name is served" in err, err


def test_config_file():
    import common_pb2
    import guest_pb2
    d = tmpdir()
    conf = os.path.join(d, "maitred.conf")
    with open(conf, "w") as f:
        f.write("# switched off here\n\n  disable vm_tools.Maitred/GetKernelVersion  # why\n")
    m = maitred("--config", conf)
    g = grpc_stubs(m.addr)
    code, details = grpc_error(g.GetKernelVersion, common_pb2.EmptyMessage(), timeout=10)
    assert (code, details) == ("PERMISSION_DENIED", "vm_tools.Maitred/GetKernelVersion is disabled on this guest")
    g.LaunchProcess(guest_pb2.LaunchProcessRequest(argv=["true"]), timeout=10)
    assert m.stop() == 0

    with open(conf, "w") as f:
        f.write("# ok\ndisable vm_tools.Maitred/Mount\nenable vm_tools.Maitred/Mount\n")
    rc, err = start_fails("--config", conf)
    assert rc != 0 and f"{conf}:3: expected 'disable NAME'" in err, err
    with open(conf, "w") as f:
        f.write("disable vm_tools.Maitred/Mount\n\ndisable vm_tools.Maitred/Mont\n")
    rc, err = start_fails("--config", conf)
    assert rc != 0 and f"{conf}:3: 'vm_tools.Maitred/Mont' is no service or method maitred serves" in err, err
    # Given explicitly, a missing file is an error.
    rc, err = start_fails("--config", os.path.join(d, "missing.conf"))
    assert rc != 0 and "could not read the config file" in err and "missing.conf" in err, err
    # Unreadable as a config: too large, a NUL byte inside, a directory.
    with open(conf, "w") as f:
        f.write("# " + "x" * (64 * 1024) + "\n")
    rc, err = start_fails("--config", conf)
    assert rc != 0 and f"could not read the config file {conf}: larger than 65536 bytes" in err, err
    with open(conf, "wb") as f:
        f.write(b"disable vm_tools.Maitred/Mount\n\0\n")
    rc, err = start_fails("--config", conf)
    assert rc != 0 and f"could not read the config file {conf}: contains a NUL byte" in err, err
    rc, err = start_fails("--config", d)
    assert rc != 0 and f"could not read the config file {d}: Is a directory" in err, err
    # Exactly the limit is read.
    with open(conf, "w") as f:
        f.write("#" * (64 * 1024 - 1) + "\n")
    r = maitred("--config", conf)
    assert r.stop() == 0
