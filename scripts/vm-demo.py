#!/usr/bin/python3
"""The demo: boots a real Linux kernel under QEMU with maitred as its init,
waits for VmReady, drives every RPC with maitctl from the host, and opens a
vsh shell inside the VM (interactive on a terminal, a few commands
otherwise); then Shutdown powers the VM off.

Usage: scripts/vm-demo.py STATIC_BUILD"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import valet  # noqa: E402
import vm  # noqa: E402


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(*cmd, check=False):
    shown = " ".join(a if a and " " not in a else repr(a) for a in cmd)
    print(f"$ {shown}", flush=True)
    res = subprocess.run(list(cmd))
    if res.returncode != 0:
        print(f"(exit status {res.returncode})", flush=True)
    return res.returncode


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-static")
    valet.configure(build)
    maitctl, vsh = valet.binary("maitctl"), valet.binary("vsh")
    work = valet.tmpdir()
    v = None
    try:
        say("Fetching Debian's cloud kernel (cached) and building the initramfs")
        kdir = vm.kernel_dir()
        initrd = os.path.join(work, "initrd.gz")
        vm.build_initramfs(build, kdir, initrd)
        disk = os.path.join(work, "disk.ext4")
        subprocess.run(["mkfs.ext4", "-q", "-F", disk, "16M"], check=True)
        print(f"kernel {open(os.path.join(kdir, 'version')).read().strip()}, initramfs "
              f"{os.path.getsize(initrd) // 1024} KiB (maitred as PID 1, vshd as a boot job)")

        say("Booting under QEMU (TCG, q35); waiting for VmReady")
        v = vm.VM(build, work, kdir, initrd, cmdline="maitred.shutdown_grace=3", disk=disk)
        if not v.listener.event.wait(vm.BOOT_TIMEOUT):
            v.check_alive()
            raise SystemExit("no VmReady")
        print(f"VmReady from {v.listener.calls[0][1]} {v.listener.calls[0][0] - v.started:.2f} s after QEMU "
              f"started; maitred at {v.maitred_addr()}, vshd at {v.vshd_addr()} (QEMU's forwards)")
        addr = v.maitred_addr()

        say("ConfigureNetwork, Mount, LaunchProcess through maitctl")
        run(maitctl, "--addr", addr, "network", "--address", "10.0.2.15/24", "--gateway", "10.0.2.2")
        run(maitctl, "--addr", addr, "mount", "/dev/vda", "/mnt/disk", "ext4")
        run(maitctl, "--addr", addr, "launch", "--wait", "--", "/bin/sh", "-c",
            "echo written by the demo >/mnt/disk/hello")
        run(maitctl, "--addr", addr, "launch", "--wait", "--", "/bin/sh", "-c", "exit 3")
        run(maitctl, "--addr", addr, "launch", "--wait", "--", "/nonexistent")

        say("valet.v1.Files through maitctl: a file in and back out, checked with SHA-256")
        payload = os.path.join(work, "payload.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(4 << 20))
        run(maitctl, "--addr", addr, "cp", "--sha256", payload, ":/mnt/disk/payload.bin")
        run(maitctl, "--addr", addr, "ls", "-l", ":/mnt/disk")
        back = os.path.join(work, "payload.back")
        run(maitctl, "--addr", addr, "cp", "--sha256", ":/mnt/disk/payload.bin", back)
        same = open(payload, "rb").read() == open(back, "rb").read()
        print(f"the copy that came back is {'identical' if same else 'DIFFERENT'} ({os.path.getsize(back)} bytes)")

        say("vsh into the VM")
        if sys.stdin.isatty() and sys.stdout.isatty():
            print("An interactive shell inside the VM: try `ps`, `dmesg | grep maitred`, `cat /mnt/disk/hello`;"
                  " `exit` to power the VM off.", flush=True)
            run(vsh, "--addr", v.vshd_addr())
        else:
            run(vsh, "--addr", v.vshd_addr(), "--", "/bin/sh", "-c",
                "uname -sr; hostname; ps -o pid,args | head -5; cat /mnt/disk/hello; "
                "grep VmRSS /proc/1/status; dmesg | grep -E 'maitred: (Serving|Told)'")

        say("Shutdown: SIGTERM everyone, unmount, reply, power off")
        start = time.monotonic()
        run(maitctl, "--addr", addr, "shutdown")
        code = v.wait_exit(30)
        print(f"QEMU exited with status {code}, {time.monotonic() - start:.2f} s after Shutdown")
        out = subprocess.run(["debugfs", "-R", "cat /hello", disk], capture_output=True, text=True)
        print(f"the disk image, read on the host with debugfs: {out.stdout.strip()!r}")
        say("maitred's lines on the VM console")
        for line in v.console_text().splitlines():
            if "maitred:" in line:
                print(line)
    finally:
        if v:
            v.close()
        valet.cleanup()


if __name__ == "__main__":
    main()
