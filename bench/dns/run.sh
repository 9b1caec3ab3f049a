#!/usr/bin/env bash
# Private DNS throughput: `vpcep serve --dns-listen` against Debian's nsd serving the same
# NAMES (default 10,000) endpoint names, each measured once with dnsperf (UDP, A queries over
# every name in turn) for DURATION seconds (default 10). Prints both rates, the ratio and
# whether it meets the target (vpcep >= 1.0x nsd). Installs nsd, dnsperf and dig when missing
# (apt-get, as root). Both servers get the same cores: vpcep one UDP socket per core
# (SO_REUSEPORT), nsd `server-count` = cores. PERF=1 also profiles the vpcep server.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
NAMES=${NAMES:-10000}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
REGION=local-1
CORES=$(nproc)

need() {
    command -v "$1" >/dev/null 2>&1 && return
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need dnsperf dnsperf
need nsd nsd
need dig dnsutils
# The packaged nsd service is not ours: this script runs its own nsd on its own port.
systemctl disable --now nsd >/dev/null 2>&1 || true

cargo build --release -q -p vpcep
BIN=$ROOT/target/release/vpcep
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket(); 
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass'
}
API=$(free_port); DNS=$(free_port); NSD=$(free_port)
cd "$WORK"

serve() {
    "$BIN" serve --listen "127.0.0.1:$API" --database "sqlite://$WORK/vpcep-data/vpcep.db" \
        --region "$REGION" --dns-listen "127.0.0.1:$DNS" >>serve.log 2>&1 &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$API/health" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "vpcep did not start:"; cat serve.log; exit 1
}
call() { VPCEP_ENDPOINT="http://127.0.0.1:$API" "$BIN" call "$@"; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval('v' + sys.argv[1]))" "$1"; }

echo "== seeding $NAMES endpoint names"
serve
VPC=$(call POST '/v1/{project_id}/vpcs' -d '{"vpc":{"name":"dnsbench","cidr":"127.60.0.0/16"}}' | field '["vpc"]["id"]')
SUBNET=$(call POST '/v1/{project_id}/subnets' -d "{\"subnet\":{\"name\":\"s\",\"cidr\":\"127.60.0.0/16\",\"gateway_ip\":\"127.60.0.1\",\"vpc_id\":\"$VPC\"}}" | field '["subnet"]["id"]')
PORT=$(call POST '/v1/{project_id}/ports' -d "{\"port\":{\"network_id\":\"$SUBNET\",\"device_owner\":\"compute:az1\"}}" | field '["port"]["id"]')
SVC=$(call POST '/v1/{project_id}/vpc-endpoint-services' -d "{\"port_id\":\"$PORT\",\"vpc_id\":\"$VPC\",\"server_type\":\"VM\",\"service_type\":\"interface\",\"approval_enabled\":false,\"ports\":[{\"client_port\":80,\"server_port\":8080,\"protocol\":\"TCP\"}]}" | field '["id"]')
for _ in $(seq 100); do
    [ "$(call GET "/v1/{project_id}/vpc-endpoint-services/$SVC" | field '["status"]')" = available ] && break
    sleep 0.1
done
EP=$(call POST '/v1/{project_id}/vpc-endpoints' -d "{\"endpoint_service_id\":\"$SVC\",\"vpc_id\":\"$VPC\",\"subnet_id\":\"$SUBNET\",\"port_ip\":\"127.60.0.10\",\"enable_dns\":true}" | field '["id"]')
for _ in $(seq 100); do
    [ "$(call GET "/v1/{project_id}/vpc-endpoints/$EP" | field '["status"]')" = accepted ] && break
    sleep 0.1
done
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
python3 "$ROOT/bench/dns/seed.py" "$WORK/vpcep-data/vpcep.db" "$EP" "$NAMES" "$REGION" >names.txt
serve
LAST=$(tail -1 names.txt)
for _ in $(seq 100); do
    [ "$(dig +short @127.0.0.1 -p "$DNS" "${LAST% *}" A)" = "${LAST#* }" ] && break
    sleep 0.1
done
[ "$(dig +short @127.0.0.1 -p "$DNS" "${LAST% *}" A)" = "${LAST#* }" ] || { echo "vpcep does not answer the seeded names"; exit 1; }
awk '{print $1 " A"}' names.txt >queries.txt

echo "== nsd with the same names as a zone file"
mkdir -p nsd
{
    echo "\$ORIGIN vpcep.$REGION.internal."
    echo "\$TTL 5"
    echo "@ 60 IN SOA ns hostmaster 1 3600 600 86400 5"
    echo "@ 60 IN NS ns"
    echo "ns 60 IN A 127.0.0.1"
    awk '{sub(/\.vpcep\..*/, "", $1); print $1 " IN A " $2}' names.txt
} >nsd/zone
cat >nsd/nsd.conf <<CONF
server:
    ip-address: 127.0.0.1
    port: $NSD
    server-count: $CORES
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "$WORK/nsd"
    database: ""
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdfile: "$WORK/nsd/xfrd.state"
    pidfile: "$WORK/nsd/nsd.pid"
    logfile: "$WORK/nsd/nsd.log"
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: "vpcep.$REGION.internal"
    zonefile: "$WORK/nsd/zone"
CONF
nsd -d -c nsd/nsd.conf &
PIDS+=($!)
for _ in $(seq 100); do
    [ "$(dig +short @127.0.0.1 -p "$NSD" "${LAST% *}" A 2>/dev/null)" = "${LAST#* }" ] && break
    sleep 0.1
done
[ "$(dig +short @127.0.0.1 -p "$NSD" "${LAST% *}" A)" = "${LAST#* }" ] || { echo "nsd does not answer:"; cat nsd/nsd.log; exit 1; }

measure() {
    dnsperf -s 127.0.0.1 -p "$1" -d queries.txt -l "$DURATION" -c "$CLIENTS" -T "$CORES" -q 200 >"perf-$2.txt" 2>&1
    local qps lost
    qps=$(awk '/Queries per second:/ {print $4}' "perf-$2.txt")
    lost=$(awk '/Queries lost:/ {print $3 " " $4}' "perf-$2.txt")
    echo "$2: $qps qps (lost $lost)" >&2
    echo "$qps"
}
echo "== dnsperf: $DURATION s each, $CLIENTS clients, $CORES threads, $NAMES names, A over UDP"
if [ -n "${PERF:-}" ]; then
    # PERF=1: a CPU profile of the vpcep server during its run (perf report -i target/dns-perf.data).
    perf record -F 999 -g -p "$SERVE_PID" -o "$ROOT/target/dns-perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
fi
V=$(measure "$DNS" vpcep)
N=$(measure "$NSD" nsd)
python3 - "$V" "$N" <<'PY'
import sys
v, n = float(sys.argv[1]), float(sys.argv[2])
ratio = v / n if n else 0.0
print(f"{'server':<8} {'qps':>12}")
print(f"{'vpcep':<8} {v:>12.0f}")
print(f"{'nsd':<8} {n:>12.0f}")
print(f"ratio vpcep/nsd: {ratio:.2f}x (target >= 1.0x): {'met' if ratio >= 1.0 else 'missed'}")
PY
