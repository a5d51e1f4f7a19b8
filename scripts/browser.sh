#!/usr/bin/env bash
# A headless browser for troy's dashboard test (tests/integration/test_dashboard_browser.py):
# Debian's chromium and the chromedriver built from the same source package (their
# versions must match).  Tried on Debian 12 as root.  selenium itself comes from pip
# (troy's `test` extra); it is pointed at /usr/bin/chromedriver, so it never downloads one.
#
#   bash scripts/browser.sh install          # apt-get install what is missing
set -euo pipefail

PACKAGES=(chromium chromium-driver)

# apt_install (from lib.sh) reports through log and die:
log() { echo "browser: $*"; }
die() { echo "browser: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

if [ $# != 1 ] || [ "$1" != install ]; then
    echo "usage: $0 install" >&2
    exit 2
fi
apt_install
log "installed: ${PACKAGES[*]}"
