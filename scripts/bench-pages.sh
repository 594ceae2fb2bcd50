#!/usr/bin/env bash
# Measures the drops list and a drop page with 100 000 drops in SQLite (docs/PERFORMANCE.md).
# Usage: scripts/bench-pages.sh [drops] — needs a release build (scripts/run.sh builds one) and wrk.
# With DATABASE_URL=postgres://… it measures PostgreSQL instead of the SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
DROPS=${1:-100000}
BIN="$TARGET_DIR/release/dropcheck"
DIR=$(mktemp -d)
PORT=3190
export DROPCHECK_DATA_DIR="$DIR" LEPTOS_SITE_ADDR="127.0.0.1:$PORT" LEPTOS_SITE_ROOT="$TARGET_DIR/site" RUST_LOG=warn
"$BIN" demo >/dev/null
"$BIN" bench-seed --drops "$DROPS"
echo 'bench password 1' | "$BIN" user add --email bench@example.com --role admin >/dev/null
"$BIN" serve >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
JAR="$DIR/cookies"
curl -s -c "$JAR" -b "$JAR" -o /dev/null -H "Origin: http://127.0.0.1:$PORT" -H 'Accept: text/html' \
  --data 'email=bench@example.com&password=bench+password+1' "http://127.0.0.1:$PORT/rpc/login"
COOKIE=$(awk '$6=="dropcheck_session" {print $6"="$7}' "$JAR")
DROP=$(curl -s -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/?status=unreviewed&q=DR10" | grep -o 'data-drop="DR[0-9]*"' | head -1 | cut -d'"' -f2)
bench() { # name url
  for c in 1 16; do
    printf '%-48s c=%-2s ' "$1" "$c"
    wrk -t"$([ $c = 1 ] && echo 1 || echo 2)" -c"$c" -d15s --latency -H "Cookie: $COOKIE" "$2" \
      | awk '/Requests\/sec/ {r=$2} / 50%/ {p50=$2} / 90%/ {p90=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$0} END {printf "%8s req/s  p50 %-8s p90 %-8s p99 %-8s %s\n", r, p50, p90, p99, bad}'
  done
}
echo "== $DROPS bench drops + demo data; c=1: one user (the server time of a request), c=16: 16 concurrent users"
bench "drops list (newest first, 50 rows)" "http://127.0.0.1:$PORT/"
bench "drops list filtered by status" "http://127.0.0.1:$PORT/?status=approved"
bench "drop page $DROP (12 steps with photos)" "http://127.0.0.1:$PORT/drops/$DROP"
echo "== drop page transfer as a browser fetches it (Accept-Encoding: br, gzip), bytes:"
total=0
for u in "/drops/$DROP" /pkg/dropcheck.css /pkg/dropcheck.js /pkg/__wasm_split.______________________.js /pkg/dropcheck.wasm; do
  n=$(curl -s -H "Cookie: $COOKIE" -H 'Accept-Encoding: br, gzip' -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PORT$u"); echo "  $u $n"; total=$((total+n))
done
thumbs=0
for id in $(curl -s -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/drops/$DROP" | grep -o "/media/[0-9]*/thumb" | sort -u); do
  n=$(curl -s -H "Cookie: $COOKIE" -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PORT$id"); total=$((total+n)); thumbs=$((thumbs+n))
done
echo "  thumbnails $thumbs"
echo "  total $total"
echo "== resident memory of the server (kB): $(awk '/VmRSS/ {print $2}' /proc/$PID/status)"
