#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."

# baresip (the real SIP peer of the interop test), sox and sipvicious (the scanner that must
# get no answer) come from Debian's packages; aiosmtpd (the real SMTP server of
# tests/fraud_email.rs) is Debian's python3-aiosmtpd where the release has it (for
# /usr/bin/python3), else PyPI's aiosmtpd (for the python3 on PATH).
has_aiosmtpd() {
  local py
  for py in python3 /usr/bin/python3; do
    "$py" -c 'import aiosmtpd' >/dev/null 2>&1 && return 0
  done
  return 1
}
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
need=()
command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v svmap >/dev/null 2>&1 || need+=(sipvicious)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# tests/deb.rs: cargo-deb computes Depends with dpkg-shlibdeps (dpkg-dev) and strips with
# binutils; the installed unit is checked by systemd-analyze, whose man: link needs man-db.
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v strip >/dev/null 2>&1 || need+=(binutils)
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ] || ! has_aiosmtpd; then
  $sudo apt-get update -qq
  if ! has_aiosmtpd && apt-cache show python3-aiosmtpd >/dev/null 2>&1; then
    need+=(python3-aiosmtpd)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi
if ! has_aiosmtpd; then
  echo "installing: aiosmtpd (PyPI)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip
  fi
  python3 -m pip install -q --break-system-packages aiosmtpd || python3 -m pip install -q aiosmtpd
fi

# cargo-deb (tests/deb.rs, scripts/deb.sh) from crates.io: about 40 s to build here.
if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing: cargo-deb (crates.io)"
  cargo install cargo-deb --locked --version '^3.8'
fi

scripts/check-layers.sh
cargo clippy --all-targets -- -D warnings
# Benches are built by clippy above and run by `cargo bench`, not here.
cargo test
