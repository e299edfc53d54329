"""The SDK as a package: its generated message modules are what proto/
gives now, its reference page what its docstrings give now, and
`pip install --no-build-isolation ./python` works in a fresh venv that sees
Debian's grpcio and protobuf (--system-site-packages), with no index: the
installed `import valet` then drives a real maitred."""
import os
import shutil
import subprocess
import textwrap

import sdk
from valet import ROOT, tmpdir

PY = "/usr/bin/python3"


def test_generated_modules_are_current():
    r = subprocess.run([PY, os.path.join(ROOT, "scripts", "gen-python-proto.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    # And the check can fail: a module changed by hand is found.
    work = tmpdir()
    shutil.copytree(os.path.join(ROOT, "scripts"), os.path.join(work, "scripts"))
    shutil.copytree(os.path.join(ROOT, "proto"), os.path.join(work, "proto"))
    shutil.copytree(os.path.join(ROOT, "python"), os.path.join(work, "python"))
    with open(os.path.join(work, "python", "valet", "_proto", "guest_pb2.py"), "a") as f:
        f.write("# edited\n")
    r = subprocess.run([PY, os.path.join(work, "scripts", "gen-python-proto.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "guest_pb2.py" in r.stderr, r


def test_reference_page_is_current():
    r = subprocess.run([PY, os.path.join(ROOT, "scripts", "sdk-reference.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    text = open(os.path.join(ROOT, "docs", "sdk-reference.md")).read()
    v = sdk.load()
    for name in ("Guest", "AsyncGuest", "Files", "Process", "Forward", "wait_ready", "NotFound"):
        assert f"`class {name}" in text or f"`{name}" in text, name
    # Every public method of Guest is on the page.
    for name in dir(v.Guest):
        if not name.startswith("_") and callable(getattr(v.Guest, name)):
            assert f"**`{name}(" in text, name


def test_pip_install_into_a_venv_and_use_it():
    work = tmpdir()
    src = os.path.join(work, "src")
    shutil.copytree(os.path.join(ROOT, "python"), src, ignore=shutil.ignore_patterns("__pycache__", "build",
                                                                                     "*.egg-info"))
    venv = os.path.join(work, "venv")
    subprocess.run([PY, "-m", "venv", "--system-site-packages", venv], check=True)
    r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", src], capture_output=True, text=True,
                       env=dict(os.environ, PIP_NO_CACHE_DIR="1"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    site = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import valet, os; "
                           "print(os.path.dirname(valet.__file__))"], capture_output=True, text=True, cwd=work)
    assert site.returncode == 0, site.stderr
    pkg = site.stdout.strip()
    assert pkg.startswith(venv) and "site-packages" in pkg, pkg
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "_proto", "files_pb2.py"))
    m = sdk.maitred()
    d = tmpdir()
    script = textwrap.dedent(f"""
        import valet
        with valet.Guest({m.addr!r}) as g:
            print(g.kernel_version().release)
            g.files.write({d!r} + "/f", b"installed")
            print(g.files.read({d!r} + "/f").decode())
            try:
                g.files.stat({d!r} + "/missing")
            except valet.NotFound as e:
                print("NotFound", e.code.name)
    """)
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", script], capture_output=True, text=True,
                       cwd=work, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{os.uname().release}\ninstalled\nNotFound NOT_FOUND\n", r.stdout
    assert m.stop() == 0
