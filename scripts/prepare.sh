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
node_modules/.bin/tsc -p tsconfig.json
# The FUSE binding with caller identity and interrupts (falls back to the stock one, saying so).
sh scripts/build-native.sh
mkdir -p man completions
node dist/src/cli/main.js man > man/kscrubfs.1
node dist/src/cli/main.js completion bash > completions/kscrubfs.bash
node dist/src/cli/main.js completion zsh > completions/_kscrubfs
touch dist/.build-stamp
