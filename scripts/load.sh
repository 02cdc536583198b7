#!/usr/bin/env bash
# Load test entry point: builds release binaries, starts a gateway, runs trunkgate-load
# against it, prints the report, stops the gateway. Loopback only; bounded by count and time.
#
#   scripts/load.sh                         # bridged calls: webhook + echo agent (twilio), 100 calls
#   scripts/load.sh --mode demo             # against `trunkgate demo` (built-in echo agent)
#   scripts/load.sh --runs 2 -- ...         # the same run twice against one gateway (RSS drift)
#   scripts/load.sh -- --calls 1000 --concurrency 1000 --rate 200 --duration 20
#
# Everything after `--` goes to trunkgate-load (see `trunkgate-load --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=bridge
runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
load_args=("$@")
[ ${#load_args[@]} -gt 0 ] || load_args=(--calls 100 --concurrency 100 --rate 50 --duration 10)

cargo build --release --bins
bin=target/release
work=$(mktemp -d)
# Room for many calls: enough fds and a wide RTP range.
ulimit -n 65536 2>/dev/null || true

gateway_pid=""
cleanup() {
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$mode" = demo ]; then
  "$bin/trunkgate" demo >"$work/gateway.log" 2>&1 &
  gateway_pid=$!
  target=127.0.0.1:5060
  serve=()
else
  cat >"$work/trunkgate.toml" <<CONF
[sip]
listen_udp = ["127.0.0.1:5080"]
listen_tcp = ["127.0.0.1:5080"]
[rtp]
bind = "127.0.0.1"
port_min = 20000
port_max = 29999
rtp_timeout = "30s"
[api]
listen = ""
[webhook]
url = "http://127.0.0.1:18080/webhook"
timeout = "3s"
[callbacks]
spool_dir = "$work/spool"
cdr_file = ""
[log]
level = "warn"
format = "text"
[policy]
flood_per_source = { burst = 1000000, per_second = 1000000 }
CONF
  "$bin/trunkgate" --config "$work/trunkgate.toml" >"$work/gateway.log" 2>&1 &
  gateway_pid=$!
  target=127.0.0.1:5080
  serve=(--serve 127.0.0.1:18080)
fi

# Wait (bounded) for the gateway to listen: its SIP TCP listener accepts a connection.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/${target%:*}/${target##*:}") 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log"; exit 1; }
  sleep 0.1
done

status=0
for run in $(seq 1 "$runs"); do
  [ "$runs" -gt 1 ] && echo "== run $run of $runs"
  "$bin/trunkgate-load" --target "$target" --gateway-pid "$gateway_pid" "${serve[@]}" "${load_args[@]}" || status=$?
done
exit $status
