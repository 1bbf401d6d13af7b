#!/usr/bin/env bash
# compose.sh - Debian's podman-compose (1.0.3, unmodified) driving berth:
# `podman-compose --podman-path bin/berth ...` on a small project of two
# services on two networks, with a published port, a named volume,
# depends_on, an env_file and restart policies.
#
# The sandbox is guide.sh's (seed-scenarios.sh's topology): berth runs in the
# <pfx>host namespace, an outside client in <pfx>out, in a private mount
# namespace with tmpfs over /run/containers/networks, /run/berth and
# /run/podman, and a temporary storage root (BERTH_ROOT; the network files'
# directory comes from CONTAINERS_CONF). podman-compose is given only
# --podman-path. Container subnets come from 198.19.0.0/16; the machine's own
# network is never touched.
#
# Usage:  sudo test/acceptance/compose.sh
# Env:    ONLY     scenario numbers to run, space separated (default: all)
#         PFX      name prefix of namespaces, links and state (default bcp)
#         BERTH    the berth binary (default bin/berth, built when missing)
#         COMPOSE  the podman-compose program (default podman-compose)
#         LOG_DIR  log and results (default /var/tmp/<pfx>-compose-logs)
# Output: one "PASS name" / "FAIL name: reason" line per scenario, then the
#         plain line "N passed, M failed"; exit 0 only if M=0.
set -u -o pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export PATH=$PATH:/usr/sbin:/sbin

SELF=$(readlink -f "$0")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
PFX=${PFX:-bcp}
LOG_DIR=${LOG_DIR:-/var/tmp/${PFX}-compose-logs}
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
COMPOSE=${COMPOSE:-podman-compose}
LOG=$LOG_DIR/compose.log
RESULTS=$LOG_DIR/results.tsv
ERRF=$LOG_DIR/.last-stderr
TIMEOUT=${BERTH_TIMEOUT:-120}
BANNER="Hello from berth"                   # scripts/mkbanner.sh's page
PROJ=demo                                   # the project's directory name
PROJ_DIR=$STATE/$PROJ
WEB=${PROJ}_web_1 STORE=${PROJ}_store_1     # podman-compose's container names
VOL=${PROJ}_data NET_FRONT=${PROJ}_front NET_BACK=${PROJ}_back
HOST_PORT=8080
S_SKIP=""

# B runs berth in the host namespace with the sandbox's directories (from the
# environment, as podman-compose's calls get them); stdout is returned and
# logged, stderr goes to the log (and $ERRF).
B() {
	local o rc
	log "+ [$(date +%T.%N | cut -c1-12)] berth $*"
	o=$(timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- "$BERTH" "$@" 2>"$ERRF")
	rc=$?
	cat "$ERRF" >>"$LOG" 2>/dev/null
	[ -n "$o" ] && { printf '%s\n' "$o" >>"$LOG"; printf '%s\n' "$o"; }
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}

# C runs podman-compose on the project in the host namespace; its output
# (every podman command it runs, and theirs) goes to the log and to $ERRF.
C() {
	local rc
	log "+ [$(date +%T.%N | cut -c1-12)] podman-compose $*"
	(cd "$PROJ_DIR" && timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- \
		"$COMPOSE" --podman-path "$BERTH" "$@") >"$ERRF" 2>&1
	rc=$?
	cat "$ERRF" >>"$LOG"
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}
# compose_err: podman-compose's failing lines (it goes on after a failed
# podman command; "exit code: N" follows each)
compose_err() { grep -m1 -B2 'exit code: [1-9]\|Traceback' "$ERRF" | tr '\n' ' ' | cut -c1-240; }
# compose_failed: did any podman command of the last C call fail?
compose_failed() { grep -q 'exit code: [1-9]\|Traceback' "$ERRF"; }

# up: podman-compose up -d, which must run every podman command without error
up() {
	C up -d || { fail "podman-compose up -d failed: $(compose_err)"; return 1; }
	! compose_failed || { fail "podman-compose up -d: a podman command failed: $(compose_err)"; return 1; }
	ok "up -d"
}
down() { # down [-v]
	C down "$@" || { fail "podman-compose down $*: $(compose_err)"; return 1; }
	! compose_failed || { fail "podman-compose down $*: a podman command failed: $(compose_err)"; return 1; }
	ok "down $*"
}

# cexec CTR SCRIPT: a shell script in a running container
cexec() { B exec "$1" sh -c "$2"; }

project_names() { B ps -a --filter "label=io.podman.compose.project=$PROJ" --format '{{.Names}}' | sort | tr '\n' ' '; }

write_project() {
	mkdir -p "$PROJ_DIR"
	cat >"$PROJ_DIR/docker-compose.yml" <<'EOF'
version: "3"
services:
  # store: busybox httpd serving the named volume on the back network only
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
    annotations: ["org.example/tier=backend"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/index.html"]
      interval: 1s
      retries: 1
  # web: the banner page, published, on both networks; starts after store
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
	printf '# read by podman-compose, passed as --env-file\nSTORE_GREETING=hello from the env file\nSTORE_LEVEL=3\n' >"$PROJ_DIR/store.env"
}

# ============================================================ scenarios ====

# --- 1: up -d: ports, names, aliases, networks, env file, ps ---------------
s1_run() {
	local out ips i
	up || return
	# depends_on: store is created (and started) before web
	out=$(grep -o "run --name=[^ ]*" "$ERRF" | tr '\n' ' ')
	[ "$out" = "run --name=$STORE run --name=$WEB " ] && ok "store started before web" || fail "start order: '$out'"
	out=$(project_names)
	[ "$out" = "$STORE $WEB " ] && ok "berth ps --filter label=...project lists both" || fail "project containers: '$out', want '$STORE $WEB'"
	C ps || fail "podman-compose ps failed: $(compose_err)"
	grep -q "$WEB" "$ERRF" && grep -q "$STORE" "$ERRF" && grep -q "0.0.0.0:$HOST_PORT->80/tcp" "$ERRF" \
		&& ok "podman-compose ps" || fail "podman-compose ps lacks the containers or the port: $(tr '\n' ' ' <"$ERRF" | cut -c1-200)"
	C ps -q || fail "podman-compose ps -q failed"
	[ "$(grep -Ec '^[0-9a-f]{12}$' "$ERRF")" = 2 ] && ok "podman-compose ps -q: two IDs" || fail "podman-compose ps -q: $(tr '\n' ' ' <"$ERRF" | cut -c1-200)"
	# the published port, from outside
	expect_banner "outside -> $HOST_IP:$HOST_PORT (web's published port)" ino "http://$HOST_IP:$HOST_PORT/" \
		&& info "outside got web's page through $HOST_IP:$HOST_PORT"
	# networks: web on both, store on back only, labelled by podman-compose
	out=$(B inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$WEB")
	[ "$out" = "$NET_BACK $NET_FRONT " ] && ok "web on both networks" || fail "web's networks: '$out'"
	out=$(B inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$STORE")
	[ "$out" = "$NET_BACK " ] && ok "store on back only" || fail "store's networks: '$out'"
	out=$(B network inspect "$NET_FRONT" | jq -r '.[0].labels["io.podman.compose.project"]')
	[ "$out" = "$PROJ" ] && ok "network label" || fail "network $NET_FRONT's compose label: '$out'"
	# service to service on the shared network, by container name and by
	# the service name (podman-compose's --network-alias)
	# the healthcheck (every second) fails until the page is there
	for i in $(seq 50); do
		out=$(B inspect -f '{{.State.Health.Status}}' "$STORE")
		[ "$out" = unhealthy ] && break
		sleep 0.1
	done
	[ "$out" = unhealthy ] && ok "healthcheck: unhealthy without the page" || fail "store's health without the page: '$out'"
	cexec "$STORE" 'echo stored-page >/data/index.html' >/dev/null || fail "write to the volume: $(last_err)"
	for i in $(seq 50); do
		out=$(B inspect -f '{{.State.Health.Status}}' "$STORE")
		[ "$out" = healthy ] && break
		sleep 0.1
	done
	[ "$out" = healthy ] && ok "healthcheck: healthy with the page" || fail "store's health with the page: '$out'"
	out=$(cexec "$WEB" "$CFN echo @@1; get http://$STORE:8000/; echo @@2; get http://store:8000/; echo @@3; nslookup store")
	[ "$(section "$out" 1)" = stored-page ] && ok "web -> $STORE by name" || fail "web -> http://$STORE:8000/: '$(section "$out" 1)'"
	[ "$(section "$out" 2)" = stored-page ] && ok "web -> store by alias" || fail "web -> http://store:8000/ (alias): '$(section "$out" 2)'"
	ips=$(B inspect -f "{{(index .NetworkSettings.Networks \"$NET_BACK\").IPAddress}}" "$STORE")
	grep -q "Address: $ips" <<<"$(section "$out" 3)" && info "web reached store by name and by alias ($ips)" \
		|| fail "alias store does not resolve to $ips: $(section "$out" 3 | tr '\n' ' ')"
	out=$(cexec "$STORE" "$CFN echo @@1; get http://web/; echo @@2; get http://$WEB/")
	[ "$(section "$out" 1)" = "$BANNER" ] && [ "$(section "$out" 2)" = "$BANNER" ] && ok "store -> web by alias and name" \
		|| fail "store -> web: '$(section "$out" 1)' / '$(section "$out" 2)'"
	# the env file (and environment:) in store's environment
	out=$(cexec "$STORE" env)
	grep -qx 'STORE_GREETING=hello from the env file' <<<"$out" && grep -qx STORE_LEVEL=3 <<<"$out" && grep -qx STORE_ROLE=backend <<<"$out" \
		&& info "env_file and environment values in store's environment" || fail "store's environment lacks the env file's values: $(grep STORE <<<"$out" | tr '\n' ' ')"
	out=$(cexec "$STORE" 'df -k /dev/shm' | awk 'NR == 2 {print $2}')
	[ "$out" = 98304 ] && ok "shm_size: /dev/shm of 96m" || fail "store's /dev/shm has $out KiB, want 98304 (shm_size: 96m)"
	out=$(B inspect -f '{{index .Config.Annotations "org.example/tier"}}' "$STORE")
	[ "$out" = backend ] && ok "annotations" || fail "store's annotation org.example/tier: '$out'"
	out=$(B inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$STORE")
	[ "$out" = unless-stopped ] && ok "restart policy unless-stopped" || fail "store's restart policy: '$out'"
}
s1_cleanup() { C down -v; }

# --- 2: the named volume outlives down and up; down -v removes it ----------
s2_run() {
	local out
	up || return
	out=$(B volume inspect "$VOL" | jq -r '.[0].Labels["io.podman.compose.project"]')
	[ "$out" = "$PROJ" ] && ok "volume $VOL labelled" || fail "volume $VOL's compose label: '$out'"
	cexec "$STORE" 'echo kept-across-down >/data/keep.txt' >/dev/null || { fail "write to the volume: $(last_err)"; return; }
	down || return
	B volume exists "$VOL" && ok "volume kept by down" || { fail "down removed volume $VOL"; return; }
	up || return
	out=$(cexec "$WEB" "$CFN get http://store:8000/keep.txt")
	[ "$out" = kept-across-down ] && info "data written before down served after up" || fail "after down and up: '$out', want kept-across-down"
	down -v || return
	B volume exists "$VOL" && fail "down -v left volume $VOL" || ok "down -v removed the volume"
}
s2_cleanup() { C down -v; }

# --- 3: restart policies: a killed service comes back ----------------------
s3_run() {
	local pid npid i st out
	up || return
	cexec "$STORE" 'echo stored-page >/data/index.html' >/dev/null || fail "write to the volume: $(last_err)"
	pid=$(B inspect -f '{{.State.Pid}}' "$STORE")
	[ "${pid:-0}" -gt 0 ] || { fail "store's pid: '$pid'"; return; }
	kill -9 "$pid"
	for i in $(seq 100); do
		npid=$(B inspect -f '{{.State.Pid}}' "$STORE" 2>/dev/null)
		st=$(B inspect -f '{{.State.Status}}' "$STORE" 2>/dev/null)
		[ "$st" = running ] && [ "${npid:-0}" -gt 0 ] && [ "$npid" != "$pid" ] && break
		sleep 0.1
	done
	[ "$st" = running ] && [ "$npid" != "$pid" ] && info "store (restart: unless-stopped) came back after SIGKILL (pid $pid -> $npid)" \
		|| { fail "store did not restart after SIGKILL: status '$st', pid '$npid'"; return; }
	out=$(cexec "$WEB" "$CFN get http://store:8000/")
	[ "$out" = stored-page ] && ok "store reachable by alias after the restart" || fail "store not reachable after the restart: '$out'"
}
s3_cleanup() { C down -v; }

# --- 4: down leaves nothing: containers, networks, rules, processes --------
s4_run() {
	local out i subnets s
	up || return
	expect_banner "outside -> :$HOST_PORT before down" ino "http://$HOST_IP:$HOST_PORT/" || return
	subnets=$(B network inspect "$NET_FRONT" "$NET_BACK" | jq -r '.[].subnets[].subnet')
	[ -n "$subnets" ] || { fail "no subnets for the project's networks"; return; }
	down || return
	out=$(B ps -a --format '{{.Names}}')
	[ -z "$out" ] && ok "no containers" || fail "containers left: $(tr '\n' ' ' <<<"$out")"
	[ -z "$(B pod ps -q)" ] && ok "no pods" || fail "pods left"
	# podman-compose 1.0.3's down removes no network (with Podman alike):
	# the project's networks stay, with nothing of them in the kernel
	out=$(B network ls --format '{{.Name}}' | sort | tr '\n' ' ')
	[ "$out" = "$NET_BACK $NET_FRONT podman " ] && ok "networks: the project's two and podman" || fail "networks after down: $out"
	expect_unreachable "outside -> :$HOST_PORT after down" ino "http://$HOST_IP:$HOST_PORT/"
	out=$(firewall_dump)
	grep -Eq "(tcp|udp) \. $HOST_PORT|dport $HOST_PORT" <<<"$out" && fail "a port rule for $HOST_PORT is left" || ok "no port rules"
	for s in $subnets; do
		grep -qF "$s" <<<"$out" && fail "firewall rules for $s are left" || ok "no rules for $s"
	done
	# links go at once or within moments (retired veths are reaped)
	for i in $(seq 20); do
		out=$(inh ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vx -e lo -e "$IF_H_OUT" -e "$IF_H_LAN")
		[ -z "$out" ] && break
		sleep 0.1
	done
	[ -z "$out" ] && ok "no links left" || fail "links left in the host namespace: $(tr '\n' ' ' <<<"$out")"
	# the DNS server and the firewall watcher end with the last container
	for i in $(seq 50); do
		out=$(for p in $(pids_in_netns "$NS_HOST"); do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo; done | grep -v '^$')
		[ -z "$out" ] && break
		sleep 0.1
	done
	[ -z "$out" ] && ok "no processes left" || fail "processes left in the host namespace: $(tr '\n' ';' <<<"$out" | cut -c1-200)"
	B volume exists "$VOL" && ok "down kept the volume" || fail "down removed the volume"
	C down -v
	B volume exists "$VOL" && fail "down -v left the volume" || ok "down -v removed the volume"
	B network rm "$NET_FRONT" "$NET_BACK" >/dev/null || fail "berth network rm of the project's networks: $(last_err)"
	info "down: no containers, pods, rules, links or processes (the networks stay, unused); down -v: no volume"
}
s4_cleanup() { C down -v; B network rm -f "$NET_FRONT" "$NET_BACK"; }

# --- 5: the other commands: logs, stop/start/restart, exec, run, up attached
# cc DESC ARGS...: podman-compose ARGS, every podman command of which must
# succeed; its output is in $ERRF
cc() {
	local d=$1; shift
	C "$@" && ! compose_failed && { ok "$d"; return 0; }
	fail "$d: $(compose_err)"; return 1
}
# has_line TEXT: a line of the last output (run gives the service a
# terminal, --tty: its lines end in CR LF)
has_line() { tr -d '\r' <"$ERRF" | grep -qxF -- "$1"; }
s5_run() {
	local out
	up || return
	expect_banner "outside -> :$HOST_PORT (a line in web's log)" ino "http://$HOST_IP:$HOST_PORT/" || return
	cc "logs web" logs web && { grep -q "$OUT_IP" "$ERRF" && ok "web's log has the outside client" || fail "logs web lacks $OUT_IP: $(tail -3 "$ERRF" | tr '\n' ' ')"; }
	# every service: podman logs with two containers (their IDs before each line)
	cc "logs" logs && { grep -Eq "^[0-9a-f]{12} .*$OUT_IP" "$ERRF" && ok "logs of both, each line after its container's ID" || fail "logs of two containers: $(tail -3 "$ERRF" | tr '\n' ' ')"; }
	cc "logs -t --tail 1 web" logs -t --tail 1 web
	cc "stop store" stop store
	out=$(B inspect -f '{{.State.Status}}' "$STORE")
	[ "$out" = exited ] && ok "store exited" || fail "store after podman-compose stop: '$out'"
	cc "start store" start store
	out=$(B inspect -f '{{.State.Status}}' "$STORE")
	[ "$out" = running ] && ok "store running" || fail "store after podman-compose start: '$out'"
	cc "restart web" restart web
	cc "exec -T" exec -T store sh -c 'echo exec-ok $STORE_LEVEL' && { has_line "exec-ok 3" && ok "exec output" || fail "exec printed no 'exec-ok 3'"; }
	cc "exec -T -e -u -w" exec -T -e X=1 -u nobody -w /tmp store sh -c 'echo $X $(id -u) $PWD' \
		&& { has_line "1 65534 /tmp" && ok "exec -e -u -w" || fail "exec -e X=1 -u nobody -w /tmp: $(tail -2 "$ERRF" | tr '\n' ' ')"; }
	cc "run --rm" run --no-deps --rm store sh -c 'echo run-ok $STORE_GREETING' \
		&& { has_line "run-ok hello from the env file" && ok "run output" || fail "run printed no 'run-ok ...'"; }
	# podman-compose passes --entrypoint as a JSON array
	cc "run --entrypoint" run --no-deps --rm -e A=b --entrypoint 'sh -c' store 'echo entry-$A' \
		&& { has_line "entry-b" && ok "--entrypoint as JSON" || fail "run --entrypoint printed no 'entry-b'"; }
	out=$(project_names)
	[ "$out" = "$STORE $WEB " ] && ok "run --rm left no container" || fail "containers after run --rm: $out"
	cc "version" version
	down || return
	cc "up --no-start" up --no-start
	out=$(B inspect -f '{{.State.Status}}' "$STORE" "$WEB" | tr '\n' ' ')
	[ "$out" = "created created " ] && ok "created" || fail "after up --no-start: '$out'"
	cc "start" start
	out=$(B inspect -f '{{.State.Status}}' "$STORE" "$WEB" | tr '\n' ' ')
	[ "$out" = "running running " ] && ok "started" || fail "after start: '$out'"
	# logs -f of both services: new lines as they come (these containers
	# are new: web has logged no client yet), until both stop
	local lpid i
	(cd "$PROJ_DIR" && exec timeout -k 2 60 nsenter --net="/run/netns/$NS_HOST" -- "$COMPOSE" --podman-path "$BERTH" logs -f) >"$STATE/follow.out" 2>&1 &
	lpid=$!
	sleep 2
	expect_banner "outside -> :$HOST_PORT while logs -f runs" ino "http://$HOST_IP:$HOST_PORT/"
	cc "stop" stop
	for i in $(seq 100); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$lpid" 2>/dev/null; then
		fail "logs -f still runs 10 s after both services stopped"; kill "$lpid" 2>/dev/null
	else
		grep -Eq "^[0-9a-f]{12} .*$OUT_IP" "$STATE/follow.out" && ok "logs -f: the new line, after web's ID; ended with the services" \
			|| fail "logs -f output: $(tail -3 "$STATE/follow.out" | tr '\n' ' ')"
	fi
	wait "$lpid" 2>/dev/null
	cat "$STATE/follow.out" >>"$LOG"
	down || return
	# up without -d: podman create, then podman start -a of each container
	cat >"$PROJ_DIR/oneshot.yml" <<'EOF'
services:
  hello:
    image: localhost/busybox
    command: ["sh", "-c", "echo attached-$$HOSTNAME-out; echo attached-err >&2"]
    hostname: oneshot
EOF
	cc "up (attached)" -f oneshot.yml up && { has_line attached-oneshot-out && has_line attached-err && ok "start -a printed the output" \
		|| fail "up (attached) output: $(tail -4 "$ERRF" | tr '\n' ' ')"; }
	cc "down (oneshot)" -f oneshot.yml down
	B network rm "${PROJ}_default" >/dev/null || fail "network rm ${PROJ}_default: $(last_err)"
}
s5_cleanup() { C -f oneshot.yml down; B network rm -f "${PROJ}_default"; C down -v; }

# --- 6: more service keys: replicas, file secrets, bind mounts, internal ---
s6_run() {
	local out
	mkdir -p "$PROJ_DIR/site"
	echo bound-page >"$PROJ_DIR/site/index.html"
	echo s3cr3t >"$PROJ_DIR/token.txt"
	cat >"$PROJ_DIR/keys.yml" <<'EOF'
services:
  many:
    image: localhost/busybox
    command: ["httpd", "-f", "-p", "8000", "-h", "/site"]
    deploy:
      replicas: 2
    networks: [inner]
    volumes:
      - ./site:/site:ro
    tmpfs: /scratch
    secrets: [token]
    extra_hosts: ["gateway.example:198.18.0.1"]
    hostname: manyhost
    working_dir: /scratch
    user: "65534"
    cap_drop: [ALL]
    read_only: true
    sysctls: ["net.ipv4.ip_unprivileged_port_start=0"]
    ulimits:
      nofile: {soft: 1000, hard: 2000}
    labels:
      tier: inner
networks:
  inner:
    internal: true
secrets:
  token:
    file: ./token.txt
EOF
	cc "up -d (keys.yml)" -f keys.yml up -d || return
	out=$(B ps --filter "label=io.podman.compose.project=$PROJ" --filter label=tier=inner --format '{{.Names}}' | sort | tr '\n' ' ')
	[ "$out" = "${PROJ}_many_1 ${PROJ}_many_2 " ] && ok "deploy.replicas: 2 containers" || fail "replicas: '$out'"
	out=$(cexec "${PROJ}_many_1" "$CFN echo @@1; get http://${PROJ}_many_2:8000/; echo @@2; get http://many:8000/; echo @@3; cat /run/secrets/token; echo @@4; id -u; pwd; hostname; ulimit -n; echo @@5; grep gateway.example /etc/hosts; echo @@6; touch /x 2>&1 || echo read-only; touch /scratch/y && echo tmpfs-ok")
	[ "$(section "$out" 1)" = bound-page ] && [ "$(section "$out" 2)" = bound-page ] && ok "bind mount served, replica by name and by alias" \
		|| fail "replicas/bind mount: '$(section "$out" 1)' / '$(section "$out" 2)'"
	[ "$(section "$out" 3)" = s3cr3t ] && ok "file secret" || fail "secret: '$(section "$out" 3)'"
	[ "$(section "$out" 4 | tr '\n' ' ')" = "65534 /scratch manyhost 1000 " ] && ok "user, working_dir, hostname, ulimits" || fail "user/workdir/hostname/ulimit: $(section "$out" 4 | tr '\n' ' ')"
	grep -q '198.18.0.1' <<<"$(section "$out" 5)" && ok "extra_hosts" || fail "extra_hosts: $(section "$out" 5)"
	grep -q read-only <<<"$(section "$out" 6)" && grep -q tmpfs-ok <<<"$(section "$out" 6)" && ok "read_only with a tmpfs" || fail "read_only/tmpfs: $(section "$out" 6 | tr '\n' ' ')"
	out=$(B network inspect "${PROJ}_inner" | jq -r '.[0].internal')
	[ "$out" = true ] && info "replicas, file secret, bind mount, tmpfs, internal network, user, hostname, ulimits, extra_hosts, read_only" || fail "network ${PROJ}_inner is not internal: '$out'"
	cc "down (keys.yml)" -f keys.yml down
	B network rm "${PROJ}_inner" >/dev/null || fail "network rm ${PROJ}_inner: $(last_err)"
}
s6_cleanup() { C -f keys.yml down; B network rm -f "${PROJ}_inner"; }

SCEN_NAMES=([1]=up [2]=volume [3]=restart [4]=down [5]=commands [6]=keys)

# ====================================================== inner (mount ns) ===
import_images() {
	"$TOP/scripts/mkbanner.sh" "$BERTH" banner >>"$LOG" 2>&1 || return 1
	"$TOP/scripts/mkbusybox.sh" "$STATE/bbroot" "$STATE/busybox.tar" || return 1
	B import -q --change 'CMD ["sh"]' "$STATE/busybox.tar" busybox >/dev/null
}

inner_cleanup() {
	set +e
	log ""; log "===== inner cleanup ====="
	[ -d "$PROJ_DIR" ] && C down -v >/dev/null
	B rm -af >/dev/null
	B system reset --force >/dev/null
}

inner_main() {
	trap inner_cleanup EXIT
	trap 'exit 130' INT TERM
	private_run_dirs /run/containers/networks /run/berth /run/podman || { say "FATAL: tmpfs over /run/containers/networks, /run/berth, /run/podman"; exit 1; }
	printf 'nameserver %s\n' "$OUT_IP" >"$STATE/resolv.conf"
	mount --bind "$STATE/resolv.conf" /etc/resolv.conf || { say "FATAL: bind /etc/resolv.conf"; exit 1; }
	mkdir -p "$NETCFG"
	cat >"$CONTAINERS_CONF" <<EOF
[network]
network_backend = "netavark"
network_config_dir = "$NETCFG"
default_subnet = "198.19.0.0/24"
default_subnet_pools = [{base = "198.19.0.0/16", size = 24}]
EOF
	import_images || { say "FATAL: could not build the images (see $LOG)"; exit 1; }
	write_project
	local id
	for id in 1 2 3 4 5 6; do run_named_scenario "$id"; done
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
	for p in /var/tmp/"$PFX"-compose.*; do [ -d "$p" ] && remove_made_dirs "$p" && rm -rf "$p"; done
	return 0
}

outer_main() {
	[ "$(id -u)" = 0 ] || { echo "compose.sh: run as root (it creates network namespaces)" >&2; exit 2; }
	local c
	for c in nsenter unshare ip nft jq curl timeout tar runc busybox "$COMPOSE"; do
		command -v "$c" >/dev/null || { echo "compose.sh: missing required command: $c" >&2; exit 2; }
	done
	[ -x "$BERTH" ] || make -C "$TOP" -s >/dev/null || { echo "compose.sh: could not build $BERTH" >&2; exit 2; }
	mkdir -p "$LOG_DIR"
	exec 9>"/run/lock/${PFX}-compose.lock"
	flock -n 9 || { echo "compose.sh: another run with PFX=$PFX is active" >&2; exit 2; }
	: >"$LOG"; : >"$RESULTS"
	local t0 rc
	t0=$(now)
	log "compose.sh: $("$BERTH" version 2>&1 | head -n1), $("$COMPOSE" version 2>/dev/null | head -n1), kernel $(uname -r)"
	outer_cleanup
	trap 'outer_cleanup; exit 130' INT TERM
	topology_up || { say "FATAL: could not create the namespaces"; outer_cleanup; exit 2; }
	STATE=$(mktemp -d "/var/tmp/${PFX}-compose.XXXXXX")
	chmod 755 "$STATE"
	# daemons and monitors must not inherit the lock
	STATE=$STATE _COMPOSE_MODE=inner unshare --mount --propagation private -- bash "$SELF" 9>&-
	rc=$?
	outer_cleanup
	tally_results compose "$rc" "$t0"
}

case ${_COMPOSE_MODE:-outer} in
inner) inner_main ;;
*) outer_main ;;
esac
