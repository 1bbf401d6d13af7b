#!/usr/bin/env bash
# Builds Docker Compose v2 (the Go rewrite, published as the module
# github.com/docker/compose/v5) at a pinned version from the Go module proxy,
# for the acceptance tests and benchmarks; Debian 12 packages only the
# Python docker-compose 1.29. The binary lands in .cache/tools/ (reused by
# later runs) and its path is printed.
#
#   scripts/compose-v2.sh            # prints .cache/tools/docker-compose-v5.6.0
# Env: COMPOSE_V2_VERSION  the module version (default v5.6.0)
set -euo pipefail
VERSION=${COMPOSE_V2_VERSION:-v5.6.0}
MOD=github.com/docker/compose/v5
TOP=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
OUT=$TOP/.cache/tools/docker-compose-$VERSION
if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# Its go.mod has exclude directives, which `go install mod@version` refuses:
# build in a copy of the module's source, with its own go.mod.
src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$MOD@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "compose-v2: go mod download $MOD@$VERSION gave no source directory" >&2; exit 1; }
cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
echo "compose-v2: building $MOD@$VERSION (a minute or more on first use)" >&2
mkdir -p "$(dirname "$OUT")"
(cd "$work/src" && go build -trimpath -tags e2e -ldflags "-w -X $MOD/internal.Version=$VERSION" -o "$OUT.tmp" ./cmd)
mv "$OUT.tmp" "$OUT"
echo "$OUT"
