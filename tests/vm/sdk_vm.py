"""The VM test's steps for the Python SDK (issue 21), each on a boot of its own:

- sdk_sandbox_example: the complete example of docs/sdk.md, exactly as
  the page has it, with the guest image made as the page says
  (valet-mkinitramfs), run as a user would (`PYTHONPATH=python python3
  sandbox.py KERNEL IMAGE`): it boots the VM, uploads a project, runs its
  tests with output streamed, downloads the results and powers off.
- sdk_files_process_tunnel_shell: the SDK against the test image (tests/lib/vm.py):
  files both ways, run/start/attach, forward() into the guest (to the
  guest's own maitred, through the tunnel), shell() through vshd on a real
  terminal and with pipes, then Shutdown."""
import os
import re
import subprocess

import sdk
import valet
import vm

STEPS = ("sdk_sandbox_example", "sdk_files_process_tunnel_shell")
DOC = os.path.join(valet.ROOT, "docs", "sdk.md")


def missing(build, service):
    """Why the build's maitred cannot serve service yet (its service not
    merged), or None: the step then says so and checks nothing else."""
    v = sdk.load()
    m = sdk.harness.Maitred(args=["--no-startup-processes", "--vm-ready", "none"])
    try:
        with v.Guest(m.addr) as g:
            probe = {"valet.v1.Process": lambda: g.processes(),
                     "valet.v1.Tunnel": lambda: next(g._call(v._methods.TUNNEL["Connect"])(iter(()), timeout=10))}
            try:
                probe[service]()
            except v.Unimplemented as e:
                return f"{service} is not served by this maitred ({e})"
            except Exception as e:  # noqa: BLE001 - served, and refusing the empty probe
                if "unknown method" in str(getattr(e, "details", lambda: "")()):
                    return f"{service} is not served by this maitred"
        return None
    finally:
        m.stop()


def example_text():
    """The Python block after the `sandbox-example` marker of docs/sdk.md."""
    text = open(DOC).read()
    m = re.search(r"<!-- sandbox-example -->\n```python\n(.*?)\n```\n", text, re.S)
    assert m, "docs/sdk.md has no sandbox example"
    return m.group(1) + "\n"


def sandbox_example(build, work, kdir):
    why = missing(build, "valet.v1.Process")
    if why:
        print(f"# skipped: {why}", flush=True)
        return
    image = os.path.join(work, "guest.img")
    # The page's own command line for the image.
    subprocess.run([os.path.join(valet.ROOT, "src", "mkinitramfs", "valet-mkinitramfs.sh"), "-o", image,
                    "--programs", os.path.join(build, "src"), "--modules", os.path.join(kdir, "modules"),
                    "--net", "eth0=10.0.2.15/24", "--listen", "tcp:10.0.2.15:8888",
                    "--vm-ready", "tcp:10.0.2.100:7777"], check=True)
    script = os.path.join(work, "sandbox.py")
    with open(script, "w") as f:
        f.write(example_text())
    env = dict(os.environ, PYTHONPATH=os.path.join(valet.ROOT, "python"))
    r = subprocess.run(["timeout", "-k", "5", "600", "/usr/bin/python3", script, os.path.join(kdir, "vmlinuz"),
                        image], capture_output=True, text=True, env=env, cwd=work)
    assert r.returncode == 0, f"exit status {r.returncode}\n{r.stdout}\n{r.stderr}"
    lines = r.stdout.splitlines()
    release = open(os.path.join(kdir, "version")).read().strip()
    want = [f"guest kernel: {release}", None, "ok   add 1 2 = 3", "ok   add 20 22 = 42", "ok   add -5 5 = 0",
            "3 passed, 0 failed", "tests exited with 0", "results: ['kernel.txt', 'summary.txt']",
            "3 passed, 0 failed", "QEMU exited with 0"]
    assert len(lines) == len(want), r.stdout
    for got, w in zip(lines, want):
        assert w is None or got == w, (got, w, r.stdout)
    assert re.fullmatch(r"uploaded 2 files, \d+ bytes", lines[1]), lines[1]


def tunnel_to_itself(v, g, release, data):
    with g.forward(8888, host=vm.GUEST_IP) as fwd:
        with v.Guest(fwd.address) as inner:
            assert inner.kernel_version().release == release
            assert inner.files.read("/tmp/big.bin", length=10) == data[:10]
        assert fwd.errors == []


def files_process_tunnel_shell(build, work, kdir):
    why = missing(build, "valet.v1.Process")
    if why:
        print(f"# skipped: {why}", flush=True)
        return
    v = sdk.load()
    initrd = os.path.join(work, "initrd.gz")
    vm.build_initramfs(build, kdir, initrd)
    machine = vm.VM(build, work, kdir, initrd, cmdline="maitred.shutdown_grace=1", timeout=600)
    try:
        assert machine.listener.event.wait(vm.BOOT_TIMEOUT) or machine.check_alive(), "VmReady never arrived"
        machine.wait_vshd()
        with v.Guest(machine.maitred_addr(), vsh_address=machine.vshd_addr()) as g:
            release = open(os.path.join(kdir, "version")).read().strip()
            assert g.kernel_version().release == release
            # Files: 8 MiB up and back, a tree both ways.
            data = os.urandom(8 << 20)
            assert g.files.write("/tmp/big.bin", data).size == len(data)
            assert g.files.read("/tmp/big.bin") == data
            tree = os.path.join(work, "tree")
            os.makedirs(os.path.join(tree, "a", "b"))
            with open(os.path.join(tree, "a", "b", "f"), "wb") as f:
                f.write(b"leaf")
            os.symlink("b/f", os.path.join(tree, "a", "l"))
            assert g.files.upload(tree, "/tmp/tree").files == 1
            g.files.download("/tmp/tree", os.path.join(work, "back"))
            assert open(os.path.join(work, "back", "a", "b", "f"), "rb").read() == b"leaf"
            assert os.readlink(os.path.join(work, "back", "a", "l")) == "b/f"
            # Processes.
            r = g.run("cat /proc/1/comm; echo err >&2; exit 7", input=b"")
            assert (r.stdout, r.stderr, r.exit_code) == (b"maitred\n", b"err\n", 7), r
            p = g.start("read x; echo got:$x", stdin=True, tag="vm")
            assert [i.tag for i in g.processes()] == ["vm"]
            q = g.attach("vm")
            p.send_input("hi\n")
            p.close_stdin()
            assert p.wait(timeout=60).stdout == b"got:hi\n"
            assert q.wait(timeout=60).stdout == b"got:hi\n"
            # A tunnel to the guest's own maitred, asked through it.
            why = missing(build, "valet.v1.Tunnel")
            if why:
                print(f"# skipped the tunnel: {why}", flush=True)
            else:
                tunnel_to_itself(v, g, release, data)
            # shell(): pipes, then a real terminal.
            out = os.path.join(work, "shell.out")
            with open("/dev/null", "rb") as null, open(out, "wb") as o:
                assert g.shell(["sh", "-c", "uname -r; exit 3"], stdin=null, stdout=o, stderr=o) == 3
            assert open(out).read() == release + "\n"
            t = sdk.Terminal(machine.vshd_addr(), ["sh", "-c", "stty size; read l; echo line:$l"], rows=33, cols=99)
            t.read_until("33 99", timeout=60)
            t.write(b"typed\r")
            t.read_until("line:typed", timeout=60)
            t.read_until("SHELL-RETURNED 0 TERMINAL-RESTORED", timeout=60)
            t.close()
            g.shutdown()
        assert machine.wait_exit(60) == 0
    finally:
        machine.close()


def run(build, tally, pattern):
    if pattern and not any(pattern in f"vm/{n}" for n in STEPS):
        return
    valet.configure(build)
    kdir = vm.kernel_dir()
    work = valet.tmpdir()
    try:
        for name, fn in (("sdk_sandbox_example", sandbox_example),
                         ("sdk_files_process_tunnel_shell", files_process_tunnel_shell)):
            if pattern and pattern not in f"vm/{name}":
                continue
            sub = os.path.join(work, name)
            os.makedirs(sub)
            vm.run_step(tally, name, fn, build, sub, kdir)
    finally:
        valet.cleanup()
