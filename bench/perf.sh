#!/usr/bin/env bash
# Control-plane speed against this machine's limits and against moto, from one run:
# create / show / update service, list (limit 100) at 10^3, 10^5 and 10^6 stored services, the
# no-auth /health route (the HTTP ceiling), and moto's server creating AWS VPC endpoint service
# configurations with the same load generator and concurrency; then create at more clients,
# and the same scenarios on PostgreSQL when it is reachable. Prints the figures and the target
# ratios (create >= 0.15x /health and >= 50x moto, list p50 at 10^6 <= 1.5x the one at 10^3).
#
# vpcep runs on its default store (SQLite in WAL mode: a create is answered only once its
# transaction is on disk; concurrent creates share one WAL sync by group commit).
# The 10^5 and 10^6 sizes are reached by copying a service in SQL (crates/vpcep-bench/src/bulk.rs),
# not through the API: the list is what is measured, not the seeding.
#
# Settings (environment): DURATION (measured seconds per scenario, 5), WARMUP (1),
# CONNECTIONS (32), CONNECTIONS_HIGH (256: a second SQLite run of create, health and moto),
# PG_SEED (1000: services the PostgreSQL run lists), LIST_SIZES (1000,100000,1000000),
# VPCEP_TEST_POSTGRES_URL (postgres://root@127.0.0.1:5432/test), MOTO_VENV (target/bench-venv:
# where moto is installed on first use), MOTO_VERSION (5.2.5). Raw JSON lines are in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
CONNECTIONS="${CONNECTIONS:-32}"
CONNECTIONS_HIGH="${CONNECTIONS_HIGH:-256}"
PG_SEED="${PG_SEED:-1000}"
LIST_SIZES="${LIST_SIZES:-1000,100000,1000000}"
MOTO_VENV="${MOTO_VENV:-target/bench-venv}"
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"

echo "== building release binaries (vpcep, vpcep-bench)"
cargo build --release -p vpcep -p vpcep-bench
BENCH=target/release/vpcep-bench

if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  echo "== installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION" boto3
fi
moto_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$OUT/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
moto_url="http://127.0.0.1:$moto_port"
# moto checks that the load balancer exists: make a VPC, a subnet and a network load balancer.
moto_arn="$("$MOTO_VENV/bin/python" - "$moto_url" <<'EOF'
import sys, time, boto3
url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
for _ in range(100):
    try:
        ec2 = boto3.client("ec2", **kw)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        break
    except Exception:
        time.sleep(0.1)
sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
lb = boto3.client("elbv2", **kw).create_load_balancer(Name="bench", Subnets=[sub], Type="network")
print(lb["LoadBalancers"][0]["LoadBalancerArn"])
EOF
)"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== vpcep (SQLite) and moto $MOTO_VERSION: $CONNECTIONS connections, ${WARMUP}s warmup + ${DURATION}s per scenario"
"$BENCH" --spawn sqlite --json --label sqlite \
  --scenarios health,show-service,update-service,create-service,moto-create \
  --moto-url "$moto_url" --moto-lb-arn "$moto_arn" --list-sizes "$LIST_SIZES" \
  --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
  | tee "$OUT/perf.jsonl"
# A durable create waits for its WAL sync (0.7-3.7 ms on this machine), so with few
# clients the rate is bound by clients / sync time (Little's law), not by the server. The same
# scenarios with more clients show what one sync per batch carries.
echo "== vpcep (SQLite) and moto, $CONNECTIONS_HIGH connections"
"$BENCH" --spawn sqlite --json --label "sqlite-$CONNECTIONS_HIGH" \
  --scenarios health,create-service,moto-create \
  --moto-url "$moto_url" --moto-lb-arn "$moto_arn" \
  --connections "$CONNECTIONS_HIGH" --duration "$DURATION" --warmup "$WARMUP" \
  | tee -a "$OUT/perf.jsonl"
pg_url="${VPCEP_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432/test}"
pg_hostport="$(sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#' <<<"$pg_url")"
if (exec 3<>"/dev/tcp/${pg_hostport%%:*}/${pg_hostport##*:}") 2>/dev/null; then
  echo "== vpcep (PostgreSQL at $pg_url): $CONNECTIONS connections, $PG_SEED services listed"
  "$BENCH" --spawn postgres --postgres-url "$pg_url" --json --label postgres \
    --scenarios health,list-services,show-service,update-service,create-service \
    --seed "$PG_SEED" --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
    | tee -a "$OUT/perf.jsonl"
else
  echo "== PostgreSQL not reachable at $pg_url: its figures are skipped"
fi

echo
echo "== results: $(nproc) CPUs shared by load generator, servers and moto;" \
  "load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg); raw: $OUT"
python3 - "$OUT/perf.jsonl" <<'EOF'
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    name = r["scenario"] + (f" @{r['stored']:,}" if r["scenario"] == "list-services" else "")
    by[(r["label"], name)] = r
# CPU columns (measured window, whole machine): busy CPU per request of everything but the
# load generator (the server, or moto, and the kernel's work for it), the load generator's own,
# and the machine's idle share.
def servers_us(r):
    m, b = r.get("machine_cpu_us_per_req"), r.get("bench_cpu_us_per_req")
    return None if m is None or b is None else max(m - b, 0.0)
def fmt(v, spec):
    return "-" if v is None else format(v, spec)
print(f"{'config':<12}{'scenario':<26}{'conns':>6}{'req/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'server us/req':>15}{'bench us/req':>14}{'idle %':>8}")
for (label, name), r in by.items():
    print(f"{label:<12}{name:<26}{r['connections']:>6}{r['rate']:>11.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}"
          f"{fmt(servers_us(r), '.1f'):>15}{fmt(r.get('bench_cpu_us_per_req'), '.1f'):>14}{fmt(r.get('idle_pct'), '.0f'):>8}")

def get(label, name, key):
    r = by.get((label, name))
    return r[key] if r else None

checks = []
for label in dict.fromkeys(l for l, _ in by):
    checks += [
        (f"{label}: create / health", get(label, "create-service", "rate"), get(label, "health", "rate"), ">=", 0.15),
        (f"{label}: create / moto create", get(label, "create-service", "rate"), get(label, "moto-create", "rate"), ">=", 50),
    ]
    lists = sorted((r["stored"], r) for (l, _), r in by.items() if l == label and r["scenario"] == "list-services")
    if len(lists) >= 2:
        (n0, r0), (n1, r1) = lists[0], lists[-1]
        checks.append((f"{label}: list p50 @{n1:,} / @{n0:,}", r1["p50_ms"], r0["p50_ms"], "<=", 1.5))
        # Issue 17's absolute figure: twice the 2,022 list/s measured at 10^6 when it was filed.
        checks.append((f"{label}: list req/s @{n1:,} (absolute)", r1["rate"], 1, ">=", 4044))
print()
print(f"{'ratio':<44}{'measured':>10}{'target':>10}")
for label, a, b, op, target in checks:
    if a is None or not b:
        continue
    v = a / b
    ok = v >= target if op == ">=" else v <= target
    # The targets are the default store's; PostgreSQL's figures are reported beside them.
    verdict = "(reported)" if label.startswith("postgres") else ("met" if ok else "MISSED")
    print(f"{label:<44}{v:>10.3f}{op + ' ' + str(target):>10}  {verdict}")
# What limits create: a machine with idle CPU left is waiting on the clients' round trips
# (each durable create waits for a WAL sync); the rate the machine would make fully busy at
# the measured CPU per create is its CPU-bound ceiling.
import os
cores = os.cpu_count() or 1
print()
for label in dict.fromkeys(l for l, _ in by):
    c = by.get((label, "create-service"))
    if not c or c.get("machine_cpu_us_per_req") is None:
        continue
    ceiling = cores * 1e6 / c["machine_cpu_us_per_req"]
    print(f"{label}: create at {c['connections']} clients: {c['rate']:.0f}/s with {c['idle_pct']:.0f}% of the machine idle;"
          f" {servers_us(c):.1f} us of server CPU per create ({c['machine_cpu_us_per_req']:.1f} with the load generator);"
          f" fully busy at that cost: {ceiling:.0f}/s")
errors = sum(r["errors"] for r in rows)
if errors:
    print(f"\n{errors} requests failed (see the messages above)")
EOF
