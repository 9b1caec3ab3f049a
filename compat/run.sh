#!/usr/bin/env bash
# Runs the compat suite: the official Huawei Cloud Python SDK (huaweicloudsdkvpcep 3.1.219)
# against a freshly built vpcep server. Needs only the Rust toolchain and Python 3.11 with pip.
#
#   compat/run.sh                 # whole suite
#   compat/run.sh -k ports -x     # extra arguments go to pytest
#
# Environment: PYTHON (default python3) picks the interpreter for the venv; VPCEP_BIN is set to
# the freshly built target/debug/vpcep.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
venv=".venv-compat"
if [ ! -x "$venv/bin/python" ]; then
  echo "== compat: creating $venv"
  "$python" -m venv "$venv"
fi
echo "== compat: installing compat/requirements.txt"
"$venv/bin/python" -m pip install -q -r compat/requirements.txt

echo "== compat: cargo build -p vpcep"
cargo build -p vpcep

echo "== compat: pytest"
export VPCEP_BIN="$PWD/target/debug/vpcep"
exec "$venv/bin/python" -m pytest compat -q "$@"
