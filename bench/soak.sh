#!/usr/bin/env bash
# Anonymous floods against signed clients, in one run: show-service p50/p99 measured quiet and
# then while 10,000 idle sockets, 1,000 slow-header clients and 500 unsigned 1 MiB bodies hit
# the same server (every flood client reopens its connection whenever the server closes it),
# plus the server's resident memory before and at its peak under attack. Targets: p99 under
# attack <= 2x the quiet p99; RSS < 300 MiB.
#
# The signed client is one keep-alive connection sending show-service RATE times a second
# (paced, so its latency is the server's answer time, not a saturation queue).
#
# Settings (environment): DURATION (measured seconds per phase, 20), WARMUP (3), CONNECTIONS
# (signed connections, 1), RATE (requests/s per signed connection, 200), IDLE (10000), SLOW
# (1000), BODIES (500), RAMP (seconds the floods run before the measurement, 12). Extra
# arguments go to vpcep-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}"
CONNECTIONS="${CONNECTIONS:-1}"
RATE="${RATE:-200}"
IDLE="${IDLE:-10000}"
SLOW="${SLOW:-1000}"
BODIES="${BODIES:-500}"
RAMP="${RAMP:-12}"

# Both processes need a descriptor per socket: take the hard limit.
ulimit -n "$(ulimit -Hn)"
need=$((IDLE + SLOW + BODIES + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "soak: the open-file limit $(ulimit -n) is below the $need sockets of the floods" >&2
  exit 1
fi

echo "== building release binaries (vpcep, vpcep-bench)"
cargo build --release -p vpcep -p vpcep-bench

target/release/vpcep-bench --spawn sqlite --soak \
  --connections "$CONNECTIONS" --rate-per-connection "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
  --soak-idle "$IDLE" --soak-slow "$SLOW" --soak-bodies "$BODIES" --soak-ramp "$RAMP" "$@"
