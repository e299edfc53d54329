"""The host SDK (python/valet) for the integration tests. The tests' own
helpers are the module `valet` (tests/lib/valet.py), so the SDK package is
loaded here under the name `valet_sdk`: its imports are all relative, so it
runs the same under either name. The package as users import it (`import
valet`, installed with pip) is exercised by test_sdk_package.py and the
sandbox example, in processes of their own."""
import fcntl
import importlib.util
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time

import valet as harness

PYTHON_DIR = os.path.join(harness.ROOT, "python")
NAME = "valet_sdk"


def load():
    if NAME in sys.modules:
        return sys.modules[NAME]
    init = os.path.join(PYTHON_DIR, "valet", "__init__.py")
    spec = importlib.util.spec_from_file_location(NAME, init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = mod
    spec.loader.exec_module(mod)
    return mod


def raises(cls, fn, *args, **kw):
    """Calls fn, which must raise cls; returns the exception."""
    try:
        fn(*args, **kw)
    except cls as e:
        return e
    except Exception as e:  # noqa: BLE001 - the wrong class is the failure
        raise AssertionError(f"{fn} raised {type(e).__name__}: {e}, not {cls.__name__}") from e
    raise AssertionError(f"{fn} returned, {cls.__name__} was expected")


def maitred(args=(), wrap=()):
    """maitred on a unix socket, no boot jobs, no VmReady."""
    return harness.Maitred(args=["--no-startup-processes", "--vm-ready", "none"] + list(args), wrap=wrap)


CLIENT = textwrap.dedent("""
    import sys, termios
    sys.path.insert(0, sys.argv[1])
    import valet
    before = termios.tcgetattr(0)
    with valet.Guest("unix:/nonexistent/maitred.sock", vsh_address=sys.argv[2]) as g:
        code = g.shell(sys.argv[3:] or None)
    after = termios.tcgetattr(0)
    print("\\r\\nSHELL-RETURNED", code, "TERMINAL-RESTORED" if before == after else "TERMINAL-CHANGED", flush=True)
""")


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """A PTY whose slave is the controlling terminal of `python3 -c CLIENT`."""

    def __init__(self, vsh_addr, argv, rows=40, cols=100):
        self.master, slave = pty.openpty()
        set_size(slave, rows, cols)
        env = harness.sanitizer_env({"TERM": "xterm-sdk-test"})
        self.proc = harness.track(subprocess.Popen(
            ["/usr/bin/python3", "-c", CLIENT, PYTHON_DIR, vsh_addr] + list(argv), stdin=slave, stdout=slave,
            stderr=slave, start_new_session=True, env=env,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)))
        os.close(slave)
        self.out = b""

    def read_until(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; the screen had:\n{self.out[-2000:]!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    b = os.read(self.master, 65536)
                except OSError:
                    b = b""
                if not b:
                    raise AssertionError(f"the terminal closed before {text!r}:\n{self.out[-2000:]!r}")
                self.out += b

    def write(self, b):
        os.write(self.master, b)

    def close(self):
        self.proc.wait(20)
        os.close(self.master)
