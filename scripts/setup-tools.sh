#!/usr/bin/env bash
# Installs what building and testing Dropcheck needs, skipping whatever is already there:
# the wasm target, cargo-leptos 0.3.10, the wasm-bindgen CLI matching Cargo.lock, the npm
# build tools (Tailwind, wasm-opt) and, with --browser, Debian's Chromium and Playwright.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

CARGO_LEPTOS_VERSION=0.3.10   # 0.3.11 needs rustc >= 1.96 (BUILD-NOTES §2.1)
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if [ "$(cargo leptos --version 2>/dev/null || true)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  echo "Installing cargo-leptos $CARGO_LEPTOS_VERSION (about 20 minutes, once)…"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION"
fi
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  echo "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)…"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"   # not --locked (BUILD-NOTES §2.2)
fi
if [ ! -x node_modules/.bin/tailwindcss ] || [ ! -x node_modules/.bin/wasm-opt ]; then
  npm ci --no-audit --no-fund
fi

if [ "${1:-}" = "--browser" ]; then
  if [ ! -x /usr/bin/chromium ]; then
    echo "Installing Chromium from Debian…"
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -x end2end/node_modules/.bin/playwright ]; then
    (cd end2end && npm ci --no-audit --no-fund)   # never `npx playwright install`: Debian's Chromium is used
  fi
fi
