#!/usr/bin/env bash
# Installs the pinned toolchains that build the Python and JavaScript plugins, into
# target/polyglot-tools/ (outside the source tree, so host/build.rs's change detection never
# scans them):
#   venv/   componentize-py (plugins/polyglot-tools/requirements.txt)
#   node/   componentize-js + jco (plugins/polyglot-tools/package.json + package-lock.json, npm ci)
# Idempotent: each part is redone only when its pin file changed (a stamp holds its hash), so
# a second run takes well under a second. host/build.rs looks for the tools here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pins="$root/plugins/polyglot-tools"
tools="$root/target/polyglot-tools"
mkdir -p "$tools"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Python: a venv with componentize-py.
want="$(hash_of "$pins/requirements.txt")"
if [[ "$(cat "$tools/venv.stamp" 2>/dev/null)" != "$want" || ! -x "$tools/venv/bin/componentize-py" ]]; then
  echo "polyglot-tools: installing componentize-py into $tools/venv"
  rm -rf "$tools/venv" "$tools/venv.stamp"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r "$pins/requirements.txt"
  echo "$want" > "$tools/venv.stamp"
fi

# JavaScript: componentize-js and jco from the committed lockfile.
want="$(hash_of "$pins/package.json" "$pins/package-lock.json")"
if [[ "$(cat "$tools/node.stamp" 2>/dev/null)" != "$want" || ! -d "$tools/node/node_modules/@bytecodealliance/componentize-js" ]]; then
  echo "polyglot-tools: installing componentize-js and jco into $tools/node (npm ci)"
  rm -rf "$tools/node" "$tools/node.stamp"
  mkdir -p "$tools/node"
  cp "$pins/package.json" "$pins/package-lock.json" "$tools/node/"
  (cd "$tools/node" && npm ci --silent --no-audit --no-fund)
  echo "$want" > "$tools/node.stamp"
fi

"$tools/venv/bin/componentize-py" --version
echo "componentize-js $(node -p "require('$tools/node/node_modules/@bytecodealliance/componentize-js/package.json').version")," \
  "jco $(node -p "require('$tools/node/node_modules/@bytecodealliance/jco/package.json').version")"
