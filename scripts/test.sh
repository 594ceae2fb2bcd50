#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests on SQLite and PostgreSQL (PostgreSQL
# is mandatory under CI=true, used when reachable otherwise), then the release build and the
# Playwright end-to-end tests in Debian's Chromium, and the API fuzzer (schemathesis) against
# the OpenAPI document.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup-tools.sh --browser

echo "== Rust tests (SQLite + PostgreSQL)"
cargo test -p dropcheck-core -p dropcheck

echo "== Release build (server + wasm + CSS)"
cargo leptos build --release --split
node scripts/precompress.mjs "$TARGET_DIR/site/pkg"

echo "== API fuzzing (schemathesis against /api/openapi.json: no 5xx, no undocumented status)"
scripts/fuzz-api.sh

echo "== End-to-end tests (Playwright, Chromium)"
cd end2end
DROPCHECK_BIN="$TARGET_DIR/release/dropcheck" LEPTOS_SITE_ROOT="$TARGET_DIR/site" npx playwright test
