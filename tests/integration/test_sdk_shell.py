"""Guest.shell() (the vsh protocol, written in the SDK) against a real vshd:
on a real terminal (a PTY this test opens, the client a fresh python3
process whose controlling terminal it is): window size and its change,
raw mode (^C reaches the remote foreground job as a byte), the local
terminal restored; in pipe mode: streams kept apart, stdin to EOF, exit
codes and signals; vshd's refusals as errors."""
import os
import struct
import time

import sdk
from sdk import Terminal, set_size
from lanes import timing
from valet import Vshd, tmpdir

# Keys typed into the terminal race the remote shell.
@timing
def test_shell_on_a_real_terminal_size_resize_raw_mode_and_restore():
    d = Vshd()
    t = Terminal(d.addr, ["sh", "-c", "stty size; tty; echo TERM=$TERM; read line; echo got:$line; "
                                      "read again; stty size; sleep 100; echo not-reached"])
    t.read_until("40 100")
    t.read_until("/dev/pts/")
    t.read_until("TERM=xterm-sdk-test")
    t.write(b"hello\r")
    t.read_until("got:hello")
    # The terminal's size changes: SIGWINCH in the client, a resize message to vshd.
    set_size(t.master, 50, 120)
    time.sleep(0.3)
    t.write(b"x\r")
    t.read_until("50 120")
    # Raw mode: ^C is a byte for the remote terminal, which interrupts its job.
    time.sleep(0.3)
    t.write(b"\x03")
    t.read_until("SHELL-RETURNED 130 TERMINAL-RESTORED")
    assert b"not-reached" not in t.out
    t.close()
    assert t.proc.returncode == 0
    assert d.stop() == 0


@timing
def test_interactive_login_shell_exit_status():
    d = Vshd()
    t = Terminal(d.addr, [])
    t.write(b"echo marker-$((6*7))\r")
    t.read_until("marker-42")
    t.write(b"exit 5\r")
    t.read_until("SHELL-RETURNED 5 TERMINAL-RESTORED")
    t.close()
    assert d.stop() == 0


def test_pipe_mode_streams_stdin_exit_codes_and_refusals():
    v = sdk.load()
    d = Vshd()
    tmp = tmpdir()
    with v.Guest("unix:/nonexistent/m.sock", vsh_address=d.addr) as g:
        payload = os.urandom(300000)
        with open(f"{tmp}/in", "wb") as f:
            f.write(payload)
        with open(f"{tmp}/in", "rb") as fin, open(f"{tmp}/out", "wb") as fout, open(f"{tmp}/err", "wb") as ferr:
            code = g.shell(["sh", "-c", "cat; echo to-err >&2; exit 4"], stdin=fin, stdout=fout, stderr=ferr)
        assert code == 4
        assert open(f"{tmp}/out", "rb").read() == payload
        assert open(f"{tmp}/err", "rb").read() == b"to-err\n"
        # stdin from a pipe (pollable), closed: EOF reaches the remote cat.
        r, w = os.pipe()
        os.write(w, b"through a pipe\n")
        os.close(w)
        with open(f"{tmp}/out2", "wb") as fout:
            assert g.shell(["cat"], stdin=r, stdout=fout, stderr=fout) == 0
        os.close(r)
        assert open(f"{tmp}/out2", "rb").read() == b"through a pipe\n"
        with open("/dev/null", "rb") as null, open(f"{tmp}/o3", "wb") as o:
            assert g.shell(["sh", "-c", "kill -9 $$"], stdin=null, stdout=o, stderr=o) == 128 + 9
            assert g.shell(["/no/such/program"], stdin=null, stdout=o, stderr=o) == 127
            assert g.shell(["sh", "-c", "echo $A-$B"], env={"A": "1", "B": "two"}, cwd="/tmp", stdin=null,
                           stdout=o, stderr=o) == 0
            e = None
            try:
                g.shell(["true"], user="no-such-user-valet", stdin=null, stdout=o, stderr=o)
            except v.Error as x:
                e = x
            assert e is not None and "could not find user: no-such-user-valet" in str(e), e
        assert b"1-two\n" in open(f"{tmp}/o3", "rb").read()
        # Too many arguments for one vsh frame: refused before sending.
        try:
            g.shell(["echo"] + ["x" * 100] * 50, stdin=0, stdout=1, stderr=2)
            raise AssertionError("a 5 KB request was sent")
        except v.Error as x:
            assert "larger than 4096" in str(x), x
    # A guest address with no vsh address: a clear error. vsock and hvsock derive port 9001.
    with v.Guest(d.addr) as g:
        try:
            g.shell(["true"])
            raise AssertionError("no vsh address")
        except v.Error as x:
            assert "pass vsh_address=" in str(x), x
    assert v.Guest("vsock:7")._vsh == v.Address("vsock", cid=7, port=9001)
    assert v.Guest("hvsock:/x/fc.sock")._vsh == v.Address("hvsock", path="/x/fc.sock", port=9001)
    # vshd unharmed.
    with open("/dev/null", "rb") as null, open(f"{tmp}/o4", "wb") as o, \
            v.Guest("unix:/x", vsh_address=d.addr) as g:
        assert g.shell(["true"], stdin=null, stdout=o, stderr=o) == 0
    assert d.stop() == 0


def test_frame_reader_refuses_oversized_frames():
    v = sdk.load()
    from valet_sdk.shell import FrameReader, encode_frame
    from valet_sdk._proto import vsh_pb2
    r = FrameReader()
    msg = vsh_pb2.HostMessage(data_message=vsh_pb2.DataMessage(stream=vsh_pb2.STDOUT_STREAM, data=b"abc"))
    frame = encode_frame(msg)
    # Byte by byte, then two at once.
    got = []
    for i in range(len(frame)):
        got += r.feed(frame[i:i + 1])
    assert got == [msg.SerializeToString()]
    assert r.feed(frame + frame) == [msg.SerializeToString()] * 2
    try:
        FrameReader().feed(struct.pack("<I", 4097))
        raise AssertionError("accepted")
    except v.ProtocolError as e:
        assert "4097" in str(e)
