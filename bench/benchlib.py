"""What the benchmarks share: waiting for a server to be reachable, a free
TCP port, a process's memory, CPU time and children. (tests/lib/valet.py
is the test suite's counterpart; the benchmarks run the static build and
need less of it.)"""
import os
import socket
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def children(pid):
    """The pids of pid's children ([] once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_of(pid):
    """(own CPU seconds, CPU seconds of the children it has reaped)."""
    with open(f"/proc/{pid}/stat") as f:
        w = f.read().rsplit(")", 1)[1].split()
    # Fields 14-17 of proc(5); w[0] is field 3.
    return (int(w[11]) + int(w[12])) / CLK_TCK, (int(w[13]) + int(w[14])) / CLK_TCK


def pss_kib(pid):
    """Proportional set size: shared pages divided among their sharers (a
    forked worker's pages shared with its parent count half)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_listening(kind, where, proc, timeout=10):
    """Until a socket listens at where (a unix path or a TCP port), read
    from /proc/net so that no connection is spent on the check (socat's
    listener accepts exactly one)."""
    deadline = time.monotonic() + timeout
    while True:
        _check_alive(proc)
        if kind == "unix":
            with open("/proc/net/unix") as f:
                # Num RefCount Protocol Flags Type St Inode Path; Flags 00010000: listening
                if any(len(w) > 7 and w[7] == where and int(w[3], 16) & 0x10000 for w in map(str.split, f)):
                    return
        else:
            with open("/proc/net/tcp") as f:
                if any(w[1].endswith(f":{where:04X}") and w[3] == "0A" for w in map(str.split, list(f)[1:])):
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {where}")
        time.sleep(0.005)
