#!/usr/bin/env python3
"""Builds maitred's reflection index: the FileDescriptorSet of the .proto
files it serves, as const C data with an index of file names and symbols.

Usage: descriptor-index.py PROTOC_C OUT.c [--proto_path DIR]... -- PROTO...

protoc-c writes the set (--include_imports: every file with the files it
imports, each as the serialized FileDescriptorProto gRPC reflection hands
out). This script reads it with a small protobuf wire reader (no protobuf
library at build time) and writes OUT.c for src/grpc-std/descriptor-set.h:

- descset_bytes: every file's serialized FileDescriptorProto, one after
  the other, exactly as protoc-c wrote it;
- descset_names: the file names and symbols, NUL-terminated, one string;
- descset_files: per file its name, bytes, and its transitive imports
  (breadth first, each once) in descset_deps; sorted by name;
- descset_symbols: every fully-qualified name a file defines (services,
  methods "pkg.Svc.Method", messages and nested ones, enums, enum values
  in their enum's scope as protoc scopes them, fields, oneofs,
  extensions), with its file and kind; sorted by name (strcmp order).

Offsets, not pointers: the arrays hold no relocations, so in a PIE too
they are plain read-only data, in a section of their own placed where no
page of them is mapped until a reflection request reads it (idle RSS
unchanged; DESCSET_SECTION in descriptor-set.h says why there). A symbol
defined twice fails the build.
"""
import os
import subprocess
import sys
import tempfile

# enum descset_kind in descriptor-set.h
KINDS = ["SERVICE", "METHOD", "MESSAGE", "ENUM", "ENUM_VALUE", "FIELD", "ONEOF", "EXTENSION"]


def varint(buf, pos):
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """(number, value) of every field; value is bytes for length-delimited
    fields, an int otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = varint(buf, pos)
        elif wt == 1:
            val, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wt == 2:
            n, pos = varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
            if pos > len(buf):
                raise ValueError("truncated field")
        elif wt == 5:
            val, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, val


def get(buf, num):
    return [v for n, v in fields(buf) if n == num]


def name_of(buf):
    v = get(buf, 1)
    return v[0].decode() if v else ""


def message_symbols(msg, scope, out):
    full = scope + name_of(msg)
    out.append((full, "MESSAGE"))
    for f in get(msg, 2):
        out.append((full + "." + name_of(f), "FIELD"))
    for n in get(msg, 3):
        message_symbols(n, full + ".", out)
    for e in get(msg, 4):
        enum_symbols(e, full + ".", out)
    for x in get(msg, 6):
        out.append((full + "." + name_of(x), "EXTENSION"))
    for o in get(msg, 8):
        out.append((full + "." + name_of(o), "ONEOF"))


def enum_symbols(enum, scope, out):
    out.append((scope + name_of(enum), "ENUM"))
    # Enum values are siblings of their enum (C++ scoping rules).
    for v in get(enum, 2):
        out.append((scope + name_of(v), "ENUM_VALUE"))


def file_symbols(fd):
    pkg = get(fd, 2)
    scope = pkg[0].decode() + "." if pkg else ""
    out = []
    for m in get(fd, 4):
        message_symbols(m, scope, out)
    for e in get(fd, 5):
        enum_symbols(e, scope, out)
    for s in get(fd, 6):
        svc = scope + name_of(s)
        out.append((svc, "SERVICE"))
        for meth in get(s, 2):
            out.append((svc + "." + name_of(meth), "METHOD"))
    for x in get(fd, 7):
        out.append((scope + name_of(x), "EXTENSION"))
    return out


def c_string(s):
    return '"' + s + '\\0"'


def main():
    protoc_c, out = sys.argv[1:3]
    args = sys.argv[3:]
    paths = []
    while args and args[0] != "--":
        if args[0] != "--proto_path" or len(args) < 2:
            sys.exit("descriptor-index.py: bad argument %r" % args[0])
        paths.append(args[1])
        args = args[2:]
    protos = args[1:]
    with tempfile.TemporaryDirectory() as tmp:
        setfile = os.path.join(tmp, "set.pb")
        cmd = [protoc_c] + ["--proto_path=" + p for p in paths]
        cmd += ["--include_imports", "--descriptor_set_out=" + setfile] + protos
        r = subprocess.run(cmd)
        if r.returncode:
            sys.exit(r.returncode)
        with open(setfile, "rb") as f:
            data = f.read()

    files = [bytes(fd) for fd in get(data, 1)]
    names = [name_of(fd) for fd in files]
    order = sorted(range(len(files)), key=lambda i: names[i].encode())
    index = {names[i]: k for k, i in enumerate(order)}
    symbols = {}
    for i in order:
        for sym, kind in file_symbols(files[i]):
            if sym in symbols:
                sys.exit("descriptor-index.py: %s defined twice" % sym)
            symbols[sym] = (index[names[i]], kind)

    blob = bytearray()
    strings = []
    str_off = 0

    def add_string(s):
        nonlocal str_off
        off = str_off
        strings.append(s)
        str_off += len(s.encode()) + 1
        return off

    deps = []
    file_rows = []
    for i in order:
        fd = files[i]
        # Transitive imports, breadth first, each once, not the file itself.
        seen = {names[i]}
        queue = [d.decode() for d in get(fd, 3)]
        closure = []
        while queue:
            d = queue.pop(0)
            if d in seen:
                continue
            seen.add(d)
            closure.append(index[d])
            queue += [x.decode() for x in get(files[names.index(d)], 3)]
        file_rows.append((add_string(names[i]), len(blob), len(fd), len(deps), len(closure)))
        deps += closure
        blob += fd
    sym_rows = []
    for sym in sorted(symbols, key=lambda s: s.encode()):
        f, kind = symbols[sym]
        sym_rows.append((add_string(sym), f, kind))

    o = ["/* Generated by scripts/descriptor-index.py: do not edit. */",
         '#include "grpc-std/descriptor-set.h"', "",
         "#define COLD DESCSET_SECTION", ""]
    o.append("COLD const uint8_t descset_bytes[] = {")
    for k in range(0, len(blob), 16):
        o.append("\t" + ", ".join("0x%02x" % b for b in blob[k:k + 16]) + ",")
    o.append("};")
    o.append("COLD const char descset_names[] =")
    for s in strings:
        o.append("\t" + c_string(s))
    o.append(";")
    o.append("COLD const uint16_t descset_deps[] = {%s};" % (", ".join(map(str, deps)) or "0"))
    o.append("COLD const struct descset_file descset_files[] = {")
    for r in file_rows:
        o.append("\t{ %d, %d, %d, %d, %d }," % r)
    o.append("};")
    o.append("const size_t descset_n_files = %d;" % len(file_rows))
    o.append("COLD const struct descset_symbol descset_symbols[] = {")
    for name_off, f, kind in sym_rows:
        o.append("\t{ %d, %d, DESCSET_%s }," % (name_off, f, kind))
    o.append("};")
    o.append("const size_t descset_n_symbols = %d;" % len(sym_rows))
    with open(out, "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
