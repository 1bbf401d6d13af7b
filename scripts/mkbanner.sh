#!/usr/bin/env bash
# Builds the demo's "banner" image without network access: a root
# filesystem with Debian's static busybox (/bin/busybox and applet links)
# and /www/index.html ("Hello from berth"), imported as localhost/banner
# with busybox httpd serving /www on port 80.
#
#   scripts/mkbanner.sh [BERTH [IMAGE-NAME]]   (run as root for /var/lib/berth,
#                                               or pass --root through BERTH_ROOT)
#
# BERTH defaults to bin/berth, IMAGE-NAME to banner. The tarball alone:
# MKBANNER_TAR_ONLY=path/to/rootfs.tar scripts/mkbanner.sh
set -euo pipefail
cd "$(dirname "$0")/.."
berth=${1:-bin/berth}
name=${2:-banner}

bb=""
for p in /bin/busybox /usr/bin/busybox; do
	# A dynamic binary names its loader (ld-linux, ld-musl); the static one does not.
	if [ -x "$p" ] && ! LC_ALL=C grep -q '/ld-linux\|/ld-musl' "$(readlink -f "$p")"; then bb=$p; break; fi
done
if [ -z "$bb" ]; then
	echo "mkbanner: no static busybox; install it: apt-get install busybox-static" >&2
	exit 1
fi

work=$(mktemp -d /tmp/bimg-banner.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,dev,proc,sys,etc,root,run,var,www}
install -d -m 1777 "$rootfs/tmp"
install -m 0755 "$bb" "$rootfs/bin/busybox"
for a in sh ash httpd echo sleep cat ls ip ping wget nc hostname true false env id ps kill \
	mkdir rm grep sed nslookup ifconfig route printf test head tail touch uname date wc; do
	ln -s busybox "$rootfs/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
echo "Hello from berth" >"$rootfs/www/index.html"

tarball=${MKBANNER_TAR_ONLY:-$work/rootfs.tar}
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf "$tarball" .
if [ -n "${MKBANNER_TAR_ONLY:-}" ]; then
	echo "$tarball"
	exit 0
fi
"$berth" import -q \
	--change 'CMD ["httpd","-f","-v","-p","80","-h","/www"]' \
	--change 'EXPOSE 80' \
	--message 'berth demo banner: busybox httpd on port 80' \
	"$tarball" "$name"
