#!/usr/bin/env bash
# Builds a busybox root filesystem offline, for the test and benchmark
# images: Debian's static busybox (/bin/busybox and its applet links),
# root and nobody in /etc/passwd and /etc/group, empty /data and /www, a
# sticky /tmp; with TAR, also a tarball of it (owned by root, for `berth
# import` or `podman import`).
#
#   scripts/mkbusybox.sh DIR [TAR]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: mkbusybox.sh DIR [TAR]" >&2; exit 2; }
d=$1 tar=${2:-}
bb=$(readlink -f /bin/busybox)
if [ ! -x "$bb" ] || LC_ALL=C grep -q '/ld-linux\|/ld-musl' "$bb"; then
	echo "mkbusybox: no static busybox in /bin; install it: apt-get install busybox-static" >&2
	exit 1
fi
mkdir -p "$d"/{bin,etc,root,proc,sys,dev,run,data,www}
install -d -m 1777 "$d/tmp"
install -m 0755 "$bb" "$d/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
if [ -n "$tar" ]; then
	tar --numeric-owner --owner=0 --group=0 -C "$d" -cf "$tar" .
fi
