#!/usr/bin/env bash
# Runs berth's whole test suite: vet, unit tests, and (as root) the kernel
# tests. The suite runs inside a fresh network and mount namespace, a second
# guard on top of each test's own namespaces: nothing can reach the machine's
# real network. Each privileged test creates and removes its own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests run `go` themselves (builds, go list): put the toolchain on PATH even
# under sudo, which drops /usr/local/go/bin.
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export PATH="$(dirname "$GO"):$PATH:/usr/sbin:/sbin"

go vet ./...
scripts/lint.sh

if [ "$(id -u)" != 0 ]; then
	echo "not root: running unit tests only (kernel tests skip with a reason)"
	exec go test -count=1 ./...
fi

# The kernel tests share two cores with whatever else runs; -p 1 keeps
# packages from running their kernel tests at the same time.
# Then the guide's scenarios twice: with real Podman 4.3.1 on berth
# (test/acceptance/podman-backend.sh, rootless S10 included; when podman is
# installed) and with berth alone (test/acceptance/guide.sh). Both run even
# if the first fails; set BERTH_ACCEPTANCE=0 to skip them, ACCEPTANCE_ONLY /
# GUIDE_ONLY to pick scenarios by number. Then podman-compose on berth
# (test/acceptance/compose.sh, when podman-compose is installed), and
# Docker's CLI, docker-compose and Compose v2 on berth's Docker API
# (test/acceptance/docker-api.sh, DOCKER_API_ONLY). Then, when
# containerd is installed, test/acceptance/cri.sh: the CNI plugins under
# containerd's CRI (BERTH_CRI=0 skips it).
# cri.sh needs crictl, which scripts/deps.sh builds from the Go module proxy
# (reachable here, not inside the private netns below).
if [ "${BERTH_ACCEPTANCE:-1}" != 0 ] && [ "${BERTH_CRI:-1}" != 0 ] && command -v containerd >/dev/null; then
	test/acceptance/cri.sh tools || echo "crictl could not be installed: cri.sh will fail"
fi
if [ "${BERTH_ACCEPTANCE:-1}" != 0 ] && [ -x /usr/bin/docker ] && command -v docker-compose >/dev/null; then
	COMPOSE_V2=$(scripts/compose-v2.sh) || echo "Compose v2 could not be built: docker-api.sh will fail"
	export COMPOSE_V2
fi
exec unshare --net --mount --propagation private -- bash -c '
	set -e
	ip link set lo up
	export BERTH_PRIVILEGED_TESTS=1
	# No test may reach a firewalld of the machine: with a system bus
	# set to nothing, berth does not look for one (the firewalld tests
	# start their own bus and firewalld in their namespaces).
	export DBUS_SYSTEM_BUS_ADDRESS=
	# test/reliability (short mode) appends one line of figures per
	# scenario here; they are printed whatever the outcome.
	export BERTH_RELIABILITY_REPORT=$(mktemp)
	gorc=0
	go test -count=1 -p 1 -timeout 30m "$@" ./... || gorc=$?
	cat "$BERTH_RELIABILITY_REPORT"; rm -f "$BERTH_RELIABILITY_REPORT"
	[ $gorc = 0 ] || exit $gorc
	rc=0
	if [ "${BERTH_ACCEPTANCE:-1}" != 0 ]; then
		if command -v podman >/dev/null; then
			ONLY="${ACCEPTANCE_ONLY:-}" test/acceptance/podman-backend.sh || rc=1
		fi
		ONLY="${GUIDE_ONLY:-}" test/acceptance/guide.sh || rc=1
		# Every shell command of README.md, in a sandbox of its own.
		test/acceptance/readme.sh || rc=1
		# podman-compose 1.0.3 (Debian) driving berth, when installed
		# (COMPOSE_ONLY picks scenarios by number).
		if command -v podman-compose >/dev/null; then
			ONLY="${COMPOSE_ONLY:-}" test/acceptance/compose.sh || rc=1
		fi
		# The docker CLI (20.10) and docker-compose (1.29) of Debian,
		# and Compose v2 (built above), on the Docker API of berth, when
		# installed (DOCKER_API_ONLY
		# picks scenarios by number).
		if [ -x /usr/bin/docker ] && command -v docker-compose >/dev/null; then
			ONLY="${DOCKER_API_ONLY:-}" test/acceptance/docker-api.sh || rc=1
		fi
		# CNI plugins under containerd 1.6 CRI (crictl), when containerd
		# is installed: the reference plugins, then the berth plugins
		# (about 5 s each; exit 77 is a skip). BERTH_CRI=0 skips it.
		if [ "${BERTH_CRI:-1}" != 0 ] && command -v containerd >/dev/null; then
			for cni in reference $([ -d cmd/berth-cni ] && echo berth); do
				r=0; CNI=$cni test/acceptance/cri.sh || r=$?
				[ $r = 0 ] || [ $r = 77 ] || rc=1
			done
		fi
	fi
	exit $rc
' bash "$@"
