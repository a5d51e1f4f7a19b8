#!/usr/bin/env bash
# Install what the tests need, start the services they use, and run the whole suite:
# lint (ruff), layers (import-linter), types (mypy on troy/), then pytest.  Arguments, if any, replace
# pytest's default (the project's tests and those of the example plugin packages).
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
"$venv/bin/python" -m pip install --quiet -e '.[test,saga]'
# A third-party plugin package, installed as users install one: the conformance
# suites run against its plugins exactly as against troy's own.
"$venv/bin/python" -m pip install --quiet -e examples/troy-demo
# The scheduler of docs/scheduling.md ("a strategy in under 50 lines"), tested the same way.
"$venv/bin/python" -m pip install --quiet -e examples/troy-lpt

# Services: the Redis tests start their own redis-server processes (on free
# loopback ports, stopped by PID) from the binary installed here; the ZeroMQ
# broker lives in the test processes.  sshd, munge + single-node SLURM run for the
# whole session from a fresh directory (short: it holds unix sockets), on free
# loopback ports, and stop by PID when this script ends, failed or not; their
# env.sh tells the tests where they are (TROY_TEST_SSH_URL, TROY_TEST_SLURM_URL,
# SLURM_CONF, ssh wrappers first in PATH).  TROY_REQUIRE_SERVICES=1 turns a missing
# server into a failure, never a silent skip.  The S3 server (Ceph radosgw on a
# memstore OSD, for the s3:// store) runs the same way from DIR/s3; its env.sh gives
# TROY_TEST_S3_ENDPOINT and the keys of a fresh user.
bash scripts/redis-server.sh install
bash scripts/services.sh install
bash scripts/s3-server.sh install
# Debian's chromium + chromedriver for the dashboard's browser test (selenium is in the
# test extra and is pointed at /usr/bin/chromedriver: nothing is downloaded).
bash scripts/browser.sh install
TROY_SERVICES_DIR=$(mktemp -d /tmp/troy-svc.XXXXXX)
stop_services() {
    local status=$?
    bash scripts/s3-server.sh stop "$TROY_SERVICES_DIR/s3" || true
    bash scripts/services.sh stop "$TROY_SERVICES_DIR" || true
    if [ "$status" -eq 0 ]; then
        rm -rf "$TROY_SERVICES_DIR"
    else
        echo "service logs kept in $TROY_SERVICES_DIR" >&2
    fi
}
trap stop_services EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/services.sh start "$TROY_SERVICES_DIR"
# shellcheck source=/dev/null
. "$TROY_SERVICES_DIR/env.sh"
bash scripts/s3-server.sh start "$TROY_SERVICES_DIR/s3"
# shellcheck source=/dev/null
. "$TROY_SERVICES_DIR/s3/env.sh"
export TROY_REQUIRE_SERVICES=1

echo "== ruff"
"$venv/bin/ruff" check troy tests bench examples
"$venv/bin/ruff" format --check troy tests bench examples
echo "== layers (import-linter: the contracts in pyproject.toml)"
"$venv/bin/lint-imports" --no-cache
echo "== mypy"
"$venv/bin/mypy" troy
"$venv/bin/mypy" --strict examples/troy-demo/src
"$venv/bin/mypy" --strict examples/troy-lpt/src
echo "== pytest"
# `troy plugins new` is tested as a plugin author uses it: tests/integration/test_plugins_new.py
# generates one package of each kind, pip-installs it (into a temporary --target, not this venv)
# and runs its tests: the scheduler's must pass, the other kinds' must fail with the
# NotImplementedError messages saying what to implement.
# Keep test runs out of the user's ~/.troy.
TROY_HOME=$(mktemp -d -t troy-test-home.XXXXXX)
export TROY_HOME
[ $# -gt 0 ] || set -- tests examples/troy-demo/tests examples/troy-lpt/tests
"$venv/bin/pytest" -q -rs -p no:cacheprovider "$@"
