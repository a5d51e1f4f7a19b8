#!/usr/bin/env bash
# Install what the tests need, start the services they use, and run the whole suite:
# lint (ruff), types (mypy on troy/), then pytest.  Extra arguments go to pytest.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k reconnect
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${TROY_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[test]'

# Services: the built-in plugins of this release need none (local backend,
# file coordination, file store).  Live tiers for Redis, sshd, SLURM and S3
# are started here by scripts/services.sh once those plugins exist.
if [ -x scripts/services.sh ]; then
    scripts/services.sh start
    trap 'scripts/services.sh stop' EXIT
fi

echo "== ruff"
"$venv/bin/ruff" check troy tests bench
"$venv/bin/ruff" format --check troy tests bench
echo "== mypy"
"$venv/bin/mypy" troy
echo "== pytest"
# Keep test runs out of the user's ~/.troy.
TROY_HOME=$(mktemp -d -t troy-test-home.XXXXXX)
export TROY_HOME
"$venv/bin/pytest" -q -rs -p no:cacheprovider "$@"
