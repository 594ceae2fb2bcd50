#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests on SQLite and PostgreSQL (PostgreSQL
# is mandatory under CI=true, used when reachable otherwise), then the site (release wasm +
# CSS), the API fuzzer (schemathesis against the OpenAPI document) and the Playwright
# end-to-end tests in Debian's Chromium. The server is compiled once: the fuzzer and
# Playwright run the binary `cargo test` built (dependencies optimised, see Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup-tools.sh --browser
# Each phase prints the seconds since the start (docs/PERFORMANCE.md records a fresh run).
phase() { echo "== [${SECONDS} s] $*"; }

phase "Rust tests (SQLite + PostgreSQL)"
cargo test -p dropcheck-core -p dropcheck
BIN="$TARGET_DIR/debug/dropcheck"   # built by `cargo test` for the server's integration tests

phase "The site (release wasm, lazy-route split, CSS): cargo xtask site"
cargo xtask site
node scripts/precompress.mjs "$TARGET_DIR/site/pkg"

phase "API fuzzing (schemathesis against /api/openapi.json: no 5xx, no undocumented status)"
DROPCHECK_BIN="$BIN" scripts/fuzz-api.sh

phase "End-to-end tests (Playwright, Chromium)"
cd end2end
DROPCHECK_BIN="$BIN" LEPTOS_SITE_ROOT="$TARGET_DIR/site" npx playwright test
phase "All passed"
