"""vsh on a real terminal (tmux): the login shell's prompt, window size and
resizes, Ctrl-C reaching the remote foreground job, and the local terminal
left exactly as it was."""
import os
import subprocess
import time

from valet import Vshd, binary, wait_until
from lanes import timing


class Tmux:
    def __init__(self, name, cmd, cols=100, rows=30):
        self.name = name
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(cols), "-y", str(rows), cmd],
                       check=True)

    def send(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name] + list(keys), check=True)

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def wait_for(self, text, timeout=15):
        wait_until(lambda: text in self.screen(), timeout, what=f"{text!r} on the screen:\n{self.screen()}")

    def resize(self, cols, rows):
        subprocess.run(["tmux", "resize-window", "-t", self.name, "-x", str(cols), "-y", str(rows)], check=True)

    def kill(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], stderr=subprocess.DEVNULL)


def _process_with_cmdline(argv):
    """The pid of a process whose command line is argv, or None."""
    want = "\0".join(argv).encode() + b"\0"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == want:
                    return int(pid)
        except OSError:
            pass
    return None


# Keys typed into tmux race the remote shell's job control.
@timing
def test_interactive_session_in_tmux():
    d = Vshd()
    before, after, rc = (os.path.join(d.dir, n) for n in ("before", "after", "rc"))
    script = os.path.join(d.dir, "run.sh")
    with open(script, "w") as f:
        f.write(f"""#!/bin/sh
stty -g > {before}
{binary('vsh')} --addr {d.addr}
echo $? > {rc}
stty -g > {after}
sleep 30
""")
    os.chmod(script, 0o755)
    t = Tmux(f"valet-{os.getpid()}", script)
    try:
        # The login shell's prompt, whatever it looks like: typing earlier
        # would be flushed by vsh switching the terminal to raw mode.
        wait_until(lambda: t.screen().strip(), 15, what="the prompt")
        time.sleep(0.3)
        # A login shell: its argv[0] starts with '-'.
        t.send("echo shell=$0", "Enter")
        t.wait_for("shell=-")
        t.send("stty size", "Enter")
        t.wait_for("30 100")
        t.resize(120, 40)
        time.sleep(0.3)
        t.send("clear; stty size", "Enter")
        t.wait_for("40 120")
        # Ctrl-C interrupts the remote foreground job; the shell survives.
        # The key goes only once the sleep really runs (exec'd, found by its
        # unique argument), so the shell cannot be the one it interrupts.
        secs = str(100000 + os.getpid() % 100000)
        t.send(f"sleep {secs}; echo sleep-ended-$?", "Enter")
        sleeper = wait_until(lambda: _process_with_cmdline(["sleep", secs]), 15, what="the remote sleep")
        t.send("C-c")
        wait_until(lambda: not os.path.exists(f"/proc/{sleeper}"), 10, what="the sleep to be interrupted")
        t.send("echo alive-$((40+2))", "Enter")
        t.wait_for("alive-42")
        assert not any(line.startswith("sleep-ended-0") for line in t.screen().splitlines())
        t.send("exit 7", "Enter")
        wait_until(lambda: os.path.exists(rc) and open(rc).read().strip(), 10, what="vsh to exit")
        assert open(rc).read().strip() == "7"
        wait_until(lambda: os.path.exists(after) and open(after).read(), 5, what="stty after")
        assert open(before).read() == open(after).read()
    finally:
        t.kill()
    assert d.stop() == 0
