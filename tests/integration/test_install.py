"""What `meson install` lays out for users, and the guest-image builder as a
user runs it from there: options, errors quoting the bad input, an image
made from dynamically linked programs (their libraries come along)."""
import os
import shlex
import subprocess

from valet import tmpdir
import valet


def install():
    dest = tmpdir()
    subprocess.run(["meson", "install", "-C", valet.BUILD, "--destdir", dest, "--no-rebuild", "--quiet"],
                   check=True, capture_output=True)
    prefix = subprocess.run(["meson", "introspect", valet.BUILD, "--buildoptions"], check=True,
                            capture_output=True, text=True).stdout
    import json
    opts = {o["name"]: o["value"] for o in json.loads(prefix)}
    return dest + opts["prefix"], opts


def test_builder_and_its_manual_are_installed():
    root, opts = install()
    tool = os.path.join(root, opts["bindir"], "valet-mkinitramfs")
    assert os.access(tool, os.X_OK), tool
    # Every page renders with man(1), and says what its program's --help says.
    pages = {"man1/valet-mkinitramfs.1": ("valet-mkinitramfs", "--modules"),
             "man1/maitctl.1": ("wait-ready", "hvsock:PATH:PORT"), "man1/vsh.1": ("--user", "hvsock:PATH:PORT"),
             "man8/maitred.8": ("--vm-ready-timeout", "READY=1"), "man8/vshd.8": ("--max-sessions", "READY=1"),
             "man5/maitred-jobs.5": ("wait_for_exit", "textproto")}
    for page, words in pages.items():
        r = subprocess.run(["man", "-l", "-P", "cat", os.path.join(root, opts["mandir"], page)], capture_output=True,
                           text=True, env=dict(os.environ, MANWIDTH="80"))
        text = r.stdout.replace("\u2010", "-").replace("\u2212", "-")
        assert r.returncode == 0 and all(w in text for w in words), (page, r)
    r = subprocess.run([tool, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("Usage: valet-mkinitramfs"), r


def test_make_install_honours_prefix_and_destdir():
    if valet.sanitized():
        return  # the same Makefile rule; once is enough (it builds a tree of its own)
    dest, bdir = tmpdir(), tmpdir()
    r = subprocess.run(["make", "-C", valet.ROOT, "install", "PREFIX=/usr", f"DESTDIR={dest}",
                        f"BUILD_INSTALL={bdir}/b"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    files = {os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs}
    for f in ("usr/sbin/maitred", "usr/sbin/vshd", "usr/bin/maitctl", "usr/bin/vsh", "usr/bin/valet-mkinitramfs",
              "usr/share/man/man8/maitred.8", "usr/share/man/man8/vshd.8", "usr/share/man/man5/maitred-jobs.5",
              "usr/share/man/man1/maitctl.1", "usr/share/man/man1/vsh.1",
              "usr/share/bash-completion/completions/maitctl", "usr/share/bash-completion/completions/vsh",
              "usr/share/doc/valet/examples/jobs/50-example.textproto", "etc/valet/maitred.conf"):
        assert f in files, (f, sorted(files))
    # The config file, every line commented out: it changes nothing.
    conf = open(os.path.join(dest, "etc/valet/maitred.conf")).read().splitlines()
    assert all(ln.startswith("#") or not ln.strip() for ln in conf), conf
    units = [f for f in files if f.endswith(".service")]
    assert sorted(os.path.basename(u) for u in units) == ["maitred.service", "vshd.service"], units
    for u in units:
        text = open(os.path.join(dest, u)).read()
        assert "ExecStart=/usr/sbin/" in text and "Type=notify" in text, text
    # Nothing outside DESTDIR: every path is below the prefix or the unit
    # dir, but the config file (sysconfdir: /etc with the prefix /usr).
    assert all(f.startswith(("usr/", "lib/")) or f == "etc/valet/maitred.conf" for f in files), sorted(files)


def test_every_help_option_is_in_the_manual():
    import re
    root, opts = install()
    mandir = os.path.join(root, opts["mandir"])

    def man(page):
        r = subprocess.run(["man", "-l", "-P", "cat", os.path.join(mandir, page)], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="200"))
        return r.stdout.replace("\u2010", "-").replace("\u2212", "-")

    def helps(*argv):
        r = subprocess.run([valet.binary(argv[0])] + list(argv[1:]) + ["--help"], capture_output=True, text=True,
                           env=valet.sanitizer_env())
        return r.stdout
    cases = [("man8/maitred.8", [helps("maitred")]), ("man8/vshd.8", [helps("vshd")]),
             ("man1/vsh.1", [helps("vsh")]),
             ("man1/maitctl.1", [helps("maitctl")] + [helps("maitctl", c) for c in
                                                     ("network", "launch", "mount", "shutdown", "wait-ready")])]
    for page, texts in cases:
        text = man(page)
        options = {o for t in texts for o in re.findall(r"(?<![\w-])--[a-z][a-z_-]*", t)} - {"--help"}
        assert options, page
        missing = sorted(o for o in options if o not in text)
        assert not missing, (page, missing)


def complete(prog, line):
    """What bash completion offers for line (cursor at its end)."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    script = f"""
source /usr/share/bash-completion/bash_completion
source {os.path.join(valet.ROOT, "dist", "bash-completion", prog)}
compopt() {{ :; }}
COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({" ".join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}
_{prog.replace("-", "_")}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r
    return r.stdout.split()


def test_bash_completions():
    assert complete("maitctl", "maitctl wa") == ["wait-ready"]
    assert set(complete("maitctl", "maitctl ")) == {"network", "launch", "mount", "shutdown", "wait-ready",
                                                   "set-time", "set-timezone", "set-dns", "kernel-version",
                                                   "space", "resize", "resize-status", "resize-bounds",
                                                   "suspend-prep", "network-changed", "cp", "stat", "ls",
                                                   "mkdir", "rm", "mv", "exec", "attach", "ps", "kill",
                                                   "freeze", "thaw", "restored", "forward"}
    assert complete("maitctl", "maitctl --cid 3 attach --fr") == ["--from-start"]
    assert "--kill-on-disconnect" in complete("maitctl", "maitctl --cid 3 exec --")
    assert complete("maitctl", "maitctl --cid 3 kill -s SIGKI") == ["SIGKILL"]
    assert complete("maitctl", "maitctl --cid 3 set-time --n") == ["--now"]
    assert complete("maitctl", "maitctl --cid 3 freeze --t") == ["--timeout"]
    assert complete("maitctl", "maitctl --cid 3 restored --time k") == ["keep"]
    assert complete("maitctl", "maitctl --cid 3 restored --gen") == ["--generation"]
    assert "--mkfs-if-needed" in complete("maitctl", "maitctl --cid 3 mount a b c --")
    assert "--wait" in complete("maitctl", "maitctl --cid 3 launch --")
    assert complete("maitctl", "maitctl --addr hv") == ["hvsock:"]
    assert "nosuid" in complete("maitctl", "maitctl --cid 3 mount a b c --flags no")
    assert complete("maitctl", "maitctl --cid 3 cp --sh") == ["--sha256"]
    assert complete("maitctl", "maitctl --cid 3 cp :/gu") == []  # guest paths would take a call
    assert complete("maitctl", "maitctl --cid 3 ls --de") == ["--depth"]
    assert complete("maitctl", "maitctl --cid 3 forward un") == ["unix:"]
    assert complete("maitctl", "maitctl --cid 3 forward unix:/x=/r") == []  # the guest's side takes a call
    assert complete("vsh", "vsh --us") == ["--user="]
    assert complete("vsh", "vsh --cid=3 -- ls -") == []  # the remote command's words are not ours


def test_manual_pages_lint_clean():
    pages = sorted(os.path.join(valet.ROOT, "man", p) for p in os.listdir(os.path.join(valet.ROOT, "man")))
    assert pages
    # Warnings and worse fail; style notes (pages not installed here) do not.
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"] + pages, capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r


def unpack(image):
    d = tmpdir()
    subprocess.run(f"zcat {image} | cpio -id --quiet", shell=True, cwd=d, check=True)
    return d


def test_builder_makes_an_image_from_installed_dynamic_programs():
    root, opts = install()
    tool = os.path.join(root, opts["bindir"], "valet-mkinitramfs")
    out = os.path.join(tmpdir(), "img")
    job = os.path.join(tmpdir(), "50-hello.textproto")
    with open(job, "w") as f:
        f.write('argv: "/bin/echo" argv: "hello"\n')
    r = subprocess.run([tool, "--programs", os.path.join(root, opts["bindir"]),
                        "--programs", os.path.join(root, opts["sbindir"]), "-o", out,
                        "--listen", "vsock:-1:8888", "--listen", "tcp:10.0.2.15:8888",
                        "--vsh-listen", 'unix:/run/a "quoted" path', "--job", job,
                        "--file", "/etc/os-release=/etc/os-release", "--dir", "/mnt/data",
                        "--net", "eth0=10.0.2.15/24"], capture_output=True, text=True)
    assert r.returncode == 0, r
    d = unpack(out)
    for p in ("init", "sbin/maitred", "sbin/vshd", "bin/maitctl", "bin/vsh", "bin/busybox", "bin/sh",
              "etc/maitred/10-vshd.textproto", "etc/maitred/50-hello.textproto", "etc/os-release", "mnt/data",
              "etc/passwd", "etc/hostname"):
        assert os.path.lexists(os.path.join(d, p)), p
    # The programs here are dynamically linked: their loader and libraries
    # are in the image too.
    ldd = subprocess.run(["ldd", os.path.join(root, opts["sbindir"], "maitred")], capture_output=True,
                         text=True).stdout
    libs = [w for w in ldd.split() if w.startswith("/") and "nghttp2" in w]
    assert libs and all(os.path.exists(d + lib) for lib in libs), (libs, ldd)
    init = open(os.path.join(d, "init")).read()
    assert "exec /sbin/maitred --listen vsock:-1:8888 --listen tcp:10.0.2.15:8888 --vm-ready vsock:2:7777" in init
    assert "net eth0 10.0.2.15/24" in init
    vshd_job = open(os.path.join(d, "etc/maitred/10-vshd.textproto")).read()
    # Text-format quoting of an address with quotes and spaces in it.
    assert 'argv: "unix:/run/a \\"quoted\\" path"' in vshd_job and "respawn: true" in vshd_job, vshd_job


def test_builder_usage_errors():
    root, opts = install()
    tool = os.path.join(root, opts["bindir"], "valet-mkinitramfs")
    cases = [
        ([], "no output given"),
        (["-o", "/tmp/x", "--net", "eth0"], "invalid --net 'eth0'"),
        (["-o", "/tmp/x", "--job", "/nonexistent.textproto"], "--job '/nonexistent.textproto': no such file"),
        (["-o", "/tmp/x", "--file", "a:b"], "invalid --file 'a:b'"),
        (["-o", "/tmp/x", "--compress", "lz9"], "invalid --compress 'lz9'"),
        (["-o", "/tmp/x", "--busybox", "/nonexistent"], "/nonexistent: not found"),
        (["-o", "/tmp/x", "--frob"], "unknown argument '--frob'"),
        (["-o", "/tmp/x", "--programs", "/nonexistent"], "maitred: not found in /nonexistent"),
        (["-o", "/tmp/x", "--dir", "relative"], "invalid --dir 'relative'"),
    ]
    for args, text in cases:
        r = subprocess.run([tool] + args, capture_output=True, text=True)
        assert r.returncode == 1 and text in r.stderr, (args, r)
        assert "cannot stat" not in r.stderr, (args, r)  # stopped at the first error
    assert not os.path.exists("/tmp/x.tmp")
