#!/usr/bin/env bash
# guide.sh - the scenarios of Podman's "Basic Networking Guide" with berth
# alone: `berth` in place of `podman` (berth's own engine, runc and berth's
# monitor; no Podman, no conmon). The berth edition of seed-scenarios.sh.
#
# Everything happens in a sandbox this script creates and removes:
#   <pfx>host  the "container host"; berth runs here (nsenter --net=...)
#   <pfx>out   an outside client, veth-connected to the host    (198.18.0.0/24)
#   <pfx>lan   a LAN peer behind the host's macvlan parent       (198.18.1.0/24)
# and a private mount namespace with tmpfs over /run/containers/networks,
# /run/berth and /run/podman (the DHCP proxy's socket), a bind-mounted
# /etc/resolv.conf naming the outside DNS server, and a temporary --root.
# Container subnets come from 198.19.0.0/16. The machine's own network is
# never touched; nothing has a default route out of the sandbox.
#
# Usage:  sudo test/acceptance/guide.sh
# Env:    ONLY     scenario numbers to run, space separated (default: all)
#         PFX      name prefix of namespaces, links and state (default bgd)
#         BERTH    the berth binary (default bin/berth, built when missing)
#         LOG_DIR  log and results (default /var/tmp/<pfx>-guide-logs)
# Output: one "PASS name" / "FAIL name: reason" / "SKIP name: reason" line per
#         scenario, then the plain line "N passed, M failed"; exit 0 only if M=0.
set -u -o pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export PATH=$PATH:/usr/sbin:/sbin

SELF=$(readlink -f "$0")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
PFX=${PFX:-bgd}
LOG_DIR=${LOG_DIR:-/var/tmp/${PFX}-guide-logs}
_state=${STATE:-}
# The helpers (log, fail/ok/info, inh/ino/inl, in_cidr, fetch, expect_banner,
# section, pids_in_netns, bg_start/bg_stop, topology_up) and the topology's
# names and addresses (NS_HOST, IF_H_LAN, HOST_IP, LAN_GW, ...) are
# seed-scenarios.sh's, sourced in its library mode; guide.sh sets its own
# state, log and images below.
# shellcheck source=test/acceptance/seed-scenarios.sh
_SEED_MODE=lib . "$(dirname "$SELF")/seed-scenarios.sh"
STATE=$_state RUN=$_state                   # RUN/pids: bg_start's pid files
NETCFG=$STATE/networks
export CONTAINERS_CONF=$STATE/containers.conf
BERTH=${BERTH:-$TOP/bin/berth}
LOG=$LOG_DIR/guide.log
RESULTS=$LOG_DIR/results.tsv
ERRF=$LOG_DIR/.last-stderr
TIMEOUT=${BERTH_TIMEOUT:-120}
DEFAULT_SUBNET=198.19.0.0/24                # the default network "podman"
BANNER="Hello from berth"                   # scripts/mkbanner.sh's page
BANNER_IMG=banner BB_IMG=busybox
S_SKIP="" MEMBER_DNS=""

# B runs berth in the host namespace with the sandbox's directories; stdout
# is returned and logged, stderr goes to the log (and $ERRF).
B() {
	local o rc
	log "+ [$(date +%T.%N | cut -c1-12)] berth $*"
	o=$(timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- "$BERTH" \
		--root "$STATE/root" --runroot /run/berth --network-config-dir "$NETCFG" "$@" 2>"$ERRF")
	rc=$?
	cat "$ERRF" >>"$LOG" 2>/dev/null
	[ -n "$o" ] && { printf '%s\n' "$o" >>"$LOG"; printf '%s\n' "$o"; }
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}

# berth's nftables table (captured first: grep -q closing the pipe early
# would fail the pipeline under pipefail)
berth_table() { inh nft list table inet berth 2>/dev/null; }
has_dnat() { # has_dnat <hostport> <ip> <port>: a map element of the table
	local t; t=$(berth_table)
	grep -Eq "tcp \. $1( comment \"[^\"]*\")? : ${2//./\\.} \. $3([ ,]|$)" <<<"$t"
}
has_masq() { # has_masq <subnet>
	local t; t=$(berth_table)
	grep -Fq "$1" <<<"$t" && grep -q masquerade <<<"$t"
}

# ============================================================ scenarios ====
# sN_run is a scenario's body (returns early on a fatal error), sN_cleanup
# always runs after it.

# --- 1: rootful bridge web server, -p 8080:80, fetched from outside --------
s1_run() {
	local ip out id
	id=$(B run -d --name webserver -p 8080:80 "$BANNER_IMG") || { fail "berth run -d --name webserver -p 8080:80 banner: $(last_err)"; return; }
	[[ $id =~ ^[0-9a-f]{64}$ ]] && ok "run printed the ID" || fail "run printed '$id', not a 64-hex ID"
	out=$(B ps --format '{{.Names}} {{.Ports}} {{.Networks}}')
	grep -qx 'webserver 0.0.0.0:8080->80/tcp podman' <<<"$out" && ok "ps" || fail "ps shows '$out', want 'webserver 0.0.0.0:8080->80/tcp podman'"
	out=$(B port webserver)
	[ "$out" = "80/tcp -> 0.0.0.0:8080" ] && ok "port" || fail "berth port webserver: '$out'"
	ip=$(B inspect -f '{{.NetworkSettings.IPAddress}}' webserver)
	in_cidr "$ip" "$DEFAULT_SUBNET" && ok "container ip $ip" || fail "container ip '$ip' not in $DEFAULT_SUBNET"
	out=$(B exec webserver ip -4 -o addr show eth0)
	grep -q "inet $ip/24" <<<"$out" && ok "eth0 has $ip/24" || fail "eth0 in the container lacks $ip/24: $out"
	expect_banner "outside -> $HOST_IP:8080" ino "http://$HOST_IP:8080/" && info "outside got the banner from $HOST_IP:8080"
	expect_banner "host -> 127.0.0.1:8080" inh "http://127.0.0.1:8080/"
	has_dnat 8080 "$ip" 80 && ok "DNAT 8080 -> $ip:80" || fail "no DNAT element 8080 -> $ip:80 in table inet berth"
	has_masq "$DEFAULT_SUBNET" && ok "masquerade" || fail "no masquerade for $DEFAULT_SUBNET"
	# the outside has no route back to the container subnet: only SNAT gets an answer
	out=$(B run --rm "$BB_IMG" sh -c "$CFN get http://$OUT_IP:8000/")
	[ "$out" = "$OUT_TOKEN" ] && info "container -> outside through masquerade" || fail "container could not reach $OUT_IP:8000 (NAT): '$out'"
	out=$(B exec webserver cat /etc/hosts)
	grep -Eq "^$ip[[:space:]].*webserver" <<<"$out" && grep -q 'host.containers.internal' <<<"$out" \
		&& ok "/etc/hosts" || fail "/etc/hosts lacks '$ip … webserver' or host.containers.internal: $(tr '\n' ' ' <<<"$out")"
	# the port is held: a second -p 8080 fails cleanly and leaves nothing behind
	if B run -d --name web2 -p 8080:80 "$BANNER_IMG" >/dev/null; then
		fail "a second -p 8080:80 was accepted"
	else
		grep -q 'address already in use' "$ERRF" && ok "second -p 8080 refused: $(last_err)" || fail "second -p 8080 failed without 'address already in use': $(last_err)"
	fi
	expect_banner "outside -> :8080 still served by webserver" ino "http://$HOST_IP:8080/"
}
s1_cleanup() { B rm -f webserver web2; }

# --- 2: custom network, name resolution, upstream forwarding --------------
s2_run() {
	local js subnet gw ip out dbip
	out=$(B network create podman1) || { fail "berth network create: $(last_err)"; return; }
	[ "$out" = podman1 ] && ok "created podman1" || fail "network create printed '$out'"
	js=$(B network inspect podman1)
	subnet=$(jq -r '.[0].subnets[0].subnet' <<<"$js") gw=$(jq -r '.[0].subnets[0].gateway' <<<"$js")
	jq -e '.[0].driver == "bridge" and .[0].dns_enabled == true' <<<"$js" >/dev/null && in_cidr "$gw" "$subnet" \
		&& ok "podman1: $subnet gw $gw, DNS on" || fail "unexpected podman1: $(tr -d '\n ' <<<"$js" | cut -c1-160)"
	B run -d --name webserver --network podman1 -p 8081:80 "$BANNER_IMG" >/dev/null || { fail "run --network podman1: $(last_err)"; return; }
	ip=$(B inspect -f '{{(index .NetworkSettings.Networks "podman1").IPAddress}}' webserver)
	in_cidr "$ip" "$subnet" && ok "ip $ip" || fail "container ip '$ip' not in $subnet"
	expect_banner "outside -> $HOST_IP:8081" ino "http://$HOST_IP:8081/"
	out=$(B run --rm --network podman1 "$BB_IMG" sh -c "$CFN echo @@1; nslookup webserver; echo @@2; get http://webserver/; echo @@3; nslookup $OUT_NAME; echo @@4; cat /etc/resolv.conf")
	grep -q "Address: $ip" <<<"$(section "$out" 1)" && ok "nslookup webserver" || fail "webserver does not resolve to $ip on podman1: $(section "$out" 1 | tr '\n' ' ' | cut -c1-120)"
	[ "$(section "$out" 2)" = "$BANNER" ] && info "http://webserver/ by name" || fail "wget http://webserver/ failed"
	{ grep -Eq "^Server:[[:space:]]+$gw\$" <<<"$(section "$out" 3)" && grep -q "Address: $OUT_IP" <<<"$(section "$out" 3)"; } \
		&& info "$OUT_NAME forwarded upstream" || fail "berth's DNS server did not forward $OUT_NAME: $(section "$out" 3 | tr '\n' ' ' | cut -c1-120)"
	grep -q "search dns.podman" <<<"$(section "$out" 4)" && grep -q "nameserver $gw" <<<"$(section "$out" 4)" \
		&& ok "resolv.conf" || fail "resolv.conf lacks 'search dns.podman' / 'nameserver $gw': $(section "$out" 4 | tr '\n' ' ')"

	# the guide's a2net: given subnet, gateway and range, aliases, static ip and mac
	B network create --subnet 198.19.55.0/24 --gateway 198.19.55.3 --ip-range 198.19.55.128/25 a2net >/dev/null \
		|| { fail "network create a2net: $(last_err)"; return; }
	B run -d --name db --network a2net --network-alias database "$BANNER_IMG" >/dev/null || { fail "run db: $(last_err)"; return; }
	B run -d --name web --network a2net:ip=198.19.55.200,mac=92:d0:c6:0a:29:33,alias=frontend "$BANNER_IMG" >/dev/null \
		|| { fail "run web with ip=,mac=,alias=: $(last_err)"; return; }
	dbip=$(B inspect -f '{{(index .NetworkSettings.Networks "a2net").IPAddress}}' db)
	[ "$dbip" = 198.19.55.129 ] && ok "db got the range's first address" || fail "db got '$dbip', want 198.19.55.129"
	out=$(B exec web sh -c 'ip -o link show eth0; echo @@1; nslookup db; echo @@2; nslookup database; echo @@3; nslookup frontend; echo @@4; wget -qO- http://db/')
	grep -q '92:d0:c6:0a:29:33' <<<"$out" && ok "static mac" || fail "web's eth0 lacks mac 92:d0:c6:0a:29:33"
	grep -q "Address: $dbip" <<<"$(section "$out" 1)" && grep -q "Address: $dbip" <<<"$(section "$out" 2)" \
		&& ok "db and its alias resolve" || fail "db/database do not resolve to $dbip"
	grep -q "Address: 198.19.55.200" <<<"$(section "$out" 3)" && ok "frontend" || fail "alias frontend does not resolve to 198.19.55.200"
	[ "$(section "$out" 4)" = "$BANNER" ] && info "a2net: db, database, frontend resolve; static ip/mac" || fail "web -> http://db/ failed"

	# the default network has DNS off
	out=$(B run --rm "$BB_IMG" sh -c 'cat /etc/resolv.conf; nslookup webserver >/dev/null 2>&1 && echo RESOLVED; true')
	if grep -q RESOLVED <<<"$out" || grep -q "search dns.podman" <<<"$out"; then
		fail "the default network has DNS: $(tr '\n' ' ' <<<"$out" | cut -c1-120)"
	else ok "default network: no container DNS"; fi
}
s2_cleanup() { B rm -f webserver db web; B network rm -f podman1 a2net; }

# --- 3: pod name resolution ----------------------------------------------
s3_run() {
	local out podip
	B network create --subnet 198.19.56.0/24 a3net >/dev/null || { fail "network create a3net: $(last_err)"; return; }
	B pod create --name a2pod --network a3net --hostname podhost >/dev/null || { fail "pod create: $(last_err)"; return; }
	B run -d --pod a2pod --name podweb "$BANNER_IMG" >/dev/null || { fail "run --pod a2pod: $(last_err)"; return; }
	podip=$(B inspect -f '{{(index .NetworkSettings.Networks "a3net").IPAddress}}' podweb)
	[ -n "$podip" ] || podip=$(B exec podweb ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
	out=$(B run --rm --network a3net "$BB_IMG" sh -c "$CFN echo @@1; nslookup a2pod; echo @@2; get http://a2pod/; echo @@3; nslookup podweb; echo @@4; get http://podweb/")
	grep -q "Address: $podip" <<<"$(section "$out" 1)" && ok "a2pod -> $podip" || fail "pod name a2pod does not resolve to $podip: $(section "$out" 1 | tr '\n' ' ' | cut -c1-120)"
	[ "$(section "$out" 2)" = "$BANNER" ] && info "http://a2pod/ by the pod's name" || fail "wget http://a2pod/ failed"
	# issue 6: member names resolve too (Podman 4.3.1 answers NXDOMAIN): scenario 13
	MEMBER_DNS="$podip|$(section "$out" 3 | tr '\n' ' ' | cut -c1-100)|$(section "$out" 4)"
	out=$(B exec podweb hostname)
	[ "$out" = podhost ] && ok "hostname podhost" || fail "member hostname '$out', want podhost"
}
s3_cleanup() { B pod rm -f a2pod; B network rm -f a3net; }

# --- 13: pod member names resolve (issue 6; Podman 4.3.1 answers NXDOMAIN) --
# Uses what scenario 3 saw from a container on the pod's network.
s13_run() {
	local podip=${MEMBER_DNS%%|*} rest=${MEMBER_DNS#*|} ns page
	ns=${rest%%|*} page=${rest#*|}
	[ -n "$MEMBER_DNS" ] || { fail "scenario 3 (pod-dns) did not get as far as the member lookup"; return; }
	grep -q "Address: $podip" <<<"$ns" && [ "$page" = "$BANNER" ] \
		&& info "member name podweb resolves to the pod's $podip" || fail "pod member name podweb does not resolve: $ns"
}
s13_cleanup() { :; }

# --- 4: network connect / disconnect ---------------------------------------
s4_run() {
	local subnet ip1 ip2 out n
	B network create podman2 >/dev/null || { fail "network create podman2: $(last_err)"; return; }
	subnet=$(B network inspect podman2 | jq -r '.[0].subnets[0].subnet')
	B run -d --name webserver "$BANNER_IMG" >/dev/null || { fail "run: $(last_err)"; return; }
	ip1=$(B inspect -f '{{.NetworkSettings.IPAddress}}' webserver)
	B network connect podman2 webserver >/dev/null || { fail "berth network connect podman2 webserver: $(last_err)"; return; }
	n=$(B inspect -f '{{len .NetworkSettings.Networks}}' webserver)
	[ "$n" = 2 ] && ok "inspect lists 2 networks" || fail "after connect inspect lists $n networks"
	ip2=$(B inspect -f '{{(index .NetworkSettings.Networks "podman2").IPAddress}}' webserver)
	in_cidr "$ip2" "$subnet" && ok "podman2 ip $ip2" || fail "no podman2 address ('$ip2', $subnet)"
	out=$(B exec webserver ip -4 -o addr)
	grep -Eq "eth1 +inet $ip2/" <<<"$out" && ok "eth1 has $ip2" || fail "no eth1 with $ip2: $(tr '\n' ' ' <<<"$out")"
	out=$(B exec webserver cat /etc/hosts)
	grep -Eq "^$ip2[[:space:]].*webserver" <<<"$out" && ok "hosts has $ip2" || fail "/etc/hosts lacks $ip2 after connect"
	expect_banner "host -> $ip2 (new interface)" inh "http://$ip2/"
	out=$(B run --rm --network podman2 "$BB_IMG" nslookup webserver)
	grep -q "Address: $ip2" <<<"$out" && ok "podman2 DNS knows webserver" || fail "webserver not resolvable on podman2 after connect"
	B network disconnect podman2 webserver >/dev/null || { fail "berth network disconnect: $(last_err)"; return; }
	n=$(B inspect -f '{{len .NetworkSettings.Networks}}' webserver)
	[ "$n" = 1 ] && ok "inspect lists 1 network" || fail "after disconnect inspect lists $n networks"
	out=$(B exec webserver ip -o link)
	grep -q eth1 <<<"$out" && fail "eth1 still present after disconnect" || ok "eth1 removed"
	out=$(B exec webserver cat /etc/hosts)
	grep -q "^$ip2[[:space:]]" <<<"$out" && fail "/etc/hosts still has $ip2 after disconnect" || ok "hosts line removed"
	expect_unreachable "host -> $ip2 after disconnect" inh "http://$ip2/"
	expect_banner "host -> $ip1 (eth0 still serves)" inh "http://$ip1/" && info "connect: eth1 $ip2; disconnect: gone, eth0 $ip1 serves"
}
s4_cleanup() { B rm -f webserver; B network rm -f podman2; }

# --- 5: macvlan with a static subnet ---------------------------------------
s5_run() {
	local ip out
	B network create -d macvlan -o parent="$IF_H_LAN" --subnet "$LAN_SUBNET" --gateway "$LAN_GW" \
		--ip-range "$MACVLAN_RANGE" webnetwork >/dev/null || { fail "macvlan network create: $(last_err)"; return; }
	B run -d --name webserver --network webnetwork "$BANNER_IMG" >/dev/null || { fail "run on webnetwork: $(last_err)"; return; }
	ip=$(B inspect -f '{{(index .NetworkSettings.Networks "webnetwork").IPAddress}}' webserver)
	in_cidr "$ip" "$MACVLAN_RANGE" && ok "macvlan ip $ip" || fail "macvlan ip '$ip' not in $MACVLAN_RANGE"
	out=$(B exec webserver sh -c 'ip address show eth0; ip route')
	grep -q "inet $ip/24" <<<"$out" && ok "eth0 has $ip/24" || fail "eth0 lacks $ip/24"
	grep -q "default via $LAN_GW" <<<"$out" && ok "default route via $LAN_GW" || fail "no default route via $LAN_GW: $(tr '\n' ' ' <<<"$out" | cut -c1-160)"
	expect_banner "LAN peer -> http://$ip/ (no port mapping)" inl "http://$ip/" && info "LAN peer reached $ip:80 directly"
}
s5_cleanup() { B rm -f webserver; B network rm -f webnetwork; }

# --- 6: macvlan with DHCP (dnsmasq on the LAN, berth's DHCP proxy) ----------
s6_run() {
	local ip out i
	bg_start dnsmasq-lan nsenter --net="/run/netns/$NS_LAN" -- dnsmasq -k -C /dev/null --port=0 \
		--interface="$IF_L" --bind-interfaces --dhcp-range="$DHCP_FIRST,$DHCP_LAST,255.255.255.0,10m" \
		--dhcp-option=option:router,"$LAN_GW" --dhcp-leasefile="$STATE/lan.leases" --pid-file= --user=root --group=root
	# the guide: `netavark dhcp-proxy --activity-timeout 0`; /run/podman is a tmpfs of this sandbox
	bg_start dhcp-proxy nsenter --net="/run/netns/$NS_HOST" -- "$BERTH" netavark dhcp-proxy --activity-timeout 0
	for i in $(seq 40); do [ -S /run/podman/nv-proxy.sock ] && break; sleep 0.1; done
	[ -S /run/podman/nv-proxy.sock ] && ok "dhcp-proxy socket up" || { fail "/run/podman/nv-proxy.sock did not appear"; return; }
	# the guide's command: no subnet, so the network's addresses come from DHCP
	B network create -d macvlan -o parent="$IF_H_LAN" webnetwork >/dev/null || { fail "network create -d macvlan (no subnet): $(last_err)"; return; }
	B network inspect webnetwork | jq -e '.[0].ipam_options.driver == "dhcp"' >/dev/null \
		&& ok "ipam driver dhcp" || fail "webnetwork's ipam driver is not dhcp"
	B run -d --name webserver --network webnetwork "$BANNER_IMG" >/dev/null || { fail "run on the DHCP network: $(last_err)"; return; }
	ip=$(B inspect -f '{{(index .NetworkSettings.Networks "webnetwork").IPAddress}}' webserver)
	in_range "$ip" "$DHCP_FIRST" "$DHCP_LAST" 2>/dev/null && ok "lease $ip" || fail "container ip '$ip' is not from the DHCP range"
	out=$(B exec webserver sh -c 'ip address show eth0; ip route')
	grep -q "inet $ip/24" <<<"$out" && ok "eth0 has $ip/24" || fail "eth0 lacks the leased $ip: $(tr '\n' ' ' <<<"$out" | cut -c1-160)"
	grep -q "default via $LAN_GW" <<<"$out" && ok "default route from the lease" || fail "no default route via $LAN_GW from the lease"
	grep -q " $ip " "$STATE/lan.leases" 2>/dev/null && ok "dnsmasq recorded the lease" || fail "$ip is not in dnsmasq's lease file"
	expect_banner "LAN peer -> http://$ip/" inl "http://$ip/" && info "DHCP lease $ip from dnsmasq through berth's proxy; LAN peer got the banner"
	B rm -f webserver >/dev/null
	for i in $(seq 30); do grep -q " $ip " "$STATE/lan.leases" 2>/dev/null || break; sleep 0.1; done
	grep -q " $ip " "$STATE/lan.leases" 2>/dev/null && fail "lease $ip not released on rm" || ok "lease released on rm"
}
s6_cleanup() {
	B rm -f webserver; B network rm -f webnetwork
	bg_stop dhcp-proxy; bg_stop dnsmasq-lan
	rm -f "$STATE/lan.leases"
}

# --- 7: firewall flush, then berth network reload --------------------------
s7_run() {
	local ip mac id out
	id=$(B run -d --name webserver -p 8080:80 "$BANNER_IMG") || { fail "run: $(last_err)"; return; }
	ip=$(B inspect -f '{{.NetworkSettings.IPAddress}}' webserver)
	mac=$(B inspect -f '{{.NetworkSettings.MacAddress}}' webserver)
	expect_banner "outside -> :8080 before the flush" ino "http://$HOST_IP:8080/" || return
	# berth's firewall watcher would mend the flush by itself (the Podman
	# scenario checks that): stopped, so that reload is what is tested
	stop_watcher || return
	inh nft flush ruleset
	has_dnat 8080 "$ip" 80 && fail "the DNAT element survived the flush" || ok "rules flushed"
	expect_unreachable "outside -> :8080 after the flush" ino "http://$HOST_IP:8080/"
	out=$(B network reload webserver) || { fail "berth network reload webserver: $(last_err)"; return; }
	[ "$out" = "$id" ] && ok "reload printed the ID" || fail "reload printed '$out', want $id"
	has_dnat 8080 "$ip" 80 && ok "DNAT restored" || fail "DNAT 8080 -> $ip:80 not restored by reload"
	expect_banner "outside -> :8080 after reload" ino "http://$HOST_IP:8080/" && info "nft flush ruleset broke -p 8080, berth network reload restored it"
	[ "$(B inspect -f '{{.NetworkSettings.IPAddress}} {{.NetworkSettings.MacAddress}}' webserver)" = "$ip $mac" ] \
		&& ok "ip and mac unchanged" || fail "reload changed the container's ip or mac"
	stop_watcher || return
	inh nft flush ruleset
	out=$(B network reload --all) || { fail "berth network reload --all: $(last_err)"; return; }
	grep -q "$id" <<<"$out" && ok "reload --all lists the container" || fail "reload --all output lacks the ID: '$out'"
	expect_banner "outside -> :8080 after reload --all" ino "http://$HOST_IP:8080/"
	B network reload >/dev/null 2>&1 && fail "reload without arguments succeeded" || ok "reload without arguments refused: $(last_err)"
}
s7_cleanup() { B rm -f webserver; }

# --- 8: a pod: two containers over localhost, the pod's -p from outside ----
s8_run() {
	local out ip1 ip2
	B pod create --name p1 -p 8082:80 >/dev/null || { fail "pod create -p 8082:80: $(last_err)"; return; }
	B run -d --pod p1 --name p1web "$BANNER_IMG" >/dev/null || { fail "run --pod p1: $(last_err)"; return; }
	out=$(B run --rm --pod p1 "$BB_IMG" sh -c "$CFN echo @@1; get http://localhost:80/; echo @@2; ip -4 -o addr show eth0")
	[ "$(section "$out" 1)" = "$BANNER" ] && ok "member -> localhost:80" || fail "localhost:80 inside the pod failed"
	ip1=$(B exec p1web ip -4 -o addr show eth0 | awk '{print $4}')
	ip2=$(section "$out" 2 | awk '{print $4}')
	[ -n "$ip1" ] && [ "$ip1" = "$ip2" ] && ok "one address $ip1" || fail "members see different addresses '$ip1' '$ip2'"
	expect_banner "outside -> $HOST_IP:8082 (the pod's port)" ino "http://$HOST_IP:8082/" \
		&& info "pod $ip1: members over localhost, outside through :8082"
	out=$(B pod ps --format '{{.Name}} {{.Status}} {{.NumberOfContainers}}')
	[ "$out" = "p1 Running 2" ] && ok "pod ps" || fail "pod ps: '$out', want 'p1 Running 2'"
	B run --pod p1 -p 9999:80 "$BB_IMG" true >/dev/null && fail "-p on a member accepted" || ok "-p on a member refused: $(last_err)"
}
s8_cleanup() { B pod rm -f p1; }

# --- 9: the default network exported to a file, DNS enabled ----------------
s9_run() {
	local ip out
	[ "$(B network inspect podman | jq -r '.[0].dns_enabled')" = false ] && ok "default network dns off" || fail "default network has dns_enabled before export"
	B network inspect podman | jq '.[0] | .dns_enabled = true' >"$NETCFG/podman.json" || { fail "export failed"; return; }
	[ "$(B network inspect podman | jq -r '.[0].dns_enabled')" = true ] && ok "podman.json read" || { fail "edited podman.json not read"; return; }
	B run -d --name web8 "$BANNER_IMG" >/dev/null || { fail "run: $(last_err)"; return; }
	ip=$(B inspect -f '{{.NetworkSettings.IPAddress}}' web8)
	out=$(B run --rm "$BB_IMG" sh -c "$CFN echo @@1; nslookup web8; echo @@2; get http://web8/")
	grep -q "Address: $ip" <<<"$(section "$out" 1)" && ok "web8 resolves" || fail "web8 does not resolve to $ip with dns_enabled"
	[ "$(section "$out" 2)" = "$BANNER" ] && info "default network with dns_enabled: http://web8/ by name" || fail "wget http://web8/ failed"
}
s9_cleanup() { B rm -f web8; rm -f "$NETCFG/podman.json"; }

# --- 10: berth info names the backend ----------------------------------------
s10_run() {
	local b
	b=$(B info --format '{{.Host.NetworkBackend}}')
	[ "$b" = netavark ] && info "berth info: NetworkBackend=$b" || fail "NetworkBackend is '$b', want netavark"
	B info --format json | jq -e '.host.networkBackend == "netavark"' >/dev/null 2>&1 \
		|| B info --format json | jq -e '.. | objects | select(has("networkBackend")) | .networkBackend == "netavark"' >/dev/null 2>&1 \
		&& ok "info json" || fail "berth info --format json does not name the backend"
}
s10_cleanup() { :; }

# --- 11: rootless ------------------------------------------------------------
# berth as an unprivileged user (created here, with subordinate IDs). The
# default rootless network is pasta (as Podman 5), so the host namespace gets
# a default route to the outside one for this scenario (pasta copies the
# host's interface, address and gateway; the outside namespace is a dead end,
# nothing leaves the sandbox): -p 8080:80 reached from the outside through
# the host's IP, the server seeing the outside client's own address; a second
# container with the host's address, reaching the outside server, a name
# through pasta's DNS forwarder 169.254.1.1 and the first container's port
# through host.containers.internal (169.254.1.2); a rootless bridge network
# (in berth's rootless netns, pasta as its uplink) with DNS by name and
# -p 8083:80 (client address kept); berth unshare --rootless-netns. Then
# slirp4netns: --network slirp4netns per container, and containers.conf's
# default_rootless_network_cmd = "slirp4netns" for the default network and
# the rootless netns's uplink, client addresses kept on both; nothing left
# after reset.
RL_USER=${PFX}rl RL_DIR=""
R() {
	local o rc
	log "+ [$(date +%T.%N | cut -c1-12)] [rootless $RL_USER] berth $*"
	# from /: the user may not enter the checkout's directory (a clone under /root)
	o=$(cd / && timeout -k 5 "$TIMEOUT" nsenter --net="/run/netns/$NS_HOST" -- setpriv --reuid="$RL_USER" --regid="$RL_USER" --init-groups -- \
		env -i HOME="$RL_DIR/home" XDG_RUNTIME_DIR="$RL_DIR/xdg" PATH=/usr/bin:/bin:/usr/sbin:/sbin "$RL_DIR/bin/berth" "$@" 2>"$ERRF")
	rc=$?
	cat "$ERRF" >>"$LOG" 2>/dev/null
	[ -n "$o" ] && { printf '%s\n' "$o" >>"$LOG"; printf '%s\n' "$o"; }
	[ $rc -ne 0 ] && log "  (rc=$rc)"
	return $rc
}
rl_setup() {
	local t
	for t in useradd usermod newuidmap newgidmap setpriv; do
		command -v "$t" >/dev/null || { S_SKIP="needs $t (passwd, uidmap, util-linux)"; return 1; }
	done
	RL_DIR=$(mktemp -d "/var/tmp/${PFX}-rootless.XXXXXX") && chmod 755 "$RL_DIR" || { fail "mktemp"; return 1; }
	if ! id "$RL_USER" >/dev/null 2>&1; then
		useradd -M -d "$RL_DIR/home" -s /bin/sh "$RL_USER" >>"$LOG" 2>&1 || { fail "useradd $RL_USER"; return 1; }
	fi
	usermod --add-subuids 3400000-3465535 --add-subgids 3400000-3465535 "$RL_USER" >>"$LOG" 2>&1
	mkdir -p "$RL_DIR"/{home,xdg,bin} && chown "$RL_USER:" "$RL_DIR/home" "$RL_DIR/xdg" && chmod 700 "$RL_DIR/home" "$RL_DIR/xdg"
	install -m 0755 "$TOP/bin/berth" "$TOP/bin/pasta" "$TOP/bin/slirp4netns" "$TOP/bin/aardvark-dns" "$RL_DIR/bin/" || { fail "copy berth for $RL_USER"; return 1; }
	ip -n "$NS_HOST" route add default via "$OUT_IP" || { fail "default route in the host namespace"; return 1; }
	cp -a "$STATE/bbroot" "$RL_DIR/rootfs" && chown -R "$RL_USER:" "$RL_DIR/rootfs"
	# /dev/net/tun is 0600 on this host: a 0666 node in this (private) mount namespace
	if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
		mknod -m 666 "$RL_DIR/tun" c 10 200 && mount --bind "$RL_DIR/tun" /dev/net/tun || { fail "tun node"; return 1; }
	fi
}
s11_run() {
	local out mode rip
	rl_setup || return
	R run -d --name webserver -p 8080:80 --rootfs "$RL_DIR/rootfs" httpd -f -v -p 80 -h /www >/dev/null \
		|| { fail "rootless berth run -p 8080:80: $(last_err)"; return; }
	mode=$(R inspect -f '{{.HostConfig.NetworkMode}}' webserver)
	[ "$mode" = pasta ] && ok "default rootless network mode pasta" || fail "rootless network mode is '$mode'"
	expect_banner "outside -> $HOST_IP:8080 (rootless, pasta)" ino "http://$HOST_IP:8080/"
	rl_client_kept webserver "the pasta server saw the outside client's address $OUT_IP"
	out=$(R run --rm --rootfs "$RL_DIR/rootfs" sh -c "$CFN ip -o -4 addr show scope global; echo @@1; get http://$OUT_IP:8000/; echo @@2; nslookup $OUT_NAME; echo @@3; get http://host.containers.internal:8080/; echo @@4; cat /etc/resolv.conf")
	grep -qF "$HOST_IP/" <<<"$out" && ok "the pasta container has the host's address $HOST_IP" || fail "pasta container's address: $(head -2 <<<"$out" | tr '\n' ' ')"
	[ "$(section "$out" 1)" = "$OUT_TOKEN" ] && ok "pasta container -> outside server" || fail "pasta container -> http://$OUT_IP:8000/: '$(section "$out" 1)'"
	grep -q "Address: $OUT_IP" <<<"$(section "$out" 2)" && grep -q "169.254.1.1" <<<"$(section "$out" 2)" \
		&& ok "pasta container resolves $OUT_NAME through 169.254.1.1" || fail "pasta DNS: $(section "$out" 2 | tr '\n' ' ')"
	[ "$(section "$out" 3)" = "$BANNER" ] && ok "pasta container -> host.containers.internal:8080" || fail "host.containers.internal:8080: '$(section "$out" 3)'"
	head -1 <<<"$(section "$out" 4)" | grep -q '^nameserver 169.254.1.1$' && ok "resolv.conf: nameserver 169.254.1.1 first" \
		|| fail "pasta resolv.conf: $(section "$out" 4 | tr '\n' ' ')"
	R network create --subnet 198.19.60.0/24 rlnet >/dev/null || { fail "rootless network create: $(last_err)"; return; }
	[ -f "$RL_DIR/home/.local/share/containers/storage/networks/rlnet.json" ] && ok "network file in ~/.local/share/containers/storage/networks" \
		|| fail "no rlnet.json under ~/.local/share/containers/storage/networks"
	R run -d --name rweb --network rlnet -p 8083:80 --rootfs "$RL_DIR/rootfs" httpd -f -v -p 80 -h /www >/dev/null \
		|| { fail "rootless run on rlnet: $(last_err)"; return; }
	rip=$(R inspect -f '{{(index .NetworkSettings.Networks "rlnet").IPAddress}}' rweb)
	out=$(R run --rm --network rlnet --rootfs "$RL_DIR/rootfs" sh -c "$CFN echo @@1; nslookup rweb; echo @@2; get http://rweb/; echo @@3; get http://$OUT_IP:8000/")
	grep -q "Address: $rip" <<<"$(section "$out" 1)" && ok "rootless DNS rweb -> $rip" || fail "rootless DNS did not resolve rweb ($rip): $(tr '\n' ' ' <<<"$out")"
	[ "$(section "$out" 2)" = "$BANNER" ] && ok "http://rweb/ on the rootless network" || fail "rootless wget http://rweb/ failed"
	[ "$(section "$out" 3)" = "$OUT_TOKEN" ] && ok "rootless network -> outside server (pasta uplink)" || fail "rlnet -> http://$OUT_IP:8000/: '$(section "$out" 3)'"
	expect_banner "outside -> $HOST_IP:8083 (rootless netns, pasta uplink)" ino "http://$HOST_IP:8083/"
	rl_client_kept rweb "rootless netns (pasta uplink): client address $OUT_IP kept"
	out=$(R unshare --rootless-netns ip -o addr)
	grep -qF "$HOST_IP/" <<<"$out" && ok "berth unshare --rootless-netns: pasta's copy of $HOST_IP" || fail "unshare --rootless-netns: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"

	# slirp4netns, per container and as the configured default.
	R run -d --name sweb --network slirp4netns -p 8087:80 --rootfs "$RL_DIR/rootfs" httpd -f -v -p 80 -h /www >/dev/null \
		|| { fail "rootless run --network slirp4netns: $(last_err)"; return; }
	expect_banner "outside -> $HOST_IP:8087 (--network slirp4netns)" ino "http://$HOST_IP:8087/"
	rl_client_kept sweb "slirp4netns: client address $OUT_IP kept"
	R system reset --force >/dev/null || fail "rootless system reset: $(last_err)"
	mkdir -p "$RL_DIR/home/.config/containers"
	printf '[network]\ndefault_rootless_network_cmd = "slirp4netns"\n' >"$RL_DIR/home/.config/containers/containers.conf"
	chown -R "$RL_USER:" "$RL_DIR/home/.config"
	R run -d --name webserver -p 8080:80 --rootfs "$RL_DIR/rootfs" httpd -f -v -p 80 -h /www >/dev/null \
		|| { fail "rootless run (slirp4netns default): $(last_err)"; return; }
	mode=$(R inspect -f '{{.HostConfig.NetworkMode}}' webserver)
	[ "$mode" = slirp4netns ] && ok "default_rootless_network_cmd = slirp4netns" || fail "rootless network mode is '$mode' with slirp4netns configured"
	out=$(R run --rm --rootfs "$RL_DIR/rootfs" sh -c "$CWGET" "http://$HOST_IP:8080/")
	[ "$out" = "$BANNER" ] && ok "2nd slirp4netns container reached the 1st via $HOST_IP:8080" || fail "slirp4netns container -> $HOST_IP:8080: '$out'"
	R network create --subnet 198.19.61.0/24 rlnet2 >/dev/null || { fail "rootless network create: $(last_err)"; return; }
	R run -d --name rweb2 --network rlnet2 -p 8084:80 --rootfs "$RL_DIR/rootfs" httpd -f -v -p 80 -h /www >/dev/null \
		|| { fail "rootless run on rlnet2 (slirp4netns uplink): $(last_err)"; return; }
	expect_banner "outside -> $HOST_IP:8084 (rootless netns, slirp4netns uplink)" ino "http://$HOST_IP:8084/"
	rl_client_kept rweb2 "rootless netns (slirp4netns uplink): client address $OUT_IP kept"
	out=$(R unshare --rootless-netns ip -o link)
	grep -q tap0 <<<"$out" && ok "rootless netns uplink slirp4netns (tap0)" || fail "unshare --rootless-netns shows no tap0: $out"
	R system reset --force >/dev/null || fail "rootless system reset: $(last_err)"
	sleep 0.5
	# (zombies are dead: reparented daemons wait for this sandbox's init)
	out=$(ps -u "$RL_USER" -o stat=,pid=,args= | awk '$1 !~ /^Z/')
	[ -z "$out" ] && ok "no rootless process left after reset" || fail "processes of $RL_USER left: $(tr '\n' ';' <<<"$out")"
}
# rl_client_kept CTR MSG: the container's httpd -v log names the outside
# client's address.
rl_client_kept() {
	local out
	sleep 0.3
	R logs "$1" >/dev/null; out=$(cat "$ERRF")   # httpd -v logs to stderr
	grep -qF "$OUT_IP]:" <<<"$out" && ok "$2" || fail "client address lost: $1's log has no $OUT_IP: $(tail -2 <<<"$out" | tr '\n' ' ')"
}
s11_cleanup() {
	local p
	[ -n "$RL_DIR" ] || return 0
	id "$RL_USER" >/dev/null 2>&1 && R system reset --force >/dev/null 2>&1
	ip -n "$NS_HOST" route del default via "$OUT_IP" 2>/dev/null
	for p in $(pgrep -u "$RL_USER" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	sleep 0.2
	umount /dev/net/tun 2>/dev/null
	id "$RL_USER" >/dev/null 2>&1 && userdel "$RL_USER" >>"$LOG" 2>&1
	rm -rf "$RL_DIR"
	RL_DIR=""
}

# --- 12: system reset leaves nothing -----------------------------------------
s12_run() {
	local out
	B network create resetnet >/dev/null && B run -d --name r1 --network resetnet -p 8083:80 "$BANNER_IMG" >/dev/null \
		&& B pod create --name rpod >/dev/null || { fail "setup: $(last_err)"; return; }
	B system reset --force >/dev/null || { fail "berth system reset --force: $(last_err)"; return; }
	[ -z "$(B ps -aq)" ] && ok "no containers" || fail "containers left: $(B ps -a --format '{{.Names}}' | tr '\n' ' ')"
	[ -z "$(B pod ps -q)" ] && ok "no pods" || fail "pods left"
	[ -z "$(B images -q)" ] && ok "no images" || fail "images left: $(B images --format '{{.Repository}}' | tr '\n' ' ')"
	out=$(B network ls --format '{{.Name}}')
	[ "$out" = podman ] && ok "only the default network" || fail "networks left: $(tr '\n' ' ' <<<"$out")"
	# (teardown retires veths, renamed brtgone…, and a reaper deletes
	# them within moments: give it up to 2 s)
	for _ in $(seq 1 20); do
		out=$(inh ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vx -e lo -e "$IF_H_OUT" -e "$IF_H_LAN")
		[ -z "$out" ] && break
		sleep 0.1
	done
	[ -z "$out" ] && ok "no links left" || fail "links left in the host namespace: $(tr '\n' ' ' <<<"$out")"
	out=$(inh nft list table inet berth 2>/dev/null | grep -c 'tcp \. ')
	[ "${out:-0}" = 0 ] && ok "no published ports left" || fail "$out port elements left in table inet berth"
	out=$(for p in $(pids_in_netns "$NS_HOST"); do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo; done | grep -v '^$')
	[ -z "$out" ] && ok "no processes left" || fail "processes left in the host namespace: $(tr '\n' ';' <<<"$out" | cut -c1-160)"
	[ -z "$(find /run/berth -mindepth 2 -name 'config.json' 2>/dev/null)" ] && ok "no bundles" || fail "bundles left under /run/berth"
	info "containers, pods, images, networks, links, ports and processes gone"
	import_images || fail "re-import after reset failed"
}
s12_cleanup() { B rm -f r1; B pod rm -f rpod; B network rm -f resetnet; }

SCEN_NAMES=(
	[1]=bridge-publish-8080 [2]=custom-network-dns [3]=pod-dns [4]=connect-disconnect
	[5]=macvlan-static [6]=macvlan-dhcp [7]=firewall-reload [8]=pod-localhost
	[9]=default-network-dns [10]=info-backend [11]=rootless [12]=system-reset
	[13]=pod-member-dns
)

# ====================================================== inner (mount ns) ===
import_images() {
	# banner: scripts/mkbanner.sh (Debian's busybox-static, offline)
	BERTH_ROOT=$STATE/root "$TOP/scripts/mkbanner.sh" "$BERTH" "$BANNER_IMG" >>"$LOG" 2>&1 || return 1
	# busybox: every applet (timeout, nslookup, ...) for client containers
	B import -q --change 'CMD ["sh"]' "$STATE/busybox.tar" "$BB_IMG" >/dev/null || return 1
}

build_busybox() {
	local d=$STATE/bbroot
	"$TOP/scripts/mkbusybox.sh" "$d" || return 1
	echo "$BANNER" >"$d/www/index.html"
	tar --numeric-owner --owner=0 --group=0 -C "$d" -cf "$STATE/busybox.tar" .
	chmod -R a+rX "$d"
}

inner_cleanup() {
	set +e
	log ""; log "===== inner cleanup ====="
	for p in $(B pod ps -q); do B pod rm -f "$p" >/dev/null; done
	B rm -af >/dev/null
	B system reset --force >/dev/null
	local f
	for f in "$STATE"/pids/*; do [ -e "$f" ] && bg_stop "$(basename "$f")"; done
}

inner_main() {
	trap inner_cleanup EXIT
	trap 'exit 130' INT TERM
	private_run_dirs /run/containers/networks /run/berth /run/podman || { say "FATAL: tmpfs over /run/containers/networks, /run/berth, /run/podman"; exit 1; }
	printf 'nameserver %s\n' "$OUT_IP" >"$STATE/resolv.conf"
	mount --bind "$STATE/resolv.conf" /etc/resolv.conf || { say "FATAL: bind /etc/resolv.conf"; exit 1; }
	mkdir -p "$STATE/pids" "$STATE/www-out" "$NETCFG"
	cat >"$CONTAINERS_CONF" <<EOF
[network]
network_backend = "netavark"
default_subnet = "$DEFAULT_SUBNET"
default_subnet_pools = [{base = "198.19.0.0/16", size = 24}]
EOF
	echo "$OUT_TOKEN" >"$STATE/www-out/index.html"
	bg_start httpd-out nsenter --net="/run/netns/$NS_OUT" -- busybox httpd -f -p "$OUT_IP:8000" -h "$STATE/www-out"
	bg_start dns-out nsenter --net="/run/netns/$NS_OUT" -- dnsmasq -k -C /dev/null --no-resolv --no-hosts \
		--listen-address="$OUT_IP" --bind-interfaces --port=53 --address="/$OUT_NAME/$OUT_IP" --pid-file= --user=root --group=root
	build_busybox
	import_images || { say "FATAL: could not build the images (see $LOG)"; exit 1; }
	local id
	for id in 1 2 3 13 4 5 6 7 8 9 10 11 12; do run_named_scenario "$id"; done
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
	for p in /var/tmp/"$PFX"-guide.*; do [ -d "$p" ] && remove_made_dirs "$p" && rm -rf "$p"; done
	return 0
}

outer_main() {
	[ "$(id -u)" = 0 ] || { echo "guide.sh: run as root (it creates network namespaces)" >&2; exit 2; }
	local c
	for c in nsenter unshare ip nft jq curl dnsmasq setpriv timeout tar runc catatonit busybox; do
		command -v "$c" >/dev/null || { echo "guide.sh: missing required command: $c" >&2; exit 2; }
	done
	[ -x "$BERTH" ] || make -C "$TOP" -s >/dev/null || { echo "guide.sh: could not build $BERTH" >&2; exit 2; }
	mkdir -p "$LOG_DIR"
	exec 9>"/run/lock/${PFX}-guide.lock"
	flock -n 9 || { echo "guide.sh: another run with PFX=$PFX is active" >&2; exit 2; }
	: >"$LOG"; : >"$RESULTS"
	local t0 rc
	t0=$(now)
	log "guide.sh: $("$BERTH" version 2>&1 | head -n1), $(runc --version | head -n1), kernel $(uname -r)"
	outer_cleanup
	trap 'outer_cleanup; exit 130' INT TERM
	topology_up || { say "FATAL: could not create the namespaces"; outer_cleanup; exit 2; }
	STATE=$(mktemp -d "/var/tmp/${PFX}-guide.XXXXXX")
	chmod 755 "$STATE"
	# daemons and monitors must not inherit the lock
	STATE=$STATE _GUIDE_MODE=inner unshare --mount --propagation private -- bash "$SELF" 9>&-
	rc=$?
	outer_cleanup
	tally_results guide "$rc" "$t0"
}

case ${_GUIDE_MODE:-outer} in
inner) inner_main ;;
*) outer_main ;;
esac
