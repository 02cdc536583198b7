#!/usr/bin/env bash
# TLS handshakes per second the gateway accepts: a release gateway with a TLS listener on
# loopback (a throwaway certificate, the per-source limits off) and `openssl s_time` making
# new full handshakes for 10 s. Prints the handshakes per second and the gateway's CPU per
# handshake. Loopback only, bounded in time.
#
#   scripts/tls-rate.sh            # ECDSA P-256 certificate
#   scripts/tls-rate.sh rsa        # RSA 2048
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-ec}
cargo build --release --bin trunkgate
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if [ "$kind" = rsa ]; then key=(-newkey rsa:2048); else key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
openssl req -x509 "${key[@]}" -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
  -subj /CN=localhost 2>/dev/null
cat >"$work/gw.toml" <<CONF
[sip]
listen_udp = []
listen_tcp = []
listen_tls = ["127.0.0.1:45061"]
max_connections_per_source = 0
[sip.tls]
cert_file = "$work/cert.pem"
key_file = "$work/key.pem"
[rtp]
port_min = 46000
port_max = 46999
[api]
listen = ""
[callbacks]
spool_dir = "$work/spool"
cdr_file = ""
[log]
level = "warn"
format = "text"
[policy]
flood_per_source = { burst = 1000000, per_second = 1000000 }
[[number]]
did = "*"
agent = { url = "builtin:echo" }
CONF
target/release/trunkgate --config "$work/gw.toml" >"$work/gw.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/45061) 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/gw.log"; exit 1; }
  sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
out=$(timeout 60 openssl s_time -connect 127.0.0.1:45061 -new -time 10 2>/dev/null | grep "real seconds")
t1=$(ticks)
n=$(echo "$out" | awk '{print $1}')
secs=$(echo "$out" | awk '{print $4}')
hz=$(getconf CLK_TCK)
echo "$kind: $n handshakes in $secs s (the client on the same machine): $((n / secs))/s"
awk -v n="$n" -v t=$((t1 - t0)) -v hz="$hz" \
  'BEGIN { printf "gateway CPU per handshake %.3f ms (%.0f/s per core)\n", t * 1000 / hz / n, n * hz / t }'
