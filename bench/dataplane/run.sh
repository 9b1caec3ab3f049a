#!/usr/bin/env bash
# Data-plane benchmark: the vpcep agent (splice and userspace copy) vs HAProxy (TCP mode,
# send-proxy-v2, with and without splicing) vs direct to the backend, side by side on this
# machine, plus agent and HAProxy memory per idle connection; and the agent's kernel fast path
# (tcp_proxy close, nftables NAT: `agent-kernel`), run only while it is measured so that the
# conntrack it turns on does not slow the other paths. The connection test also runs the agent and
# HAProxy at one thread each (`agent-1thread`, `haproxy-1thread`): on a small machine the
# load tool and the backend share the cores, and a proxy's thread count moves its conn/s.
#
#   bench/dataplane/run.sh
#
# Env: CONNS (parallel uploads, 4), BYTES_PER_CONN (1 GiB), REPS (5), CPS_CONC (64),
#      CPS_SECS (5), CPS_REPS (3), IDLE_CONNS (9000: a proxy holds two sockets per connection, and this
#      sandbox caps open files at 20000 even for root), AGENT_BIN (the agent binary to measure,
#      e.g. an older build for an A/B; default: the example this script builds).
# Every address is on loopback; the load tool shares the cores with the proxies, so it runs
# single-threaded. Needs root only to install haproxy and raise limits.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNS="${CONNS:-4}"
BYTES_PER_CONN="${BYTES_PER_CONN:-1073741824}"
REPS="${REPS:-5}"
CPS_CONC="${CPS_CONC:-64}"
CPS_SECS="${CPS_SECS:-5}"
CPS_REPS="${CPS_REPS:-3}"
IDLE_CONNS="${IDLE_CONNS:-9000}"

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nft >/dev/null || need+=(nftables)
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== building (release)"
cargo build --release -q -p vpcep-proxy --examples
LG=target/release/examples/dataplane-loadgen
AG="${AGENT_BIN:-target/release/examples/dataplane-bench-agent}"

ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE="$(ulimit -n)"
T="$(mktemp -d)"
PIDS=()
old_range="$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true)"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$old_range" ] && echo "$old_range" > /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
echo "1024 65000" > /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true

# start NAME CMD...: runs CMD in the background, waits for "ready" on its stdout (or a port).
start() {
  local name="$1"; shift
  "$@" >"$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  eval "PID_${name//-/_}=$pid"
  for _ in $(seq 100); do
    grep -q ready "$T/$name.out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$T/$name.err" >&2; echo "$name died" >&2; exit 1; }
    sleep 0.05
  done
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null && return 0; sleep 0.05; done; echo "no listener on $1" >&2; exit 1; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user+system) a process has used so far.
cpu_s() { [ -n "$1" ] && awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat" || echo 0; }
# The same, as "user system".
cpu_us() { [ -n "$1" ] && awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f %.2f", $14/hz, $15/hz}' "/proc/$1/stat" || echo "0 0"; }
# CPU seconds the whole machine has spent busy and idle so far, as "busy idle".
machine_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f %.2f", ($2+$3+$4+$7+$8+$9)/hz, ($5+$6)/hz}' /proc/stat
}
# TCP segments this host has sent so far (all of them are on loopback here): per connection, a
# figure of the kernel work a path causes that does not move with the VM's noise.
tcp_out_segs() {
  awk '/^Tcp:/ { if (!col) { for (i = 1; i <= NF; i++) if ($i == "OutSegs") col = i } else print $col }' /proc/net/snmp
}

haproxy_cfg() { # PORT SPLICE(0|1) [THREADS]; splicing needs pipes (maxpipes = maxconn/4), so fewer conns
  cat <<CFG
global
  nbthread ${3:-$(nproc)}
  maxconn $( [ "$2" = 1 ] && echo $(( (NOFILE - 200) * 10 / 26 )) || echo $(( (NOFILE - 100) / 2 )) )
defaults
  mode tcp
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  $( [ "$2" = 1 ] && echo "option splice-auto" )
frontend f
  bind 127.0.0.3:$1
  default_backend b
backend b
  server s1 127.0.0.4:19000 send-proxy-v2
CFG
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (figures are only comparable within one run)"
echo "== starting backend, agents and haproxy"
start backend "$LG" backend 127.0.0.4:19000
start agent_splice "$AG" 127.0.0.2:19001 127.0.0.4:19000 proxy_open splice
start agent_user "$AG" 127.0.0.2:19002 127.0.0.4:19000 proxy_open userspace
haproxy_cfg 19003 0 > "$T/h.cfg"; haproxy_cfg 19004 1 > "$T/hs.cfg"
start haproxy haproxy -db -f "$T/h.cfg"; wait_port 127.0.0.3:19003
start haproxy_splice haproxy -db -f "$T/hs.cfg"; wait_port 127.0.0.3:19004
# The same two at one thread each (connection test only): the load tool and the backend share
# these cores, so a proxy's thread count moves its conn/s.
start agent_1t env TOKIO_WORKER_THREADS=1 "$AG" 127.0.0.2:19006 127.0.0.4:19000 proxy_open splice
haproxy_cfg 19007 0 1 > "$T/h1.cfg"
start haproxy_1t haproxy -db -f "$T/h1.cfg"; wait_port 127.0.0.3:19007

declare -A PROC=(
  [direct]=""
  [agent-kernel]=""
  [agent-splice]=$PID_agent_splice
  [agent-userspace]=$PID_agent_user
  [haproxy]=$PID_haproxy
  [haproxy-splice]=$PID_haproxy_splice
  [agent-1thread]=$PID_agent_1t
  [haproxy-1thread]=$PID_haproxy_1t
)
declare -A TARGET=(
  [direct]=127.0.0.4:19000
  [agent-kernel]=127.0.0.2:19005
  [agent-splice]=127.0.0.2:19001
  [agent-userspace]=127.0.0.2:19002
  [haproxy]=127.0.0.3:19003
  [haproxy-splice]=127.0.0.3:19004
  [agent-1thread]=127.0.0.2:19006
  [haproxy-1thread]=127.0.0.3:19007
)
ORDER=(direct agent-kernel agent-splice agent-userspace haproxy haproxy-splice)
CPS_ORDER=("${ORDER[@]}" agent-1thread haproxy-1thread)

# The kernel path's agent runs only while its path is measured (with its table loaded, every
# connection on the host is tracked by conntrack, which would slow the other paths too).
kernel_up() {
  start agent_kernel "$AG" 127.0.0.2:19005 127.0.0.4:19000 close kernel
  PROC[agent-kernel]=$PID_agent_kernel
}
kernel_down() { stop "$PID_agent_kernel"; PROC[agent-kernel]=""; }

echo "== throughput: $CONNS parallel uploads of $BYTES_PER_CONN bytes, $REPS reps (median)"
for rep in $(seq "$REPS"); do
  for n in "${ORDER[@]}"; do
    if [ "$n" = agent-kernel ]; then kernel_up; fi
    c0=$(cpu_s "${PROC[$n]}")
    v=$("$LG" throughput "${TARGET[$n]}" "$CONNS" "$BYTES_PER_CONN" | sed -E 's/.*gbytes_per_sec=([0-9.]+).*/\1/')
    c1=$(cpu_s "${PROC[$n]}")
    cpu=$(python3 -c "print(f'{($c1 - $c0) / ($CONNS * $BYTES_PER_CONN / 1e9):.3f}')")
    echo "   rep $rep $n: $v GB/s, proxy CPU ${cpu} s/GB"
    echo -e "$n\tgbps\t$v" >> "$T/results.tsv"
    # This VM's speed drifts between runs: the kernel path is also compared with the direct
    # run just before it (the median of those pairs is printed too).
    if [ "$n" = direct ]; then last_direct=$v; fi
    if [ "$n" = agent-kernel ]; then
      echo -e "kernel-pair\tratio\t$(python3 -c "print($v / $last_direct)")" >> "$T/results.tsv"
    fi
    [ -n "${PROC[$n]}" ] && echo -e "$n\tcpu\t$cpu" >> "$T/results.tsv"
    if [ "$n" = agent-kernel ]; then
      # Direct again while the NAT table is loaded (conntrack then tracks every connection on
      # the host): what the kernel path costs beyond the tracking itself.
      v=$("$LG" throughput "${TARGET[direct]}" "$CONNS" "$BYTES_PER_CONN" | sed -E 's/.*gbytes_per_sec=([0-9.]+).*/\1/')
      echo "   rep $rep direct, NAT table loaded: $v GB/s"
      echo -e "direct-ct\tgbps\t$v" >> "$T/results.tsv"
      kernel_down
    fi
  done
done

echo "== new connections/s: concurrency $CPS_CONC, ${CPS_SECS}s each, $CPS_REPS reps (median)"
for rep in $(seq "$CPS_REPS"); do
  for n in "${CPS_ORDER[@]}"; do
    if [ "$n" = agent-kernel ]; then kernel_up; fi
    read -r u0 k0 <<<"$(cpu_us "${PROC[$n]}")"
    read -r m0 i0 <<<"$(machine_cpu)"
    s0=$(tcp_out_segs)
    line=$("$LG" cps "${TARGET[$n]}" "$CPS_CONC" "$CPS_SECS")
    s1=$(tcp_out_segs)
    read -r m1 i1 <<<"$(machine_cpu)"
    read -r u1 k1 <<<"$(cpu_us "${PROC[$n]}")"
    v=$(sed -E 's/.*conns_per_sec=([0-9]+).*/\1/' <<<"$line")
    count=$(sed -E 's/.*conns=([0-9]+) .*/\1/' <<<"$line")
    # Per 1,000 connections: the proxy's CPU (user, kernel), the whole machine's busy CPU
    # (load tool, backend, proxy and the kernel's TCP work for all of them), and its idle share.
    read -r cpuk cpuu cpus mach idle <<<"$(python3 -c "
k = 1e6 / max($count, 1)
print(f'{($u1 - $u0 + $k1 - $k0) * k:.1f} {($u1 - $u0) * k:.1f} {($k1 - $k0) * k:.1f} {($m1 - $m0) * k:.1f} {100 * ($i1 - $i0) / max($m1 - $m0 + $i1 - $i0, 0.01):.0f}')")"
    segs=$(python3 -c "print(f'{($s1 - $s0) / max($count, 1):.1f}')")
    echo "   rep $rep $n: $line, proxy CPU ${cpuk} ms/1k conns (user $cpuu, kernel $cpus), machine busy ${mach} ms/1k conns (${idle}% idle), ${segs} TCP segments/conn"
    echo -e "$n\tcps\t$v" >> "$T/results.tsv"
    echo -e "$n\tsegs\t$segs" >> "$T/results.tsv"
    echo -e "$n\tmachconn\t$mach" >> "$T/results.tsv"
    echo -e "$n\tidle\t$idle" >> "$T/results.tsv"
    if [ -n "${PROC[$n]}" ]; then
      echo -e "$n\tcpuconn\t$cpuk" >> "$T/results.tsv"
      echo -e "$n\tcpuuser\t$cpuu" >> "$T/results.tsv"
      echo -e "$n\tcpukern\t$cpus" >> "$T/results.tsv"
    fi
    if [ "$n" = agent-kernel ]; then kernel_down; fi
    sleep 1
  done
done

stop "$PID_agent_splice"; stop "$PID_agent_user"; stop "$PID_haproxy"; stop "$PID_haproxy_splice"
stop "$PID_agent_1t"; stop "$PID_haproxy_1t"

echo "== memory: $IDLE_CONNS idle connections, RSS delta of a fresh proxy process"
idle_mem() { # NAME ADDR PID
  sleep 0.5
  local before; before=$(rss_kb "$3")
  start "idle_$1" "$LG" idle "$2" "$IDLE_CONNS"
  for _ in $(seq 600); do grep -q ready "$T/idle_$1.out" && break; sleep 0.1; done
  local after; after=$(rss_kb "$3")
  local per; per=$(( (after - before) * 1024 / IDLE_CONNS ))
  echo "   $1: RSS ${before} kB -> ${after} kB: $per bytes/connection"
  echo -e "$1\tmem\t$per" >> "$T/results.tsv"
  eval "stop \$PID_idle_${1//-/_}"
}
start mem_agent "$AG" 127.0.0.2:19011 127.0.0.4:19000 proxy_open splice
idle_mem agent-splice 127.0.0.2:19011 "$PID_mem_agent"
stop "$PID_mem_agent"
haproxy_cfg 19013 0 > "$T/hm.cfg"
start mem_haproxy haproxy -db -f "$T/hm.cfg"; wait_port 127.0.0.3:19013
idle_mem haproxy 127.0.0.3:19013 "$PID_mem_haproxy"
stop "$PID_mem_haproxy"

echo
python3 - "$T/results.tsv" <<'PY'
import sys, statistics, collections
vals = collections.defaultdict(list)
for line in open(sys.argv[1]):
    n, m, v = line.split("\t")
    vals[(n, m)].append(float(v))
med = {k: statistics.median(v) for k, v in vals.items()}
def g(n, m): return med.get((n, m))
def r(a, b): return f"{a / b:.2f}x" if a is not None and b else "-"
rows = ["direct", "agent-kernel", "agent-splice", "agent-userspace", "haproxy", "haproxy-splice", "agent-1thread", "haproxy-1thread"]
best_h = lambda m: max(x for x in (g("haproxy", m), g("haproxy-splice", m), g("haproxy-1thread", m)) if x is not None)
print(f"| {'path':<15} | {'GB/s':>6} | {'proxy CPU s/GB':>14} | {'conn/s':>7} | {'proxy CPU ms/1k conn':>20} | {'TCP segs/conn':>13} | {'bytes/idle conn':>15} | {'GB/s vs direct':>14} | {'GB/s vs best HAProxy':>20} | {'conn/s vs best HAProxy':>22} |")
print("|" + "|".join("-" * (w + 2) for w in (15, 6, 14, 7, 20, 13, 15, 14, 20, 22)) + "|")
for n in rows:
    gb, cps, mem, cpu, cpuc, segs = g(n, "gbps"), g(n, "cps"), g(n, "mem"), g(n, "cpu"), g(n, "cpuconn"), g(n, "segs")
    print(f"| {n:<15} | {(f'{gb:.2f}' if gb is not None else '-'):>6} | {(f'{cpu:.3f}' if cpu is not None else '-'):>14} | {cps or 0:>7.0f} | {(f'{cpuc:.1f}' if cpuc is not None else '-'):>20} | {(f'{segs:.1f}' if segs is not None else '-'):>13} | {(f'{mem:.0f}' if mem else '-'):>15} | "
          f"{r(gb, g('direct', 'gbps')):>14} | {r(gb, best_h('gbps')):>20} | {r(cps, best_h('cps')):>22} |")
def verdict(name, ratio, target):
    print(f"{name}: {ratio:.2f} (target >= {target}) {'met' if ratio >= target else 'missed'}")
print()
k, d = g("agent-kernel", "gbps"), g("direct", "gbps")
if k is not None and d:
    verdict("GB/s close (kernel path) vs direct", k / d, 0.9)
    kp = g("kernel-pair", "ratio")
    print(f"  median of the per-rep pairs (kernel run vs the direct run just before it): {kp:.2f}")
dc = g("direct-ct", "gbps")
if k is not None and dc:
    print(f"  vs direct with the NAT table loaded ({dc:.2f} GB/s): {k / dc:.2f}")
s_ = g("agent-splice", "gbps")
if s_ is not None:
    verdict("GB/s PROXY modes (splice) vs best HAProxy", s_ / best_h("gbps"), 1.2)
c_ = g("agent-splice", "cps")
if c_ is not None:
    verdict("conn/s (user-space path) vs best HAProxy", c_ / best_h("cps"), 1.2)
    sa, sh = g("agent-splice", "segs"), min(x for x in (g("haproxy", "segs"), g("haproxy-splice", "segs")) if x is not None)
    print(f"  TCP segments per connection, agent {sa:.1f} vs HAProxy {sh:.1f}: {sa / sh:.2f}")
    # What limits it: with the machine busy, conn/s follows the whole machine's CPU per
    # connection. The agent's share that 1.2x the best HAProxy would leave it: the best HAProxy
    # run's machine CPU per connection / 1.2, less what everything but the agent used per
    # connection in the agent's run.
    hb = max(("haproxy", "haproxy-splice", "haproxy-1thread"), key=lambda n: g(n, "cps") or 0)
    ma, mh, pa, ph = g("agent-splice", "machconn"), g(hb, "machconn"), g("agent-splice", "cpuconn"), g(hb, "cpuconn")
    if None not in (ma, mh, pa, ph):
        budget = mh / 1.2 - (ma - pa)
        print(f"  CPU per 1,000 connections: agent {pa:.1f} ms (user {g('agent-splice', 'cpuuser'):.1f}, kernel {g('agent-splice', 'cpukern'):.1f}),"
              f" {hb} {ph:.1f} ms (user {g(hb, 'cpuuser'):.1f}, kernel {g(hb, 'cpukern'):.1f});"
              f" whole machine {ma:.1f} vs {mh:.1f} ms ({g('agent-splice', 'idle'):.0f}% vs {g(hb, 'idle'):.0f}% idle)")
        print(f"  for 1.2x {hb}'s conn/s the agent could use at most {budget:.1f} ms of CPU per 1,000 connections"
              f" (everything else unchanged); its kernel time alone is {g('agent-splice', 'cpukern'):.1f}")
a1, h1 = g("agent-1thread", "cps"), g("haproxy-1thread", "cps")
if a1 and h1:
    print(f"  at one thread each (agent TOKIO_WORKER_THREADS=1, HAProxy nbthread 1): agent {a1:.0f} vs HAProxy {h1:.0f}: {a1 / h1:.2f}x;"
          f" agent at one thread vs best HAProxy: {a1 / best_h('cps'):.2f}x")
PY
echo "(medians; memory measured with the agent in splice mode and HAProxy without splicing;"
echo " agent-kernel: tcp_proxy close on the nftables path, its agent process idle, so no proxy CPU)"
