#!/usr/bin/env bash
# run-compare.sh: the cost of a whole container run with a published port,
#   berth run --rm -p 8080:80 IMAGE true
#   podman run --rm -p 8080:80 IMAGE true
# and of a detached one removed by force,
#   berth run -d -p 8080:80 IMAGE; berth rm -f
#   podman run -d -p 8080:80 IMAGE; podman rm -f -t 0   (-t 0: no stop timeout, as berth's rm -f)
# side by side in one run, interleaved (the order alternates every round),
# on the same image (scripts/mkbanner.sh's banner, built offline).
#
# Podman is Debian's 4.3.1 with its own netavark 1.4 and aardvark-dns
# (helper_binaries_dir = /usr/lib/podman), runc, cgroupfs, events_logger =
# file, private storage, run root and tmp dir; berth is bin/berth with its
# own store. Each runs in a network namespace of its own (PREFIX-hb,
# PREFIX-hp), both inside one private mount namespace with tmpfs over
# /run/containers/networks (Podman's fixed network run dir) and /run/berth;
# berth's network run dir is a directory of this run, so the two never share
# an address database. Container subnets are 198.19.0.0/24. Nothing touches
# the machine's own network.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/run-compare.sh            15 rounds (about 30 s)
#   bench/run-compare.sh --quick    5 rounds, 1 warm-up (about 10 s)
#
# Env: ROUNDS (default 15) timed runs per implementation, WARMUP (default 2)
#      untimed runs each first, PREFIX (default bgdb), BERTH (bin/berth),
#      PODMAN (podman), RESDIR (bench/results/<timestamp>-run), BREAKDOWN=1
#      (each round also times berth without -p and with --network none).
# Output: RESDIR/run.jsonl (one line per run: impl, round, wall_ms, rc; impl
#         berth, podman, berth-d, podman-d for the detached runs, ...),
#         RESDIR/summary.md (medians, ratio, the commit, kernel, CPUs and
#         load before and after; also printed), RESDIR/run.log.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
PREFIX=${PREFIX:-bgdb}
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
if [ "${1:-}" = --quick ]; then ROUNDS=${ROUNDS:-5} WARMUP=${WARMUP:-1}; fi
ROUNDS=${ROUNDS:-15}
WARMUP=${WARMUP:-2}
BERTH=${BERTH:-$TOP/bin/berth}
PODMAN=${PODMAN:-podman}
export PATH=$PATH:/usr/sbin:/sbin

need_root
need "$BERTH:make" "$PODMAN:podman" /usr/lib/podman/netavark:netavark /usr/lib/podman/aardvark-dns:aardvark-dns \
	runc:runc conmon:conmon nsenter:util-linux unshare:util-linux ip:iproute2 nft:nftables \
	/bin/busybox:busybox-static "$PYTHON:python3"

if [ -z "${_RUNCMP_INNER:-}" ]; then
	for n in "$PREFIX-hb" "$PREFIX-hp"; do
		if [ -e "/run/netns/$n" ]; then
			echo "run-compare.sh: network namespace $n exists already (another run?); choose another PREFIX" >&2
			exit 2
		fi
	done
	RESDIR=${RESDIR:-$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)-run}
	mkdir -p "$RESDIR"
	run_info --md >"$RESDIR/info-before.md"
	mark_outer_ns
	exec env _RUNCMP_INNER=1 RESDIR="$RESDIR" unshare --mount --propagation private -- "$0" "$@"
fi

require_private_ns mnt
HB=$PREFIX-hb HP=$PREFIX-hp
state=$(mktemp -d -p /var/tmp "$PREFIX-run.XXXXXX")
OUT=$RESDIR/run.jsonl BENCH=run-compare RUN_ID=$(basename "$RESDIR")
export OUT BENCH RUN_ID
RUNLOG=$RESDIR/run.log
: >"$OUT"

cleanup() {
	set +e
	engines_down
}
trap cleanup EXIT

engines_up || exit 1

log "image: the banner rootfs (scripts/mkbanner.sh), imported into both stores"
MKBANNER_TAR_ONLY=$state/banner.tar "$TOP/scripts/mkbanner.sh" >/dev/null
B import -q --change 'CMD ["httpd","-f","-v","-p","80","-h","/www"]' --change 'EXPOSE 80' "$state/banner.tar" banner >>"$RUNLOG" 2>&1
P import --change 'CMD ["httpd","-f","-v","-p","80","-h","/www"]' --change 'EXPOSE 80' "$state/banner.tar" localhost/banner >>"$RUNLOG" 2>&1

bver=$("$BERTH" version 2>/dev/null | head -n1)
pver="$("$PODMAN" --version), $(/usr/lib/podman/netavark --version 2>/dev/null | head -n1)"
log "berth: $bver; podman: $pver; runc: $(runc --version | head -n1)"

# Both really publish the port: a detached run leaves a DNAT for 8080 in
# its namespace's ruleset (netavark 1.4: iptables-nft; berth: nftables map).
B run -d --name chk -p 8080:80 banner >>"$RUNLOG" 2>&1
P run -d --name chk -p 8080:80 localhost/banner >>"$RUNLOG" 2>&1
for n in "$HB" "$HP"; do
	rules=$(nsenter --net="/run/netns/$n" -- nft list ruleset 2>/dev/null)
	grep -q 'dport 8080\|tcp \. 8080 ' <<<"$rules" || { log "FATAL: no rule for port 8080 in $n"; exit 1; }
done
B rm -f chk >>"$RUNLOG" 2>&1
P rm -f -t 0 chk >>"$RUNLOG" 2>&1

# one_run IMPL ROUND: time `IMPL run --rm -p 8080:80 banner true`
one_run() {
	local impl=$1 round=$2 t0 t1 rc=0 ms
	echo "== $impl round $round" >>"$RUNLOG"
	t0=${EPOCHREALTIME/./}
	case $impl in
	berth) B run --rm -p 8080:80 banner true >>"$RUNLOG" 2>&1 || rc=$? ;;
	podman) P run --rm -p 8080:80 localhost/banner true >>"$RUNLOG" 2>&1 || rc=$? ;;
	berth-d) { B run -d -p 8080:80 --name det banner && B rm -f det; } >>"$RUNLOG" 2>&1 || rc=$? ;;
	podman-d) { P run -d -p 8080:80 --name det localhost/banner && P rm -f -t 0 det; } >>"$RUNLOG" 2>&1 || rc=$? ;;
	berth-bridge) B run --rm banner true >>"$RUNLOG" 2>&1 || rc=$? ;;
	berth-none) B run --rm --network none banner true >>"$RUNLOG" 2>&1 || rc=$? ;;
	esac
	t1=${EPOCHREALTIME/./}
	ms=$(awk -v d=$((t1 - t0)) 'BEGIN{printf "%.3f", d/1000}')
	if [ "$round" -gt 0 ]; then
		IMPL=$impl emit_json "{\"round\":$round,\"wall_ms\":$ms,\"rc\":$rc,\"load1\":$(loadavg1)}" >/dev/null
	fi
	[ $rc -eq 0 ] || log "$impl round $round: exit code $rc (see $RUNLOG)"
	log "$impl round $round: ${ms} ms"
}

for ((i = 1; i <= WARMUP; i++)); do one_run berth 0; one_run podman 0; one_run berth-d 0; one_run podman-d 0; done
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then one_run berth "$r"; one_run podman "$r"; else one_run podman "$r"; one_run berth "$r"; fi
	if ((r % 2)); then one_run podman-d "$r"; one_run berth-d "$r"; else one_run berth-d "$r"; one_run podman-d "$r"; fi
	if [ "${BREAKDOWN:-0}" = 1 ]; then one_run berth-bridge "$r"; one_run berth-none "$r"; fi
done

left_b=$(B ps -aq | wc -l) left_p=$(P ps -aq | wc -l)

{
	echo "- before: $(cat "$RESDIR/info-before.md")"
	echo "- after: $(run_info --md)"
	echo
} >"$RESDIR/info.md"
"$PYTHON" - "$OUT" "$ROUNDS" "$bver" "$pver" "$left_b" "$left_p" >"$RESDIR/summary.md" <<'EOF'
import json, sys
sys.path.insert(0, __import__("os").path.dirname(sys.argv[0]) or ".")
path, rounds, bver, pver, left_b, left_p = sys.argv[1:7]
rows = [json.loads(l) for l in open(path)]
def stats(impl):
    v = sorted(r["wall_ms"] for r in rows if r["impl"] == impl and r["rc"] == 0)
    fails = sum(1 for r in rows if r["impl"] == impl and r["rc"] != 0)
    def pct(q):
        if not v: return float("nan")
        p = (len(v) - 1) * q; lo = int(p); hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (p - lo)
    return dict(n=len(v), fails=fails, median=pct(.5), p10=pct(.1), p90=pct(.9), min=v[0] if v else float("nan"))
def ratio(a, b):
    return stats(a)["median"] / stats(b)["median"] if stats(b)["median"] else float("nan")
print(f"# run --rm -p 8080:80 IMAGE true, and run -d -p 8080:80 IMAGE then rm -f: berth vs Podman 4.3.1\n")
print(f"berth: {bver}; podman: {pver}; {rounds} interleaved rounds; containers left: berth {left_b}, podman {left_p}\n")
print("| | median | p10 | p90 | min | runs ok | failed |")
print("|---|---|---|---|---|---|---|")
for name in ("berth", "podman", "berth-d", "podman-d", "berth-bridge", "berth-none"):
    s = stats(name)
    if s["n"] + s["fails"] == 0:
        continue
    label = {"berth-bridge": "berth, no -p", "berth-none": "berth, --network none",
             "berth-d": "berth run -d + rm -f", "podman-d": "podman run -d + rm -f -t 0"}.get(name, name)
    print(f"| {label} | {s['median']:.1f} ms | {s['p10']:.1f} ms | {s['p90']:.1f} ms | {s['min']:.1f} ms | {s['n']} | {s['fails']} |")
print(f"\nratio of medians berth / podman, run --rm: **{ratio('berth', 'podman'):.3f}**; "
      f"run -d + rm -f: **{ratio('berth-d', 'podman-d'):.3f}** (target ≤ 0.5)")
EOF
cat "$RESDIR/info.md" "$RESDIR/summary.md" >"$RESDIR/summary.tmp" && mv "$RESDIR/summary.tmp" "$RESDIR/summary.md"
rm -f "$RESDIR/info.md" "$RESDIR/info-before.md"
cat "$RESDIR/summary.md"
log "results: $RESDIR"
