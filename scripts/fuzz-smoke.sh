#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly (default 30 s each) on stable Rust via RUSTC_BOOTSTRAP.
# Usage: scripts/fuzz-smoke.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  # Seed the SIP targets with the RFC 4475 messages, the config loader with the shipped files.
  case "$target" in
    sip_parse|tcp_framing|endpoint) cp ../../shared/conformance/rfc4475/*.dat "corpus/$target/" 2>/dev/null || true ;;
    config_load) cp ../etc/*.toml "corpus/$target/" ;;
  esac
  echo "== fuzzing $target for ${secs}s"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048
done
echo "fuzz smoke: all targets ran ${secs}s without a crash"
