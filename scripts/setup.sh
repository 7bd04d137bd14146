#!/usr/bin/env bash
# Idempotent setup: the system's FUSE pieces, node_modules, build.
#   scripts/setup.sh                 libfuse.so.2 and fusermount, npm ci when stale, tsc
#   scripts/setup.sh --with-clients  also the real client tools the tests drive
#                                    (procps, node_exporter, psutil, collectd, librsvg2-bin, tmux)
#   scripts/setup.sh --with-bench    also what npm run bench compares against (lxcfs, taskset, cc)
#
# It never removes or replaces a package: what is missing is installed with apt-get only when
# apt-get's own simulation shows nothing would be removed; otherwise it says what is in the way
# and stops. On a system without apt-get it names what to install.
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

# What fuse-native needs from the system, checked by file, not by package name (Debian 12 calls
# the library libfuse2, Ubuntu 24.04 libfuse2t64, Fedora fuse-libs): the FUSE 2 library
# libfuse.so.2 it links, and a `fusermount`, which libfuse 2 runs to mount for a user who is not
# root and fuse-native runs to unmount. Either userland provides it: fuse (FUSE 2) or fuse3
# (Debian's fuse3 links fusermount to fusermount3; the two speak the same protocol).
have_libfuse2() {
  ldconfig -p 2>/dev/null | grep -q '[[:space:]]libfuse\.so\.2[[:space:]]' && return 0
  local f
  for f in /lib/libfuse.so.2 /usr/lib/libfuse.so.2 /lib64/libfuse.so.2 /usr/lib64/libfuse.so.2 /lib/*/libfuse.so.2 /usr/lib/*/libfuse.so.2; do
    [ -e "$f" ] && return 0
  done
  return 1
}
have_fusermount() {
  # libfuse 2 looks in /bin (its FUSERMOUNT_DIR, /usr/bin on merged-/usr systems), then PATH.
  command -v fusermount >/dev/null 2>&1 || [ -x /bin/fusermount ] || [ -x /usr/bin/fusermount ]
}

debian=0
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then debian=1; fi
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# The first of these package names this system's apt can install (libfuse2t64 renamed libfuse2).
candidate() {
  local p
  for p in "$@"; do
    if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then echo "$p"; return 0; fi
  done
  echo "$1"
}

need=()     # Debian packages to install
missing=()  # on other systems: what to install, in words
if ! have_libfuse2; then
  if [ "$debian" = 1 ]; then need+=("$(candidate libfuse2t64 libfuse2)")
  else missing+=("the FUSE 2 library libfuse.so.2 (Fedora/RHEL: fuse-libs, Arch: fuse2, openSUSE: libfuse2, Alpine: fuse)"); fi
fi
if ! have_fusermount; then
  if [ "$debian" = 1 ]; then
    if command -v fusermount3 >/dev/null 2>&1; then
      # fuse3 from somewhere that did not link fusermount: installing fuse would replace it.
      log "fusermount3 is installed but fusermount is not; libfuse 2 and fuse-native call fusermount:"
      log "  sudo ln -s $(command -v fusermount3) /usr/local/bin/fusermount"
      exit 1
    fi
    # fuse3 when apt has it: it is what desktops (flatpak, sshfs, gvfs) depend on, and fuse
    # (FUSE 2's fusermount) cannot be installed beside it.
    need+=("$(candidate fuse3 fuse)")
  else
    missing+=("fusermount (Fedora/RHEL: fuse or fuse3, Arch: fuse2 or fuse3, openSUSE: fuse, Alpine: fuse)")
  fi
fi
want() { have_pkg "$1" || need+=("$1"); }
if [ "$debian" = 1 ]; then
  if [ "$with_clients" = 1 ]; then
    # gcc, libc6-dev: the trace tests build a small C program with a known fault pattern.
      # zsh: the completion test has zsh read the generated _kscrubfs.
    for p in procps prometheus-node-exporter python3-psutil collectd-core librsvg2-bin tmux util-linux curl gcc libc6-dev zsh; do want "$p"; done
  fi
  if [ "$with_bench" = 1 ]; then
    # LXCFS is the reference FUSE procfs the read benchmark compares with; its service is kept
    # from starting like the others (the bench runs its own instance on its own directory).
    for p in lxcfs util-linux gcc libc6-dev; do want "$p"; done
  fi
elif [ "$with_clients" = 1 ] || [ "$with_bench" = 1 ]; then
  for t in free vmstat prometheus-node-exporter rsvg-convert tmux curl cc unshare; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  python3 -c 'import psutil' 2>/dev/null || missing+=("python3's psutil")
  command -v collectd >/dev/null 2>&1 || [ -x /usr/sbin/collectd ] || missing+=("collectd")
  if [ "$with_bench" = 1 ]; then command -v lxcfs >/dev/null 2>&1 || missing+=("lxcfs"); fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  log "this is not a Debian system (no apt-get); install with your package manager:"
  for m in "${missing[@]}"; do log "  - $m"; done
  exit 1
fi

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: ${need[*]} (run as root, or: sudo apt-get install --no-install-recommends ${need[*]})"
    exit 1
  fi
  bash scripts/apt-install.sh "${need[@]}"
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
  # prepare: tsc, then the man page and completions generated from the built CLI, and the stamp.
  npm run --silent prepare >&2
fi
# The FUSE binding (prepare builds it too): again when its source changed since.
sh scripts/build-native.sh
