#!/usr/bin/env sh
# Builds {{artifact}} with componentize-py (wasmgate pins {{py_tools}}), taken from
# $WASMGATE_POLYGLOT_TOOLS/venv/bin (what wasmgate's plugins/polyglot-tools.sh installs) or PATH.
set -eu
cd "$(dirname "$0")"
if [ -n "${WASMGATE_POLYGLOT_TOOLS:-}" ]; then PATH="$WASMGATE_POLYGLOT_TOOLS/venv/bin:$PATH"; fi
command -v componentize-py >/dev/null || {
  echo "componentize-py not found: \`pip install {{py_tools}}\`, or set WASMGATE_POLYGLOT_TOOLS to the directory wasmgate's plugins/polyglot-tools.sh fills (target/polyglot-tools)" >&2
  exit 1
}
componentize-py -d wit -w {{kind}} componentize app -p . -o {{artifact}}
