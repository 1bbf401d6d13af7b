#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a given time each and prints
# one line per target: package, target, time fuzzed, executions, result.
#
#   scripts/fuzz.sh [-j N] [DURATION] [FILTER]
#
# DURATION is go's -fuzztime (default 30s; e.g. 10m). FILTER is an
# extended regular expression matched against "PACKAGE.TARGET" (e.g.
# 'image', 'FuzzParse$', 'compat/'). -j N runs N targets at a time (default
# 1), each with one fuzzing worker (-parallel 1), all under nice. Targets
# are found by `go test -list '^Fuzz'` in every package that has test files
# declaring one, so new targets are picked up without editing this script.
#
# The exit status is non-zero when any target fails; the table then names
# the failing input go wrote (PACKAGE/testdata/fuzz/TARGET/HASH), which
# `go test -run TARGET/HASH ./PACKAGE` replays; commit it as a regression
# seed once the cause is fixed. Logs stay in $FUZZ_LOGDIR (default: a new
# temporary directory, printed at the end).
#
# Environment: NICE (default 19), FUZZ_MINIMIZE (go's -fuzzminimizetime,
# default 10s: minimizing every new input for go's default minute starves
# slow targets; 0s turns minimizing off, and failing inputs are then saved
# as found), FUZZ_LOGDIR.
#
# The normal test suite does not fuzz: `go test` runs each target's seed
# corpus (f.Add and testdata/fuzz) as an ordinary test.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export PATH="$(dirname "$GO"):$PATH"

jobs=1
while getopts "j:h" opt; do
	case $opt in
	j) jobs=$OPTARG ;;
	*) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
duration=${1:-30s}
filter=${2:-.}
case $jobs in '' | *[!0-9]* | 0) echo "fuzz.sh: -j wants a positive number" >&2; exit 2 ;; esac

nice_level=${NICE:-19}
minimize=${FUZZ_MINIMIZE:-10s}
logdir=${FUZZ_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")}
mkdir -p "$logdir"

# targets prints "PKGDIR TARGET" for every fuzz target: candidate packages
# are those whose test files declare a func Fuzz...; go test -list has the
# last word (build tags, generated files).
targets() {
	local dir
	grep -rlE --include='*_test.go' '^func Fuzz[A-Z0-9_][A-Za-z0-9_]*\(' . |
		xargs -r -n1 dirname | sort -u |
		while read -r dir; do
			go test -list '^Fuzz' "$dir" | grep -E '^Fuzz' | sed "s|^|${dir#./} |"
		done
}

# run fuzzes one target and writes its table line to $logdir/NAME.line.
run() {
	local dir=$1 target=$2 name log line start elapsed execs result status crasher
	name=$(echo "$dir.$target" | tr '/' '_')
	log=$logdir/$name.log
	start=$(date +%s)
	status=0
	nice -n "$nice_level" go test -run '^$' -fuzz "^$target\$" -fuzztime "$duration" \
		-fuzzminimizetime "$minimize" -parallel 1 "./$dir" >"$log" 2>&1 || status=$?
	elapsed=$(grep -oE 'elapsed: [0-9hms.]+' "$log" | tail -n1 | cut -d' ' -f2)
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
	result=ok
	if [ "$status" != 0 ]; then
		result=FAIL
		crasher=$(grep -oE 'testdata/fuzz/[^ ]+' "$log" | tail -n1 || true)
		[ -n "$crasher" ] && result="CRASH $dir/$crasher"
	fi
	printf '%-32s %-22s %8s %12s  %s\n' "$dir" "$target" "${elapsed:-$(($(date +%s) - start))s}" \
		"${execs:-0}" "$result" >"$logdir/$name.line"
	cat "$logdir/$name.line"
}

list=$(targets | while read -r dir target; do
	if echo "$dir.$target" | grep -qE -- "$filter"; then echo "$dir $target"; fi
done)
if [ -z "$list" ]; then
	echo "fuzz.sh: no fuzz target matches $filter" >&2
	exit 2
fi

# killtree stops a running target: its subshell, go, the test binary and
# the fuzzing workers.
killtree() {
	local c
	for c in $(pgrep -P "$1"); do killtree "$c"; done
	kill "$1" 2>/dev/null || true
}
trap 'for p in $(jobs -p); do killtree "$p"; done; exit 130' INT TERM
printf '%-32s %-22s %8s %12s  %s\n' PACKAGE TARGET TIME EXECS RESULT
while read -r dir target; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n || true
	done
	run "$dir" "$target" &
done <<<"$list"
wait

failed=$(grep -lv ' ok$' "$logdir"/*.line 2>/dev/null || true)
echo "logs: $logdir"
if [ -n "$failed" ]; then
	echo "fuzz.sh: $(echo "$failed" | wc -l) target(s) failed" >&2
	exit 1
fi
