#!/usr/bin/env bash
# Lints berth: gofmt, then staticcheck at a pinned release (its checks are
# in staticcheck.conf at the repository root). Exits non-zero on any
# finding. The first run downloads and builds staticcheck into Go's module
# and build caches.
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck 2026.2.2, the release that supports Go 1.26.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

# `lint.sh fetch`: only download and build staticcheck (scripts/deps.sh).
if [ "${1:-}" = fetch ]; then
	exec "$GO" run "$STATICCHECK" -version
fi

unformatted=$("$("$GO" env GOROOT)/bin/gofmt" -l .)
if [ -n "$unformatted" ]; then
	echo "lint: not gofmt-formatted (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi

"$GO" run "$STATICCHECK" ./...
