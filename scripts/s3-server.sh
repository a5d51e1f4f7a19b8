#!/usr/bin/env bash
# A real S3 server for troy's s3:// store tests: Ceph's radosgw on a single-node Ceph
# (one monitor, one OSD on memstore, so data lives in RAM; no authentication between
# the daemons).  Tried on Debian 12 (Ceph 16.2.15) as root without systemd.
#
#   bash scripts/s3-server.sh install        # apt-get install what is missing
#   bash scripts/s3-server.sh start DIR      # start everything under DIR, write DIR/env.sh
#   . DIR/env.sh                             # TROY_TEST_S3_* for clients
#   bash scripts/s3-server.sh status DIR
#   bash scripts/s3-server.sh stop DIR       # stop what DIR's pid files name
#
# Keep DIR short: it holds the daemons' unix sockets.  Every daemon listens on 127.0.0.1
# only: the monitor on 6799 and radosgw on 7480, or the next free ports; the OSD picks
# free ports of its own.  Daemons are stopped by the PIDs in their pid files, never by
# name.  Each start makes a fresh cluster (memstore keeps nothing) and a fresh S3 user
# with a random access key and secret.
#
# env.sh exports:
#   TROY_TEST_S3_ENDPOINT     http://127.0.0.1:PORT
#   TROY_TEST_S3_ACCESS_KEY   the S3 user's access key
#   TROY_TEST_S3_SECRET_KEY   its secret key
#   TROY_TEST_S3_DIR          DIR
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd radosgw)
START_TIMEOUT=${TROY_S3_TIMEOUT:-90} # seconds for the first bucket create to succeed

usage() {
    echo "usage: $0 install | start DIR | stop DIR | status DIR" >&2
    exit 2
}

log() { echo "s3-server: $*"; }
die() {
    echo "s3-server: $*" >&2
    exit 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# is_program, running_pid, stop_pid, port_in_use, free_port, apt_install:
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# --- install -----------------------------------------------------------------------

install() {
    local t0
    t0=$(date +%s.%N)
    apt_install --no-install-recommends
    log "installed: ${PACKAGES[*]} (in $(elapsed "$t0") s)"
}

# --- Ceph --------------------------------------------------------------------------

# The daemons of DIR, one a line: "program pid-file" (radosgw first: stop order).
daemons() {
    echo "radosgw $1/run/client.rgw.pid"
    local file
    for file in "$1"/run/osd.*.pid; do
        if [ -e "$file" ]; then echo "ceph-osd $file"; fi
    done
    echo "ceph-mon $1/run/mon.a.pid"
}

write_conf() {
    local dir=$1 fsid=$2 mon_port=$3 rgw_port=$4
    cat >"$dir/ceph.conf" <<CONF
# Single-node Ceph for troy's S3 tests (scripts/s3-server.sh); memstore: data in RAM.
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
# The OSD is put into the CRUSH map by this script; left to itself, ceph-osd can ask the
# monitor before it knows the cluster's fsid, and then fails with "wrong fsid".
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
mon pg warn min per osd = 0
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
mon data = $dir/mon.\$id
osd data = $dir/osd.\$id
keyring = $dir/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
CONF
}

# Create and then delete bucket $4 on endpoint $1 with keys $2/$3 (signature v2, stdlib
# only, so no S3 client is needed here); exit status 0 when both succeed.
probe_bucket() {
    python3 - "$@" <<'PY'
import base64, email.utils, hashlib, hmac, sys, urllib.request

endpoint, key, secret, bucket = sys.argv[1:5]
for method in ("PUT", "DELETE"):
    date = email.utils.formatdate(usegmt=True)
    kind = "application/octet-stream"  # signed: urllib would add a form type of its own
    text = f"{method}\n\n{kind}\n{date}\n/{bucket}".encode()
    signature = base64.b64encode(hmac.new(secret.encode(), text, hashlib.sha1).digest()).decode()
    request = urllib.request.Request(f"{endpoint}/{bucket}", method=method, data=b"")
    request.add_header("Content-Type", kind)
    request.add_header("Date", date)
    request.add_header("Authorization", f"AWS {key}:{signature}")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            sys.exit(1)
PY
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

start() {
    local dir=$1 t0 fsid mon_port rgw_port osd_uuid osd_id access_key secret_key deadline
    t0=$(date +%s.%N)
    for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph python3; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: bash $0 install"
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    DIR=$dir
    # Anything of an earlier start under this directory goes first (stopped by PID).
    stop "$dir" >/dev/null
    rm -rf "$dir/mon.a" "$dir"/osd.* "$dir/rgw" "$dir/run" "$dir/monmap" "$dir/keyring"
    mkdir -p "$dir/run" "$dir/log" "$dir/rgw"
    : >"$dir/keyring"
    # A start that fails half way stops what it did start, and shows the logs.
    trap 'start_failed' EXIT
    export CEPH_CONF=$dir/ceph.conf
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mon_port=$(free_port 6799)
    rgw_port=$(free_port 7480 "$mon_port")
    write_conf "$dir" "$fsid" "$mon_port" "$rgw_port"

    monmaptool --create --fsid "$fsid" --addv a "v1:127.0.0.1:$mon_port" "$dir/monmap" >/dev/null
    ceph-mon --mkfs -i a --monmap "$dir/monmap" >/dev/null
    ceph-mon -i a >>"$dir/log/mon-start.log" 2>&1
    log "ceph-mon   127.0.0.1:$mon_port (pid $(cat "$dir/run/mon.a.pid"))"

    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_id=$(timeout 60 ceph osd new "$osd_uuid")
    mkdir -p "$dir/osd.$osd_id"
    ceph-osd -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/osd-mkfs.log" 2>&1
    local attempt
    for attempt in 1 2 3; do # a start that loses a race with the monitor is tried again
        if ceph-osd -i "$osd_id" >>"$dir/log/osd-start.log" 2>&1; then
            break
        fi
        [ "$attempt" -lt 3 ] || die "ceph-osd would not start (see $dir/log/osd-start.log)"
        sleep 1
    done
    timeout 60 ceph osd crush add "osd.$osd_id" 1.0 root=default host="$(hostname -s)" >/dev/null 2>&1
    log "ceph-osd   osd.$osd_id on memstore (pid $(cat "$dir/run/osd.$osd_id.pid"))"

    radosgw -n client.rgw >>"$dir/log/rgw-start.log" 2>&1
    log "radosgw    http://127.0.0.1:$rgw_port (pid $(cat "$dir/run/client.rgw.pid"))"

    access_key=troy$(random_hex 8)
    secret_key=$(random_hex 20)
    # Creating the user waits for the OSD and radosgw's pools; never print the secret.
    # (--admin-socket '': radosgw itself holds client.rgw's admin socket.)
    timeout 120 radosgw-admin -n client.rgw --admin-socket '' user create --uid=troy \
        --display-name=troy --access-key="$access_key" --secret-key="$secret_key" \
        >/dev/null 2>>"$dir/log/radosgw-admin.log" ||
        die "radosgw-admin user create failed (see $dir/log/radosgw-admin.log)"

    deadline=$((SECONDS + START_TIMEOUT))
    until probe_bucket "http://127.0.0.1:$rgw_port" "$access_key" "$secret_key" \
        "troy-probe-$(random_hex 4)" 2>/dev/null; do
        # radosgw exits when its port was taken meanwhile (e.g. "failed to bind"): say so now.
        running_pid "$dir/run/client.rgw.pid" radosgw >/dev/null ||
            die "radosgw is not running (see $dir/log/client.rgw.log)"
        [ $SECONDS -lt $deadline ] || die "no bucket could be created on radosgw after ${START_TIMEOUT}s"
        sleep 0.5
    done
    log "S3         bucket create works"

    local q
    q=$(printf '%q' "$dir")
    (
        umask 077 # the file holds the S3 secret
        cat >"$dir/env.sh" <<ENV
# Written by scripts/s3-server.sh start; source it: . $q/env.sh
export TROY_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port
export TROY_TEST_S3_ACCESS_KEY=$access_key
export TROY_TEST_S3_SECRET_KEY=$secret_key
export TROY_TEST_S3_DIR=$q
ENV
    )
    trap - EXIT
    log "env        . $dir/env.sh   (started in $(elapsed "$t0") s)"
}

start_failed() {
    local status=$? file
    [ $status -ne 0 ] || return 0
    for file in "$DIR"/log/*.log; do
        [ -e "$file" ] || continue
        echo "--- $file" >&2
        tail -n 15 "$file" >&2 || true
    done
    stop "$DIR" >/dev/null 2>&1 || true
    exit $status
}

stop() {
    local dir=$1 program file
    [ -d "$dir" ] || return 0
    while read -r program file; do
        stop_pid "$file" "$program"
    done < <(daemons "$dir")
    rm -f "$dir/env.sh"
}

status() {
    local dir=$1 rc=0 pid program file
    while read -r program file; do
        if pid=$(running_pid "$file" "$program"); then
            echo "$program: running (pid $pid)"
        else
            echo "$program: stopped"
            rc=3
        fi
    done < <(daemons "$dir")
    [ ! -f "$dir/env.sh" ] || echo "env: . $dir/env.sh"
    return $rc
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    install) [ $# = 0 ] || usage; install ;;
    start | stop | status)
        [ $# = 1 ] || usage
        "$command" "$1"
        ;;
    *) usage ;;
esac
