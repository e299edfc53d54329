"""What the benchmarks share: waiting for a server to be reachable, a free
TCP port, a process's memory. (tests/lib/valet.py is the test suite's
counterpart; the benchmarks run the static build and need less of it.)"""
import os
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_alive(proc):
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode})")


def wait_path(path, timeout=10, proc=None):
    """Until path exists (a server's unix socket)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        _check_alive(proc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.01)


def wait_port(port, proc=None, timeout=10):
    """Until 127.0.0.1:port accepts a connection."""
    deadline = time.monotonic() + timeout
    while True:
        _check_alive(proc)
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}")
            time.sleep(0.02)


def wait_connectable(path, proc=None, timeout=10):
    """Until the unix socket at path accepts a connection; returns the
    time.perf_counter() at which it did."""
    deadline = time.perf_counter() + timeout
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
                return time.perf_counter()
            except OSError:
                pass
        _check_alive(proc)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"nothing accepts on {path}")


def status_kib(pid, key="VmRSS"):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...), 0 if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0
