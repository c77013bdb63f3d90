#!/usr/bin/env sh
# Builds {{artifact}} with componentize-js (the versions wasmgate pins are in package.json).
# componentize-js is taken from, in order: $WASMGATE_POLYGLOT_TOOLS/node (what wasmgate's
# plugins/polyglot-tools.sh installs), ./node_modules (`npm install`), PATH.
# No WASI features: the gateway gives plugins nothing but the `host` interface.
set -eu
cd "$(dirname "$0")"
PATH="$PWD/node_modules/.bin:$PATH"
if [ -n "${WASMGATE_POLYGLOT_TOOLS:-}" ]; then PATH="$WASMGATE_POLYGLOT_TOOLS/node/node_modules/.bin:$PATH"; fi
CJS="$(command -v componentize-js)" || {
  echo "componentize-js not found: run \`npm install\` here, or set WASMGATE_POLYGLOT_TOOLS to the directory wasmgate's plugins/polyglot-tools.sh fills (target/polyglot-tools)" >&2
  exit 1
}
node build-js.mjs "$CJS" plugin.js wit {{kind}} {{artifact}}
