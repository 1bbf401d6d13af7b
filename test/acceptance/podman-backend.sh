#!/usr/bin/env bash
# Runs the guide's scenarios (seed-scenarios.sh) with real Podman 4.3.1 using
# berth as its network backend: a helper directory holds berth as `netavark`
# and berth's DNS server as `aardvark-dns` (AARDVARK=PATH
# runs another aardvark-dns, e.g. Debian's, beside berth instead), and berth as `slirp4netns`,
# Podman's network_cmd_path for rootless containers (SLIRP4NETNS=/usr/bin/slirp4netns
# runs the real slirp4netns instead).
# Everything runs in namespaces the scenario script creates. The helper
# directory lives under /opt: rootless Podman 4.3 cannot see /var/lib paths
# from inside its rootless network namespace (S10 fails with ENOENT there).
# Usage: sudo test/acceptance/podman-backend.sh   (ONLY="1 2" for a subset)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ -x "$top/bin/berth" ] && [ -x "$top/bin/slirp4netns" ] || make -C "$top" >/dev/null
helpers=${HELPERS:-/opt/berth-acceptance/helpers}
rm -rf "$helpers"
mkdir -p "$helpers"
cp "$top/bin/berth" "$helpers/netavark"
# Copies, never links into the checkout: rootless Podman resolves helpers
# from inside its rootless network namespace, where the checkout's path may
# not exist (a clone under /var/lib, for one).
cp "${AARDVARK:-$top/bin/aardvark-dns}" "$helpers/aardvark-dns"
cp "$top/bin/slirp4netns" "$helpers/slirp4netns"
export SLIRP4NETNS=${SLIRP4NETNS:-$helpers/slirp4netns}
chmod -R a+rX "$(dirname "$helpers")"
export HELPER_DIR=$helpers PFX=${PFX:-bacc} LOG_DIR=${LOG_DIR:-/var/tmp/berth-acceptance-logs}
exec "$here/seed-scenarios.sh"
