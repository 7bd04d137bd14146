#!/usr/bin/env bash
# Idempotent setup: system FUSE packages, node_modules, build.
#   scripts/setup.sh                 fuse + libfuse2, npm ci when stale, tsc
#   scripts/setup.sh --with-clients  also the real client tools the tests drive
#                                    (procps, node_exporter, psutil, collectd, librsvg2-bin, tmux)
set -euo pipefail
cd "$(dirname "$0")/.."

with_clients=0
for arg in "$@"; do
  case "$arg" in
    --with-clients) with_clients=1 ;;
    *) echo "setup.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: install only what is missing, so a second run costs nothing.
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
want() { have_pkg "$1" || need+=("$1"); }
want fuse
want libfuse2
if [ "$with_clients" = 1 ]; then
  for p in procps prometheus-node-exporter python3-psutil collectd-core librsvg2-bin tmux util-linux curl; do want "$p"; done
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})"
    exit 1
  fi
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # node_exporter/collectd would start services; policy-rc.d keeps them from running here.
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
# A package's postinst may have started a system node_exporter on :9100; tests pick their own port.

# node_modules: reinstall when missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
fi

# Build when any source is newer than the last build.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src test tsconfig.json package.json -newer "$stamp" -print -quit)" ]; then
  log "tsc"
  rm -rf dist
  npx tsc -p tsconfig.json
  touch "$stamp"
fi
