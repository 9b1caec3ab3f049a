#!/usr/bin/env bash
# Fuzzes the whole HTTP API with schemathesis against a fresh server.
#
# 1. Creates (or reuses) the venv `.venv-fuzz` in the repository root with pinned schemathesis
#    and openapi-spec-validator.
# 2. Builds `target/debug/vpcep` and starts `vpcep serve` on a free loopback port with a
#    temporary SQLite database and an accounts file (one operator account, so the agent feed is
#    fuzzed too).
# 3. Validates the server's own `GET /openapi.json` as OpenAPI 3 (openapi-spec-validator).
# 4. Creates a VPC, subnet, port, endpoint service, endpoint and permission (fixtures.py) and
#    binds their ids to the parameters that name resources, so tests get past "not found".
# 5. Runs schemathesis with every request signed SDK-HMAC-SHA256 as the SDK signs it
#    (hooks.py, sign.py). Checks: not_a_server_error, status_code_conformance,
#    content_type_conformance, response_schema_conformance: no 5xx, and no status, content
#    type or body that the document does not describe.
# 6. Stops the server; exits non-zero on any failure or error. Logs and a JUnit report are kept
#    in target/fuzz/.
#
# Environment: FUZZ_MAX_EXAMPLES (examples per operation, default 100), FUZZ_WORKERS (default
# 2), FUZZ_SEED (reproduce a run), FUZZ_PHASES (default examples,coverage,fuzzing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
VENV="$ROOT/.venv-fuzz"
OUT="$ROOT/target/fuzz"
SCHEMATHESIS_VERSION="4.32.5"
VALIDATOR_VERSION="0.7.2"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-100}"
WORKERS="${FUZZ_WORKERS:-2}"
PHASES="${FUZZ_PHASES:-examples,coverage,fuzzing}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

log() { echo "fuzz: $*" >&2; }

# CPython 3.11's ast.parse is not thread-safe (hypothesis calls it from schemathesis' worker
# threads and fails with "AST constructor recursion depth mismatch"): prefer 3.12 or newer.
pick_python() {
    local c
    for c in python3.13 python3.12; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys' >/dev/null 2>&1; then
            command -v "$c"
            return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for c in "$(pyenv root)"/versions/3.1[2-9]*/bin/python3; do
            if [ -x "$c" ]; then
                echo "$c"
                return
            fi
        done
    fi
    command -v python3
}

ensure_venv() {
    local stamp="$VENV/.vpcep-fuzz"
    local want="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$VALIDATOR_VERSION"
    if [ -x "$VENV/bin/schemathesis" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    local py
    py="$(pick_python)"
    log "creating $VENV with $("$py" --version 2>&1)"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" >"$stamp"
}

ensure_venv
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
    log "Python < 3.12 in $VENV: running with one worker"
    WORKERS=1
fi
"$VENV/bin/python" "$FUZZ/sign.py"

log "building target/debug/vpcep"
(cd "$ROOT" && cargo build --quiet -p vpcep)

TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        # A graceful stop gets 40 s (its drain is 30 s), then SIGKILL.
        for _ in $(seq 1 400); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    mkdir -p "$OUT"
    cp "$TMP/server.log" "$OUT/server.log" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

export VPCEP_FUZZ_AK="AKFUZZ00000000000001"
export VPCEP_FUZZ_SK="fuzz-secret-key-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export VPCEP_FUZZ_PROJECT="6e9dfd51d1124e8d8498dce894923a0d"
cat >"$TMP/accounts.toml" <<EOF
[[account]]
domain_id   = "0f8a1c2e3d4b5a69788796a5b4c3d2e1"
domain_name = "fuzz"
operator    = true
projects    = ["$VPCEP_FUZZ_PROJECT"]
[[account.credential]]
access_key = "$VPCEP_FUZZ_AK"
secret_key = "$VPCEP_FUZZ_SK"
EOF

PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
RUST_LOG="${RUST_LOG:-info}" "$ROOT/target/debug/vpcep" serve \
    --listen "127.0.0.1:$PORT" \
    --database "sqlite://$TMP/vpcep.db" \
    --accounts "$TMP/accounts.toml" \
    --log-format json >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if curl -fsS --max-time 2 "$BASE/health" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server exited:"
        cat "$TMP/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
log "server $BASE (pid $SERVER_PID)"

curl -fsS --max-time 30 "$BASE/openapi.json" -o "$TMP/openapi.json"
"$VENV/bin/openapi-spec-validator" "$TMP/openapi.json"
mkdir -p "$OUT"
cp "$TMP/openapi.json" "$OUT/openapi.json"

"$VENV/bin/python" "$FUZZ/fixtures.py" "$BASE" "$TMP/schemathesis.toml"

seed=()
if [ -n "${FUZZ_SEED:-}" ]; then
    seed=(--seed "$FUZZ_SEED")
fi
log "schemathesis: $MAX_EXAMPLES examples per operation, $WORKERS workers, phases $PHASES"
started=$(date +%s)
status=0
# schemathesis and hypothesis keep their caches (.schemathesis/, .hypothesis/) in the working
# directory: keep them in target/fuzz.
cd "$OUT"
SCHEMATHESIS_HOOKS="$FUZZ/hooks.py" "$VENV/bin/schemathesis" \
    --config-file "$TMP/schemathesis.toml" \
    --no-color \
    run "$BASE/openapi.json" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --workers "$WORKERS" \
    --phases "$PHASES" \
    --request-timeout 40 \
    --report junit --report-junit-path "$OUT/junit.xml" \
    "${seed[@]}" || status=$?
log "schemathesis finished in $(($(date +%s) - started)) s with status $status"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server died during the run"
    status=1
fi
exit "$status"
