#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."

# baresip (the real SIP peer of the interop test), sox and sipvicious (the scanner that must
# get no answer) come from Debian's packages.
need=()
command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v svmap >/dev/null 2>&1 || need+=(sipvicious)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

scripts/check-layers.sh
cargo clippy --all-targets -- -D warnings
# Benches are built by clippy above and run by `cargo bench`, not here.
cargo test
