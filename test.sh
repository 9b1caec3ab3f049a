#!/usr/bin/env bash
# Runs every test of vpcep: unit tests, the store conformance suite and the API integration
# tests (on SQLite, and on PostgreSQL when it is reachable), then the compat suite that drives
# a freshly built server with the official Huawei Cloud Python SDK, the web console's browser
# tests (headless Chromium, installed with apt-get when missing), and last the schemathesis
# fuzz run against the server's own OpenAPI document (no 5xx, no answer the document does not
# describe).
#
# PostgreSQL: VPCEP_TEST_POSTGRES_URL (default postgres://root@127.0.0.1:5432/test). When it is
# not reachable its tests are skipped (and this script says so) unless VPCEP_REQUIRE_PG=1.
set -euo pipefail
cd "$(dirname "$0")"

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
fi

echo "== cargo test (unit, store conformance, API integration)"
cargo test --workspace

echo "== compat suite (official SDK against a fresh server)"
compat/run.sh

echo "== console: the web console in headless Chromium (console-tests/)"
console-tests/run.sh

echo "== fuzz: schemathesis against GET /openapi.json, every request signed"
fuzz/run.sh
