#!/usr/bin/python3
"""The VMM side of hybrid vsock, as Firecracker and Cloud Hypervisor
document it, in front of services on plain unix sockets:

- host -> guest: the host connects to the VMM's unix socket PATH, writes
  "CONNECT <port>\\n"; the VMM answers "OK <host-side port>\\n" and the
  stream is then the guest's port (here: the unix socket mapped to that
  port); a port nobody listens on gets the connection closed.
- guest -> host: a connection the guest makes to CID 2 port P arrives at the
  unix socket PATH_P, where a host program listens. Here a "guest"
  connection is one made to the relay's --guest-port P=SOCKET listener.

--mode makes it misbehave for tests: garbage (answers something else than
OK), stall (reads CONNECT and never answers), err (answers an error line).

Usage: hvsock_relay.py --socket PATH [--port P=SOCKET]... [--guest-port P=SOCKET]... [--mode MODE]
Prints "ready" on stdout once every socket listens.
"""
import argparse
import os
import socket
import sys
import threading

CHUNK = 1 << 20


def pump(src, dst):
    """Copies src to dst until EOF, through a pipe with splice(2) (no copy
    through user space), then half-closes dst."""
    r, w = os.pipe()
    try:
        while True:
            n = os.splice(src.fileno(), w, CHUNK)
            if n == 0:
                break
            while n:
                n -= os.splice(r, dst.fileno(), n)
    except OSError:
        pass
    finally:
        os.close(r)
        os.close(w)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def bridge(a, b):
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()
    a.close()
    b.close()


def read_line(conn, limit=64):
    line = b""
    while not line.endswith(b"\n"):
        c = conn.recv(1)
        if not c or len(line) > limit:
            return None
        line += c
    return line


class Relay:
    def __init__(self, path, ports, guest_ports, mode="ok"):
        self.path = path
        self.ports = ports  # guest port -> unix socket of the service
        self.mode = mode
        self.next_host_port = 1073741824
        self.lock = threading.Lock()
        self.listeners = [self._listen(path, self._host_conn)]
        for port, sock in guest_ports.items():
            self.listeners.append(self._listen(sock, lambda c, p=port: self._guest_conn(c, p)))

    def _listen(self, path, handler):
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(128)

        def loop():
            while True:
                c, _ = s.accept()
                threading.Thread(target=handler, args=(c,), daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()
        return s

    def _host_conn(self, conn):
        line = read_line(conn)
        if line is None or not line.startswith(b"CONNECT "):
            conn.close()
            return
        if self.mode == "stall":
            threading.Event().wait()
        if self.mode == "garbage":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()
            return
        if self.mode == "err":
            conn.sendall(b"ERR no such port\n")
            conn.close()
            return
        try:
            target = self.ports[int(line[8:].strip())]
            back = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            back.connect(target)
        except (KeyError, ValueError, OSError):
            conn.close()  # what the VMMs do for a port nobody listens on
            return
        with self.lock:
            host_port = self.next_host_port
            self.next_host_port += 1
        conn.sendall(b"OK %d\n" % host_port)
        bridge(conn, back)

    def _guest_conn(self, conn, port):
        back = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            back.connect(f"{self.path}_{port}")
        except OSError:
            conn.close()
            return
        bridge(conn, back)


def parse_map(items):
    out = {}
    for it in items:
        port, _, path = it.partition("=")
        out[int(port)] = path
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", action="append", default=[])
    ap.add_argument("--guest-port", action="append", default=[])
    ap.add_argument("--mode", default="ok", choices=["ok", "garbage", "stall", "err"])
    args = ap.parse_args()
    Relay(args.socket, parse_map(args.port), parse_map(args.guest_port), args.mode)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
