#!/usr/bin/env bash
# docker-api.sh - Docker's own clients, unmodified, driving berth through its
# Docker Engine API (`berth system service`): Debian's docker CLI (20.10),
# Debian's docker-compose (1.29, Python) and Docker Compose v2 (the Go
# rewrite, module github.com/docker/compose/v5, built at a pinned version by
# scripts/compose-v2.sh; as the docker CLI's `docker compose` plugin and
# standalone) with DOCKER_HOST on berth's socket.
#
# The sandbox is compose.sh's (seed-scenarios.sh's topology): the service
# runs in the <pfx>host namespace, an outside client in <pfx>out, in a
# private mount namespace with tmpfs over /run/containers/networks,
# /run/berth and /run/podman, and a temporary storage root (BERTH_ROOT; the
# network files' directory comes from CONTAINERS_CONF). Container subnets
# come from 198.19.0.0/16; the machine's own network is never touched.
# Images are built from busybox-static and imported with `berth import`, so
# nothing is pulled.
#
# Usage:  sudo test/acceptance/docker-api.sh
# Env:    ONLY     scenario numbers to run, space separated (default: all)
#         PFX      name prefix of namespaces, links and state (default bda)
#         BERTH    the berth binary (default bin/berth, built when missing)
#         DOCKER   the docker CLI (default /usr/bin/docker, Debian's docker.io)
#         COMPOSE  the docker-compose 1.x program (default docker-compose)
#         COMPOSE_V2  Compose v2 (default: built by scripts/compose-v2.sh)
#         LOG_DIR  log and results (default /var/tmp/<pfx>-docker-logs)
# Output: one "PASS name" / "FAIL name: reason" line per scenario, then the
#         plain line "N passed, M failed"; exit 0 only if M=0.
set -u -o pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export PATH=$PATH:/usr/sbin:/sbin

SELF=$(readlink -f "$0")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
PFX=${PFX:-bda}
LOG_DIR=${LOG_DIR:-/var/tmp/${PFX}-docker-logs}
_state=${STATE:-}
# The helpers (log, fail/ok/info, inh/ino, fetch, expect_banner, section,
# pids_in_netns, firewall_dump, topology_up) and the topology's names and
# addresses are seed-scenarios.sh's, sourced in its library mode.
# shellcheck source=test/acceptance/seed-scenarios.sh
_SEED_MODE=lib . "$(dirname "$SELF")/seed-scenarios.sh"
STATE=$_state RUN=$_state
NETCFG=$STATE/networks
export CONTAINERS_CONF=$STATE/containers.conf BERTH_ROOT=$STATE/root BERTH_RUNROOT=/run/berth
BERTH=${BERTH:-$TOP/bin/berth}
DOCKER=${DOCKER:-/usr/bin/docker}
COMPOSE=${COMPOSE:-docker-compose}
COMPOSE_V2=${COMPOSE_V2:-}
SOCK=$STATE/docker.sock
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$STATE/dockercfg COMPOSE_INTERACTIVE_NO_CLI=1
LOG=$LOG_DIR/docker-api.log
RESULTS=$LOG_DIR/results.tsv
ERRF=$LOG_DIR/.last-stderr
TIMEOUT=${BERTH_TIMEOUT:-120}
BANNER="Hello from berth"                   # scripts/mkbanner.sh's page
OUT_PAGE="outside-server-ok"                # served in the outside namespace
OUT_PORT=8081
PROJ=demo                                   # the project's directory name
PROJ_DIR=$STATE/$PROJ
# use_compose 1|2|plugin picks the compose C runs: docker-compose 1.x,
# Compose v2 standalone, or Compose v2 as the docker CLI's plugin (`docker
# compose`, from $DOCKER_CONFIG/cli-plugins); its flag for plain output,
# and its container names (demo_web_1, demo-web-1)
use_compose() {
	local sep=-
	case $1 in
	1) COMPOSE_CMD=("$COMPOSE" --no-ansi) sep=_ ;;
	2) COMPOSE_CMD=("$COMPOSE_V2" --ansi never) ;;
	plugin) COMPOSE_CMD=("$DOCKER" compose --ansi never) ;;
	esac
	WEB=$PROJ${sep}web${sep}1 DB=$PROJ${sep}db${sep}1 CLIENT=$PROJ${sep}client${sep}1
}
use_compose 1
VOL=${PROJ}_data NET_FRONT=${PROJ}_front NET_BACK=${PROJ}_back
BACK_SUBNET=198.19.20.0/24 DB_IP=198.19.20.10
HOST_PORT=8080

# B runs berth in the host namespace with the sandbox's directories; stdout
# is returned and logged, stderr goes to the log (and $ERRF).
B() {
	local o rc
	log "+ berth $*"
	o=$(timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- "$BERTH" "$@" 2>"$ERRF")
	rc=$?
	cat "$ERRF" >>"$LOG" 2>/dev/null
	[ -n "$o" ] && { printf '%s\n' "$o" >>"$LOG"; printf '%s\n' "$o"; }
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}

# D runs the docker CLI against berth's socket (in the host namespace, like
# a client on the container host); stdout is returned, stderr is logged.
D() {
	local o rc
	log "+ docker $*"
	o=$(timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- "$DOCKER" "$@" 2>"$ERRF")
	rc=$?
	cat "$ERRF" >>"$LOG" 2>/dev/null
	[ -n "$o" ] && { printf '%s\n' "$o" >>"$LOG"; printf '%s\n' "$o"; }
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}
derr() { grep -v '^$' "$ERRF" 2>/dev/null | tail -n 2 | tr '\n' ' ' | cut -c1-240; }

# C runs the chosen compose (use_compose) on the project; its output goes to
# the log and $ERRF.
C() {
	local rc
	log "+ ${COMPOSE_CMD[*]##*/} $*"
	(cd "$PROJ_DIR" && timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- "${COMPOSE_CMD[@]}" "$@") >"$ERRF" 2>&1
	rc=$?
	cat "$ERRF" >>"$LOG"
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}
cc() { # cc DESC ARGS...: docker-compose ARGS must succeed
	local d=$1; shift
	C "$@" && { ok "$d"; return 0; }
	fail "${COMPOSE_CMD[*]##*/} $d: $(derr)"; return 1
}

# wait_for DESC N CMD...: retries CMD every 0.1 s, N times
wait_for() {
	local d=$1 n=$2 i; shift 2
	for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# service_pid: the PID of berth's service
service_pid() { cat "$STATE/service.pid" 2>/dev/null; }
# leftover_procs: processes in the host namespace other than the service
leftover_procs() {
	local p sp; sp=$(service_pid)
	for p in $(pids_in_netns "$NS_HOST"); do
		[ "$p" = "$sp" ] && continue
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo
	done | grep -v '^$'
}

# no_leftovers DESC SUBNETS...: no containers, project networks, volumes,
# port or subnet rules, links or processes
no_leftovers() {
	local d=$1 out s i; shift
	out=$(D ps -aq)
	[ -z "$out" ] && ok "$d: no containers" || fail "$d: containers left: $(tr '\n' ' ' <<<"$out")"
	out=$(D network ls --format '{{.Name}}' | sort | tr '\n' ' ')
	[ "$out" = "host none podman " ] && ok "$d: networks host, none, podman" || fail "$d: networks left: $out"
	out=$(D volume ls -q)
	[ -z "$out" ] && ok "$d: no volumes" || fail "$d: volumes left: $(tr '\n' ' ' <<<"$out")"
	out=$(firewall_dump)
	grep -Eq "(tcp|udp) \. $HOST_PORT|dport $HOST_PORT" <<<"$out" && fail "$d: a port rule for $HOST_PORT is left" || ok "$d: no port rules"
	for s in "$@"; do
		grep -qF "$s" <<<"$out" && fail "$d: firewall rules for $s are left" || ok "$d: no rules for $s"
	done
	for i in $(seq 30); do
		out=$(inh ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vx -e lo -e "$IF_H_OUT" -e "$IF_H_LAN")
		[ -z "$out" ] && break
		sleep 0.1
	done
	[ -z "$out" ] && ok "$d: no links" || fail "$d: links left in the host namespace: $(tr '\n' ' ' <<<"$out")"
	for i in $(seq 50); do
		out=$(leftover_procs)
		[ -z "$out" ] && break
		sleep 0.1
	done
	[ -z "$out" ] && ok "$d: no processes" || fail "$d: processes left in the host namespace: $(tr '\n' ';' <<<"$out" | cut -c1-200)"
}

write_project() {
	mkdir -p "$PROJ_DIR"
	cat >"$PROJ_DIR/docker-compose.yml" <<EOF
version: "2.4"
services:
  # init: a SIGTERM ends the busybox programs at once (down, stop)
  # db: busybox httpd serving the named volume, on the internal network
  # only, at a fixed address and with an alias; healthy once its page is there
  db:
    image: localhost/busybox:latest
    init: true
    command: ["sh", "-c", "test -f /data/index.html || echo stored-page >/data/index.html; exec httpd -f -p 8000 -h /data"]
    networks:
      back:
        ipv4_address: $DB_IP
        aliases: [database]
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:8000/ | grep -q stored-page"]
      interval: 1s
      timeout: 2s
      retries: 30
  # web: the banner page, published, on both networks; starts once db is healthy
  web:
    image: localhost/banner:latest
    init: true
    networks:
      front:
        aliases: [www]
      back:
    ports:
      - "$HOST_PORT:80"
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:80/ >/dev/null"]
      interval: 1s
      retries: 30
  # client: a shell on the internal network only
  client:
    image: localhost/busybox:latest
    command: ["sleep", "100000"]
    init: true
    networks: [back]
    depends_on:
      web:
        condition: service_healthy
networks:
  front:
  back:
    internal: true
    ipam:
      config:
        - subnet: $BACK_SUBNET
volumes:
  data:
EOF
}

# ============================================================ scenarios ====

# --- 1: the docker CLI: run -p, networks, ps, logs -f, exec, inspect ------
s1_run() {
	local out id ip lpid i
	D network create --subnet 198.19.30.0/24 -o com.docker.network.bridge.name=bdafront front >/dev/null \
		&& ok "network create front" || { fail "docker network create: $(derr)"; return; }
	D network create back >/dev/null && ok "network create back" || { fail "docker network create back: $(derr)"; return; }
	out=$(D network ls --format '{{.Name}} {{.Driver}}' | sort | tr '\n' ' ')
	# berth's default network keeps its name (podman); "bridge" resolves to it
	[ "$out" = "back bridge front bridge host host none null podman bridge " ] && ok "network ls" || fail "docker network ls: '$out'"
	id=$(D run -d --name web --network front --network-alias www -p "$HOST_PORT:80" localhost/banner) \
		|| { fail "docker run -d -p: $(derr)"; return; }
	[ ${#id} = 64 ] && ok "run -d printed the ID" || fail "docker run -d printed '$id'"
	expect_banner "outside -> $HOST_IP:$HOST_PORT (docker run -p)" ino "http://$HOST_IP:$HOST_PORT/" \
		&& info "docker run -d -p: the page from the outside namespace"
	D network connect --alias api back web >/dev/null && ok "network connect" || fail "docker network connect: $(derr)"
	out=$(D network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}' back)
	ip=$(D inspect -f '{{.NetworkSettings.Networks.back.IPAddress}}' web)
	[ -n "$ip" ] && [ "$out" = "web $ip/24" ] && ok "network inspect lists web at $ip" || fail "docker network inspect back: '$out' (web's address '$ip')"
	out=$(D ps --format '{{.Names}}|{{.Image}}|{{.Ports}}|{{.Status}}')
	[[ $out == "web|localhost/banner|0.0.0.0:$HOST_PORT->80/tcp|Up "* ]] && ok "ps" || fail "docker ps: '$out'"
	out=$(D inspect -f '{{.State.Status}} {{.HostConfig.NetworkMode}} {{len .NetworkSettings.Networks}} {{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}} {{.Config.Image}}' web)
	[ "$out" = "running front 2 $HOST_PORT localhost/banner" ] && ok "inspect" || fail "docker inspect: '$out'"
	# exec: output, the exit code, and the resolver
	out=$(D exec web sh -c 'cat /etc/resolv.conf; echo exec-ok')
	grep -qx 'nameserver 127.0.0.11' <<<"$out" && grep -qx exec-ok <<<"$out" && ok "exec; resolv.conf names 127.0.0.11" \
		|| fail "docker exec: '$(tr '\n' ' ' <<<"$out")'"
	out=$(echo piped-in | D exec -i web cat)
	[ "$out" = piped-in ] && ok "exec -i: stdin to the process, ends at its EOF" || fail "docker exec -i with piped stdin: '$out'"
	D exec web sh -c 'exit 3'; i=$?
	[ $i = 3 ] && ok "exec's exit code" || fail "docker exec ... exit 3 returned $i"
	D run -d --name peer --network back localhost/busybox sleep 100000 >/dev/null || fail "docker run peer: $(derr)"
	out=$(D exec peer sh -c "$CFN get http://api/ && get http://web/")
	[ "$out" = "$BANNER"$'\n'"$BANNER" ] && info "exec in a second container: web by its alias and name through 127.0.0.11" \
		|| fail "peer -> web by alias api and by name: '$out'"
	# exec -it: a terminal, through script(1)'s pty
	out=$(cd "$STATE" && timeout 30 script -qec "nsenter --net=/run/netns/$NS_HOST -- $DOCKER exec -it web sh -c 'test -t 0 && test -t 1 && echo tty-ok'" /dev/null </dev/null 2>>"$LOG" | tr -d '\r')
	# At its stdin's end script(1) writes ^D to its terminal, still in
	# canonical mode, which keeps it as a NUL end-of-file mark; docker's
	# switch to raw mode makes that NUL readable and the CLI sends it. The
	# container's terminal echoes it as ^@ (as with Podman's service); one
	# at most, berth's own exec terminal being raw from the start.
	grep -qE '^(\^@)?tty-ok$' <<<"$out" && ok "exec -it gets a terminal" || fail "docker exec -it under script: '$(tr '\n' ' ' <<<"$out" | cut -c1-120)'"
	# save, load, history: an image through an archive and back, same ID
	D tag localhost/busybox localhost/bbsave:1 && D save -o "$STATE/bbsave.tar" localhost/bbsave:1 && D rmi localhost/bbsave:1 >/dev/null \
		&& out=$(D load -i "$STATE/bbsave.tar") && [ "$out" = "Loaded image: localhost/bbsave:1" ] \
		&& [ "$(D inspect -f '{{.Id}}' localhost/bbsave:1)" = "$(D inspect -f '{{.Id}}' localhost/busybox)" ] \
		&& ok "save, rmi, load: the same image back" || fail "docker save/load: '${out:-}' $(derr)"
	out=$(D history --format '{{.CreatedBy}}|{{.Size}}' localhost/bbsave:1 | tail -1)
	[ -n "$out" ] && [ "${out##*|}" != 0B ] && ok "history: the import step with its layer's size" || fail "docker history: '$out' $(derr)"
	D rmi localhost/bbsave:1 >/dev/null || fail "docker rmi bbsave: $(derr)"
	# logs -f: the outside client's line as it comes; ends when web stops
	(exec timeout -k 2 60 nsenter --net="/run/netns/$NS_HOST" -- "$DOCKER" logs -f web) >"$STATE/follow.out" 2>&1 &
	lpid=$!
	sleep 1
	expect_banner "outside -> :$HOST_PORT while logs -f runs" ino "http://$HOST_IP:$HOST_PORT/"
	D stop -t 1 web >/dev/null || fail "docker stop: $(derr)"
	for i in $(seq 100); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$lpid" 2>/dev/null; then
		fail "logs -f still runs 10 s after web stopped"; kill "$lpid" 2>/dev/null
	else
		grep -q "$OUT_IP" "$STATE/follow.out" && ok "logs -f: the outside client's line; ended when web stopped" \
			|| fail "logs -f output: $(tail -3 "$STATE/follow.out" | tr '\n' ' ')"
	fi
	wait "$lpid" 2>/dev/null
	cat "$STATE/follow.out" >>"$LOG"
	# httpd -v logs to stderr: docker logs writes those lines to its stderr
	D logs web >/dev/null; out=$(grep -c "$OUT_IP" "$ERRF")
	[ "${out:-0}" -ge 2 ] && ok "logs" || fail "docker logs: $out lines of $OUT_IP"
	out=$(D inspect -f '{{.State.Status}}' web)
	[ "$out" = exited ] && ok "stopped" || fail "web after docker stop: '$out'"
	D rm -f web peer >/dev/null || fail "docker rm: $(derr)"
	D network rm front back >/dev/null && ok "network rm" || fail "docker network rm: $(derr)"
	no_leftovers "after rm" 198.19.30.0/24
	info "docker CLI: network create/connect/inspect/ls/rm, run -d -p, ps, logs -f, exec (-it), inspect, save/load/history"
}
s1_cleanup() { D rm -f web peer; D network rm front back; }

# --- 2: docker-compose up -d: ports, names, aliases, fixed address, health -
s2_run() {
	local out ip
	cc "up -d" up -d || return
	# depends_on service_healthy: web after db healthy, client after web
	out=$(D inspect -f '{{.Name}} {{.State.Health.Status}}' "$DB" "$WEB" | tr '\n' ' ')
	[ "$out" = "/$DB healthy /$WEB healthy " ] && ok "db and web healthy" || fail "health after up: '$out'"
	out=$(D inspect -f '{{.State.StartedAt}}' "$DB" "$WEB" "$CLIENT" | tr '\n' ' ')
	read -r a b c <<<"$out"
	[[ "$a" < "$b" && "$b" < "$c" ]] && ok "started in dependency order" || fail "start times db/web/client: $out"
	cc ps ps && { grep -q "$WEB .*Up.*(healthy).*0.0.0.0:$HOST_PORT->80/tcp" "$ERRF" && grep -q "$DB .*Up.*(healthy)" "$ERRF" && grep -q "$CLIENT .*Up" "$ERRF" \
		&& ok "ps lists the three" || fail "docker-compose ps: $(tr '\n' ' ' <"$ERRF" | cut -c1-300)"; }
	expect_banner "outside -> $HOST_IP:$HOST_PORT (web's published port)" ino "http://$HOST_IP:$HOST_PORT/" \
		&& info "the page through the published port from the outside namespace"
	ip=$(D inspect -f "{{(index .NetworkSettings.Networks \"$NET_BACK\").IPAddress}}" "$DB")
	out=$(cexec "$DB" 'ip -4 -o addr show eth0' | awk '{print $4}')
	[ "$ip" = "$DB_IP" ] && [ "$out" = "$DB_IP/24" ] && info "db has its fixed address $DB_IP" \
		|| fail "db's address: inspect '$ip', eth0 '$out', want $DB_IP"
	out=$(cexec "$CLIENT" "$CFN cat /etc/resolv.conf; echo @@1; get http://db:8000/; echo @@2; get http://database:8000/; echo @@3; get http://web/; echo @@4; get http://$DB:8000/; echo @@5; nslookup database")
	grep -qx 'nameserver 127.0.0.11' <<<"$out" && ok "client's resolver is 127.0.0.11" || fail "client's resolv.conf: $(head -3 <<<"$out" | tr '\n' ' ')"
	[ "$(section "$out" 1)" = stored-page ] && [ "$(section "$out" 2)" = stored-page ] && [ "$(section "$out" 4)" = stored-page ] \
		&& ok "client -> db by service name, alias and container name" \
		|| fail "client -> db: '$(section "$out" 1)' / '$(section "$out" 2)' / '$(section "$out" 4)'"
	[ "$(section "$out" 3)" = "$BANNER" ] && ok "client -> web by name" || fail "client -> web: '$(section "$out" 3)'"
	grep -q "Address: $DB_IP" <<<"$(section "$out" 5)" && grep -q '127.0.0.11' <<<"$(section "$out" 5)" \
		&& info "service to service by name and alias through 127.0.0.11" || fail "nslookup database: $(section "$out" 5 | tr '\n' ' ')"
	out=$(cexec "$WEB" "$CFN get http://www/ && get http://db:8000/")
	[ "$out" = "$BANNER"$'\n'stored-page ] && ok "web -> itself by alias www on front, db on back" || fail "web -> www / db: '$out'"
	# the internal network has no way out; front has
	out=$(cexec "$WEB" "$CFN get http://$OUT_IP:$OUT_PORT/")
	[ "$out" = "$OUT_PAGE" ] && ok "web (front) reaches the outside" || fail "web -> outside: '$out'"
	out=$(cexec "$CLIENT" "timeout 3 wget -qO- http://$OUT_IP:$OUT_PORT/ || echo no-way-out; timeout 3 wget -qO- http://$HOST_IP:$HOST_PORT/ || echo no-host; ip route | grep -c default")
	[ "$out" = $'no-way-out\nno-host\n0' ] && info "the internal network has no way out (no default route, outside and host unreachable)" \
		|| fail "client on the internal network: '$(tr '\n' ' ' <<<"$out")'"
	out=$(D network inspect -f '{{.Internal}} {{(index .IPAM.Config 0).Subnet}} {{index .Labels "com.docker.compose.network"}}' "$NET_BACK")
	[ "$out" = "true $BACK_SUBNET back" ] && ok "network inspect: internal, subnet, label" || fail "docker network inspect $NET_BACK: '$out'"
	cc "logs web" logs web && { grep -q "$OUT_IP" "$ERRF" && ok "web's log has the outside client" || fail "docker-compose logs web lacks $OUT_IP: $(tail -3 "$ERRF" | tr '\n' ' ')"; }
	cc "exec -T" exec -T db sh -c 'echo exec-ok $(hostname)' && { grep -qx "exec-ok [0-9a-f]\{12\}" "$ERRF" && ok "exec output" || fail "docker-compose exec output: $(tr '\n' ' ' <"$ERRF")"; }
	cc "exec -T -e -u -w" exec -T -e X=1 -u nobody -w /tmp db sh -c 'echo $X $(id -u) $PWD' \
		&& { grep -qx "1 65534 /tmp" "$ERRF" && ok "exec -e -u -w" || fail "docker-compose exec -e -u -w: $(tr '\n' ' ' <"$ERRF")"; }
}
s2_cleanup() { C down -v; }
cexec() { D exec "$1" sh -c "$2"; }

# --- 3: the named volume survives down and up; down -v leaves nothing -----
s3_run() {
	local out
	cc "up -d" up -d || return
	out=$(D volume inspect -f '{{.Name}} {{index .Labels "com.docker.compose.volume"}}' "$VOL")
	[ "$out" = "$VOL data" ] && ok "volume $VOL labelled" || fail "docker volume inspect $VOL: '$out'"
	cexec "$DB" 'echo kept-across-down >/data/keep.txt' >/dev/null || { fail "write to the volume: $(derr)"; return; }
	cc down down || return
	out=$(D ps -aq)
	[ -z "$out" ] && ok "down: no containers" || fail "containers after down: $out"
	D volume inspect "$VOL" >/dev/null && ok "volume kept by down" || { fail "down removed volume $VOL"; return; }
	cc "up -d again" up -d || return
	out=$(cexec "$CLIENT" "$CFN get http://db:8000/keep.txt")
	[ "$out" = kept-across-down ] && info "the volume's data survives down and up" || fail "after down and up: '$out', want kept-across-down"
	expect_banner "outside -> :$HOST_PORT after up again" ino "http://$HOST_IP:$HOST_PORT/"
	local subnets
	subnets=$(D network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$NET_FRONT" "$NET_BACK" | tr '\n' ' ')
	cc "down -v" down -v || return
	D volume inspect "$VOL" >/dev/null 2>&1 && fail "down -v left volume $VOL" || ok "down -v removed the volume"
	expect_unreachable "outside -> :$HOST_PORT after down -v" ino "http://$HOST_IP:$HOST_PORT/"
	# shellcheck disable=SC2086
	no_leftovers "after down -v" $subnets
	info "down -v: no containers, networks, volumes, rules, links or processes"
}
s3_cleanup() { C down -v; }

# --- 4, 5: the same with Compose v2, as `docker compose` and standalone ---
s4_run() { use_compose plugin; s2_run; }
s4_cleanup() { C down -v; use_compose 1; }
s5_run() { use_compose 2; s3_run; }
s5_cleanup() { C down -v; use_compose 1; }

# --- 6, 7: build: docker-compose 1.29, then Compose v2, build a service -----
# image through POST /build (the classic builder; no buildx here)
build_project() {
	PROJ_DIR=$STATE/buildproj
	mkdir -p "$PROJ_DIR/app"
	printf 'FROM localhost/busybox:latest\nARG WHO=nobody\nCOPY msg.txt /msg.txt\nRUN echo "built for $WHO" >>/msg.txt\nCMD ["cat", "/msg.txt"]\n' >"$PROJ_DIR/app/Dockerfile"
	echo from-context >"$PROJ_DIR/app/msg.txt"
	cat >"$PROJ_DIR/docker-compose.yml" <<EOF
version: "2.4"
services:
  app:
    build:
      context: ./app
      args: {WHO: compose}
    image: localhost/built:compose
    network_mode: none
EOF
}
s6_run() {
	local out id proj=$PROJ_DIR
	build_project
	# docker-py's classic build, not the docker CLI's; Compose v2 without buildx
	export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
	cc build build && { grep -q "Successfully tagged localhost/built:compose" "$ERRF" || [ "${COMPOSE_CMD[0]}" = "$COMPOSE_V2" ]; } \
		&& ok "build output" || fail "${COMPOSE_CMD[0]##*/} build output: $(derr)"
	out=$(D run --rm --network none localhost/built:compose | tr '\n' ' ')
	[ "$out" = "from-context built for compose " ] && ok "the built image runs" || fail "the built image printed '$out'"
	id=$(D image inspect -f '{{.Id}}' localhost/built:compose)
	cc "build again" build && [ "$(D image inspect -f '{{.Id}}' localhost/built:compose)" = "$id" ] \
		&& ok "rebuild from the cache: the same image" || fail "the rebuild made another image: $(derr)"
	unset COMPOSE_DOCKER_CLI_BUILD DOCKER_BUILDKIT
	PROJ_DIR=$proj
}
s6_cleanup() { D rmi -f localhost/built:compose >/dev/null; }
s7_run() { use_compose 2; s6_run; }
s7_cleanup() { s6_cleanup; use_compose 1; }

SCEN_NAMES=([1]=docker-cli [2]=compose-up [3]=compose-down [4]=docker-compose-plugin-up [5]=compose-v2-down [6]=compose-build [7]=compose-v2-build)

# ====================================================== inner (mount ns) ===
import_images() {
	"$TOP/scripts/mkbanner.sh" "$BERTH" banner >>"$LOG" 2>&1 || return 1
	"$TOP/scripts/mkbusybox.sh" "$STATE/bbroot" "$STATE/busybox.tar" || return 1
	B import -q --change 'CMD ["sh"]' "$STATE/busybox.tar" busybox >/dev/null
}

service_start() {
	nsenter --net="/run/netns/$NS_HOST" -- "$BERTH" --log-level debug system service --time 0 "unix://$SOCK" >>"$STATE/service.log" 2>&1 &
	echo $! >"$STATE/service.pid"
	wait_for "the service's socket" 100 test -S "$SOCK"
}
service_stop() {
	local p i; p=$(service_pid)
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null
	for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$p" 2>/dev/null
	rm -f "$STATE/service.pid"
}

inner_cleanup() {
	set +e
	log ""; log "===== inner cleanup ====="
	if [ -d "$PROJ_DIR" ] && [ -S "$SOCK" ]; then
		use_compose 1; C down -v >/dev/null
		use_compose 2; C down -v >/dev/null
	fi
	service_stop
	cat "$STATE/service.log" >>"$LOG" 2>/dev/null
	B rm -af >/dev/null
	B system reset --force >/dev/null
}

inner_main() {
	trap inner_cleanup EXIT
	trap 'exit 130' INT TERM
	private_run_dirs /run/containers/networks /run/berth /run/podman || { say "FATAL: tmpfs over /run/containers/networks, /run/berth, /run/podman"; exit 1; }
	printf 'nameserver %s\n' "$OUT_IP" >"$STATE/resolv.conf"
	mount --bind "$STATE/resolv.conf" /etc/resolv.conf || { say "FATAL: bind /etc/resolv.conf"; exit 1; }
	mkdir -p "$NETCFG" "$DOCKER_CONFIG/cli-plugins"
	cp "$COMPOSE_V2" "$DOCKER_CONFIG/cli-plugins/docker-compose"
	cat >"$CONTAINERS_CONF" <<EOF
[network]
network_backend = "netavark"
network_config_dir = "$NETCFG"
default_subnet = "198.19.0.0/24"
default_subnet_pools = [{base = "198.19.0.0/16", size = 24}]
EOF
	import_images || { say "FATAL: could not build the images (see $LOG)"; exit 1; }
	service_start || { say "FATAL: berth system service did not start (see $LOG)"; exit 1; }
	# a page in the outside namespace, for the "way out" checks
	mkdir -p "$STATE/outwww" && echo "$OUT_PAGE" >"$STATE/outwww/index.html"
	ino busybox httpd -p "$OUT_IP:$OUT_PORT" -h "$STATE/outwww" || { say "FATAL: outside httpd"; exit 1; }
	write_project
	local id
	for id in 1 2 3 4 5 6 7; do run_named_scenario "$id"; done
}

# ============================================================ outer ========
outer_cleanup() { # idempotent: also removes what a killed run left
	local n p
	for n in "$NS_HOST" "$NS_OUT" "$NS_LAN"; do
		for p in $(pids_in_netns "$n"); do log "  killing leftover pid $p in $n: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; kill "$p" 2>/dev/null; done
	done
	sleep 0.2
	for n in "$NS_HOST" "$NS_OUT" "$NS_LAN"; do
		for p in $(pids_in_netns "$n"); do kill -9 "$p" 2>/dev/null; done
		[ -e "/run/netns/$n" ] && ip netns del "$n" 2>>"$LOG"
	done
	for p in /var/tmp/"$PFX"-docker.*; do [ -d "$p" ] && remove_made_dirs "$p" && rm -rf "$p"; done
	return 0
}

outer_main() {
	[ "$(id -u)" = 0 ] || { echo "docker-api.sh: run as root (it creates network namespaces)" >&2; exit 2; }
	local c
	for c in nsenter unshare ip nft jq curl timeout tar script runc busybox "$DOCKER" "$COMPOSE"; do
		command -v "$c" >/dev/null || { echo "docker-api.sh: missing required command: $c" >&2; exit 2; }
	done
	[ -x "$BERTH" ] || make -C "$TOP" -s >/dev/null || { echo "docker-api.sh: could not build $BERTH" >&2; exit 2; }
	[ -n "$COMPOSE_V2" ] || COMPOSE_V2=$("$TOP/scripts/compose-v2.sh") || { echo "docker-api.sh: could not build Compose v2 (scripts/compose-v2.sh)" >&2; exit 2; }
	export COMPOSE_V2
	mkdir -p "$LOG_DIR"
	exec 9>"/run/lock/${PFX}-docker.lock"
	flock -n 9 || { echo "docker-api.sh: another run with PFX=$PFX is active" >&2; exit 2; }
	: >"$LOG"; : >"$RESULTS"
	local t0 rc
	t0=$(now)
	log "docker-api.sh: $("$BERTH" version 2>&1 | head -n1), $("$DOCKER" --version), $("$COMPOSE" version --short 2>/dev/null), Compose $("$COMPOSE_V2" version --short 2>/dev/null), kernel $(uname -r)"
	outer_cleanup
	trap 'outer_cleanup; exit 130' INT TERM
	topology_up || { say "FATAL: could not create the namespaces"; outer_cleanup; exit 2; }
	STATE=$(mktemp -d "/var/tmp/${PFX}-docker.XXXXXX")
	chmod 755 "$STATE"
	# daemons and monitors must not inherit the lock
	STATE=$STATE _DOCKER_MODE=inner unshare --mount --propagation private -- bash "$SELF" 9>&-
	rc=$?
	outer_cleanup
	tally_results docker-api "$rc" "$t0"
}

case ${_DOCKER_MODE:-outer} in
inner) inner_main ;;
*) outer_main ;;
esac
