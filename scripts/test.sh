#!/usr/bin/env bash
# Install what the tests need, start the services they use, and run the whole suite:
# lint (ruff), types (mypy on troy/), then pytest.  Arguments, if any, replace
# pytest's default (the project's tests and the demo plugin package's).
#
#   bash scripts/test.sh                       # everything
#   bash scripts/test.sh tests -k reconnect
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${TROY_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[test]'
# A third-party plugin package, installed as users install one: the conformance
# suites run against its plugins exactly as against troy's own.
"$venv/bin/python" -m pip install --quiet -e examples/troy-demo

# Services: the Redis tests start their own redis-server processes (on free
# loopback ports, stopped by PID) from the binary installed here; the ZeroMQ
# broker lives in the test processes.  TROY_REQUIRE_SERVICES=1 turns a missing
# server into a failure, never a silent skip.
bash scripts/redis-server.sh install
export TROY_REQUIRE_SERVICES=1

echo "== ruff"
"$venv/bin/ruff" check troy tests bench examples
"$venv/bin/ruff" format --check troy tests bench examples
echo "== mypy"
"$venv/bin/mypy" troy
"$venv/bin/mypy" --strict examples/troy-demo/src
echo "== pytest"
# Keep test runs out of the user's ~/.troy.
TROY_HOME=$(mktemp -d -t troy-test-home.XXXXXX)
export TROY_HOME
[ $# -gt 0 ] || set -- tests examples/troy-demo/tests
"$venv/bin/pytest" -q -rs -p no:cacheprovider "$@"
