#!/bin/sh
# npm's prepare (npm ci, npm pack, npm i -g <git url>): build, then the man page and the shell
# completions generated from the built CLI, and the stamp scripts/setup.sh builds against.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/tsc ]; then
  # npm i -g <git url> runs prepare in its clone without the devDependencies (npm/cli#8440: the
  # nested install inherits --global and installs nothing). Install them here, locally;
  # --ignore-scripts, or this install would run prepare again.
  env -u npm_config_global -u npm_config_prefix -u npm_config_location -u npm_config_allow_scripts \
    npm install --no-save --no-audit --no-fund --include=dev --ignore-scripts >&2
fi
# tsc unless the last build is newer than every source (as scripts/setup.sh decides): npm i -g
# <git url> runs prepare twice in its clone, to install and again to pack.
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src test tsconfig.json package.json -newer "$stamp" -print -quit)" ]; then
  node_modules/.bin/tsc -p tsconfig.json
fi
# The FUSE binding with caller identity and interrupts (falls back to the stock one, saying so).
sh scripts/build-native.sh
mkdir -p man completions
node dist/src/cli/main.js man > man/kscrubfs.1
node dist/src/cli/main.js completion bash > completions/kscrubfs.bash
node dist/src/cli/main.js completion zsh > completions/_kscrubfs
touch "$stamp"

# npm i -g <git url> with npm 11 (pacote < 22): to build a git dependency npm runs `npm install`
# in a temporary clone, and that install inherits the outer npm_config_global=true, so it is
# `npm i -g .` — it links the clone into the global node_modules in place of the directory the
# outer install is filling (npm/cli#6984, fixed by pacote 22's --global=false). The outer install
# then writes the package through that link into the clone, which npm deletes, and runs
# fuse-native's install script in a directory that no longer exists. Seen from here: pacote's
# nested install (it sets _PACOTE_NO_PREPARE_) left the global kscrubfs a link to this very
# clone. Put the package there as a tarball install would, so the outer install finds a real
# directory with its dependencies in place; it then unpacks the same files over it and runs
# fuse-native's install script itself (hence --ignore-scripts here). `npm link` in a checkout
# is not pacote's and is left alone. The link goes first: npm names the directory it moves aside
# after the path, and the nested install's is still there.
global=${npm_config_global_prefix:-}/lib/node_modules/kscrubfs
if [ -n "${_PACOTE_NO_PREPARE_:-}" ] && [ -n "${npm_config_global_prefix:-}" ] && [ -L "$global" ] \
  && [ "$(readlink -f "$global")" = "$(pwd -P)" ]; then
  echo "prepare: npm linked this temporary clone as the global kscrubfs; installing the package there instead" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  npm pack --ignore-scripts --silent --pack-destination "$tmp" >/dev/null
  rm "$global"
  env -u npm_config_allow_scripts \
    npm install --global --prefix "$npm_config_global_prefix" --ignore-scripts --no-audit --no-fund "$tmp"/kscrubfs-*.tgz >&2
fi
