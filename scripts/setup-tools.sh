#!/usr/bin/env bash
# Installs what building and testing Dropcheck needs, skipping whatever is already there:
# the wasm target, the npm build tools (Tailwind, wasm-opt) and, with --browser, Debian's
# Chromium and Playwright. Nothing is installed with `cargo install`: the site is built by
# the project's own `cargo xtask` (xtask/), which links wasm-bindgen and wasm-split as
# libraries (about 2 minutes to compile once, instead of 25–40 for cargo-leptos).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
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
