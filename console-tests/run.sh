#!/usr/bin/env bash
# Runs the web console's browser tests (console-tests/): headless Chromium driven by Selenium
# against a freshly built server. Installs Debian's chromium and chromium-driver with apt-get
# when they are missing (as root, or through sudo), and reuses the compat suite's venv
# (.venv-compat) with Selenium added.
#
#   console-tests/run.sh            # whole suite
#   console-tests/run.sh -k flow    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "== console: installing chromium and chromium-driver (apt-get)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

python="${PYTHON:-python3}"
venv=".venv-compat"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
echo "== console: installing console-tests/requirements.txt"
"$venv/bin/python" -m pip install -q -r console-tests/requirements.txt

echo "== console: cargo build -p vpcep"
cargo build -p vpcep

echo "== console: pytest (screenshots in target/console-screenshots/)"
export VPCEP_BIN="$PWD/target/debug/vpcep"
exec "$venv/bin/python" -m pytest console-tests -q -p no:cacheprovider "$@"
