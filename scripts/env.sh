# Sourced by the other scripts. When a shared cargo target directory exists outside the
# clone (/var/tmp/dropcheck-target, or $DROPCHECK_SHARED_TARGET), ./target becomes a link to
# it, so a fresh clone (CI) builds incrementally; cargo-leptos then sees its usual paths.
SHARED_TARGET="${DROPCHECK_SHARED_TARGET:-/var/tmp/dropcheck-target}"
if [ ! -e target ] && [ -d "$SHARED_TARGET" ]; then
  ln -s "$SHARED_TARGET" target
fi
TARGET_DIR="$PWD/target"
export CARGO_TERM_COLOR=never
