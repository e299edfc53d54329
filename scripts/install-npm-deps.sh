#!/usr/bin/env bash
# Installs the test tools from npm (tests/interop/package.json: @grpc/grpc-js
# for the interop suite; gRPC's @grpc/reflection and grpc-health-check and
# the reflection client grpc-reflection-js for test_grpc_std.py) at the
# versions pinned by tests/interop/package-lock.json, into a cache outside
# the work tree (~/.cache/valet-npm, or $VALET_NPM_CACHE). Nothing is
# fetched when the cache already matches the lockfile.
set -euo pipefail

src="$(cd "$(dirname "$0")/../tests/interop" && pwd)"
cache="${VALET_NPM_CACHE:-$HOME/.cache/valet-npm}"

if [ -d "$cache/node_modules/@grpc/grpc-js" ] && cmp -s "$src/package-lock.json" "$cache/package-lock.json"; then
	exit 0
fi
mkdir -p "$cache"
cp "$src/package.json" "$src/package-lock.json" "$cache/"
echo "install-npm-deps: installing the npm test tools into $cache" >&2
# npm ci: exactly the lockfile; no install scripts run.
(cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
