#!/usr/bin/env sh
# Builds {{artifact}} with componentize-js (pinned by wasmgate; its plugins/polyglot-tools.sh
# installs it into target/polyglot-tools/node). No WASI features: the gateway gives plugins
# nothing but the `host` interface.
set -eu
cd "$(dirname "$0")"
WASMGATE_DIR="${WASMGATE_DIR:-{{root}}}"
TOOLS="$WASMGATE_DIR/target/polyglot-tools/node"
[ -d "$TOOLS/node_modules/@bytecodealliance/componentize-js" ] || { echo "componentize-js not found: run $WASMGATE_DIR/plugins/polyglot-tools.sh" >&2; exit 1; }
node "$WASMGATE_DIR/plugins/polyglot-tools/build-js.mjs" "$TOOLS" plugin.js "$WASMGATE_DIR/wit" {{kind}} {{artifact}}
