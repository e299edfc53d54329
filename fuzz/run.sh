#!/usr/bin/env bash
# Runs each fuzz target of a fuzz build for SECONDS seconds, one after the
# other (never two at once), niced, over a working corpus kept in the build
# directory and seeded with fuzz/corpus/NAME. New crashes land in
# BUILD/crashes/NAME/. Prints one summary line per target.
#
#   fuzz/run.sh BUILD SECONDS [NAME...]
set -uo pipefail

build=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$here"/fuzz-*.c; do
		n=$(basename "$f" .c)
		names+=("${n#fuzz-}")
	done
fi

failed=0
for name in "${names[@]}"; do
	work=$build/corpus/$name
	crashes=$build/crashes/$name
	log=$build/fuzz-$name.log
	mkdir -p "$work" "$crashes"
	# -timeout: a hang is a finding too. -rss_limit_mb: the machine is shared.
	nice -n 19 "$build/fuzz/fuzz-$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
		-print_final_stats=1 -artifact_prefix="$crashes/" "$work" "$here/corpus/$name" >"$log" 2>&1
	rc=$?
	stats=$(grep -E '^#[0-9]+' "$log" | tail -1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ $rc -eq 0 ]; then
		echo "fuzz $name: ${seconds}s, $execs runs, last: $stats"
	else
		echo "fuzz $name: FAILED (exit $rc), see $log; reproducer in $crashes/" >&2
		grep -E 'ERROR|SUMMARY|check failed' "$log" | head -5 >&2
		failed=1
	fi
done
exit $failed
