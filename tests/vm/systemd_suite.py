"""The systemd guest: valet's Debian package, built from this tree with
dpkg-buildpackage, installed with dpkg into a minimal Debian 12 root
filesystem (tests/vm/make-rootfs.sh, debootstrap, cached), both units
enabled, booted under QEMU with Debian's cloud kernel and systemd as PID 1.
From the host: VmReady, every RPC, vsh as root and as an ordinary user,
the units active after READY=1, `systemctl restart maitred`, maitred
killed more often than systemd's default start limit allows and back each
time, and Shutdown
powering the VM off through systemd with a clean root filesystem.

A tiny first stage (busybox) loads the modules the cloud kernel needs for
its disk, gives eth0 QEMU's user-network address, and switches to the
root filesystem, where systemd takes over."""
import os
import re
import shutil
import subprocess
import tempfile
import time

import valet
import vm

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT_TIMEOUT = 240  # systemd under TCG
STEPS = ("package_builds package_lintian package_contents systemd_boot_vm_ready systemd_units_active "
         "systemd_units_verify systemd_every_rpc systemd_vsh_root_and_user systemd_restart_maitred "
         "systemd_crash_loop_restarts systemd_shutdown_powers_off").split()

FIRST_STAGE = """#!/bin/sh
# The systemd guest's first stage: modules for the disk and the network,
# eth0's address, then systemd from the root filesystem on /dev/vda.
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
echo "<6>stage0: loading modules" >/dev/kmsg
while read -r m; do insmod "/lib/modules/$m"; done </lib/modules/modules.order
i=0
until [ -b /dev/vda ] && ip link show eth0 >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 500 ] && break; usleep 10000
done
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
mkdir -p /newroot
mount -t ext4 -o rw /dev/vda /newroot
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
echo "<6>stage0: switching to systemd" >/dev/kmsg
exec switch_root /newroot /sbin/init
"""


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw)


def source_files():
    """The tree as git sees it (tracked and new, not ignored): a package
    built from what is here, not from a stale build directory."""
    out = subprocess.run(["git", "-C", valet.ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f and os.path.lexists(os.path.join(valet.ROOT, f))]


class Guest:
    def __init__(self, tally, pattern):
        self.tally = tally
        self.pattern = pattern
        self.work = valet.tmpdir()
        self.deb = self.changes = None
        self.v = None

    def step(self, name, fn, *args):
        return vm.run_step(self.tally, name, fn, *args)

    # -- the package ---------------------------------------------------------
    def build_package(self):
        src = os.path.join(self.work, "pkg", "valet")
        os.makedirs(src)
        files = source_files()
        subprocess.run(["tar", "-C", valet.ROOT, "--null", "-T", "-", "-cf", "-"], input="\0".join(files).encode(),
                       check=True, stdout=open(os.path.join(self.work, "src.tar"), "wb"))
        sh("tar", "-C", src, "-xf", os.path.join(self.work, "src.tar"))
        r = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        parent = os.path.dirname(src)
        debs = [f for f in os.listdir(parent) if re.fullmatch(r"valet_[^_]+_amd64\.deb", f)]
        assert len(debs) == 1, os.listdir(parent)
        self.deb = os.path.join(parent, debs[0])
        self.changes = self.deb[:-4] + ".changes"

    def lintian(self):
        r = subprocess.run(["lintian", "--fail-on", "error", self.changes], capture_output=True, text=True)
        errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E:")]
        assert r.returncode == 0 and not errors, r.stdout + r.stderr

    def contents(self):
        listing = sh("dpkg", "-c", self.deb).stdout
        paths = {ln.split()[-1].lstrip(".") for ln in listing.splitlines()}
        expected = {"/usr/sbin/maitred", "/usr/sbin/vshd", "/usr/bin/maitctl", "/usr/bin/vsh",
                    "/usr/bin/valet-mkinitramfs", "/lib/systemd/system/maitred.service",
                    "/lib/systemd/system/vshd.service", "/usr/share/bash-completion/completions/maitctl",
                    "/usr/share/bash-completion/completions/vsh",
                    "/usr/share/doc/valet/examples/jobs/50-example.textproto",
                    "/usr/share/man/man1/maitctl.1.gz", "/usr/share/man/man1/vsh.1.gz",
                    "/usr/share/man/man1/valet-mkinitramfs.1.gz", "/usr/share/man/man5/maitred-jobs.5.gz",
                    "/usr/share/man/man8/maitred.8.gz", "/usr/share/man/man8/vshd.8.gz",
                    "/etc/valet/maitred.conf"}
        missing = expected - paths
        assert not missing, (missing, listing)
        # The config file is the administrator's: a conffile.
        conffiles = sh("dpkg-deb", "-I", self.deb, "conffiles").stdout.split()
        assert "/etc/valet/maitred.conf" in conffiles, conffiles
        # Installed, not enabled: no wants/ link in the package.
        assert not any("wants" in p for p in paths), listing

    # -- the guest -----------------------------------------------------------
    def make_disk(self):
        tarball = sh(os.path.join(HERE, "make-rootfs.sh")).stdout.strip().splitlines()[-1]
        root = os.path.join(self.work, "root")
        os.makedirs(root)
        sh("tar", "-C", root, "--numeric-owner", "-xf", tarball)
        shutil.copy(self.deb, os.path.join(root, "tmp", "valet.deb"))
        chroot = ["chroot", root]
        sh(*chroot, "dpkg", "-i", "/tmp/valet.deb")
        os.unlink(os.path.join(root, "tmp", "valet.deb"))
        # What a user of the package does: enable the units, configure them.
        sh(*chroot, "systemctl", "enable", "maitred.service", "vshd.service")
        sh(*chroot, "useradd", "--create-home", "--shell", "/bin/sh", "alice")
        with open(os.path.join(root, "etc/default/maitred"), "w") as f:
            f.write(f'MAITRED_OPTS="--listen vsock:-1:8888 --listen tcp:{vm.GUEST_IP}:8888 '
                    f'--vm-ready tcp:{vm.VM_READY_GUEST}"\n')
        with open(os.path.join(root, "etc/default/vshd"), "w") as f:
            f.write(f'VSHD_OPTS="--listen vsock:-1:9001 --listen tcp:{vm.GUEST_IP}:9001"\n')
        with open(os.path.join(root, "etc/fstab"), "w") as f:
            f.write("/dev/vda / ext4 defaults 0 1\n")
        with open(os.path.join(root, "etc/hostname"), "w") as f:
            f.write("valet-systemd\n")
        # No login prompt on the console: nothing to answer it.
        sh(*chroot, "systemctl", "mask", "serial-getty@ttyS0.service", "getty@tty1.service")
        self.disk = os.path.join(self.work, "root.ext4")
        sh("mkfs.ext4", "-q", "-F", "-L", "root", "-d", root, self.disk, "1G")
        shutil.rmtree(root)

    def make_first_stage(self, kdir):
        d = os.path.join(self.work, "stage0")
        for sub in ("bin", "dev", "proc", "lib/modules", "newroot"):
            os.makedirs(os.path.join(d, sub))
        shutil.copy("/bin/busybox", os.path.join(d, "bin/busybox"))
        for applet in ("sh", "mount", "insmod", "ip", "usleep", "mkdir", "switch_root"):
            os.symlink("busybox", os.path.join(d, "bin", applet))
        mods = os.path.join(kdir, "modules")
        for m in os.listdir(mods):
            shutil.copy(os.path.join(mods, m), os.path.join(d, "lib/modules", m))
        with open(os.path.join(d, "init"), "w") as f:
            f.write(FIRST_STAGE)
        os.chmod(os.path.join(d, "init"), 0o755)
        sh("mknod", "-m", "0600", os.path.join(d, "dev/console"), "c", "5", "1")
        sh("mknod", "-m", "0644", os.path.join(d, "dev/kmsg"), "c", "1", "11")
        self.initrd = os.path.join(self.work, "stage0.cpio.gz")
        subprocess.run(f"find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0 | gzip -1 > "
                       f"{self.initrd}", shell=True, cwd=d, check=True)

    def boot(self):
        kdir = vm.kernel_dir()
        self.make_disk()
        self.make_first_stage(kdir)
        sub = os.path.join(self.work, "vm")
        os.makedirs(sub)
        self.v = vm.VM(None, sub, kdir, self.initrd, cmdline="net.ifnames=0", disk=self.disk,
                       timeout=BOOT_TIMEOUT + 120, mem=512)
        self.v.keep_console = os.path.join(self.work, "console.log")
        self.booted = time.monotonic()
        assert self.v.listener.event.wait(BOOT_TIMEOUT) or self.v.check_alive(), \
            "VmReady never arrived:\n" + self.v.console_text()[-3000:]
        self.v.wait_console(r"stage0: switching to systemd", timeout=5)
        ready = time.monotonic() - self.booted
        self.v.wait_vshd()
        print(f"systemd guest: VmReady {ready:.1f} s after QEMU started, vshd "
              f"{time.monotonic() - self.booted:.1f} s", flush=True)

    def gsh(self, script, *args):
        res = valet.vsh(self.v.vshd_addr(), *args, "--", "/bin/sh", "-c", script, timeout=60)
        assert res.returncode == 0, (script, res)
        return res.stdout.decode()

    def units_active(self):
        for unit in ("maitred", "vshd"):
            out = self.gsh(f"systemctl show -p ActiveState -p SubState -p Type -p NRestarts {unit}")
            props = dict(ln.split("=", 1) for ln in out.split())
            assert props == {"ActiveState": "active", "SubState": "running", "Type": "notify",
                             "NRestarts": "0"}, (unit, props)
        # The units are enabled (by the test, as a user would), not by the package.
        out = self.gsh("systemctl is-enabled maitred vshd")
        assert out.split() == ["enabled", "enabled"], out

    def units_verify(self):
        out = self.gsh("systemd-analyze verify --man=no maitred.service vshd.service 2>&1; echo rc=$?")
        assert out.strip().endswith("rc=0") and "maitred" not in out.replace("rc=0", ""), out

    def every_rpc(self):
        ctl = lambda *a: valet.maitctl(self.v.maitred_addr(), *a)  # noqa: E731
        r = ctl("network", "--address", f"{vm.GUEST_IP}/24", "--gateway", "10.0.2.2")
        assert r.returncode == 0, r
        r = ctl("launch", "--wait", "--", "/bin/sh", "-c", "test $(id -u) = 0 && exit 6")
        assert r.returncode == 6, r
        r = ctl("mount", "tmpfs", "/mnt", "tmpfs", "--options", "size=1m,mode=0700")
        assert r.returncode == 0, r
        out = self.gsh("grep ' /mnt ' /proc/mounts")
        assert "tmpfs /mnt tmpfs" in out and "mode=700" in out, out

    def vsh_root_and_user(self):
        assert self.gsh("id -un; pwd").split() == ["root", "/root"]
        out = self.gsh("id -un; echo $HOME; pwd", "--user=alice")
        assert out.split() == ["alice", "/home/alice", "/home/alice"], out
        # A terminal session as the user, too.
        res = valet.vsh(self.v.vshd_addr(), "--user=alice", "-t", "--", "/bin/sh", "-c", "tty; id -un")
        assert res.returncode == 0 and b"/dev/pts/" in res.stdout and b"alice" in res.stdout, res

    def restart_maitred(self):
        # A process the host launched survives the agent's restart.
        r = valet.maitctl(self.v.maitred_addr(), "launch", "--", "/bin/sleep", "1000")
        assert r.returncode == 0, r
        before = self.gsh("systemctl show -p MainPID --value maitred").strip()
        start = time.monotonic()
        self.gsh("systemctl restart maitred")
        restarted = time.monotonic()
        # The host's next call: it may be refused only while maitred starts.
        while True:
            r = valet.maitctl(self.v.maitred_addr(), "--timeout", "5", "launch", "--wait", "--", "/bin/true")
            if r.returncode == 0:
                break
            assert time.monotonic() - restarted < 10, r
            time.sleep(0.05)
        gap = time.monotonic() - restarted
        after = self.gsh("systemctl show -p MainPID --value maitred").strip()
        assert before != after, (before, after)
        print(f"systemd guest: restart took {restarted - start:.2f} s, next call served {gap:.2f} s after it",
              flush=True)
        assert gap < 5, gap
        assert "sleep 1000" in self.gsh("ps -eo args"), "the launched process died with the restart"

    def crash_loop(self):
        """systemd's default start limit (5 starts in 10 s) leaves a unit
        that crashes a sixth time failed for good: the host's only way in.
        Ten SIGKILLs (a crash for Restart=on-failure), each as soon as
        maitred is back and answering (checked in the guest by the
        package's maitctl). Under emulation a cycle takes seconds, fewer
        than 6 could fall in 10 s: for the step a drop-in shortens
        RestartSec to 100 ms and lowers StartLimitBurst to 2, so that a
        unit with any start limit fails here (StartLimitIntervalSec=0
        turns the limit off whatever the burst)."""
        dropin = "/run/systemd/system/maitred.service.d"
        self.gsh(f"mkdir -p {dropin} && printf '[Unit]\\nStartLimitBurst=2\\n[Service]\\nRestartSec=100ms\\n' "
                 f">{dropin}/fast.conf && systemctl daemon-reload")
        script = f"""
        prev=$(systemctl show -p MainPID --value maitred)
        for i in 1 2 3 4 5 6 7 8 9 10; do
            kill -KILL "$prev" || exit 1
            n=0
            while :; do
                if maitctl --addr tcp:{vm.GUEST_IP}:8888 --timeout 2 kernel-version >/dev/null 2>&1; then
                    now=$(systemctl show -p MainPID --value maitred)
                    [ "$now" != 0 ] && [ "$now" != "$prev" ] && break
                fi
                n=$((n + 1))
                if [ $n -gt 200 ]; then
                    echo "maitred not back after kill $i:" $(systemctl show -p ActiveState -p Result maitred)
                    exit 0
                fi
                sleep 0.05
            done
            echo "kill $i: back as $now"
            prev=$now
        done
        echo "NRestarts $(systemctl show -p NRestarts --value maitred)"
        """
        start = time.monotonic()
        try:
            out = self.gsh(script)
        finally:
            self.gsh(f"rm -rf {dropin} && systemctl daemon-reload && systemctl reset-failed maitred && "
                     "systemctl start maitred")
        took = time.monotonic() - start
        print(f"systemd guest: {took:.1f} s for 10 kills: " + "; ".join(out.strip().splitlines()), flush=True)
        assert "not back" not in out and out.count(": back as ") == 10, out
        r = valet.maitctl(self.v.maitred_addr(), "--timeout", "5", "kernel-version")
        assert r.returncode == 0, r
        # vshd's unit has the same setting (killing it here would cut the
        # very channel these checks use).
        props = self.gsh("systemctl show -p StartLimitIntervalUSec maitred vshd").split()
        assert props == ["StartLimitIntervalUSec=0"] * 2, props

    def shutdown(self):
        start = time.monotonic()
        r = valet.maitctl(self.v.maitred_addr(), "shutdown")
        assert r.returncode == 0 and r.stdout.strip() == "OK", r
        code = self.v.wait_exit(120)
        took = time.monotonic() - start
        c = self.v.console_text()
        assert code == 0, f"qemu exit status {code}:\n" + c[-3000:]
        assert "reboot: Power down" in c, c[-3000:]
        print(f"systemd guest: powered off {took:.1f} s after Shutdown", flush=True)
        # systemd unmounted the root file system cleanly.
        r = subprocess.run(["e2fsck", "-fn", self.disk], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def run(build, tally, pattern):
    if pattern and not any(pattern in f"vm/{n}" for n in STEPS):
        return
    valet.configure(build)
    g = Guest(tally, pattern)
    try:
        if not g.step("package_builds", g.build_package):
            return
        g.step("package_lintian", g.lintian)
        g.step("package_contents", g.contents)
        if not g.step("systemd_boot_vm_ready", g.boot):
            return
        g.step("systemd_units_active", g.units_active)
        g.step("systemd_units_verify", g.units_verify)
        g.step("systemd_every_rpc", g.every_rpc)
        g.step("systemd_vsh_root_and_user", g.vsh_root_and_user)
        g.step("systemd_restart_maitred", g.restart_maitred)
        g.step("systemd_crash_loop_restarts", g.crash_loop)
        g.step("systemd_shutdown_powers_off", g.shutdown)
    finally:
        if g.v:
            g.v.close()
            if os.path.exists(g.v.keep_console):
                shutil.copyfile(g.v.keep_console, os.path.join(build, "vm-console-systemd.log"))
        valet.cleanup()
