"""A gRPC call written as raw HTTP/2 frames, for what the official client
will not send: a grpc-timeout already over ("1n"), several messages in a
unary call, a connection held open after its call."""
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _literal(name, value):
    """HPACK literal header field without indexing, new name, no Huffman."""
    out = b"\x00"
    for s in (name.encode(), value.encode()):
        assert len(s) < 127
        out += bytes([len(s)]) + s
    return out


def headers_block(path, timeout=None):
    headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "valet"),
               ("content-type", "application/grpc"), ("te", "trailers")]
    if timeout:
        headers.append(("grpc-timeout", timeout))
    return b"".join(_literal(n, v) for n, v in headers)


def grpc_message(message):
    return b"\x00" + struct.pack(">I", len(message)) + message


def read_stream(s, stream):
    """The frames (type, flags, stream, payload) the server sends until that
    stream ends or the socket closes."""
    got, data = [], b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return got
        data += chunk
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            if len(data) < 9 + length:
                break
            f = (data[3], data[4], int.from_bytes(data[5:9], "big") & 0x7fffffff, data[9:9 + length])
            data = data[9 + length:]
            got.append(f)
            if f[2] == stream and (f[0] == 3 or (f[0] in (0, 1) and f[1] & 1)):
                return got


def call_on(s, path, message, timeout=None):
    """Starts the connection on socket s and makes one call on stream 1;
    returns its frames and leaves the socket open."""
    s.sendall(PREFACE + frame(4, 0, 0) + frame(1, 4, 1, headers_block(path, timeout)) +
              frame(0, 1, 1, grpc_message(message)))
    return read_stream(s, 1)


def unary(sock_path, path, message, timeout=None):
    """Sends one call on stream 1; returns the frames (type, flags, stream,
    payload) the server sent until that stream ended or the socket closed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock_path)
    try:
        return call_on(s, path, message, timeout)
    finally:
        s.close()


def trailers_only(frames):
    """True when stream 1 was answered by one HEADERS frame that ends it (a
    gRPC error status) with no message."""
    mine = [f for f in frames if f[2] == 1]
    return len(mine) == 1 and mine[0][0] == 1 and mine[0][1] & 1
