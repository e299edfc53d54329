"""Boot A's step for valet.v1.Tunnel (issue 19, "VM test"): a web server in
the guest (busybox httpd on the guest's 127.0.0.1, which the host cannot
reach otherwise) reached through `maitctl forward` on the host; the answer
byte-exact, several requests over the forward's one connection."""
import hashlib
import os
import random
import re
import signal
import subprocess
import urllib.error
import urllib.request

import valet
import vm_suite

PORT = 8080  # in the guest, on its loopback only
WWW = "/tmp/www"


def forward_http(v):
    body = random.Random(19).randbytes(300 * 1024 + 7)
    vm_suite.gsh(v, f"mkdir -p {WWW} && cat > {WWW}/data.bin", input=body)
    # In the foreground of a background job: its pid is known (the guest's
    # own, killed by number at the end).
    pid = int(vm_suite.gsh(v, f"busybox httpd -f -p 127.0.0.1:{PORT} -h {WWW} </dev/null >/dev/null 2>&1 & "
                              "echo $!").strip())
    # Listening (state 0A on :1F90) before the host connects.
    vm_suite.gsh(v, f"for i in $(seq 100); do grep -q ':{PORT:04X} 00000000:0000 0A' /proc/net/tcp && exit 0; "
                    "sleep 0.1; done; exit 1")
    fw = valet.track(subprocess.Popen([valet.binary("maitctl"), "--addr", v.maitred_addr(), "forward",
                                       f"0={PORT}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=valet.sanitizer_env()))
    try:
        line = fw.stdout.readline()
        m = re.match(rf"tcp:127\.0\.0\.1:(\d+) -> {PORT}$", line.strip())
        assert m, (line, fw.stderr.read() if fw.poll() is not None else "")
        url = f"http://127.0.0.1:{m.group(1)}/data.bin"
        for _ in range(3):
            with urllib.request.urlopen(url, timeout=60) as r:
                got = r.read()
                assert r.status == 200, r.status
            assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest(), (len(got), len(body))
        # A path the server does not have: its own 404, through the tunnel.
        try:
            urllib.request.urlopen(url + ".missing", timeout=60)
            raise AssertionError("a missing file was served")
        except urllib.error.HTTPError as e:
            assert e.code == 404, e.code
        fw.send_signal(signal.SIGINT)
        assert fw.wait(20) == 0, fw.stderr.read()
        err = fw.stderr.read()
        assert err == "", err
    finally:
        if fw.poll() is None:
            fw.kill()
        vm_suite.gsh(v, f"kill {pid}; rm -rf {WWW}")
