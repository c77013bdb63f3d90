#!/usr/bin/env sh
# Builds {{artifact}} with componentize-py (pinned by wasmgate; its plugins/polyglot-tools.sh
# installs it into target/polyglot-tools/venv, or use one on PATH).
set -eu
cd "$(dirname "$0")"
WASMGATE_DIR="${WASMGATE_DIR:-{{root}}}"
CPY="$WASMGATE_DIR/target/polyglot-tools/venv/bin/componentize-py"
[ -x "$CPY" ] || CPY="$(command -v componentize-py)" || { echo "componentize-py not found: run $WASMGATE_DIR/plugins/polyglot-tools.sh" >&2; exit 1; }
"$CPY" -d "$WASMGATE_DIR/wit" -w {{kind}} componentize app -p . -p "$WASMGATE_DIR/sdk/python" -o {{artifact}}
