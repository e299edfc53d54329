#!/usr/bin/python3
"""The python3-grpcio driver of the interop suite (protocol: cases.py).
Messages travel as bytes, as the table serialized them."""
import base64
import sys
import threading
import time

import grpc

COMPRESSION = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}
lock = threading.Lock()


def channel(target, w):
    opts = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1)]
    if "keepalive_ms" in w:
        opts += [("grpc.keepalive_time_ms", int(w["keepalive_ms"])), ("grpc.keepalive_timeout_ms", 5000),
                 ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    return grpc.insecure_channel(target, options=opts)


def one_call(ch, w, i):
    path = w["rpc"] if w["rpc"].startswith("/") else "/vm_tools.Maitred/" + w["rpc"]
    call = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    kw = {}
    if "timeout_ms" in w:
        kw["timeout"] = int(w["timeout_ms"]) / 1000
    if "compression" in w:
        kw["compression"] = COMPRESSION[w["compression"]]
    if "metadata_bytes" in w:
        kw["metadata"] = (("x-valet-pad", "a" * int(w["metadata_bytes"])),)
    t = time.monotonic()
    f = call.future(base64.b64decode(w.get("req", "")), **kw)
    if "cancel_ms" in w:
        threading.Timer(int(w["cancel_ms"]) / 1000, f.cancel).start()
    try:
        resp, code, details = f.result(), 0, ""
    except grpc.FutureCancelledError:
        resp, code, details = b"", grpc.StatusCode.CANCELLED.value[0], "cancelled"
    except grpc.RpcError as e:
        resp, code, details = b"", e.code().value[0], e.details() or ""
    ms = (time.monotonic() - t) * 1000
    with lock:
        print(f"name={w['name']} i={i} code={code} ms={ms:.3f} resp={base64.b64encode(resp).decode()} "
              f"details={base64.b64encode(details.encode()).decode()}", flush=True)


def main():
    target = sys.argv[1]
    for line in sys.stdin:
        w = dict(x.split("=", 1) for x in line.split() if "=" in x)
        if "name" not in w:
            continue
        concurrent, repeat = int(w.get("concurrent", 1)), int(w.get("repeat", 1))
        ch = channel(target, w)
        for r in range(repeat):
            if w.get("newconn") == "1" and r > 0:
                ch.close()
                ch = channel(target, w)
            threads = [threading.Thread(target=one_call, args=(ch, w, r * concurrent + k)) for k in range(concurrent)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        ch.close()


if __name__ == "__main__":
    main()
