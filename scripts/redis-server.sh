#!/usr/bin/env bash
# Redis for troy's redis coordination tests and services.
#
#   bash scripts/redis-server.sh install    # apt-get install redis-server and openssl, if missing
#
# Installing does not start a daemon (apt starts none on these machines): the tests
# start their own servers on free ports (tests/redis_fixtures.py).
set -euo pipefail

usage() {
    echo "usage: $0 install" >&2
    exit 2
}

install() {
    # redis-server, and openssl: the TLS tests make a throwaway CA and certificates with it.
    local packages=()
    command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
    command -v openssl >/dev/null 2>&1 || packages+=(openssl)
    if [ ${#packages[@]} -eq 0 ]; then
        echo "redis-server and openssl are installed: $(command -v redis-server) $(command -v openssl)"
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when apt does not know the packages yet.
    if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
        $sudo apt-get update -q
    fi
    if ! $sudo apt-get install -y -q "${packages[@]}"; then
        # Stale lists (a package moved since the last update): refresh once and retry.
        $sudo apt-get update -q
        $sudo apt-get install -y -q "${packages[@]}"
    fi
    local missing
    for missing in redis-server openssl; do
        command -v "$missing" >/dev/null 2>&1 || {
            echo "$missing is still not on PATH after apt-get install" >&2
            exit 1
        }
    done
    echo "installed ${packages[*]}: $(redis-server --version); $(openssl version)"
}

case "${1:-}" in
    install) install ;;
    *) usage ;;
esac
