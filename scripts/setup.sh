#!/usr/bin/env bash
# Idempotent setup: system FUSE packages, node_modules, build.
#   scripts/setup.sh                 fuse + libfuse2, npm ci when stale, tsc
#   scripts/setup.sh --with-clients  also the real client tools the tests drive
#                                    (procps, node_exporter, psutil, collectd, librsvg2-bin, tmux)
#   scripts/setup.sh --with-bench    also what npm run bench compares against (lxcfs, taskset, cc)
set -euo pipefail
cd "$(dirname "$0")/.."

with_clients=0
with_bench=0
for arg in "$@"; do
  case "$arg" in
    --with-clients) with_clients=1 ;;
    --with-bench) with_bench=1 ;;
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
  # gcc, libc6-dev: the trace tests build a small C program with a known fault pattern.
  for p in procps prometheus-node-exporter python3-psutil collectd-core librsvg2-bin tmux util-linux curl gcc libc6-dev; do want "$p"; done
fi
if [ "$with_bench" = 1 ]; then
  # LXCFS is the reference FUSE procfs the read benchmark compares with; its service is kept
  # from starting like the others (the bench runs its own instance on its own directory).
  for p in lxcfs util-linux gcc libc6-dev; do want "$p"; done
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})"
    exit 1
  fi
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt may be running (unattended upgrades, a second setup): wait for its lock.
  apt_opts=(-o DPkg::Lock::Timeout=300)
  # prometheus-node-exporter and collectd-core ship services that their postinst starts
  # (invoke-rc.d / deb-systemd-invoke). The tests run their own instances on their own ports:
  # a policy-rc.d that says 101 ("action forbidden") keeps every service from starting. Ours
  # is temporary; a machine that already has one (containers do) keeps it untouched.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# kscrubfs setup.sh: no service starts during this install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get "${apt_opts[@]}" update -qq >&2
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if [ "$with_clients" = 1 ]; then
  # A machine where a service did start before (no policy-rc.d then) may run a system
  # node_exporter on :9100 or a collectd: harmless, the tests choose a free port and their own
  # collectd.conf. Say so, so that nobody mistakes it for ours.
  if pgrep -f '^/usr/bin/prometheus-node-exporter( |$)' >/dev/null; then
    log "note: a system prometheus-node-exporter is running (not ours; the tests use their own port)"
  fi
  if pgrep -f '^/usr/sbin/collectd( |$)' >/dev/null; then
    log "note: a system collectd is running (not ours; the tests run their own with their own config)"
  fi
fi

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
