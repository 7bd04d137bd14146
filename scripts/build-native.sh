#!/bin/sh
# Build native/fuse-native.c — fuse-native's C with the caller's uid/gid/pid and the kernel's
# FUSE_INTERRUPT passed to JS (native/README.md) — into native/build/Release/fuse.node, which
# src/fuse/binding.ts then loads in place of fuse-native's prebuild. Run by prepare (so a
# packed tarball carries the build) and by setup.sh when the build is missing or stale.
#
# It needs gcc/make/python3 (node-gyp's), Node's headers (the node install's include/node)
# and the FUSE 2 headers fuse-shared-library ships. Without them it says so and exits 0: the
# daemon then runs on the stock prebuild, without per-user caps or cancellation.
set -u
cd "$(dirname "$0")/../native"
out=build/Release/fuse.node
if [ -f "$out" ] && [ "$out" -nt fuse-native.c ] && [ "$out" -nt binding.gyp ]; then exit 0; fi

say() { printf 'build-native: %s\n' "$*" >&2; }
fallback() {
  say "$1; the daemon uses fuse-native's prebuild (no per-user handle caps, no cancellation of a running command by a signal)"
  rm -rf build
  exit 0
}

# node-gyp: the one npm runs install scripts with, else the one bundled with this npm.
gyp="${npm_config_node_gyp:-}"
if [ -z "$gyp" ] || [ ! -f "$gyp" ]; then
  npm_cli=$(readlink -f "$(command -v npm 2>/dev/null || echo /nonexistent)")
  gyp="$(dirname "$npm_cli")/../node_modules/node-gyp/bin/node-gyp.js"
fi
[ -f "$gyp" ] || fallback "node-gyp not found (it comes with npm)"
for tool in cc make python3; do
  command -v "$tool" >/dev/null 2>&1 || fallback "$tool not found"
done
# Node's own headers, so that node-gyp downloads nothing.
nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$nodedir/include/node/node_api.h" ] || fallback "Node's headers are not in $nodedir/include/node"

log=$(mktemp)
if node "$gyp" rebuild --nodedir="$nodedir" >"$log" 2>&1 && [ -f "$out" ]; then
  rm -f "$log"
  exit 0
fi
tail -n 20 "$log" >&2
rm -f "$log"
fallback "building native/fuse-native.c failed"
