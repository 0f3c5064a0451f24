#!/bin/sh
# Runs a local Docker registry (Debian's docker-registry) on 127.0.0.1:5000 in the foreground,
# with its storage in ./.dirigent/registry (or $1). Ctrl-C stops it. Loopback registries are
# spoken to over plain HTTP by the workers, as Docker does, so no TLS set-up is needed.
#
#   examples/hello-image/registry.sh [STORAGE_DIR] [ADDRESS]
#
# Needs: apt-get install docker-registry
set -eu
dir=$(mkdir -p "${1:-.dirigent/registry}" && cd "${1:-.dirigent/registry}" && pwd)
addr=${2:-127.0.0.1:5000}
command -v docker-registry >/dev/null 2>&1 || { echo "registry.sh: docker-registry not found (apt-get install docker-registry)" >&2; exit 1; }
cat > "$dir/config.yml" <<CONFIG
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: "$addr" }
CONFIG
echo "registry on http://$addr, storage in $dir/data"
exec docker-registry serve "$dir/config.yml"
