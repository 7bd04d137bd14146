#!/usr/bin/env bash
# scripts/apt-install.sh PKG...: install Debian packages (as root) only if that removes nothing.
#
# apt-get resolves a conflict by removing the other side: on Debian 12, installing fuse removes
# fuse3, and with it flatpak, xdg-desktop-portal, sshfs and gvfs-fuse. So apt-get simulates the
# install first (-s); if its plan removes (Remv) any package, nothing is installed and the plan is
# shown. Exit 0 when installed, 1 when refused or apt-get failed.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }
[ "$#" -gt 0 ] || { log "apt-install.sh: no package named"; exit 2; }

export DEBIAN_FRONTEND=noninteractive
# Another apt may be running (unattended upgrades, a second setup): wait for its lock.
apt_opts=(-o DPkg::Lock::Timeout=300)
install_opts=(-y -qq --no-install-recommends)

# apt's lists from the last day are used as they are; older or missing ones (a fresh container
# has none), or lists that do not know a package yet, are refreshed once.
simulate() { apt-get "${apt_opts[@]}" -s install "${install_opts[@]}" "$@" 2>&1; }
updated=0
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
  apt-get "${apt_opts[@]}" update -qq >&2
  updated=1
fi
if ! plan=$(simulate "$@") && [ "$updated" = 0 ]; then
  apt-get "${apt_opts[@]}" update -qq >&2
  plan=$(simulate "$@") || true
fi
if ! printf '%s\n' "$plan" | grep -q '^Inst \|^0 upgraded'; then
  log "apt-get cannot install $*:"
  printf '%s\n' "$plan" | sed 's/^/  /' >&2
  exit 1
fi
removed=$(printf '%s\n' "$plan" | awk '$1 == "Remv" { print $2 }')
if [ -n "$removed" ]; then
  log "refusing to install $*: apt-get would remove $(printf '%s' "$removed" | tr '\n' ' ')"
  log "(they conflict; kscrubfs never removes a package. What it needs is libfuse.so.2 and a"
  log "fusermount, from either fuse or fuse3: install the side that fits this system by hand.)"
  exit 1
fi

log "installing Debian packages: $*"
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
# --no-remove: should the plan change between the simulation and now, apt-get stops instead.
apt-get "${apt_opts[@]}" install --no-remove "${install_opts[@]}" "$@" >&2
