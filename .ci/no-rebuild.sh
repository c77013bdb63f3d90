#!/usr/bin/env bash
# A build that does not rebuild: `cargo build --workspace` run twice compiles nothing the second
# time, with the Python/JS plugin toolchains and without them (WASMGATE_POLYGLOT_TOOLS pointed
# at a missing directory, which host/build_polyglot.rs honours), and no build writes into the
# source tree (`git status --porcelain --ignored` shows nothing but target/, ignored files
# such as __pycache__ included). Cheap: after the tests, each pair is one incremental build of
# the host crate and one no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

tree() { git status --porcelain --ignored | grep -v '^!! target/$' || true; }
before="$(tree)"

twice() {
  local label="$1"
  cargo build --workspace --locked --quiet
  local out
  out="$(cargo build --workspace --locked 2>&1)"
  if grep -E '^\s*Compiling ' <<<"$out"; then
    echo "FAIL ($label): a second \`cargo build --workspace\` compiled the crates above; see \`cargo build -v\` for why" >&2
    exit 1
  fi
  echo "ok ($label): the second build compiled nothing"
}

twice "polyglot tools as installed"
WASMGATE_POLYGLOT_TOOLS=target/no-polyglot-tools twice "polyglot tools hidden"
twice "polyglot tools as installed, again"

after="$(tree)"
if [[ "$after" != "$before" ]]; then
  echo "FAIL: the build changed the source tree:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
if [[ -n "$after" ]]; then
  echo "note: the tree had uncommitted changes before the build (unchanged by it):"; echo "$after"
fi
echo "ok: no build wrote into the source tree"
