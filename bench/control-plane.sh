#!/usr/bin/env bash
# Control-plane figures, side by side from one run: create-service rate and list/show latency
# on SQLite vs PostgreSQL, one node vs two nodes on one PostgreSQL database (requests spread
# over both), with ratios.
#
# Builds the release binaries, then runs `vpcep-bench --spawn ...` once per configuration; each
# starts its own servers on a fresh database (a temporary SQLite file, a new PostgreSQL schema).
# The load generator, the servers and PostgreSQL all share this machine: read the figures as
# relative, not as capacity.
#
# Settings (environment): DURATION (measured seconds per scenario, 5), WARMUP (1),
# CONNECTIONS (keep-alive connections, 32), SEED (services in the listed project, 200),
# VPCEP_TEST_POSTGRES_URL (default postgres://root@127.0.0.1:5432/test; PostgreSQL columns are
# left out when it is unreachable). Raw JSON lines are kept in $OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-32}"
SEED="${SEED:-200}"
PG_URL="${VPCEP_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432/test}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"

echo "== building release binaries (vpcep, vpcep-bench)"
cargo build --release -p vpcep -p vpcep-bench
BENCH=target/release/vpcep-bench

pg_hostport="$(sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#' <<<"$PG_URL")"
pg_host="${pg_hostport%%:*}"
pg_port="${pg_hostport##*:}"
[ "$pg_port" = "$pg_hostport" ] && pg_port=5432
configs=("sqlite-1node:--spawn sqlite")
if (exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null; then
  configs+=("postgres-1node:--spawn postgres" "postgres-2nodes:--spawn postgres --nodes 2")
else
  echo "== NOTE: PostgreSQL not reachable at $pg_host:$pg_port: only SQLite is measured"
fi

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
for c in "${configs[@]}"; do
  label="${c%%:*}"
  # shellcheck disable=SC2086 # the flags are meant to split
  set -- ${c#*:}
  echo "== $label: $* (connections $CONNECTIONS, ${WARMUP}s warmup + ${DURATION}s per scenario)"
  VPCEP_TEST_POSTGRES_URL="$PG_URL" "$BENCH" "$@" --json --label "$label" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --seed "$SEED" \
    | tee "$OUT/$label.jsonl"
done

echo
echo "== results: $(nproc) CPUs shared by load generator, servers and database;" \
  "load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'); raw: $OUT"
python3 - "$OUT" "${configs[@]%%:*}" <<'EOF'
import json, os, sys

out, labels = sys.argv[1], sys.argv[2:]
data = {}
for label in labels:
    with open(os.path.join(out, label + ".jsonl")) as f:
        for line in f:
            r = json.loads(line)
            data[(label, r["scenario"])] = r

rows = [
    ("create-service", "rate", "req/s"),
    ("create-service", "p50_ms", "p50 ms"),
    ("create-service", "p99_ms", "p99 ms"),
    ("list-services", "rate", "req/s"),
    ("list-services", "p50_ms", "p50 ms"),
    ("list-services", "p99_ms", "p99 ms"),
    ("show-service", "rate", "req/s"),
    ("show-service", "p50_ms", "p50 ms"),
    ("show-service", "p99_ms", "p99 ms"),
    ("health", "rate", "req/s"),
    ("health", "p50_ms", "p50 ms"),
]
ratios = []
if "sqlite-1node" in labels and "postgres-1node" in labels:
    ratios.append(("pg1/sqlite", "postgres-1node", "sqlite-1node"))
if "postgres-1node" in labels and "postgres-2nodes" in labels:
    ratios.append(("pg2/pg1", "postgres-2nodes", "postgres-1node"))

head = f"{'scenario':<15} {'figure':<7}" + "".join(f"{l:>17}" for l in labels) + "".join(f"{r[0]:>12}" for r in ratios)
print(head)
print("-" * len(head))
for scenario, key, unit in rows:
    line = f"{scenario:<15} {unit:<7}"
    for l in labels:
        r = data.get((l, scenario))
        line += f"{r[key]:>17.1f}" if key == "rate" and r else (f"{r[key]:>17.2f}" if r else f"{'-':>17}")
    for _, a, b in ratios:
        ra, rb = data.get((a, scenario)), data.get((b, scenario))
        line += f"{ra[key] / rb[key]:>11.2f}x" if ra and rb and rb[key] else f"{'-':>12}"
    print(line)
errors = [(k, v["errors"]) for k, v in data.items() if v["errors"]]
if errors:
    print("\nerrors:", ", ".join(f"{l}/{s}: {n}" for (l, s), n in errors))
EOF
