#!/usr/bin/env python3
"""Checks proto/valet/ against the contract (shared/spec/valet-v1.md)
with the contract's own tool, shared/tools/check-valet-proto.py, found
beside the repository. Prints "ok valet-v1-contract" or "not ok ...: why".
Usage: check-proto-contract.py SOURCE_DIR TOOL"""
import subprocess
import sys

root, tool = sys.argv[1:3]
r = subprocess.run([sys.executable, tool, root], capture_output=True, text=True)
if r.returncode == 0:
    print("ok valet-v1-contract")
else:
    print("not ok valet-v1-contract: proto/valet differs from the spec")
    sys.stdout.write(r.stdout + r.stderr)
sys.exit(r.returncode)
