#!/usr/bin/env bash
# Builds Dropcheck (release) and runs it: `scripts/run.sh` serves the dashboard on embedded
# SQLite with the sandbox provider; `scripts/run.sh demo` loads demo data first; any other
# arguments go to the `dropcheck` binary (e.g. `scripts/run.sh user add --email … --role admin`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup-tools.sh
cargo xtask build            # the release server and, in parallel, the site (xtask/src/main.rs)
node scripts/precompress.mjs "$TARGET_DIR/site/pkg"
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-$TARGET_DIR/site}"
if [ "${1:-}" = "demo" ]; then
  "$TARGET_DIR/release/dropcheck" demo
  shift
fi
exec "$TARGET_DIR/release/dropcheck" "$@"
