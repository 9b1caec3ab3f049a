#!/usr/bin/env bash
# Runs every test of vpcep: unit tests, the store conformance suite, the API integration tests
# and the CLI end-to-end tests (on SQLite, and on PostgreSQL when it is reachable), then the
# compat suite that drives a freshly built server with the official Huawei Cloud Python SDK,
# the web console's browser tests (headless Chromium, installed with apt-get when missing),
# and last the schemathesis fuzz run against the server's own OpenAPI document (no 5xx, no
# answer the document does not describe). Ends with a summary of what ran and what was
# skipped, and why.
#
# Prerequisites: the Rust toolchain, Python 3.11+ with pip and venv (compat, fuzz: they install
# their pinned packages from PyPI into .venv-compat and .venv-fuzz), curl (fuzz), ~10 GB of disk
# for the build; Debian's chromium and chromium-driver (console-tests installs them with apt-get
# when missing, as root or through sudo). Optional: PostgreSQL (below); root for the tests that create network
# namespaces (`ip netns`), mount a tmpfs or set file attributes (skipped otherwise).
#
# PostgreSQL: VPCEP_TEST_POSTGRES_URL (default postgres://root@127.0.0.1:5432/test). When it is
# not reachable its tests are skipped (and this script says so) unless VPCEP_REQUIRE_PG=1.
set -euo pipefail
cd "$(dirname "$0")"

ran=()
skipped=()
step="the PostgreSQL check"
finished=0
summary() {
  local status=$?
  # Killed from outside (a signal): the EXIT trap runs with the last command's status.
  [ "$status" -eq 0 ] && [ "$finished" -eq 0 ] && status=130
  echo
  echo "== summary"
  for r in "${ran[@]}"; do echo "   ran:     $r"; done
  if [ "${#skipped[@]}" -eq 0 ]; then
    echo "   skipped: nothing"
  else
    for s in "${skipped[@]}"; do echo "   skipped: $s"; done
  fi
  if [ "$status" -eq 0 ]; then echo "== all passed"; else echo "== FAILED in $step (exit $status)"; fi
}
trap summary EXIT

# Runs a step under a deadline (`timeout`: the step's whole process group is stopped), so a
# step that hangs fails, naming itself, instead of holding CI until CI's own deadline.
bounded() {
  local deadline="$1"
  shift
  local status=0
  timeout --kill-after=30s "$deadline" "$@" || status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "== $step did not finish within $deadline" >&2
    step="$step (past its deadline of $deadline)"
  fi
  return "$status"
}

pg_url="${VPCEP_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432/test}"
pg_hostport="$(sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#' <<<"$pg_url")"
pg_host="${pg_hostport%%:*}"
pg_port="${pg_hostport##*:}"
[ "$pg_port" = "$pg_hostport" ] && pg_port=5432
if (exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null; then
  echo "== PostgreSQL reachable at $pg_host:$pg_port: its tests will run"
elif [ "${VPCEP_REQUIRE_PG:-}" = "1" ]; then
  echo "== PostgreSQL is required (VPCEP_REQUIRE_PG=1) but not reachable at $pg_host:$pg_port" >&2
  exit 1
else
  echo "== NOTE: PostgreSQL not reachable at $pg_host:$pg_port: PostgreSQL tests will be SKIPPED"
  skipped+=("PostgreSQL tests: nothing listens at $pg_host:$pg_port (VPCEP_TEST_POSTGRES_URL)")
fi

step="cargo test"
echo "== cargo test (unit, store conformance, API integration, CLI end to end)"
log="$(mktemp)"
# Each test bounds its own waits; this bounds the whole run, so a test that hangs anyway
# fails here, naming itself ("has been running for over 60 seconds" above), instead of
# holding CI until its own deadline.
set +e
bounded "${VPCEP_TEST_DEADLINE:-45m}" cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "== the tests still running then (VPCEP_TEST_DEADLINE sets the deadline):" >&2
  grep -E 'has been running for over' "$log" >&2 || true
fi
[ "$status" -eq 0 ] || exit "$status"
ran+=("cargo test --workspace ($(grep -Eo '^test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}') tests passed)")
# Tests that cannot run here print "SKIPPED <test>: <why>" past the harness's capture.
while IFS= read -r line; do
  skipped+=("${line#*SKIPPED }")
done < <(grep -Eo 'SKIPPED.*' "$log" | sort -u)
rm -f "$log"

step="compat/run.sh"
echo "== compat suite (official SDK against a fresh server)"
bounded 25m compat/run.sh
ran+=("compat/run.sh (official Python SDK)")

step="console-tests/run.sh"
echo "== console: the web console in headless Chromium (console-tests/)"
bounded 25m console-tests/run.sh
ran+=("console-tests/run.sh (web console in headless Chromium)")

step="fuzz/run.sh"
echo "== fuzz: schemathesis against GET /openapi.json, every request signed"
bounded 25m fuzz/run.sh
ran+=("fuzz/run.sh (schemathesis)")
finished=1
