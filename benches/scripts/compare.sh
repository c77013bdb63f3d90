#!/usr/bin/env bash
# Side-by-side quick comparison (one run, same machine): wasmgate without plugins, wasmgate with
# the full chain (auth + rewrite + rate-limit), and the Go chi baseline, all forwarding to the
# same mock upstream. Prints wrk's req/s, p50 and p99 per scenario.
#
# Run with: benches/scripts/compare.sh [seconds-per-point]   (needs wrk and golang-go + chi from Debian)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${1:-10}
cargo build --release -p wasmgate >/dev/null
B=target/release/wasmgate
(cd benches/baselines/go-chi && GOFLAGS=-mod=mod GOPROXY=off go build -o ../../../target/gochi .)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

cat > "$tmp/plain.toml" <<TOML
[server]
listen = "127.0.0.1:18080"
admin-listen = "127.0.0.1:19080"
[upstreams.mock]
endpoints = ["http://127.0.0.1:19000/v1"]
max-idle-per-endpoint = 4096
[[models]]
name = "mock-gpt-4o-mini"
upstream = "mock"
TOML
sed -e 's/18080/18081/; s/19080/19081/' "$tmp/plain.toml" > "$tmp/chain.toml"
cat >> "$tmp/chain.toml" <<'TOML'
[plugins.auth]
kind = "auth"
path = "builtin:auth-keys"
config.keys = [{ sha256 = "aca7531d37be9f291490e7e2f1047afd4fe212921bc68880050ab2299d1d0186", subject = "demo-user", tenant = "demo" }]
[plugins.rewrite]
kind = "rewrite"
path = "builtin:rewrite"
config = { model-aliases = { "gpt-4o-mini" = "mock-gpt-4o-mini" }, max-tokens-cap = 4096 }
[plugins.limits]
kind = "rate-limit"
path = "builtin:rate-limit"
config = { key = "identity", requests = { limit = 1000000000000, window-ms = 60000 }, tokens = { limit = 1000000000000000, window-ms = 60000 } }
[policy]
chain = ["auth", "rewrite", "limits"]
TOML

run() { # name url conns [lua]
  local name=$1 url=$2 c=$3 lua=${4:-}
  wrk -t2 -c"$c" -d2s ${lua:+-s $lua} "$url" >/dev/null 2>&1 || true
  local out; out=$(wrk -t2 -c"$c" -d"${D}s" --latency ${lua:+-s $lua} "$url")
  printf '| %-34s | %5s | %9s | %8s | %8s | %s |\n' "$name" "$c" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" "$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")"
}

echo "| system | conns | req/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|---|"
WASMGATE_LOG=warn $B mock-upstream --listen 127.0.0.1:19000 >/dev/null &
WASMGATE_LOG=warn $B serve --config "$tmp/plain.toml" >/dev/null &
WASMGATE_LOG=warn $B serve --config "$tmp/chain.toml" >/dev/null &
target/gochi -listen 127.0.0.1:18082 -upstream http://127.0.0.1:19000/v1 2>/dev/null &
sleep 2
LUA=benches/wrk/chat.lua
run "health: go-chi" http://127.0.0.1:18082/health 50
run "health: wasmgate" http://127.0.0.1:18080/health 50
run "chat→mock (0 ms): direct to mock" http://127.0.0.1:19000/v1/chat/completions 50 $LUA
run "chat→mock: go-chi" http://127.0.0.1:18082/v1/chat/completions 50 $LUA
run "chat→mock: wasmgate, no plugins" http://127.0.0.1:18080/v1/chat/completions 50 $LUA
run "chat→mock: wasmgate, full chain" http://127.0.0.1:18081/v1/chat/completions 50 $LUA
kill %1 2>/dev/null || true
sleep 0.5
WASMGATE_LOG=warn $B mock-upstream --listen 127.0.0.1:19000 --latency-ms 100 >/dev/null &
sleep 1
for c in 100 1000; do
  run "proxy 100 ms: direct to mock" http://127.0.0.1:19000/v1/chat/completions $c $LUA
  run "proxy 100 ms: go-chi" http://127.0.0.1:18082/v1/chat/completions $c $LUA
  run "proxy 100 ms: wasmgate, no plugins" http://127.0.0.1:18080/v1/chat/completions $c $LUA
  run "proxy 100 ms: wasmgate, full chain" http://127.0.0.1:18081/v1/chat/completions $c $LUA
done
