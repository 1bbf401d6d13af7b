#!/usr/bin/env bash
# rootless-compare.sh [REPS] -- berth's user-mode stack (bin/slirp4netns)
# side by side with slirp4netns 1.2 and a kernel veth, in one run, with the
# shared rootless benchmark (../shared/bench/rootless: topo.sh, bench.sh,
# summarize.py; read its README for the topology and the tests).
#
# Everything runs in a private network and mount namespace (its own /run),
# as an unprivileged user the benchmark creates and deletes (PFX"user").
# Results: bench/captured/rootless-<date>.tsv and .md.
# env: SHARED (default /work/shared/bench/rootless), PFX (busrb),
#      TESTS (default "out1 out4 in inlo http1"), IPERF_TIME (10),
#      VARIANTS (default "kernel slirp4netns rootlessport pasta berth
#      berth-podman"; also slirp4netns-podman: slirp4netns 1.2 with the
#      arguments Podman 4.3.1 passes (--enable-sandbox --enable-seccomp
#      --enable-ipv6), to compare with berth-podman; rootlessport = slirp4netns 1.2 with Podman 4.3.1's
#      default port handler, which loses the client's address; pasta = Debian's
#      passt package with Podman 5's arguments)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
SHARED=${SHARED:-/work/shared/bench/rootless}
REPS=${1:-1}
export PFX=${PFX:-busrb}
export TESTS=${TESTS:-out1 out4 in inlo http1}
VARIANTS=${VARIANTS:-kernel slirp4netns rootlessport pasta berth berth-podman}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$here/captured/rootless-$stamp
mkdir -p "$here/captured"

# The unprivileged user must be able to execute berth's slirp4netns: copy it
# out of the (possibly private) checkout.
[ -x "$top/bin/slirp4netns" ] || make -C "$top" build >/dev/null
bindir=/opt/$PFX/bin
mkdir -p "$bindir"
cp "$top/bin/slirp4netns" "$bindir/slirp4netns"
chmod -R a+rX "/opt/$PFX"

exec unshare --net --mount --propagation private -- bash -c '
set -u
ip link set lo up
mount -t tmpfs -o mode=755 none /run
SHARED=$1 OUT=$2 REPS=$3 BINDIR=$4; shift 4
export RESULTS=$OUT.tsv
"$SHARED/topo.sh" up >&2 || exit 1
for rep in $(seq 1 "$REPS"); do
  for v in "$@"; do export REP_NO=$rep
    case $v in
      kernel)       TESTS="$TESTS" LABEL=kernel "$SHARED/bench.sh" kernel 1 ;;
      slirp4netns)  LABEL=slirp4netns-1.2 "$SHARED/bench.sh" slirp4netns 1 ;;
      slirp4netns-podman) SLIRP_SANDBOX=1 SLIRP_IPV6=1 LABEL=slirp4netns-1.2-podman-args "$SHARED/bench.sh" slirp4netns 1 ;;
      rootlessport) FWD_MODE=rootlessport LABEL=slirp4netns+rootlessport "$SHARED/bench.sh" slirp4netns 1 ;;
      pasta)        command -v pasta >/dev/null && LABEL=pasta "$SHARED/bench.sh" pasta 1 ;;
      berth)        SLIRP4NETNS=$BINDIR/slirp4netns LABEL=berth "$SHARED/bench.sh" slirp4netns 1 ;;
      berth-podman) SLIRP4NETNS=$BINDIR/slirp4netns SLIRP_SANDBOX=1 SLIRP_IPV6=1 LABEL=berth-podman-args "$SHARED/bench.sh" slirp4netns 1 ;;
    esac
  done
done
python3 "$SHARED/summarize.py" "$RESULTS" >"$OUT.md"
DEL_USER=1 "$SHARED/topo.sh" down >&2
' bash "$SHARED" "$out" "$REPS" "$bindir" $VARIANTS
