#!/usr/bin/env bash
# Load test entry point: builds release binaries, starts a gateway, runs trunkgate-load
# against it, prints the report, stops the gateway. Loopback only; bounded by count and time.
#
#   scripts/load.sh                         # bridged calls: webhook + echo agent (twilio), 100 calls
#   scripts/load.sh --mode demo             # against `trunkgate demo` (built-in echo agent)
#   scripts/load.sh --mode outbound         # POST /v1/calls; trunkgate-load is the far-end trunk and the agent
#   scripts/load.sh --mode outbound --click-to-call   # POST /v1/calls bridge_from: the far end is both phones, no agent
#   scripts/load.sh --bin-dir DIR -- ...    # run prebuilt trunkgate and trunkgate-load from DIR (no cargo build)
#   scripts/load.sh --runs 2 -- ...         # the same run twice against one gateway (RSS drift)
#   scripts/load.sh --record -- ...         # every call recorded ([recording] enabled, a temp dir)
#   scripts/load.sh --srtp -- ...           # bridged calls on SRTP (SDES over the loopback SIP)
#   scripts/load.sh -- --calls 1000 --concurrency 1000 --rate 200 --duration 20
#
# Media realism (passed to trunkgate-load, before or after `--`; same seed, same run):
#   --jitter MS        each caller RTP packet leaves up to ±MS ms off its 20 ms grid (≤ 100;
#                      jitter alone never reorders)
#   --loss P           probability a caller packet is not sent (reported as dropped by the
#                      tool, not as the gateway's loss)
#   --reorder P        probability a caller packet is swapped with the next one
#   --seed N           seed of the callers' randomness (default 1)
#   --agent-chunk MS   the echo agent answers in chunks of MS ms of audio (a multiple of 20)
#   --agent-burst      the echo agent holds 2 s, then sends those 2 s back at once (as TTS does)
#   scripts/load.sh --jitter 5 --agent-chunk 100 -- --calls 20 --concurrency 20 --duration 10
# The report then splits the echo's round trip into caller→agent and agent→caller (p50/p99).
# The agent options need our echo agent: not with --mode demo.
#
# Everything after `--` (or from the first option not listed here) goes to trunkgate-load (see
# `trunkgate-load --help`); without any, 100 calls of 10 s. --help prints this header.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=bridge
runs=1
bin_dir=""
record=false
click=false
srtp=false
shape_args=()
agent_shaped=false
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --jitter|--loss|--reorder|--seed) shape_args+=("$1" "$2"); shift 2 ;;
    --agent-chunk) shape_args+=("$1" "$2"); agent_shaped=true; shift 2 ;;
    --agent-burst) shape_args+=("$1"); agent_shaped=true; shift ;;
    --mode) mode="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --record) record=true; shift ;;
    --click-to-call) click=true; shift ;;
    --srtp) srtp=true; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
load_args=("$@")
if [ "$click" = true ] && [ "$mode" != outbound ]; then
  echo "--click-to-call needs --mode outbound" >&2
  exit 2
fi
if [ "$srtp" = true ] && [ "$mode" != bridge ]; then
  echo "--srtp is for the bridged (inbound) mode" >&2
  exit 2
fi
if [ "$record" = true ] && [ "$mode" = demo ]; then
  echo "--record needs a config: not with --mode demo" >&2
  exit 2
fi
if [ "$agent_shaped" = true ] && [ "$mode" = demo ]; then
  echo "--agent-chunk/--agent-burst shape our echo agent: not with --mode demo" >&2
  exit 2
fi
[ ${#load_args[@]} -gt 0 ] || load_args=(--calls 100 --concurrency 100 --rate 50 --duration 10)
load_args+=(${shape_args[@]+"${shape_args[@]}"})

if [ -n "$bin_dir" ]; then
  bin=$bin_dir
else
  cargo build --release --bins
  bin=target/release
fi
work=$(mktemp -d)
# Room for many calls: enough fds and a wide RTP range.
ulimit -n 65536 2>/dev/null || true

gateway_pid=""
cleanup() {
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null && wait "$gateway_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# --record: every call recorded (stereo WAV per call) into the run's temp dir.
recording_conf() {
  if [ "$record" = true ]; then
    printf '[recording]\nenabled = true\ndir = "%s"\n' "$work/recordings"
  fi
}

far_end=127.0.0.1:5090
if [ "$mode" = outbound ]; then
  # The gateway dials the far-end trunk (trunkgate-load) through [[trunk]] "load"; calls are
  # placed through the control API with a bearer token.
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/api.token"
  cat >"$work/trunkgate.toml" <<CONF
[sip]
listen_udp = ["127.0.0.1:5080"]
listen_tcp = ["127.0.0.1:5080"]
[rtp]
bind = "127.0.0.1"
port_min = 20000
port_max = 39999
rtp_timeout = "30s"
[api]
listen = "127.0.0.1:18081"
token_file = "$work/api.token"
[callbacks]
spool_dir = "$work/spool"
cdr_file = ""
[log]
level = "warn"
format = "text"
[policy]
flood_per_source = { burst = 1000000, per_second = 1000000 }

[[trunk]]
name = "load"
match_cidrs = []
outbound = { address = "$far_end", transport = "udp" }
CONF
  recording_conf >>"$work/trunkgate.toml"
  "$bin/trunkgate" --config "$work/trunkgate.toml" >"$work/gateway.log" 2>&1 &
  gateway_pid=$!
  target=127.0.0.1:18081   # wait for the API, not SIP
  serve=(--mode outbound --api http://127.0.0.1:18081 --token-file "$work/api.token" --far-end "$far_end" --trunk load)
  # Click-to-call: both legs (manager, then client) go through the same trunk to the far end.
  [ "$click" = true ] && serve+=(--click-to-call)
elif [ "$mode" = demo ]; then
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
$( [ "$srtp" = true ] && printf 'srtp = "required"\nsrtp_allow_plain_sip = true\n' )
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
  recording_conf >>"$work/trunkgate.toml"
  "$bin/trunkgate" --config "$work/trunkgate.toml" >"$work/gateway.log" 2>&1 &
  gateway_pid=$!
  target=127.0.0.1:5080
  serve=(--serve 127.0.0.1:18080)
  [ "$srtp" = true ] && serve+=(--srtp)
fi

# Wait (bounded) for the gateway to listen: its SIP TCP listener (outbound: its API) accepts.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/${target%:*}/${target##*:}") 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log"; exit 1; }
  sleep 0.1
done

status=0
for run in $(seq 1 "$runs"); do
  [ "$runs" -gt 1 ] && echo "== run $run of $runs"
  [ "$mode" = outbound ] && target=127.0.0.1:5080
  "$bin/trunkgate-load" --target "$target" --gateway-pid "$gateway_pid" "${serve[@]}" "${load_args[@]}" || status=$?
done
if [ "$record" = true ]; then
  # What the recorded run left: one finished WAV per answered call, nothing still open.
  wavs=$(find "$work/recordings" -name '*.wav' 2>/dev/null | wc -l)
  parts=$(find "$work/recordings" -name '*.wav.part' 2>/dev/null | wc -l)
  kib=$(du -sk "$work/recordings" 2>/dev/null | cut -f1)
  echo "recordings                    $wavs finished, $parts unfinished, ${kib:-0} KiB"
fi
if [ "$status" -ne 0 ]; then
  echo "-- gateway log (last 20 lines)"
  tail -n 20 "$work/gateway.log"
fi
exit $status
