#!/usr/bin/env bash
# Installs the interop suite's one npm package, @grpc/grpc-js, at the
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
echo "install-npm-deps: installing @grpc/grpc-js into $cache" >&2
# npm ci: exactly the lockfile; no install scripts run.
(cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
