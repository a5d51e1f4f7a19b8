#!/usr/bin/env bash
# Real services for troy's live tests: sshd (ssh://), single-node SLURM (slurm://),
# munge (SLURM's authentication) and OpenMPI.  Tried on Debian 12 (openssh 9.2,
# slurm-wlm 22.05, munge 0.5.15, openmpi 4.1) as root without systemd.
#
#   bash scripts/services.sh install          # apt-get install what is missing
#   bash scripts/services.sh start [DIR]      # start everything under DIR, write DIR/env.sh
#   . DIR/env.sh                              # PATH, SLURM_CONF, TROY_TEST_* for clients
#   bash scripts/services.sh status [DIR]
#   bash scripts/services.sh stop [DIR]       # stop what DIR's pid files name
#
# DIR defaults to /tmp/troy-services; keep it short (it holds unix sockets).
# Every daemon listens on 127.0.0.1 only, on a non-default port (sshd 2222, slurmctld
# 6917, slurmd 6918, or the next free ones), so it never collides with a service
# someone else runs.  Daemons are stopped by the PIDs in their pid files, never by name.
#
# env.sh exports:
#   PATH                    DIR/ssh/bin first: ssh, scp, sftp wrappers adding -F ssh_config
#   SLURM_CONF              DIR/slurm/slurm.conf (every SLURM client needs it)
#   TROY_TEST_SSH_URL       ssh://localhost:PORT
#   TROY_TEST_SSH_PORT, TROY_TEST_SSH_KEY (private key), TROY_TEST_SSH_CONFIG
#   TROY_TEST_SLURM_URL     slurm://localhost (partition "debug")
#   TROY_TEST_SERVICES_DIR  DIR
#   OMPI_ALLOW_RUN_AS_ROOT, OMPI_ALLOW_RUN_AS_ROOT_CONFIRM (mpirun refuses root without them)
set -euo pipefail

PACKAGES=(openssh-server slurm-wlm munge openmpi-bin libopenmpi-dev python3-venv)
START_TIMEOUT=${TROY_SERVICES_TIMEOUT:-20} # seconds for SLURM to run a probe job

usage() {
    echo "usage: $0 install | start [DIR] | stop [DIR] | status [DIR]" >&2
    exit 2
}

log() { echo "services: $*"; }
die() {
    echo "services: $*" >&2
    exit 1
}

# is_program, running_pid, stop_pid, port_in_use, free_port, apt_install:
# shellcheck source=scripts/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# --- install -----------------------------------------------------------------------

install() {
    apt_install
    log "installed: ${PACKAGES[*]}"
}

# --- sshd --------------------------------------------------------------------------

start_sshd() {
    local dir=$1/ssh user port attempt
    user=$(id -un)
    mkdir -p "$dir/bin"
    if [ ! -d /run/sshd ]; then # sshd's privilege separation directory
        if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd; else sudo mkdir -p /run/sshd; fi
    fi
    [ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C troy-test-host -f "$dir/host_ed25519"
    [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C troy-test -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    : >"$dir/known_hosts"
    for t in ssh scp sftp; do
        printf '#!/bin/sh\nexec /usr/bin/%s -F %s/ssh_config "$@"\n' "$t" "$dir" >"$dir/bin/$t"
        chmod +x "$dir/bin/$t"
    done
    port=2222
    for attempt in 1 2 3 4 5; do
        port=$(free_port "$port")
        cat >"$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
# Sessions are SLURM clients (slurm+ssh://) and may run mpirun as root.
SetEnv SLURM_CONF=$1/slurm/slurm.conf OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CONF
        cat >"$dir/ssh_config" <<CONF
Host localhost 127.0.0.1
    HostName 127.0.0.1
    Port $port
    User $user
    IdentityFile $dir/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile $dir/known_hosts
    BatchMode yes
    LogLevel ERROR
CONF
        /usr/sbin/sshd -t -f "$dir/sshd_config"
        # sshd exits at once (before it daemonizes) when it cannot bind the port: a
        # port taken since free_port looked is retried with the next one.
        if /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"; then
            SSH_PORT=$port
            return 0
        fi
        port=$((port + 1))
    done
    tail -n 20 "$dir/sshd.log" >&2 || true
    die "sshd did not start"
}

# --- munge + SLURM -----------------------------------------------------------------

start_munge() {
    local dir=$1/munge i
    mkdir -p "$dir"
    chmod 755 "$dir" # munged insists that everyone may reach its socket
    if [ ! -f "$dir/munge.key" ]; then
        mungekey -c -k "$dir/munge.key"
        chmod 600 "$dir/munge.key"
    fi
    rm -f "$dir/munge.socket.2" "$dir/munge.socket.2.lock"
    munged --socket="$dir/munge.socket.2" --key-file="$dir/munge.key" \
        --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"
    for i in $(seq 50); do
        [ -S "$dir/munge.socket.2" ] && return 0
        sleep 0.1
    done
    tail -n 20 "$dir/munged.log" >&2 || true
    die "munged did not create its socket"
}

start_slurm() {
    local base=$1 dir=$1/slurm host user cpus state
    host=$(hostname -s)
    user=$(id -un)
    cpus=$(nproc)
    # A fresh start: no jobs, nodes or steps of an earlier run.
    rm -rf "$dir/state" "$dir/spool"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    CTLD_PORT=$(free_port 6917)
    SLURMD_PORT=$(free_port 6918 "$CTLD_PORT")
    cat >"$dir/slurm.conf" <<CONF
# Single-node SLURM for troy's tests (scripts/services.sh); clients need SLURM_CONF.
ClusterName=troytest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$base/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF=$dir/slurm.conf
    # Both daemonize; -i: ignore any state left over (there is none after the rm above).
    slurmctld -i || {
        tail -n 20 "$dir/log/slurmctld.log" >&2 || true
        die "slurmctld did not start"
    }
    slurmd || {
        tail -n 20 "$dir/log/slurmd.log" >&2 || true
        die "slurmd did not start"
    }
    local deadline=$((SECONDS + START_TIMEOUT)) job=""
    while :; do
        state=$(sinfo -h -o %T 2>/dev/null || true)
        [ "$state" = idle ] && break
        [ $SECONDS -lt $deadline ] || slurm_failed "SLURM's node is not idle after ${START_TIMEOUT}s (state: ${state:-unknown})"
        sleep 0.1
    done
    # A probe job: proves submission, munge and slurmd end to end, and waits out
    # slurmctld's first scheduling pass (about 3 s after it starts; a job submitted
    # before that waits for it), so the tests' first job starts at once.
    job=$(sbatch --parsable --job-name=troy-services-probe -o /dev/null -e /dev/null --wrap true) ||
        slurm_failed "sbatch of the probe job failed"
    while :; do
        state=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' || true)
        case "$state" in
            JobState=COMPLETED) return 0 ;;
            JobState=PENDING | JobState=CONFIGURING | JobState=RUNNING | JobState=COMPLETING | "") ;;
            *) slurm_failed "probe job $job ended in ${state#JobState=}" ;;
        esac
        [ $SECONDS -lt $deadline ] || slurm_failed "probe job $job not done after ${START_TIMEOUT}s (${state:-unknown})"
        sleep 0.1
    done
}

slurm_failed() {
    local dir=$BASE/slurm
    echo "services: $*" >&2
    for f in slurmctld slurmd; do
        echo "--- $dir/log/$f.log" >&2
        tail -n 20 "$dir/log/$f.log" >&2 || true
    done
    exit 1
}

stop_slurm() {
    local dir=$1/slurm ids
    if running_pid "$dir/slurmctld.pid" slurmctld >/dev/null && [ -f "$dir/slurm.conf" ]; then
        export SLURM_CONF=$dir/slurm.conf
        # Cancel what still runs, so no job's processes outlive the cluster.
        ids=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            timeout 5 scancel $ids 2>/dev/null || true
            for _ in $(seq 50); do
                [ -z "$(timeout 5 squeue -h -t R,CG -o %i 2>/dev/null || true)" ] && break
                sleep 0.1
            done
        fi
        timeout 10 scontrol shutdown >/dev/null 2>&1 || true
    fi
    # Whatever scontrol shutdown did not stop (or could not reach): by PID.
    stop_pid "$dir/slurmd.pid" slurmd
    stop_pid "$dir/slurmctld.pid" slurmctld
}

write_env() {
    local base=$1 q
    q=$(printf '%q' "$base")
    cat >"$base/env.sh" <<ENV
# Written by scripts/services.sh start; source it: . $q/env.sh
case ":\$PATH:" in
    *:$q/ssh/bin:*) ;;
    *) export PATH=$q/ssh/bin:"\$PATH" ;;
esac
export SLURM_CONF=$q/slurm/slurm.conf
export TROY_TEST_SERVICES_DIR=$q
export TROY_TEST_SSH_URL=ssh://localhost:$SSH_PORT
export TROY_TEST_SSH_PORT=$SSH_PORT
export TROY_TEST_SSH_KEY=$q/ssh/id_ed25519
export TROY_TEST_SSH_CONFIG=$q/ssh/ssh_config
export TROY_TEST_SLURM_URL=slurm://localhost
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ENV
}

start() {
    local base=$1 t0
    t0=$(date +%s.%N)
    for tool in /usr/sbin/sshd munged mungekey slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: bash $0 install"
    done
    mkdir -p "$base"
    # munged refuses a socket whose directories not everyone may traverse (mktemp -d
    # makes them 0700): open DIR for traversal, not for listing.
    chmod go+x "$base"
    base=$(cd "$base" && pwd -P)
    BASE=$base
    # Anything of an earlier start under this directory goes first (stopped by PID).
    stop "$base" >/dev/null
    # A start that fails half way stops what it did start.
    trap 'stop "$BASE" >/dev/null 2>&1' EXIT
    start_sshd "$base"
    log "sshd       127.0.0.1:$SSH_PORT (pid $(cat "$base/ssh/sshd.pid")), ssh://localhost:$SSH_PORT, key $base/ssh/id_ed25519"
    start_munge "$base"
    log "munged     $base/munge/munge.socket.2 (pid $(cat "$base/munge/munged.pid"))"
    start_slurm "$base"
    log "slurmctld  127.0.0.1:$CTLD_PORT (pid $(cat "$base/slurm/slurmctld.pid")), slurmd 127.0.0.1:$SLURMD_PORT (pid $(cat "$base/slurm/slurmd.pid")), node $(hostname -s) idle, partition debug, probe job done"
    write_env "$base"
    trap - EXIT
    log "env        . $base/env.sh   (started in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
}

stop() {
    local base=$1
    [ -d "$base" ] || return 0
    stop_slurm "$base"
    stop_pid "$base/munge/munged.pid" munged
    stop_pid "$base/ssh/sshd.pid" sshd
    rm -f "$base/env.sh"
}

status() {
    local base=$1 rc=0 pid
    for entry in ssh/sshd.pid:sshd munge/munged.pid:munged slurm/slurmctld.pid:slurmctld slurm/slurmd.pid:slurmd; do
        if pid=$(running_pid "$base/${entry%%:*}" "${entry##*:}"); then
            echo "${entry##*:}: running (pid $pid)"
        else
            echo "${entry##*:}: stopped"
            rc=3
        fi
    done
    if [ -f "$base/slurm/slurm.conf" ] && [ $rc = 0 ]; then
        echo "slurm node: $(SLURM_CONF=$base/slurm/slurm.conf sinfo -h -o '%n %T' 2>/dev/null || echo unreachable)"
    fi
    [ ! -f "$base/env.sh" ] || echo "env: . $base/env.sh"
    return $rc
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    install) [ $# = 0 ] || usage; install ;;
    start | stop | status)
        [ $# -le 1 ] || usage
        "$command" "${1:-/tmp/troy-services}"
        ;;
    *) usage ;;
esac
