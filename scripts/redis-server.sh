#!/usr/bin/env bash
# Redis for troy's redis coordination tests and services.
#
#   bash scripts/redis-server.sh install    # apt-get install redis-server, if it is missing
#
# Installing does not start a daemon (apt starts none on these machines): the tests
# start their own servers on free ports (tests/redis_fixtures.py).
set -euo pipefail

usage() {
    echo "usage: $0 install" >&2
    exit 2
}

install() {
    if command -v redis-server >/dev/null 2>&1; then
        echo "redis-server is installed: $(command -v redis-server)"
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when apt does not know the package yet.
    if ! apt-cache show redis-server >/dev/null 2>&1; then
        $sudo apt-get update -q
    fi
    if ! $sudo apt-get install -y -q redis-server; then
        # Stale lists (a package moved since the last update): refresh once and retry.
        $sudo apt-get update -q
        $sudo apt-get install -y -q redis-server
    fi
    command -v redis-server >/dev/null 2>&1 || {
        echo "redis-server is still not on PATH after apt-get install" >&2
        exit 1
    }
    echo "redis-server installed: $(redis-server --version)"
}

case "${1:-}" in
    install) install ;;
    *) usage ;;
esac
