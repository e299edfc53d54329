#!/usr/bin/env bash
# The demo: maitred serving every RPC end to end, inside a sandbox with its
# own PID, mount and network namespaces (an interface named eth0 included),
# driven from outside by maitctl over a unix socket.
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/src" && pwd)
work=$(mktemp -d /tmp/valet-demo-XXXXXX)
sandbox_pid=
cleanup() {
	if [ -n "$sandbox_pid" ] && kill -0 "$sandbox_pid" 2>/dev/null; then kill "$sandbox_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@" || printf '(exit status %d)\n' "$?"; }

sock=$work/maitred.sock
vsock=$work/vshd.sock
# Inside: a fresh network namespace gets lo and a veth pair whose guest end
# is eth0; then maitred runs as an ordinary service (not PID 1: a shell is).
unshare --pid --fork --mount --net --mount-proc --propagation private \
	sh -c "ip link add eth0 type veth peer name host0 && { $bin/vshd --listen unix:$vsock & $bin/maitred --listen unix:$sock; }" \
	>"$work/maitred.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || { cat "$work/maitred.log"; echo "maitred did not start" >&2; exit 1; }
maitred_pid=$(pgrep -P "$(pgrep -P $sandbox_pid -x sh)" -x maitred)
ctl() { "$bin/maitctl" --addr "unix:$sock" "$@"; }
in_sandbox() { nsenter --target "$maitred_pid" --net --mount --pid "$@"; }

say "ConfigureNetwork: 10.0.2.15/24 via 10.0.2.2 on the sandbox's eth0"
run ctl network --address 10.0.2.15/24 --gateway 10.0.2.2
run in_sandbox ip -brief addr show
run in_sandbox ip route
say "...and again with another address: replaced, not 'File exists'"
run ctl network --address 10.0.3.15 --netmask 255.255.255.0 --gateway 10.0.3.1
run in_sandbox ip -brief addr show eth0
say "ConfigureNetwork with a zero gateway: INVALID_ARGUMENT, as upstream"
run ctl network --address 10.0.2.15/24 --gateway 0.0.0.0

say "LaunchProcess, waiting: the exit status comes back (and is maitctl's)"
run ctl launch --wait --env GREETING=hello -- sh -c 'echo "$GREETING from pid $$, sid $(cut -d" " -f6 /proc/$$/stat)" > /tmp/greeting; exit 7'
run in_sandbox cat /tmp/greeting
say "LaunchProcess killed by a signal: SIGNALED 9, maitctl exits 137"
run ctl launch --wait -- sh -c 'kill -9 $$'
say "LaunchProcess of a program that does not exist: OK with status FAILED"
run ctl --json launch -- /no/such/program
say "LaunchProcess in the background, and a respawning one"
run ctl launch -- sleep 1
run ctl launch --respawn -- sh -c "sleep 0.6"
sleep 1
run in_sandbox ps -o pid,ppid,sid,stat,args

say "Mount: a tmpfs inside the sandbox's own mount namespace"
run in_sandbox mkdir -p /tmp/demo-mnt
run ctl mount tmpfs /tmp/demo-mnt tmpfs --flags nosuid,nodev --options size=4m,mode=0750
run in_sandbox findmnt -n /tmp/demo-mnt
say "Mount on a missing directory: OK with error ENOENT, maitctl exits 1"
run ctl --json mount tmpfs /no/such/dir tmpfs

say "vsh: a command in the sandbox through vshd (pipes; exit status comes back)"
vsh() { "$bin/vsh" --addr "unix:$vsock" "$@"; }
run vsh -- sh -c 'echo "in the sandbox: pid $$, $(ip -brief addr show eth0)"; echo to-stderr >&2; exit 3'
run vsh -- sh -c 'kill -TERM $$'
printf 'binary data, byte for byte: '
head -c 4M /dev/urandom > "$work/blob"
vsh -- cat < "$work/blob" | cmp - "$work/blob" && echo "4 MiB identical"
if [ -t 0 ] && [ -t 1 ]; then
	say "vsh: an interactive login shell in the sandbox (type 'exit' to leave)"
	vsh || true
else
	say "vsh: not on a terminal, so no interactive shell (run 'make demo' in a terminal for one)"
fi

say "Shutdown: maitred answers, finishes calls in flight, exits 0"
run ctl shutdown
wait "$sandbox_pid" || true
sandbox_pid=
say "maitred's log"
cat "$work/maitred.log"
