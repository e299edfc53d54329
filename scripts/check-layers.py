#!/usr/bin/python3
"""Checks that the code keeps the layers src/meson.build declares.

    check-layers.py BUILD_DIR

The graph comes from the build itself: src/meson.build builds one static
library per layer from a table that names what each layer uses, and writes
that table to BUILD_DIR/src/layers.json. Three checks, each printing
"ok NAME" or "not ok NAME: why" like the unit tests:

  includes/LAYER   every #include of every .c and .h below src/LAYER names a
                   header of LAYER itself, of a layer LAYER uses (directly
                   or through another), or of an external library LAYER
                   declares (nghttp2, zlib, protobuf-c); anything else is
                   libc or the kernel.
  symbols/LAYER    every symbol the library's objects leave undefined and
                   another layer defines belongs to a layer LAYER uses:
                   this catches a call the headers hide (a local extern
                   declaration).
  links/PROGRAM    the program's link takes only the archives and external
                   libraries it may use, and its binary holds no code of
                   another layer (nm), nor needs an undeclared shared
                   library (readelf NEEDED): vshd and vsh carry neither
                   rpc_* nor nghttp2_*.
  files/LAYER      no circle among the files of a layer (or a program):
                   when a.c calls b.c, b.c does not call back into a.c,
                   directly or through other files (nm of each object). A
                   callee reports back through a callback it was given.

Exits 1 if any check failed.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# Headers and symbols of the external libraries a layer may declare.
EXTERNAL_HEADERS = {"nghttp2/": "nghttp2", "zlib.h": "zlib", "protobuf-c/": "protobuf-c"}
EXTERNAL_SYMBOLS = {"nghttp2_": "nghttp2", "protobuf_c_": "protobuf-c", "inflate": "zlib", "deflate": "zlib",
                    "crc32": "zlib", "adler32": "zlib", "zError": "zlib", "zlibVersion": "zlib"}
EXTERNAL_LIBS = {"libnghttp2": "nghttp2", "libz.": "zlib", "libprotobuf-c": "protobuf-c"}


def closure(graph, node):
    """The layers NODE may use: what it declares and, through them, theirs."""
    seen, todo = set(), list(graph[node]["uses"])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += graph[n]["uses"]
    return seen


def allowed(graph, node):
    layers = closure(graph, node) | {node}
    ext = set()
    for n in layers:
        ext |= set(graph[n].get("external", ()))
    return layers, ext


def header_owner(graph, path, name, quoted):
    """(kind, owner) of an #include: ("layer", NAME), ("external", LIB), or
    ("system", None); ("unknown", None) for a quoted header no layer has."""
    if quoted:
        if os.path.exists(os.path.join(os.path.dirname(path), name)):
            return "layer", os.path.relpath(os.path.dirname(path), SRC).split(os.sep)[0]
        first = name.split("/", 1)[0]
        if "/" in name and first in graph:
            return "layer", first
        if name.endswith(".pb-c.h"):
            return "layer", "proto"
        return "unknown", None
    for prefix, lib in EXTERNAL_HEADERS.items():
        if name.startswith(prefix):
            return "external", lib
    first = name.split("/", 1)[0]
    if "/" in name and first in graph and os.path.isdir(os.path.join(SRC, first)):
        return "layer", first
    return "system", None


def check_includes(graph, out):
    uses_seen = {n: set() for n in graph}
    for node in sorted(n for n in graph if os.path.isdir(os.path.join(SRC, n))):
        layers, ext = allowed(graph, node)
        bad = []
        d = os.path.join(SRC, node)
        for dirpath, _, files in os.walk(d):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                with open(path, errors="replace") as fh:
                    for lineno, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        kind, owner = header_owner(graph, path, m.group(2), m.group(1) == '"')
                        where = f"src/{os.path.relpath(path, SRC)}:{lineno}: {line.strip()}"
                        if kind == "unknown":
                            bad.append(f"{where}: no layer has this header")
                        elif kind == "layer":
                            uses_seen[node].add(owner)
                            if owner not in layers:
                                bad.append(f"{where}: {node} may use {', '.join(sorted(layers))}, not {owner}")
                        elif kind == "external":
                            uses_seen[node].add(owner)
                            if owner not in ext:
                                bad.append(f"{where}: {node} does not declare {owner}")
        out("includes/" + node, bad)
    # Directories below src/ that the table does not know.
    unknown = [d for d in sorted(os.listdir(SRC)) if os.path.isdir(os.path.join(SRC, d)) and d not in graph
               and any(f.endswith((".c", ".h")) for f in os.listdir(os.path.join(SRC, d)))]
    out("includes/every-directory-declared",
        [f"src/{d}/ is in no layer of src/meson.build" for d in unknown])
    return uses_seen


def nm(path, *flags):
    r = subprocess.run(["nm", "-g", "-A"] + list(flags) + [path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"nm {path}: {r.stderr.strip()}")
    syms = []
    for line in r.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            syms.append((fields[0].rstrip(":"), fields[-2], fields[-1]))
        elif len(fields) == 2:  # "FILE: U sym" of undefined symbols
            syms.append((fields[0].rstrip(":"), fields[0], fields[1]))
    return syms


def external_of(sym):
    for prefix, lib in EXTERNAL_SYMBOLS.items():
        if sym.startswith(prefix):
            return lib
    return None


def check_symbols(graph, out):
    archives = {n: v["archive"] for n, v in graph.items() if "archive" in v}
    owner = {}
    for n, a in archives.items():
        for _, typ, sym in nm(a, "--defined-only"):
            owner.setdefault(sym, n)
    for n, a in archives.items():
        layers, ext = allowed(graph, n)
        bad = set()
        for where, _, sym in nm(a, "-u"):
            o = owner.get(sym)
            obj = where.split(":")[-1] if ":" in where else where
            if o is not None and o not in layers:
                bad.add(f"{os.path.basename(a)}({os.path.basename(obj)}) uses {sym}, defined by {o}")
            lib = external_of(sym)
            if lib and lib not in ext:
                bad.add(f"{os.path.basename(a)}({os.path.basename(obj)}) uses {sym} of {lib}, which {n} does not declare")
        out("symbols/" + n, sorted(bad))
    return owner


def object_name(where):
    """The object file of nm -A's "ARCHIVE:OBJECT:ADDRESS" or "OBJECT:ADDRESS"."""
    return next((p for p in reversed(where.split(":")) if p.endswith(".o")), where)


def object_calls(symbols):
    """{object: set of objects it calls} from (object, type, symbol)
    triples of one archive or program."""
    defined, undefined = {}, {}
    for obj, typ, sym in symbols:
        if typ == "U":
            undefined.setdefault(obj, set()).add(sym)
        elif typ in "TDBRCVW":
            defined.setdefault(sym, obj)
    calls = {obj: set() for obj in set(defined.values()) | set(undefined)}
    for obj, syms in undefined.items():
        calls[obj] |= {defined[s] for s in syms if s in defined and defined[s] != obj}
    return calls


def circles(calls):
    """The strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(calls.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(calls):
        if v not in index:
            visit(v)
    return out


def check_files(graph, programs, build, out):
    units = {n: nm(v["archive"]) for n, v in graph.items() if "archive" in v}
    for d, p in programs.items():
        objdir = os.path.join(build, os.path.relpath(os.path.dirname(p["binary"]), build), p["program"] + ".p")
        objs = sorted(os.path.join(objdir, f) for f in os.listdir(objdir) if f.endswith(".o")) \
            if os.path.isdir(objdir) else []
        units[d] = [t for o in objs for t in nm(o)]
    for n in sorted(units):
        calls = object_calls((object_name(where), typ, sym) for where, typ, sym in units[n])
        bad = []
        for comp in circles(calls):
            names = [os.path.basename(c).replace(".c.o", ".c") for c in comp]
            bad.append(" <-> ".join(names) + ": each calls the other" if len(names) == 2
                       else "a circle of calls among " + ", ".join(names))
        out("files/" + n, bad)


def check_programs(graph, programs, owner, build, static, out):
    libnames = {os.path.basename(v["archive"]): n for n, v in graph.items() if "archive" in v}
    for d, p in programs.items():
        layers, ext = allowed(graph, d)
        binary = p["binary"]
        bad = []
        # The link command: which of our archives and which -l it names.
        target = os.path.relpath(binary, build)
        r = subprocess.run(["ninja", "-C", build, "-t", "commands", "-s", target], capture_output=True, text=True)
        link = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else ""
        if not link:
            bad.append(f"no link command for {target}: {r.stderr.strip()}")
        for word in link.split():
            base = os.path.basename(word)
            if base in libnames and libnames[base] not in layers:
                bad.append(f"{target} links {base}")
            for prefix, lib in EXTERNAL_LIBS.items():
                if (base.startswith(prefix) or word == "-l" + prefix[3:].rstrip(".")) and lib not in ext:
                    bad.append(f"{target} links {word}")
        # What the binary holds: code of another layer, or of an external library.
        found = set()
        for _, typ, sym in nm(binary):
            o = owner.get(sym)
            if o is not None and o not in layers and typ not in ("U", "w", "v"):
                found.add(f"{target} holds {sym} of {o}")
            lib = external_of(sym)
            if lib and lib not in ext:
                found.add(f"{target} {'needs' if typ == 'U' else 'holds'} {sym} of {lib}")
        bad += sorted(found)[:20] + ([f"... and {len(found) - 20} more"] if len(found) > 20 else [])
        if not static:
            r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
            for m in re.finditer(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout):
                for prefix, lib in EXTERNAL_LIBS.items():
                    if m.group(1).startswith(prefix) and lib not in ext:
                        bad.append(f"{target} needs {m.group(1)}")
        out("links/" + p.get("program", os.path.basename(binary)), bad)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    with open(os.path.join(build, "src", "layers.json")) as f:
        table = json.load(f)
    graph = dict(table["layers"])
    for d, p in table["programs"].items():
        graph[d] = {"uses": p["uses"], "external": []}
    failed = []

    def out(name, problems):
        if problems:
            failed.append(name)
            print(f"not ok {name}: " + "\n  ".join(problems), flush=True)
        else:
            print(f"ok {name}", flush=True)

    uses_seen = check_includes(graph, out)
    owner = check_symbols(graph, out)
    check_programs(graph, table["programs"], owner, build, table["static"], out)
    check_files(graph, table["programs"], build, out)
    # Declared but not used by any #include: worth a look, not an error
    # (a layer may use another's code only through a third one's headers).
    for n in sorted(graph):
        unused = [u for u in graph[n]["uses"] if u not in uses_seen.get(n, ())]
        if unused and os.path.isdir(os.path.join(SRC, n)):
            print(f"# note: {n} declares {', '.join(unused)} but includes nothing of it")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
