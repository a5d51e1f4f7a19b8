# Shell helpers shared by troy's service scripts (services.sh, s3-server.sh).
# Source it after defining log() and die(), and PACKAGES for apt_install:
#   . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# --- install -----------------------------------------------------------------------

missing_packages() {
    local package
    for package in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
            echo "$package"
        fi
    done
}

# apt-get install what of PACKAGES is missing (extra apt-get options in "$@");
# apt lists are updated only when apt does not know a package, or once after a failure.
apt_install() {
    local missing sudo=""
    missing=$(missing_packages | tr '\n' ' ')
    if [ -z "${missing// /}" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    {
        if ! apt-cache show $missing >/dev/null 2>&1; then
            $sudo apt-get update -q
        fi
        # Wait for a dpkg lock held by another apt run rather than fail at once.
        if ! $sudo apt-get install -y -q "$@" -o DPkg::Lock::Timeout=300 $missing; then
            # Stale lists (a package moved since the last update): refresh once and retry.
            $sudo apt-get update -q
            $sudo apt-get install -y -q "$@" -o DPkg::Lock::Timeout=300 $missing
        fi
    }
    missing=$(missing_packages | tr '\n' ' ')
    [ -z "${missing// /}" ] || die "still not installed after apt-get install: $missing"
}

# --- processes and ports -----------------------------------------------------------

# True when process $2 runs and is the program $1 (not a process that got a stale
# pid file's number since, nor a zombie: an exited daemon stays one until init reaps it).
is_program() {
    local program=$1 pid=$2 comm
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$program" ] || return 1
    [ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# The PID in pid file $1 if that process runs and is the program $2.
running_pid() {
    local file=$1 program=$2 pid
    pid=$(cat "$file" 2>/dev/null | tr -dc '0-9') || true
    [ -n "$pid" ] && is_program "$program" "$pid" || return 1
    echo "$pid"
}

# Stop the process of pid file $1 (program $2): SIGTERM, after ~10 s SIGKILL.
stop_pid() {
    local file=$1 program=$2 pid
    if pid=$(running_pid "$file" "$program"); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            is_program "$program" "$pid" || break
            sleep 0.1
        done
        if is_program "$program" "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.1
        fi
        log "stopped $program (pid $pid)"
    fi
    rm -f "$file"
}

# True when something listens on TCP port $1 (IPv4 or IPv6, any address).
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    # /proc/net/tcp*: "sl local_address rem_address st ..."; st 0A is LISTEN.
    awk -v port="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == port && $4 == "0A") found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# The first free port from $1 on, skipping ports listed after it.
free_port() {
    local port=$1 skip
    shift
    while :; do
        skip=0
        for other in "$@"; do [ "$port" = "$other" ] && skip=1; done
        if [ $skip = 0 ] && ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
        port=$((port + 1))
        [ "$port" -lt 65535 ] || die "no free port"
    done
}

