#!/bin/sh
# Builds the hello-image example, a ~1 MB OCI image made of Debian's static busybox and a CGI
# script, with Debian tools only (umoci, skopeo; no Docker engine). Usage:
#
#   examples/hello-image/build.sh [OUT.tar] [REGISTRY_REF]
#
# OUT.tar       OCI archive written (default: ./hello-image.tar)
# REGISTRY_REF  also pushed there over plain HTTP, e.g. 127.0.0.1:5000/hello:1
#
# Needs: apt-get install busybox-static umoci skopeo
# The image listens on $PORT (and $HOST when set, else every address), as a sandbox must.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$PWD/hello-image.tar}
push=${2:-}
for tool in umoci skopeo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
busybox=/bin/busybox
if ! "$busybox" --list 2>/dev/null | grep -qx httpd; then
  echo "build.sh: $busybox has no httpd applet (apt-get install busybox-static)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:1"
umoci unpack --image "$layout:1" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/www/cgi-bin" "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh httpd head cat env; do ln -s busybox "$rootfs/bin/$applet"; done
cp "$here/index.cgi" "$rootfs/www/cgi-bin/index.cgi"
chmod 0755 "$rootfs/www/cgi-bin/index.cgi"
chmod 1777 "$rootfs/tmp"
umoci repack --image "$layout:1" "$work/bundle"
umoci config --image "$layout:1" \
  --config.entrypoint /bin/sh \
  --config.cmd -c --config.cmd 'exec httpd -f -p "${HOST:-0.0.0.0}:${PORT:?PORT is not set}" -h /www' \
  --config.env PATH=/bin \
  --config.workingdir /www
umoci gc --layout "$layout"
rm -f "$out"
skopeo copy --quiet "oci:$layout:1" "oci-archive:$out:hello:1"
echo "built $out"
if [ -n "$push" ]; then
  skopeo copy --quiet --dest-tls-verify=false "oci-archive:$out" "docker://$push"
  echo "pushed $push"
fi
