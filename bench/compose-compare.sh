#!/usr/bin/env bash
# compose-compare.sh: podman-compose 1.0.3 (Debian's, unmodified) bringing up
# and tearing down a small project with berth and with Podman 4.3.1,
#   podman-compose --podman-path berth  up -d;  ... down -v
#   podman-compose --podman-path podman up -d;  ... down -v
# side by side in one run, interleaved (the order alternates every round).
#
# The project is test/acceptance/compose.sh's, less its healthcheck and
# annotation: two services on two networks,
# a published port, a named volume, depends_on, an env_file, restart
# policies, --init, shm_size, security_opt and logging. podman-compose sleeps
# one second after each container it starts (two per up) and after each
# volume it removes (one per down -v), whichever engine it drives: those
# seconds are in both times, and the summary gives the ratios without them.
#
# Podman is Debian's 4.3.1 with its own netavark 1.4 and aardvark-dns, runc,
# cgroupfs, events_logger = file, private storage, run root and tmp dir;
# berth is bin/berth with its own store. podman-compose gets each through a
# two-line wrapper script that adds the private directories. Each runs in a
# network namespace of its own (PREFIX-hb, PREFIX-hp), both inside one
# private mount namespace with tmpfs over /run/containers/networks and
# /run/berth; berth's network run dir is a directory of this run. Container
# subnets come from 198.19.0.0/16. Nothing touches the machine's own network.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/compose-compare.sh            8 rounds (about 2 min)
#   bench/compose-compare.sh --quick    3 rounds, 1 warm-up (about 1 min)
#
# Env: ROUNDS (default 8), WARMUP (default 1), PREFIX (default bgdc), BERTH
#      (bin/berth), PODMAN (podman), COMPOSE (podman-compose), RESDIR
#      (bench/results/<timestamp>-compose).
# Output: RESDIR/compose.jsonl (one line per step: impl, round, step up|down,
#         wall_ms, rc), RESDIR/summary.md (medians, ratios, the commit,
#         kernel, CPUs and load before and after; also printed),
#         RESDIR/compose.log.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
PREFIX=${PREFIX:-bgdc}
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
if [ "${1:-}" = --quick ]; then ROUNDS=${ROUNDS:-3} WARMUP=${WARMUP:-1}; fi
ROUNDS=${ROUNDS:-8}
WARMUP=${WARMUP:-1}
BERTH=${BERTH:-$TOP/bin/berth}
PODMAN=${PODMAN:-podman}
COMPOSE=${COMPOSE:-podman-compose}
export PATH=$PATH:/usr/sbin:/sbin

need_root
need "$BERTH:make" "$PODMAN:podman" "$COMPOSE:podman-compose" /usr/lib/podman/netavark:netavark \
	/usr/lib/podman/aardvark-dns:aardvark-dns runc:runc conmon:conmon catatonit:catatonit \
	nsenter:util-linux unshare:util-linux ip:iproute2 nft:nftables /bin/busybox:busybox-static "$PYTHON:python3"

if [ -z "${_COMPCMP_INNER:-}" ]; then
	for n in "$PREFIX-hb" "$PREFIX-hp"; do
		if [ -e "/run/netns/$n" ]; then
			echo "compose-compare.sh: network namespace $n exists already (another run?); choose another PREFIX" >&2
			exit 2
		fi
	done
	RESDIR=${RESDIR:-$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)-compose}
	mkdir -p "$RESDIR"
	run_info --md >"$RESDIR/info-before.md"
	mark_outer_ns
	exec env _COMPCMP_INNER=1 RESDIR="$RESDIR" unshare --mount --propagation private -- "$0" "$@"
fi

require_private_ns mnt
HB=$PREFIX-hb HP=$PREFIX-hp
state=$(mktemp -d -p /var/tmp "$PREFIX-compose.XXXXXX")
chmod 755 "$state"
OUT=$RESDIR/compose.jsonl BENCH=compose-compare RUN_ID=$(basename "$RESDIR")
export OUT BENCH RUN_ID
RUNLOG=$RESDIR/compose.log
: >"$OUT"
PROJ=$state/demo

# podman-compose runs $state/berth-wrap or $state/podman-wrap as "podman".
# C IMPL ARGS...: podman-compose on the project with IMPL's engine
C() {
	local ns=$HB wrap=$state/berth-wrap
	[ "$1" = podman ] && ns=$HP wrap=$state/podman-wrap
	shift
	(cd "$PROJ" && nsenter --net="/run/netns/$ns" -- "$COMPOSE" --podman-path "$wrap" "$@")
}

cleanup() {
	set +e
	C berth down -v >/dev/null 2>&1
	C podman down -v >/dev/null 2>&1
	engines_down
}
trap cleanup EXIT

engines_up || exit 1
mkdir -p "$PROJ"

log "images: banner and busybox (busybox-static, offline), imported into both stores"
MKBANNER_TAR_ONLY=$state/banner.tar "$TOP/scripts/mkbanner.sh" >/dev/null
"$TOP/scripts/mkbusybox.sh" "$state/bbroot" "$state/busybox.tar"
for impl in B P; do
	$impl import --change 'CMD ["httpd","-f","-v","-p","80","-h","/www"]' --change 'EXPOSE 80' "$state/banner.tar" localhost/banner >>"$RUNLOG" 2>&1
	$impl import --change 'CMD ["sh"]' "$state/busybox.tar" localhost/busybox >>"$RUNLOG" 2>&1
done

# the project of test/acceptance/compose.sh, less its healthcheck and annotation
cat >"$PROJ/docker-compose.yml" <<'EOF'
version: "3"
services:
  store:
    image: localhost/busybox
    command: ["httpd", "-f", "-p", "8000", "-h", "/data"]
    networks: [back]
    volumes:
      - data:/data
    env_file: store.env
    environment:
      STORE_ROLE: backend
    restart: unless-stopped
    stop_signal: SIGKILL
    shm_size: 96m
    security_opt: ["seccomp:unconfined"]
    logging:
      driver: k8s-file
  web:
    image: localhost/banner
    networks: [front, back]
    ports:
      - "8080:80"
    depends_on: [store]
    restart: always
    init: true
networks:
  front:
  back:
volumes:
  data:
EOF
printf 'STORE_GREETING=hello from the env file\nSTORE_LEVEL=3\n' >"$PROJ/store.env"

bver=$("$BERTH" version 2>/dev/null | head -n1)
pver="$("$PODMAN" --version), $(/usr/lib/podman/netavark --version 2>/dev/null | head -n1), podman-compose $(dpkg-query -W -f='${Version}' podman-compose 2>/dev/null)"
log "berth: $bver; podman: $pver"

# round IMPL N: time up -d and down -v; between rounds the project's
# networks (which podman-compose 1.0.3's down leaves) go too, untimed
round() {
	local impl=$1 n=$2 step t0 t1 rc ms nets
	for step in up down; do
		echo "== $impl round $n $step" >>"$RUNLOG"
		rc=0
		t0=${EPOCHREALTIME/./}
		if [ $step = up ]; then C "$impl" up -d >"$state/out" 2>&1 || rc=$?; else C "$impl" down -v >"$state/out" 2>&1 || rc=$?; fi
		t1=${EPOCHREALTIME/./}
		cat "$state/out" >>"$RUNLOG"
		# podman-compose goes on past a failed podman command: count those
		if grep -q '^exit code: [1-9]' "$state/out"; then rc=1; fi
		if [ $step = up ] && [ $rc = 0 ]; then
			# the port is published: a DNAT for 8080 in the engine's namespace
			# (captured first: grep -q closing the pipe early fails it under pipefail)
			local ns=$HB rules; [ "$impl" = podman ] && ns=$HP
			rules=$(nsenter --net="/run/netns/$ns" -- nft list ruleset 2>/dev/null)
			grep -q 'dport 8080\|tcp \. 8080 ' <<<"$rules" || { log "$impl round $n: no rule for port 8080 after up"; rc=1; }
		fi
		ms=$(awk -v d=$((t1 - t0)) 'BEGIN{printf "%.3f", d/1000}')
		[ "$n" -gt 0 ] && IMPL=$impl emit_json "{\"round\":$n,\"step\":\"$step\",\"wall_ms\":$ms,\"rc\":$rc,\"load1\":$(loadavg1)}" >/dev/null
		[ $rc -eq 0 ] || log "$impl round $n $step: failed (see $RUNLOG)"
		log "$impl round $n $step: ${ms} ms"
	done
	if [ "$impl" = podman ]; then nets=$(P network ls --format '{{.Name}}' | grep '^demo_' || true); [ -z "$nets" ] || P network rm $nets >>"$RUNLOG" 2>&1
	else nets=$(B network ls --format '{{.Name}}' | grep '^demo_' || true); [ -z "$nets" ] || B network rm $nets >>"$RUNLOG" 2>&1; fi
}

for ((i = 1; i <= WARMUP; i++)); do round berth 0; round podman 0; done
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then round berth "$r"; round podman "$r"; else round podman "$r"; round berth "$r"; fi
done

left_b=$(B ps -aq | wc -l) left_p=$(P ps -aq | wc -l)
{
	echo "- before: $(cat "$RESDIR/info-before.md")"
	echo "- after: $(run_info --md)"
	echo
} >"$RESDIR/info.md"
"$PYTHON" - "$OUT" "$ROUNDS" "$bver" "$pver" "$left_b" "$left_p" >"$RESDIR/summary.md" <<'EOF'
import json, sys
path, rounds, bver, pver, left_b, left_p = sys.argv[1:7]
rows = [json.loads(l) for l in open(path)]
def stats(impl, step):
    v = sorted(r["wall_ms"] for r in rows if r["impl"] == impl and r["step"] == step and r["rc"] == 0)
    fails = sum(1 for r in rows if r["impl"] == impl and r["step"] == step and r["rc"] != 0)
    def pct(q):
        if not v: return float("nan")
        p = (len(v) - 1) * q; lo = int(p); hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (p - lo)
    return dict(n=len(v), fails=fails, median=pct(.5), p10=pct(.1), p90=pct(.9))
print("# podman-compose 1.0.3 up -d and down -v: berth vs Podman 4.3.1\n")
print(f"berth: {bver}; podman: {pver}; {rounds} interleaved rounds; containers left: berth {left_b}, podman {left_p}\n")
print("| | median | p10 | p90 | runs ok | failed |")
print("|---|---|---|---|---|---|")
for step in ("up", "down"):
    for impl in ("berth", "podman"):
        s = stats(impl, step)
        print(f"| {impl} {step} -d |".replace("down -d", "down -v") + f" {s['median']:.0f} ms | {s['p10']:.0f} ms | {s['p90']:.0f} ms | {s['n']} | {s['fails']} |")
for step in ("up", "down"):
    b, p = stats("berth", step)["median"], stats("podman", step)["median"]
    # podman-compose's own sleeps: one second after each container it
    # starts (two) and after each volume it removes (one)
    sleep = 2000 if step == "up" else 1000
    print(f"\n{step}: ratio of medians berth / podman **{b / p:.3f}**; "
          f"without podman-compose's {sleep} ms of sleeps {(b - sleep) / (p - sleep):.3f}")
EOF
cat "$RESDIR/info.md" "$RESDIR/summary.md" >"$RESDIR/summary.tmp" && mv "$RESDIR/summary.tmp" "$RESDIR/summary.md"
rm -f "$RESDIR/info.md" "$RESDIR/info-before.md"
cat "$RESDIR/summary.md"
log "results: $RESDIR"
