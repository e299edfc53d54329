#!/usr/bin/python3
"""vsh side by side with OpenSSH (a local sshd on 127.0.0.1) and with a raw
relay (socat through a unix socket), in one run: throughput of 1 GiB,
latency of running `true`, keystroke-to-echo through a PTY, and memory per
idle session. Prints a Markdown report."""
import argparse
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import children, free_port, pss_kib, wait_path, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = "1G"


class Sshd:
    def __init__(self, d):
        self.d = d
        self.port = free_port()
        hostkey, self.key = os.path.join(d, "hostkey"), os.path.join(d, "id")
        for k in (hostkey, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True)
        auth = os.path.join(d, "authorized_keys")
        shutil.copy(self.key + ".pub", auth)
        os.chmod(auth, 0o600)
        os.makedirs("/run/sshd", exist_ok=True)
        cfg = os.path.join(d, "sshd_config")
        with open(cfg, "w") as f:
            f.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {hostkey}\nAuthorizedKeysFile {auth}\n"
                    "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
                    "StrictModes no\nPidFile none\nLogLevel ERROR\n")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", cfg], stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def cmd(self, *args, tty=False):
        return ["ssh", "-T" if not tty else "-tt", "-i", self.key, "-p", str(self.port), "-o",
                "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "root@127.0.0.1"] + list(args)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def timed(cmd, runs, stdin=subprocess.DEVNULL):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t)
    return out


def throughput(vsh_cmd, ssh, d, runs):
    relay = os.path.join(d, "relay.sock")
    res = {"vsh": [], "ssh": [], "floor": []}
    for _ in range(runs):
        # Interleaved run by run.
        res["vsh"] += timed(vsh_cmd + ["--", "head", "-c", SIZE, "/dev/zero"], 1)
        res["ssh"] += timed(ssh.cmd("head", "-c", SIZE, "/dev/zero"), 1)
        if os.path.exists(relay):
            os.unlink(relay)
        srv = subprocess.Popen(["socat", "-b", "131072", f"UNIX-LISTEN:{relay}",
                                f"EXEC:head -c {SIZE} /dev/zero"])
        wait_path(relay)
        res["floor"] += timed(["socat", "-b", "131072", "-u", f"UNIX-CONNECT:{relay}", "-"], 1)
        srv.wait()
    return {k: statistics.median(v) for k, v in res.items()}


def echo_latency(argv, n):
    """Median time from writing one byte to the PTY to reading its echo."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    lat = []
    try:
        time.sleep(0.5)
        os.write(fd, b"\x15")  # let everything settle; clear the line
        time.sleep(0.2)
        while select.select([fd], [], [], 0.1)[0]:
            os.read(fd, 4096)
        for i in range(n):
            ch = bytes([ord("a") + i % 26])
            t = time.perf_counter()
            os.write(fd, ch)
            got = b""
            while ch not in got:
                if not select.select([fd], [], [], 5)[0]:
                    raise RuntimeError("no echo")
                got += os.read(fd, 4096)
            lat.append(time.perf_counter() - t)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return statistics.median(lat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-static")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=100)
    args = ap.parse_args()
    bin_dir = os.path.join(os.path.abspath(args.build), "src")
    d = tempfile.mkdtemp(prefix="valet-vsh-bench-")
    vsock = os.path.join(d, "vshd.sock")
    vshd = subprocess.Popen([os.path.join(bin_dir, "vshd"), "--listen", "unix:" + vsock,
                             "--max-sessions", str(args.sessions + 10)], stderr=subprocess.DEVNULL)
    wait_path(vsock)
    ssh = Sshd(d)
    vsh = [os.path.join(bin_dir, "vsh"), "--addr", "unix:" + vsock]
    try:
        tp = throughput(vsh, ssh, d, args.runs)
        lat = {"vsh": [], "ssh": []}
        for _ in range(30):
            lat["vsh"] += timed(vsh + ["--", "true"], 1)
            lat["ssh"] += timed(ssh.cmd("true"), 1)
        lat = {k: statistics.median(v) for k, v in lat.items()}
        echo_vsh = echo_latency(vsh + ["-t", "--", "cat"], 300)
        echo_local = echo_latency(["cat"], 300)
        # Idle sessions: vsh -- sleep, pipe mode; PSS of vshd's session processes.
        clients = [subprocess.Popen(vsh + ["--", "sleep", "1000"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for _ in range(args.sessions)]
        deadline = time.monotonic() + 30
        while len(children(vshd.pid)) < args.sessions and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        sessions = children(vshd.pid)
        pss = sum(pss_kib(p) for p in sessions) / max(len(sessions), 1)
        for c in clients:
            c.kill()
            c.wait()
    finally:
        ssh.stop()
        vshd.kill()
        vshd.wait()
        shutil.rmtree(d, ignore_errors=True)

    gib = 1.0
    print(f"### Throughput: {SIZE} of zeros from the remote side, median of {args.runs} (interleaved)\n")
    print("| | seconds | GiB/s | vs floor | vs ssh |")
    print("|---|---:|---:|---:|---:|")
    for k in ("floor", "vsh", "ssh"):
        print(f"| {k} | {tp[k]:.2f} | {gib / tp[k]:.2f} | {tp['floor'] / tp[k]:.2f}× | {tp['ssh'] / tp[k]:.2f}× |")
    print("\n### Latency of running `true`, median of 30 (interleaved)\n")
    print(f"| vsh -- true | ssh 127.0.0.1 true | ratio |\n|---:|---:|---:|\n"
          f"| {lat['vsh'] * 1000:.1f} ms | {lat['ssh'] * 1000:.1f} ms | {lat['ssh'] / lat['vsh']:.0f}× |")
    print("\n### Keystroke to echo, median of 300\n")
    print(f"| through vsh (PTY, remote cat) | local PTY (cat) |\n|---:|---:|\n"
          f"| {echo_vsh * 1e6:.0f} µs | {echo_local * 1e6:.0f} µs |")
    print(f"\n### Memory\n\nPSS per idle session process with {len(sessions)} sessions open: {pss:.0f} KiB\n")
    print(f"Summary: vsh moves data at {tp['floor'] / tp['vsh']:.2f}× the floor's rate (target ≥ 0.7) and {tp['ssh'] / tp['vsh']:.1f}× ssh "
          f"(target ≥ 2); `vsh -- true` {lat['ssh'] / lat['vsh']:.0f}× faster than ssh (target ≥ 50); "
          f"{pss:.0f} KiB PSS per session (target ≤ 200).")


if __name__ == "__main__":
    sys.exit(main())
