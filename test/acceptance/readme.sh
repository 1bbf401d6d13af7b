#!/usr/bin/env bash
# readme.sh - runs every shell command of README.md, so the README cannot
# drift from what berth does.
#
# It extracts the ```sh blocks of README.md and runs each one as a bash
# script (set -e, pipefail) from the repository's root, in a sandbox:
#   - a private mount namespace with overlays (writes go to a tmpfs) over
#     /etc, /usr/local, /opt and /var, and tmpfs over /run and /tmp, so the
#     README's install commands (cp to /usr/local/libexec/berth,
#     /etc/containers/containers.conf.d, /opt/cni/bin, /etc/cni/net.d) and
#     the state of berth, Podman and containerd vanish with the run;
#   - a "host" network namespace, where the blocks run, joined by a veth to
#     an "outside" one (198.18.0.1 and 198.18.0.2; the host's default route
#     and name server point there); container subnets come from
#     198.19.0.0/16. The machine's own network is never touched.
# Blocks that are not commands (configuration files, output) must sit in
# fences of another language (```toml, ```json, ```text, ...); a fence
# without a language, or marked bash/shell/console, is an error.
#
# Commands that cannot run inside the sandbox are checked instead:
#   make check   .ci/run must run exactly `make check` (and the Makefile
#                must have the target); the suite itself is what CI runs
#   apt-get install PKG...   every PKG must be installed (make check's
#                dependency step installs them; nothing is installed here)
# A block that runs podman is skipped, with the reason printed, when podman
# is not installed; one that runs containerd's test when containerd is not.
#
# Usage:  sudo test/acceptance/readme.sh      (after `make`; about 3 min, most
#                                            of it `make demo`)
# Env:    README   the file to check (default README.md)
#         VERBOSE  1: print every block's output, not only a failed one's
# Output: one "PASS|FAIL|SKIP README.md:LINE: first command" line per block,
#         a failed block's last output lines, then "N passed, M failed".
# Exit:   0 when nothing failed, 1 otherwise.
set -uo pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export PATH=/usr/local/bin:$PATH:/usr/local/go/bin:/usr/sbin:/sbin

SELF=$(readlink -f "$0")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
README=$(readlink -f "${README:-$TOP/README.md}")
NAME=${README#"$TOP"/}

# ============================================================ outer part ===
if [ -z "${_READMESH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "readme.sh: run as root (the sandbox needs namespaces)" >&2; exit 1; }
	[ -r "$README" ] || { echo "readme.sh: $README not readable" >&2; exit 1; }
	# containerd's test installs crictl from the Go module proxy when it is
	# missing: do that here, where the proxy is reachable
	if command -v containerd >/dev/null && grep -q '^[^#]*test/acceptance/cri\.sh' "$README"; then
		"$TOP/test/acceptance/cri.sh" tools >/dev/null || echo "readme.sh: crictl could not be installed"
	fi
	exec env _READMESH_INNER=1 README="$README" \
		unshare --mount --propagation private -- "$SELF" "$@"
fi

# ============================================================ inner part ===
cd "$TOP" || exit 1
H=readme-host-$$ O=readme-out-$$
W=/run/readme-sandbox
pass=0 failed=0 skipped=0
t0=$(date +%s)

pids_in_netns() { # every process whose network namespace is /run/netns/$1
	local ino
	ino=$(stat -L -c %i "/run/netns/$1" 2>/dev/null) || return 0
	stat -L -c '%i %n' /proc/[0-9]*/ns/net 2>/dev/null | awk -v i="$ino" '$1 == i { split($2, a, "/"); print a[3] }'
}

cleanup() {
	local n p
	set +e
	if [ -e "/run/netns/$H" ]; then
		# what the README started and did not remove (a failed block)
		nsenter --net="/run/netns/$H" -- "$TOP/bin/berth" rm -af >/dev/null 2>&1
		command -v podman >/dev/null && nsenter --net="/run/netns/$H" -- podman rm -af -t 0 >/dev/null 2>&1
		nsenter --net="/run/netns/$H" -- "$TOP/bin/berth" system reset --force >/dev/null 2>&1
		for n in "$H" "$O"; do
			for p in $(pids_in_netns "$n"); do kill -9 "$p" 2>/dev/null; done
		done
	fi
	for n in "$H" "$O"; do [ -e "/run/netns/$n" ] && ip netns del "$n"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the sandbox's file systems: everything the README writes outside the
# checkout lands in tmpfs (/run is mounted first: it holds the overlays'
# upper directories)
mount -t tmpfs -o mode=755 tmpfs /run || exit 1
mkdir -p "$W" && cp "$README" "$W/README.md" || exit 1
for d in /etc /usr/local /opt /var; do
	u=$W/overlay${d//\//-}
	mkdir -p "$u/upper" "$u/work"
	mount -t overlay overlay -o "lowerdir=$d,upperdir=$u/upper,workdir=$u/work" "$d" ||
		{ echo "readme.sh: cannot mount an overlay over $d" >&2; exit 1; }
done
mount -t tmpfs -o mode=1777 tmpfs /tmp || exit 1
# Podman's overlay storage driver refuses an overlayfs below it
mkdir -p /var/lib/containers && mount -t tmpfs tmpfs /var/lib/containers || exit 1

# names resolve through the outside namespace (nothing answers there); the
# machine's containers.conf: the sandbox's subnets, no systemd
rm -f /etc/resolv.conf && echo "nameserver 198.18.0.2" >/etc/resolv.conf
mkdir -p /etc/containers && cp "$TOP/test/acceptance/readme/containers.conf" /etc/containers/ || exit 1
# cri.sh runs with a prefix of its own (namespaces, cgroups, work dirs), so
# it never meets a concurrent run of the test suite's
export PFX=brm

# --- the sandbox's network: host H (uplink0 198.18.0.1/24, default route to
# the outside) and outside O (eth0 198.18.0.2/24)
ip netns add "$H" && ip netns add "$O" &&
	ip -n "$H" link add uplink0 type veth peer name eth0 netns "$O" &&
	ip -n "$H" addr add 198.18.0.1/24 dev uplink0 &&
	ip -n "$O" addr add 198.18.0.2/24 dev eth0 &&
	ip -n "$H" link set lo up && ip -n "$O" link set lo up &&
	ip -n "$H" link set uplink0 up && ip -n "$O" link set eth0 up &&
	ip -n "$H" route add default via 198.18.0.2 ||
	{ echo "readme.sh: cannot create the sandbox's network namespaces" >&2; exit 1; }

# --- what a block runs before its commands: bash's strict mode, a report of
# the failing command, and the commands checked instead of run
cat >"$W/prelude.sh" <<'EOF'
set -eE -o pipefail
trap 'echo "readme.sh: command failed (exit $?): $BASH_COMMAND" >&2' ERR
make() {
	if [ "$*" = check ]; then
		ci_runs_make_check
	else
		command make "$@"
	fi
}
# make check is the test suite: CI runs it (.ci/run must run exactly that
# command); here only the target is checked
ci_runs_make_check() {
	local cmds
	cmds=$(sed -e 's/^[[:space:]]*//' -e '/^#/d' -e '/^$/d' .ci/run |
		grep -Ev '^(set|cd|export|unset|umask)( |$)')
	if [ "$cmds" != "make check" ] && [ "$cmds" != "exec make check" ]; then
		echo "readme.sh: .ci/run must run exactly 'make check'; it runs:" >&2
		printf '%s\n' "$cmds" | sed 's/^/    /' >&2
		return 1
	fi
	command make -n check >/dev/null || { echo "readme.sh: the Makefile has no target check" >&2; return 1; }
	echo "readme.sh: .ci/run runs exactly 'make check' (not run here: it is the whole suite)"
}
apt-get() {
	local p missing=""
	[ "${1:-}" = install ] || { echo "readme.sh: apt-get $*: only 'apt-get install' is checked" >&2; return 1; }
	shift
	for p in "$@"; do
		case $p in -*) continue ;; esac
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "readme.sh: apt-get install: not installed:$missing (make check installs them first)" >&2
		return 1
	fi
	echo "readme.sh: apt-get install: installed:$(printf ' %s' "$@" | sed 's/ -[^ ]*//g')"
}
EOF

# --- the README's fences: ```sh blocks are run, other fences must name
# their language. blocks.txt: one "LINE<TAB>FILE" per sh block.
mkdir -p "$W/blocks"
if ! awk -v dir="$W/blocks" '
	/^```/ {
		if (!infence) {
			lang = substr($0, 4); sub(/[ \t].*/, "", lang)
			if (lang == "" || lang == "bash" || lang == "shell" || lang == "console")
				printf "bad %d %s\n", NR, (lang == "" ? "(none)" : lang)
			infence = 1; start = NR
			if (lang == "sh") { file = sprintf("%s/%05d.sh", dir, NR); printf "block %d %s\n", NR, file; printf "" > file }
			else file = ""
		} else { infence = 0; if (file != "") close(file); file = "" }
		next
	}
	infence && file != "" { print > file }
	END { if (infence) printf "bad %d unclosed\n", start }
' "$W/README.md" >"$W/fences.txt"; then
	echo "readme.sh: cannot read the fences of $README" >&2
	exit 1
fi

if grep -q '^bad ' "$W/fences.txt"; then
	echo "FAIL $NAME: fences without a language (or bash/shell/console; use sh for commands, text for output): $(awk '/^bad/ {printf "line %s (%s) ", $2, $3}' "$W/fences.txt")"
	failed=$((failed + 1))
else
	echo "PASS $NAME: every fence names its language ($(grep -c '^block ' "$W/fences.txt") sh blocks)"
	pass=$((pass + 1))
fi

# --- run the blocks
while read -r kind line file; do
	[ "$kind" = block ] || continue
	first=$(sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$file" | head -1)
	label="$NAME:$line: $first"
	ncmd=$(sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' "$file" | wc -l)
	[ "$ncmd" -gt 1 ] && label="$label (+$((ncmd - 1)) lines)"
	if grep -Eq '^[[:space:]]*podman([[:space:]]|$)' "$file" && ! command -v podman >/dev/null; then
		echo "SKIP $label: podman is not installed"
		skipped=$((skipped + 1))
		continue
	fi
	if grep -q 'test/acceptance/cri\.sh' "$file" && ! command -v containerd >/dev/null; then
		echo "SKIP $label: containerd is not installed"
		skipped=$((skipped + 1))
		continue
	fi
	log=$W/block-$line.log
	cat "$W/prelude.sh" "$file" >"$W/run-$line.sh"
	b0=$(date +%s)
	timeout -k 10 900 nsenter --net="/run/netns/$H" -- bash "$W/run-$line.sh" </dev/null >"$log" 2>&1
	rc=$?
	[ "${VERBOSE:-0}" = 1 ] && sed 's/^/    /' "$log"
	if [ $rc = 0 ]; then
		echo "PASS $label [$(($(date +%s) - b0)) s]"
		pass=$((pass + 1))
	else
		echo "FAIL $label: exit $rc [$(($(date +%s) - b0)) s]; last lines of its output:"
		tail -n 40 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done <"$W/fences.txt"

# Podman's helper directory must hold copies: rootless Podman cannot follow
# a link into a checkout under /var/lib
helpers=/usr/local/libexec/berth
if [ -d "$helpers" ]; then
	links=$(find "$helpers" -type l -exec sh -c 'case $(readlink -f "$1") in "$2"/*) echo "$1" ;; esac' sh {} "$TOP" \;)
	if [ -z "$links" ]; then
		echo "PASS $helpers holds copies of bin/, no links into the checkout"
		pass=$((pass + 1))
	else
		echo "FAIL $helpers links into the checkout: $links"
		failed=$((failed + 1))
	fi
fi

echo "readme.sh: $skipped skipped, $(($(date +%s) - t0)) s"
echo "$pass passed, $failed failed"
[ "$failed" = 0 ]
