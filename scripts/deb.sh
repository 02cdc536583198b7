#!/usr/bin/env bash
# Builds the Debian package (README "Packages"):
#
#   scripts/deb.sh                        release build, then target/debian/trunkgate_*.deb
#   scripts/deb.sh --binary FILE --out DIR [cargo-deb options]
#                                         packages an already built trunkgate binary into DIR
#                                         (tests/deb.rs passes the test build's debug binary)
#
# cargo-deb cannot run the binary, so the man page and the bash/zsh/fish completions are
# generated here by `trunkgate man` and `trunkgate completions SHELL` into
# <target dir>/release/assets/, where the assets of [package.metadata.deb] (Cargo.toml) take
# them from; then `cargo deb --no-build` packs. Needs cargo-deb (scripts/test.sh installs it).
# Takes no lock of its own: run it under the same lock as any other cargo command.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
binary="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a file}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    *) break ;;
  esac
done
if ! "$cargo" deb --version >/dev/null 2>&1; then
  echo "deb.sh: cargo-deb is missing: cargo install cargo-deb --locked (scripts/test.sh does)" >&2
  exit 1
fi

if [ -z "$binary" ]; then
  "$cargo" build --release --locked --bin trunkgate
  target=$("$cargo" metadata --no-deps --format-version 1 --offline |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  binary=$target/release/trunkgate
else
  # A staging target dir holding only this binary as release/trunkgate: cargo-deb reads
  # `target/release/` in the assets as $CARGO_TARGET_DIR/release/.
  [ -n "$out" ] || { echo "deb.sh: --binary needs --out" >&2; exit 1; }
  target=$(realpath -m "$out")/target
  mkdir -p "$target/release"
  cp -f "$binary" "$target/release/trunkgate"
  binary=$target/release/trunkgate
  export CARGO_TARGET_DIR=$target
fi

assets=$target/release/assets
mkdir -p "$assets"
"$binary" man | gzip -9n >"$assets/trunkgate.1.gz"
"$binary" completions bash >"$assets/trunkgate.bash"
"$binary" completions zsh >"$assets/_trunkgate"
"$binary" completions fish >"$assets/trunkgate.fish"

if [ -n "$out" ]; then
  mkdir -p "$out"
  set -- --output "$out" "$@"
fi
"$cargo" deb --no-build --locked "$@"
