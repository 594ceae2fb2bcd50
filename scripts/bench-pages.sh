#!/usr/bin/env bash
# Measures the drops list and a drop page with 100 000 drops in SQLite (docs/PERFORMANCE.md).
# Usage: scripts/bench-pages.sh [drops] — needs a release build (scripts/run.sh builds one) and wrk.
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
echo "== drops list (newest first, 50 rows) with $DROPS bench drops + demo data"
wrk -t2 -c16 -d20s --latency -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/" | grep -E 'Requests/sec|50%|90%|99%|Non-2xx'
echo "== drops list filtered by status"
wrk -t2 -c16 -d20s --latency -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/?status=approved" | grep -E 'Requests/sec|50%|90%|99%|Non-2xx'
echo "== drop page $DROP (12 steps with photos)"
wrk -t2 -c16 -d20s --latency -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/drops/$DROP" | grep -E 'Requests/sec|50%|90%|99%|Non-2xx'
echo "== drop page transfer (gzip), HTML + CSS + JS + wasm + 12 thumbnails, bytes:"
total=0
for u in "/drops/$DROP" /pkg/dropcheck.css /pkg/dropcheck.js /pkg/dropcheck.wasm; do
  n=$(curl -s -H "Cookie: $COOKIE" -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PORT$u"); echo "  $u $n"; total=$((total+n))
done
for id in $(curl -s -H "Cookie: $COOKIE" "http://127.0.0.1:$PORT/drops/$DROP" | grep -o "/media/[0-9]*/thumb" | sort -u); do
  n=$(curl -s -H "Cookie: $COOKIE" -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PORT$id"); total=$((total+n))
done
echo "  total $total"
echo "== resident memory of the server (kB): $(awk '/VmRSS/ {print $2}' /proc/$PID/status)"
