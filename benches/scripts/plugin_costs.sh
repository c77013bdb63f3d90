#!/usr/bin/env bash
# Per-language plugin costs, like for like: the same `auth` starter (`wasmgate plugin new`) in
# Rust, Python and JavaScript, built as its README says, then measured by `wasmgate plugin run`
# (compile, precompiled load, a call on a reused instance, a call on a fresh instance, memory
# per live instance). Writes benches/results/plugin-costs.md.
# usage: benches/scripts/plugin_costs.sh [KIND] [REPEAT]   (default: auth 20000)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
kind="${1:-auth}"
repeat="${2:-20000}"
out="$root/benches/results/plugin-costs.md"
mkdir -p "$(dirname "$out")"
cd "$root"
cargo build --release -p wasmgate --quiet
bash plugins/polyglot-tools.sh >/dev/null
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
W="$root/target/release/wasmgate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

row() { # lang artifact build-seconds
  local lang="$1" wasm="$2" build_s="$3" p="$work/$1"
  local text
  text="$("$W" plugin run "$wasm" --request "$p/request.json" --config "$p/config.json" --repeat "$repeat" 2>/dev/null)"
  echo "$text" > "$work/$lang.out"
  local size compile cw load reused fresh rss linear
  size=$(echo "$text" | sed -n 's/^plugin: .*), \([0-9]*\) bytes$/\1/p')
  compile=$(echo "$text" | sed -n 's/^compile:  \([0-9.]*\) ms.*/\1/p')
  cw=$(echo "$text" | sed -n 's/.*precompiled \([0-9]*\) bytes.*/\1/p')
  load=$(echo "$text" | sed -n 's/.*loads in \([0-9.]*\) ms.*/\1/p')
  reused=$(echo "$text" | sed -n 's/^time per call, reused instance: *p50 \([0-9.]* µs\)  p99 \([0-9.]* µs\).*/\1 \/ \2/p')
  fresh=$(echo "$text" | sed -n 's/^time per call, fresh instance: *p50 \([0-9.]* µs\)  p99 \([0-9.]* µs\).*/\1 \/ \2/p')
  rss=$(echo "$text" | sed -n 's/^memory:   \(.*\) RSS per live.*/\1/p')
  linear=$(echo "$text" | sed -n 's/.*linear memory \([0-9.]* MiB\) each.*/\1/p')
  printf '| %s | %s KB | %s MB | %s s | %s s | %s ms | %s | %s | %s | %s |\n' \
    "$lang" "$((size / 1000))" "$(awk "BEGIN{printf \"%.1f\", $cw/1e6}")" "$build_s" \
    "$(awk "BEGIN{printf \"%.2f\", $compile/1000}")" "$load" "$reused" "$fresh" "$rss" "$linear"
}

timed() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $s}"; }

rows=()
for lang in rust python js; do
  "$W" plugin new "cost-$lang" --kind "$kind" --lang "$lang" --dir "$work/$lang" >/dev/null
  case "$lang" in
    rust)
      cp "$root/Cargo.lock" "$work/rust/"
      b=$(cd "$work/rust" && CARGO_TARGET_DIR="$root/target/plugin-costs" timed cargo build --release --offline --target wasm32-wasip2)
      wasm="$root/target/plugin-costs/wasm32-wasip2/release/cost_rust.wasm" ;;
    *)
      b=$(cd "$work/$lang" && timed ./build.sh)
      wasm="$work/$lang/cost_$lang.wasm" ;;
  esac
  rows+=("$(row "$lang" "$wasm" "$b")")
done

{
  echo "# Plugin costs per language"
  echo
  echo "The same \`$kind\` starter (\`wasmgate plugin new --kind $kind --lang L\`: identical logic in each"
  echo "language), built as its README says and measured with \`wasmgate plugin run --repeat $repeat\`"
  echo "(release build). Regenerate: \`benches/scripts/plugin_costs.sh $kind $repeat\`."
  echo
  echo "Machine: $(nproc) cores, $(sed -n 's/^model name\t: //p' /proc/cpuinfo | head -1), $(uname -r); $(date -u +%Y-%m-%d)."
  echo "The machine is shared and noisy: compare the languages within this one run."
  echo
  echo "| language | .wasm | precompiled | build | compile | precompiled load | call, reused instance p50 / p99 | call, fresh instance p50 / p99 | RSS per live instance | linear memory per instance |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "- *build*: the project's own build (Rust: cold \`cargo build\` of the SDK and deps the first time, incremental after; Python: componentize-py; JS: componentize-js)."
  echo "- *compile*: wasmtime/cranelift compiling the component, what a gateway start pays without \`policy.cache-dir\`; *precompiled load*: what it pays with a warm cache."
  echo "- *call*: one policy call as the gateway makes it (request marshalling, deadline, instance pool, output checks). *fresh instance*: \`max-reuse = 1\`, i.e. instantiate + \`configure\` + the call."
  echo "- *RSS per live instance*: 16 configured instances alive at once, RSS growth divided by 16 (pooling allocator, copy-on-write images)."
} > "$out"
cat "$out"
