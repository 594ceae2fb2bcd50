# Sourced by the other scripts. Reuses a cargo target directory outside the clone when one
# exists (so CI's fresh clones build incrementally); otherwise builds into ./target.
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/tmp/dropcheck-target ]; then
  export CARGO_TARGET_DIR=/var/tmp/dropcheck-target
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR=never
