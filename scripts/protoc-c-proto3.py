#!/usr/bin/env python3
"""Runs protoc-c on a proto3 file that may use `optional` fields.

protoc-c 1.4 (Debian 12) refuses proto3 `optional`. On the wire such a
field is a one-field oneof (that is how protoc itself represents it: a
"synthetic oneof" named `_FIELD`), so the C code is generated from a copy
in which `optional T name = N;` reads `oneof _name { T name = N; }`: the
same bytes, and the presence is `_name_case`. The .proto files themselves
stay canonical for every other language.

Usage: protoc-c-proto3.py PROTOC_C OUT_ROOT INPUT_ROOT INPUT [--proto_path DIR]...
INPUT is a path relative to INPUT_ROOT (valet/v1/files.proto); the C lands
in OUT_ROOT/valet/v1/.
"""
import os
import re
import subprocess
import sys
import tempfile

OPTIONAL = re.compile(r"^(\s*)optional\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;", re.M)


def main():
    protoc_c, out_root, in_root, rel = sys.argv[1:5]
    extra = []
    args = sys.argv[5:]
    while args:
        if args[0] != "--proto_path" or len(args) < 2:
            sys.exit("protoc-c-proto3.py: bad argument %r" % args[0])
        extra.append("--proto_path=" + args[1])
        args = args[2:]
    with open(os.path.join(in_root, rel)) as f:
        text = OPTIONAL.sub(r"\1oneof _\3 { \2 \3 = \4; }", f.read())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            f.write(text)
        # The copy first, so that it shadows the original of the same name.
        cmd = [protoc_c, "--proto_path=" + tmp, "--proto_path=" + in_root] + extra
        cmd += ["--c_out=" + out_root, path]
        sys.exit(subprocess.run(cmd).returncode)


if __name__ == "__main__":
    main()
