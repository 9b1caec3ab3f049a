#!/usr/bin/env bash
# The data plane through restarts and control-plane failures, before and after issue 18 ("Data
# plane in production"), side by side from one run of each scenario:
#
# - planned restart of a separate `vpcep agent` under load (20 long-lived connections
#   exchanging a message every 100 ms, a new connection every 50 ms through an accepted
#   endpoint): refused and failed new connections, dropped long-lived ones, and when the old
#   agent exited. Before: SIGTERM, then a new agent (it has no socket takeover); after: a new
#   agent started beside the running one; and SIGTERM-then-start on both.
# - node loss: two `serve --require-agent` nodes on one PostgreSQL schema; the node the agent
#   follows is SIGKILLed and an endpoint is created through the other: time to traffic and to
#   `accepted`. The agent gets both URLs (before: only the first, it takes one).
# - outages of 10/45/90 s of a single SQLite node (SIGKILL, then started again): time from the
#   first create call to traffic and to `accepted`.
#
# Builds the release `vpcep` and `vpcep-bench` here, and the "before" `vpcep` from $BEFORE_REV in
# a temporary git worktree with its own target dir under /tmp (both removed afterwards; the
# binary alone is kept in $CACHE for the next run). Takes about 4 minutes after the builds
# (the 90 s outage dominates). Not part of test.sh or CI.
#
# Settings (environment): BEFORE_REV (3907ce7), OUTAGES (10,45,90), CACHE (target/resilience),
# KEEP (a directory to keep the child processes' logs and databases in; default: removed),
# VPCEP_TEST_POSTGRES_URL (default postgres://root@127.0.0.1:5432/test; node loss is skipped
# when unreachable).
set -euo pipefail
cd "$(dirname "$0")/.."

BEFORE_REV="${BEFORE_REV:-3907ce7}"
OUTAGES="${OUTAGES:-10,45,90}"
CACHE="${CACHE:-target/resilience}"

echo "== building release binaries (vpcep, vpcep-bench)"
cargo build --release -p vpcep -p vpcep-bench

before_bin="$CACHE/vpcep-$(git rev-parse --short=12 "$BEFORE_REV^{commit}")"
if [ ! -x "$before_bin" ]; then
  wt="$(mktemp -u -d /tmp/vpcep-before.XXXXXX)"
  tgt="$(mktemp -d /tmp/vpcep-before-target.XXXXXX)"
  cleanup() {
    git worktree remove --force "$wt" 2>/dev/null || true
    git worktree prune
    rm -rf "$tgt" "$wt"
  }
  trap cleanup EXIT
  echo "== building the before binary ($BEFORE_REV) in $wt"
  git worktree add --detach "$wt" "$BEFORE_REV"
  (cd "$wt" && CARGO_TARGET_DIR="$tgt" cargo build --release -p vpcep)
  mkdir -p "$CACHE"
  cp "$tgt/release/vpcep" "$before_bin.tmp"
  mv "$before_bin.tmp" "$before_bin"
  cleanup
  trap - EXIT
fi

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== measuring: before $before_bin, after target/release/vpcep"
target/release/vpcep-bench resilience \
  --before-bin "$before_bin" --after-bin target/release/vpcep --outages "$OUTAGES" \
  ${KEEP:+--keep "$KEEP"}
echo
echo "== $(nproc) CPUs shared by the load, the servers, the agents and PostgreSQL;" \
  "load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
