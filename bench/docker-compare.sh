#!/usr/bin/env bash
# docker-compare.sh: Debian's docker-compose 1.29 (unmodified) and Docker
# Compose v2 (the Go rewrite, built by scripts/compose-v2.sh) bringing up
# and tearing down a project through the Docker API, served by berth and by
# Podman 4.3.1,
#   DOCKER_HOST=unix://.../berth.sock  docker-compose up -d;  ... down -v
#   DOCKER_HOST=unix://.../podman.sock docker-compose up -d;  ... down -v
# side by side in one run, interleaved (the order alternates every round),
# each Compose in turn.
#
# The project is test/acceptance/docker-api.sh's, less its healthchecks and
# their depends_on conditions (Podman 4.3 runs healthchecks from systemd
# timers, which the sandbox has not): three services on two networks (one
# internal, with a subnet), aliases, a fixed ipv4_address, a published port,
# a named volume, depends_on and init.
#
# berth is `bin/berth system service` with its own store; Podman is Debian's
# 4.3.1 `podman system service` with its own netavark 1.4 and aardvark-dns,
# runc, cgroupfs, events_logger = file, private storage, run root and tmp
# dir. Each service runs in a network namespace of its own (PREFIX-hb,
# PREFIX-hp), both inside one private mount namespace with tmpfs over
# /run/containers/networks and /run/berth. Container subnets come from
# 198.19.0.0/16. Nothing touches the machine's own network.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/docker-compare.sh            8 rounds
#   bench/docker-compare.sh --quick    3 rounds, 1 warm-up
#
# Env: ROUNDS (default 8), WARMUP (default 1), PREFIX (default bgdd), BERTH
#      (bin/berth), PODMAN (podman), COMPOSE (docker-compose), COMPOSE_V2
#      (default: built by scripts/compose-v2.sh; "none" leaves it out),
#      RESDIR (bench/results/<timestamp>-docker).
# docker-compose's own start (about 0.3 s of Python) is in every step of
# both; the summary also gives its ratios without it. Compose v2 starts in
# a few milliseconds: its ratios show the two servers more directly.
# Output: RESDIR/docker.jsonl (one line per step: impl, compose v1|v2,
#         round, step up|down, wall_ms, rc), RESDIR/summary.md (medians,
#         ratios, the commit, kernel, CPUs and load before and after; also
#         printed), RESDIR/docker.log.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$BENCH_DIR/.." && pwd)
PREFIX=${PREFIX:-bgdd}
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
if [ "${1:-}" = --quick ]; then ROUNDS=${ROUNDS:-3} WARMUP=${WARMUP:-1}; fi
ROUNDS=${ROUNDS:-8}
WARMUP=${WARMUP:-1}
BERTH=${BERTH:-$TOP/bin/berth}
PODMAN=${PODMAN:-podman}
COMPOSE=${COMPOSE:-docker-compose}
COMPOSE_V2=${COMPOSE_V2:-}
export PATH=$PATH:/usr/sbin:/sbin

need_root
need "$BERTH:make" "$PODMAN:podman" "$COMPOSE:docker-compose" /usr/lib/podman/netavark:netavark \
	/usr/lib/podman/aardvark-dns:aardvark-dns runc:runc conmon:conmon catatonit:catatonit \
	nsenter:util-linux unshare:util-linux ip:iproute2 nft:nftables /bin/busybox:busybox-static "$PYTHON:python3"

if [ -z "${_DOCKCMP_INNER:-}" ]; then
	if [ -z "$COMPOSE_V2" ]; then
		COMPOSE_V2=$("$TOP/scripts/compose-v2.sh") || { echo "docker-compare.sh: could not build Compose v2 (scripts/compose-v2.sh; COMPOSE_V2=none leaves it out)" >&2; exit 2; }
	fi
	for n in "$PREFIX-hb" "$PREFIX-hp"; do
		if [ -e "/run/netns/$n" ]; then
			echo "compose-compare.sh: network namespace $n exists already (another run?); choose another PREFIX" >&2
			exit 2
		fi
	done
	RESDIR=${RESDIR:-$BENCH_DIR/results/$(date +%Y%m%d-%H%M%S)-docker}
	mkdir -p "$RESDIR"
	run_info --md >"$RESDIR/info-before.md"
	mark_outer_ns
	exec env _DOCKCMP_INNER=1 RESDIR="$RESDIR" COMPOSE_V2="$COMPOSE_V2" unshare --mount --propagation private -- "$0" "$@"
fi

require_private_ns mnt
HB=$PREFIX-hb HP=$PREFIX-hp
state=$(mktemp -d -p /var/tmp "$PREFIX-docker.XXXXXX")
chmod 755 "$state"
OUT=$RESDIR/docker.jsonl BENCH=docker-compare RUN_ID=$(basename "$RESDIR")
export OUT BENCH RUN_ID
RUNLOG=$RESDIR/docker.log
: >"$OUT"
PROJ=$state/demo

# C IMPL ARGS...: docker-compose on the project with IMPL's service;
# C2 the same with Compose v2
C() { compose_on "$COMPOSE" "$@"; }
C2() { compose_on "$COMPOSE_V2" "$@"; }
compose_on() {
	local prog=$1 sock=$state/$2.sock
	shift 2
	(cd "$PROJ" && DOCKER_HOST=unix://$sock "$prog" --ansi never "$@")
}
TOOLS=(v1)
[ "$COMPOSE_V2" = none ] || TOOLS+=(v2)
SVC_PIDS=()
# service IMPL: starts IMPL's Docker API service in its namespace
service() {
	local sock=$state/$1.sock i
	if [ "$1" = berth ]; then B system service --time 0 "unix://$sock" >>"$RUNLOG" 2>&1 &
	else P system service --time 0 "unix://$sock" >>"$RUNLOG" 2>&1 &
	fi
	SVC_PIDS+=($!)
	for i in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
	log "$1's service did not start (see $RUNLOG)"; return 1
}

cleanup() {
	set +e
	C berth down -v >/dev/null 2>&1
	C podman down -v >/dev/null 2>&1
	if [ "$COMPOSE_V2" != none ]; then
		C2 berth down -v >/dev/null 2>&1
		C2 podman down -v >/dev/null 2>&1
	fi
	local s
	for s in "${SVC_PIDS[@]}"; do kill "$s" 2>/dev/null; wait "$s" 2>/dev/null; done
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

# test/acceptance/docker-api.sh's project, less its healthchecks
cat >"$PROJ/docker-compose.yml" <<'EOF'
version: "2.4"
services:
  db:
    image: localhost/busybox:latest
    init: true
    command: ["sh", "-c", "test -f /data/index.html || echo stored-page >/data/index.html; exec httpd -f -p 8000 -h /data"]
    networks:
      back:
        ipv4_address: 198.19.20.10
        aliases: [database]
    volumes:
      - data:/data
  web:
    image: localhost/banner:latest
    init: true
    networks:
      front:
        aliases: [www]
      back:
    ports:
      - "8080:80"
    depends_on: [db]
  client:
    image: localhost/busybox:latest
    command: ["sleep", "100000"]
    init: true
    networks: [back]
    depends_on: [web]
networks:
  front:
  back:
    internal: true
    ipam:
      config:
        - subnet: 198.19.20.0/24
volumes:
  data:
EOF
service berth
service podman

bver=$("$BERTH" version 2>/dev/null | head -n1)
pver="$("$PODMAN" --version), $(/usr/lib/podman/netavark --version 2>/dev/null | head -n1)"
cver="docker-compose $("$COMPOSE" version --short 2>/dev/null)"
[ "$COMPOSE_V2" = none ] || cver="$cver, Compose $("$COMPOSE_V2" version --short 2>/dev/null)"
log "berth: $bver; podman: $pver; $cver"

# round TOOL IMPL N: time TOOL's (v1: docker-compose, v2: Compose v2) up -d
# and down -v
round() {
	local tool=$1 impl=$2 n=$3 step t0 t1 rc ms cmd=C
	[ "$tool" = v2 ] && cmd=C2
	for step in up down; do
		echo "== $impl $tool round $n $step" >>"$RUNLOG"
		rc=0
		t0=${EPOCHREALTIME/./}
		if [ $step = up ]; then $cmd "$impl" up -d >"$state/out" 2>&1 || rc=$?; else $cmd "$impl" down -v >"$state/out" 2>&1 || rc=$?; fi
		t1=${EPOCHREALTIME/./}
		cat "$state/out" >>"$RUNLOG"
		if [ $step = up ] && [ $rc = 0 ]; then
			# the port is published: a DNAT for 8080 in the engine's namespace
			# (captured first: grep -q closing the pipe early fails it under pipefail)
			local ns=$HB rules; [ "$impl" = podman ] && ns=$HP
			rules=$(nsenter --net="/run/netns/$ns" -- nft list ruleset 2>/dev/null)
			grep -q 'dport 8080\|tcp \. 8080 ' <<<"$rules" || { log "$impl $tool round $n: no rule for port 8080 after up"; rc=1; }
		fi
		ms=$(awk -v d=$((t1 - t0)) 'BEGIN{printf "%.3f", d/1000}')
		[ "$n" -gt 0 ] && IMPL=$impl emit_json "{\"compose\":\"$tool\",\"round\":$n,\"step\":\"$step\",\"wall_ms\":$ms,\"rc\":$rc,\"load1\":$(loadavg1)}" >/dev/null
		[ $rc -eq 0 ] || log "$impl $tool round $n $step: failed (see $RUNLOG)"
		log "$impl $tool round $n $step: ${ms} ms"
	done
}

for tool in "${TOOLS[@]}"; do
	for ((i = 1; i <= WARMUP; i++)); do round "$tool" berth 0; round "$tool" podman 0; done
done
for ((r = 1; r <= ROUNDS; r++)); do
	for tool in "${TOOLS[@]}"; do
		if ((r % 2)); then round "$tool" berth "$r"; round "$tool" podman "$r"; else round "$tool" podman "$r"; round "$tool" berth "$r"; fi
	done
done

# docker-compose's own start (Python, imports): in every step of both
base=()
for i in 1 2 3 4 5; do
	t0=${EPOCHREALTIME/./}; "$COMPOSE" version --short >/dev/null 2>&1; t1=${EPOCHREALTIME/./}
	base+=($(((t1 - t0) / 1000)))
done
base_ms=$(printf '%s\n' "${base[@]}" | sort -n | sed -n 3p)
log "docker-compose version: ${base_ms} ms (median of 5)"
left_b=$(B ps -aq | wc -l) left_p=$(P ps -aq | wc -l)
{
	echo "- before: $(cat "$RESDIR/info-before.md")"
	echo "- after: $(run_info --md)"
	echo
} >"$RESDIR/info.md"
"$PYTHON" - "$OUT" "$ROUNDS" "$bver" "$pver" "$cver" "$left_b" "$left_p" "$base_ms" >"$RESDIR/summary.md" <<'EOF'
import json, sys
path, rounds, bver, pver, cver, left_b, left_p, base = sys.argv[1:9]
base = float(base)
rows = [json.loads(l) for l in open(path)]
def stats(tool, impl, step):
    mine = [r for r in rows if r.get("compose", "v1") == tool and r["impl"] == impl and r["step"] == step]
    v = sorted(r["wall_ms"] for r in mine if r["rc"] == 0)
    fails = sum(1 for r in mine if r["rc"] != 0)
    def pct(q):
        if not v: return float("nan")
        p = (len(v) - 1) * q; lo = int(p); hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (p - lo)
    return dict(n=len(v), fails=fails, median=pct(.5), p10=pct(.1), p90=pct(.9))
def ratio(b, p):
    return b / p if p == p and p > 0 else float("nan")
names = {"v1": "docker-compose 1.29", "v2": "Compose v2"}
tools = [t for t in ("v1", "v2") if any(r.get("compose", "v1") == t for r in rows)]
print("# Compose up -d and down -v through the Docker API: berth vs Podman 4.3.1\n")
print(f"berth: {bver}; podman: {pver}; {cver}; {rounds} interleaved rounds; containers left: berth {left_b}, podman {left_p}\n")
print("| | median | p10 | p90 | runs ok | failed |")
print("|---|---|---|---|---|---|")
for tool in tools:
    for step in ("up", "down"):
        for impl in ("berth", "podman"):
            s = stats(tool, impl, step)
            flag = "-d" if step == "up" else "-v"
            print(f"| {names[tool]}: {impl} {step} {flag} | {s['median']:.0f} ms | {s['p10']:.0f} ms | {s['p90']:.0f} ms | {s['n']} | {s['fails']} |")
for tool in tools:
    for step in ("up", "down"):
        b, p = stats(tool, "berth", step)["median"], stats(tool, "podman", step)["median"]
        line = f"\n{names[tool]} {step}: ratio of medians berth / podman **{ratio(b, p):.3f}**"
        if tool == "v1":
            line += f"; without docker-compose's own start ({base:.0f} ms, `docker-compose version`) {ratio(b - base, p - base):.3f}"
        print(line)
EOF
cat "$RESDIR/info.md" "$RESDIR/summary.md" >"$RESDIR/summary.tmp" && mv "$RESDIR/summary.tmp" "$RESDIR/summary.md"
rm -f "$RESDIR/info.md" "$RESDIR/info-before.md"
cat "$RESDIR/summary.md"
log "results: $RESDIR"
