#!/usr/bin/env bash
# p99 of requests during a reload storm vs without: wrk drives the gateway (one rewrite plugin,
# header-echo) while a loop ships a new plugin file by rename every 100 ms; then the same
# without reloads. Also prints how many reloads happened.
#
# Run with: benches/scripts/reload_storm.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${1:-10}
cargo build --release -p wasmgate >/dev/null
B=$PWD/target/release/wasmgate
V1=$PWD/target/wasm-plugins/wasm32-wasip2/plugin/header_echo.wasm
V2=$PWD/target/wasm-plugins/wasm32-wasip2/plugin/header_echo_v2.wasm
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
cp "$V1" "$tmp/echo.wasm"
cat > "$tmp/gw.toml" <<TOML
[server]
listen = "127.0.0.1:18090"
admin-listen = "127.0.0.1:19090"
[upstreams.mock]
endpoints = ["http://127.0.0.1:19001/v1"]
[[models]]
name = "mock-gpt-4o-mini"
upstream = "mock"
[plugins.echo]
kind = "rewrite"
path = "echo.wasm"
config = { name = "x-v" }
[policy]
chain = ["echo"]
cache-dir = "cache"
TOML
WASMGATE_LOG=warn $B mock-upstream --listen 127.0.0.1:19001 >/dev/null &
WASMGATE_LOG=warn $B serve --config "$tmp/gw.toml" >/dev/null &
sleep 2
measure() {
  wrk -t2 -c64 -d"${D}s" --latency -s benches/wrk/chat.lua http://127.0.0.1:18090/v1/chat/completions \
    | awk -v name="$1" '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx|Socket errors/ {e=e $0} END {printf "| %s | %s | %s | %s | %s |\n", name, r, p50, p99, e}'
}
echo "| run | req/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
measure "steady (no reloads)"
before=$(curl -s http://127.0.0.1:19090/admin/reload | sed 's/.*"reloads":\([0-9]*\).*/\1/')
( i=0; while true; do if ((i % 2)); then cp "$V1" "$tmp/n.wasm"; else cp "$V2" "$tmp/n.wasm"; fi; mv "$tmp/n.wasm" "$tmp/echo.wasm"; i=$((i+1)); sleep 0.1; done ) &
STORM=$!
measure "reload storm (rename every 100 ms)"
kill $STORM
after=$(curl -s http://127.0.0.1:19090/admin/reload | sed 's/.*"reloads":\([0-9]*\).*/\1/')
echo
echo "reloads during the storm: $((after - before))"
