"""Boots the VM test's image under QEMU (software emulation only: KVM on
these hosts hangs) and gives the host its ways in: the ports QEMU forwards
to maitred and vshd, the console log, the monitor, a VmReady listener.

Every boot has a hard timeout; pvpanic turns a guest panic into QEMU exit
status 1, and the console is watched for "Kernel panic" too."""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import traceback

import valet

HERE = os.path.dirname(os.path.abspath(__file__))
VM_DIR = os.path.join(os.path.dirname(HERE), "vm")
GUEST_IP = "10.0.2.15"
VM_READY_GUEST = "10.0.2.100:7777"
BOOT_TIMEOUT = 60


class VmDied(AssertionError):
    pass


_running = set()


@atexit.register
def _close_all():
    for v in list(_running):
        v.close()


def kernel_time(text, pattern):
    """(kernel timestamp in seconds, match) of the first kernel log line in
    text (console or dmesg) whose message matches pattern; the match's group
    1 is the timestamp, so name the pattern's own groups."""
    m = re.search(r"\[\s*(\d+\.\d+)\]\s+" + pattern, text)
    if not m:
        raise AssertionError(f"no kernel log line matches {pattern!r}")
    return float(m.group(1)), m


def run_step(tally, name, fn, *args):
    """Runs one VM test case: ok or not ok "vm/NAME" in the tally. Returns
    False when it failed, else fn's result (True for None)."""
    full = f"vm/{name}"
    start = time.monotonic()
    try:
        res = fn(*args)
    except Exception as e:
        tally.fail(full, f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=6))
        return False
    tally.ok(full, time.monotonic() - start)
    return res if res is not None else True


def kernel_dir():
    out = subprocess.run([os.path.join(VM_DIR, "fetch-kernel.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


MKINITRAMFS = os.path.join(valet.ROOT, "src", "mkinitramfs", "valet-mkinitramfs.sh")


def build_initramfs(build, kdir, out, test_jobs=False):
    """The image every VM boot uses, made by the users' own tool: static
    programs of build, the modules of kdir, eth0 at GUEST_IP for QEMU's
    user network (forwarded ports, VmReady through guestfwd). With
    test_jobs, the VM test's boot jobs too: one waited for, one that does
    not parse, one asking for respawn and wait_for_exit, and a second job
    directory picked with valet_jobs= on the kernel command line."""
    programs = os.path.join(build, "src")
    for p in ("maitred", "vshd", "maitctl", "vsh"):
        elf = subprocess.run(["readelf", "-l", os.path.join(programs, p)], capture_output=True, text=True)
        if elf.returncode != 0 or "program interpreter" in elf.stdout:
            raise AssertionError(f"{programs}/{p} is missing or not static (build with -Dstatic=true)")
    cmd = [MKINITRAMFS, "-o", out, "--programs", programs, "--modules", os.path.join(kdir, "modules"),
           "--net", f"eth0={GUEST_IP}/24",
           "--listen", "vsock:-1:8888", "--listen", f"tcp:{GUEST_IP}:8888",
           "--vsh-listen", "vsock:-1:9001", "--vsh-listen", f"tcp:{GUEST_IP}:9001",
           "--vm-ready", "tcp:" + VM_READY_GUEST, "--dir", "/mnt/disk", "--dir", "/mnt/tmp"]
    if test_jobs:
        jobs = os.path.join(VM_DIR, "jobs")
        for j in sorted(os.listdir(jobs)):
            if j.endswith(".textproto"):
                cmd += ["--job", os.path.join(jobs, j)]
        cmd += ["--file", os.path.join(jobs, "poweroff-during-jobs") + "=/etc/maitred-poweroff-during-jobs"]
        # Zones for SetTimezone (tzdata on the host).
        for zone in ("UTC", "Asia/Tokyo"):
            src = os.path.realpath(f"/usr/share/zoneinfo/{zone}")  # UTC is a symlink in tzdata
            cmd += ["--file", f"{src}=/usr/share/zoneinfo/{zone}"]
    subprocess.run(cmd, check=True)


class VM:
    def __init__(self, build, workdir, kdir, initrd, cmdline="", disk=None, timeout=120, mem=256, extra_disks=(),
                 incoming=None):
        self.workdir = workdir
        self.console = os.path.join(workdir, "console.log")
        self.monitor_path = os.path.join(workdir, "monitor.sock")
        self.listener = valet.StartupListener("127.0.0.1:0")
        # no_timer_check: under TCG on a loaded host the kernel's check of
        # the IO-APIC timer can miss its ticks and panic ("IO-APIC + timer
        # doesn't work!", seen once in a boot of the VM test at load 17);
        # the check proves nothing about an emulated timer.
        append = f"console=ttyS0 panic=-1 no_timer_check {cmdline}".strip()
        cmd = ["timeout", "-k", "5", str(timeout),
               "qemu-system-x86_64", "-accel", "tcg", "-M", "q35", "-nodefaults", "-no-reboot",
               "-display", "none", "-m", str(mem), "-smp", "1",
               "-kernel", os.path.join(kdir, "vmlinuz"), "-initrd", initrd, "-append", append,
               "-serial", f"file:{self.console}",
               "-monitor", f"unix:{self.monitor_path},server=on,wait=off",
               "-device", "pvpanic-pci", "-action", "panic=exit-failure",
               "-netdev", "user,id=n0,restrict=on,"
               f"hostfwd=tcp:127.0.0.1:0-{GUEST_IP}:8888,hostfwd=tcp:127.0.0.1:0-{GUEST_IP}:9001,"
               f"guestfwd=tcp:{VM_READY_GUEST}-tcp:127.0.0.1:{self.listener.port}",
               "-device", "virtio-net-pci,netdev=n0"]
        if disk:
            cmd += ["-drive", f"file={disk},if=none,format=raw,id=d0", "-device", "virtio-blk-pci,drive=d0"]
        for i, extra in enumerate(extra_disks, 1):  # /dev/vdb, ...
            cmd += ["-drive", f"file={extra},if=none,format=raw,id=d{i}", "-device", f"virtio-blk-pci,drive=d{i}"]
        if incoming:
            # A clone: the same machine, its state read from a file that a
            # migrate "exec:cat > FILE" wrote (the guest resumes from it).
            cmd += ["-incoming", f"exec:cat {incoming}"]
        self.started = time.monotonic()
        # timeout(1) leads a process group of its own with QEMU in it: close()
        # kills that group, so QEMU never outlives the harness.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _running.add(self)
        self.ports = {}
        self.lines = []  # (seconds since QEMU start, console line), as first seen
        self._stop = threading.Event()
        self._tail = threading.Thread(target=self._follow_console, daemon=True)
        self._tail.start()

    def _follow_console(self):
        pos, partial = 0, b""
        while not self._stop.is_set():
            try:
                with open(self.console, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                pos += len(data)
                now = time.monotonic() - self.started
                partial += data
                *done, partial = partial.split(b"\n")
                self.lines.extend((now, ln.decode(errors="replace")) for ln in done)
            elif self.proc.poll() is not None:
                return
            time.sleep(0.005)

    def _first(self, rx):
        """(seconds since QEMU start, match) of the first line rx matches."""
        for t, line in list(self.lines):
            m = rx.search(line)
            if m:
                return t, m
        return None, None

    def seen_at(self, pattern):
        """Seconds from QEMU start until a console line matching pattern appeared."""
        t, _ = self._first(re.compile(pattern))
        if t is None:
            raise AssertionError(f"console never showed {pattern!r}")
        return t

    # -- console -----------------------------------------------------------
    def console_text(self):
        try:
            with open(self.console, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def check_alive(self):
        if self._first(re.compile("Kernel panic"))[1]:
            raise VmDied("guest kernel panic:\n" + self.console_text()[-3000:])
        if self.proc.poll() is not None:
            out = self.proc.stdout.read().decode(errors="replace")
            raise VmDied(f"qemu exited with {self.proc.returncode}: {out}\n" + self.console_text()[-3000:])

    def wait_console(self, pattern, timeout=BOOT_TIMEOUT):
        """Waits for a console line matching pattern (as the follower saw it)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._tail.join(2)  # QEMU is gone: let the follower read the rest
            _, m = self._first(rx)
            if m:
                return m
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"console never showed {pattern!r}:\n" + self.console_text()[-3000:])
            time.sleep(0.005)

    # -- monitor -----------------------------------------------------------
    def monitor(self, command):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        # QEMU binds the socket (the file appears) before it listens: a
        # connection in between is refused (seen once, a clone starting
        # on a loaded machine).
        deadline = time.monotonic() + 10
        while True:
            try:
                s.connect(self.monitor_path)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                self.check_alive()
                time.sleep(0.05)
        buf = b""
        while b"(qemu)" not in buf:
            buf += s.recv(4096)
        s.sendall(command.encode() + b"\n")
        # The echo of the command comes first, then the answer, then a prompt.
        buf = b""
        while not (b"\r\n" in buf and buf.rstrip().endswith(b"(qemu)")):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        s.close()
        return buf.decode(errors="replace").split("\r\n", 1)[-1]

    def save(self, path, timeout=60):
        """Saves the running guest to path (migrate to a file), as a VMM
        snapshot does; the guest stays paused here. Returns the seconds it
        took."""
        start = time.monotonic()
        self.monitor(f'migrate "exec:cat > {path}"')
        deadline = start + timeout
        while True:
            out = self.monitor("info migrate")
            if re.search(r"Migration status: completed", out):
                return time.monotonic() - start
            if re.search(r"Migration status: (failed|cancelled)", out) or time.monotonic() > deadline:
                raise AssertionError("migrate to a file did not complete:\n" + out)
            time.sleep(0.05)

    def forwarded_ports(self):
        """guest port -> host port, from the monitor's `info usernet`."""
        if not self.ports:
            valet.wait_until(lambda: os.path.exists(self.monitor_path), 10, what="the QEMU monitor")
            out = self.monitor("info usernet")
            for m in re.finditer(r"HOST_FORWARD\]\s+\d+\s+127\.0\.0\.1\s+(\d+)\s+\S+\s+(\d+)", out):
                self.ports[int(m.group(2))] = int(m.group(1))
        return self.ports

    def maitred_addr(self):
        return f"tcp:127.0.0.1:{self.forwarded_ports()[8888]}"

    def vshd_addr(self):
        return f"tcp:127.0.0.1:{self.forwarded_ports()[9001]}"

    def wait_vshd(self, timeout=60):
        """Waits until vshd in the guest runs a command. VmReady says maitred
        serves; vshd is a boot job (or a unit) of its own that may listen a
        moment later, and until then QEMU's forward resets the connection."""
        valet.wait_until(lambda: valet.vsh(self.vshd_addr(), "--", "true", timeout=30).returncode == 0,
                         timeout, 0.1, what="vshd in the guest")

    # -- end -----------------------------------------------------------------
    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"qemu still running after {timeout} s:\n" + self.console_text()[-3000:])

    def close(self):
        self._stop.set()
        _running.discard(self)
        # Only while timeout(1) is unreaped is its pid surely still our group.
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.listener.stop()
        if getattr(self, "keep_console", None) and os.path.exists(self.console):
            shutil.copyfile(self.console, self.keep_console)
