#!/usr/bin/env bash
# Captures Podman 4.3.1's `podman network` output for the cases in cases.txt
# into golden/, for berth's golden tests (internal/cli/golden_test.go).
# Podman runs with private storage, a private containers.conf and inside its
# own network namespace, on a copy of fixtures/ or on an empty directory; it
# never sees the machine's network or its real configuration.
#
#   usage: internal/cli/testdata/podman/capture.sh   (as root)
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d /tmp/pc.XXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/containers.conf" <<'CONF'
[network]
network_backend = "netavark"
CONF
mkdir -p golden
rm -f golden/*.golden
i=0
while IFS=$'\t' read -r name setup args; do
	[ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
	i=$((i + 1))
	d="$work/$i"
	mkdir -p "$d"/{root,runroot,tmp,nets}
	if [ "$setup" = fixtures ]; then cp fixtures/*.json "$d/nets/"; fi
	before=$(ls "$d/nets")
	set +e
	out=$(cd "$d" && eval "CONTAINERS_CONF=$work/containers.conf unshare --net --mount --propagation private podman --root $d/root --runroot $d/runroot --tmpdir $d/tmp --network-config-dir $d/nets $args" 2>"$d/stderr")
	rc=$?
	set -e
	{
		printf -- '-- args --\n%s\n-- rc --\n%s\n-- stdout --\n' "$args" "$rc"
		[ -n "$out" ] && printf '%s\n' "$out"
		printf -- '-- stderr --\n'
		grep -v 'level=warning' "$d/stderr" || true
		for f in $(ls "$d/nets"); do
			case "$f" in *.json) ;; *) continue ;; esac
			if ! grep -qx "$f" <<<"$before"; then
				printf -- '-- file %s --\n' "$f"
				cat "$d/nets/$f"
			fi
		done
	} >"golden/$name.golden"
done <cases.txt
echo "captured $(ls golden | wc -l) cases with $(podman --version)"
