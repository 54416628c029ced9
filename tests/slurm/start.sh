#!/usr/bin/env bash
# Start a private single-node SLURM cluster on this machine (for tests/test_slurm.py).
#
#   tests/slurm/start.sh STATE_DIR      # needs root and the Debian packages (tests/slurm/install.sh)
#   source STATE_DIR/env                # sets SLURM_CONF for sbatch/squeue/snakemake
#   tests/slurm/stop.sh STATE_DIR       # stops exactly the daemons this script started
#
# Config, state, logs and PID files live under STATE_DIR; no file in /etc is written. Outside it:
# munged's default socket (/run/munge; a running munged is reused) and slurmd's configless link
# /run/slurm/conf. The node advertises one fake GPU (gres on /dev/null). Ports: $SLURM_TEST_PORT
# (slurmctld, default 16817) and the next one (slurmd).
#
# The machine's own SLURM configuration (/etc/slurm/slurm.conf: on a login node, another cluster's)
# is never read: every command gets SLURM_CONF=STATE_DIR/slurm.conf, also `srun` inside a job,
# where the executor plugin removes SLURM_CONF from the environment (srun would then read
# /etc/slurm/slurm.conf before slurmd's configless copy): STATE_DIR/bin/srun, first on the PATH
# that STATE_DIR/env sets (sbatch hands the PATH to the job), sets it again.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${1:?usage: start.sh STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)
port=${SLURM_TEST_PORT:-16817}

for b in munge unmunge munged slurmctld slurmd sbatch squeue scontrol sinfo srun; do
    command -v "$b" >/dev/null || { echo "start.sh: $b not found (run tests/slurm/install.sh)" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "start.sh: must run as root" >&2; exit 3; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local n=$(($1 * 5)) what=$2; shift 2
    for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "start.sh: timed out waiting for $what" >&2
    return 1
}

if [ -s "$state/pids" ]; then
    while read -r name pid; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "start.sh: $name ($pid) of this cluster still runs: tests/slurm/stop.sh $state first" >&2
            exit 1
        fi
    done < "$state/pids"
fi
# a clean start: old jobs, drained nodes and the previous run's state go
rm -rf "$state/ctld" "$state/slurmd" "$state/log"
mkdir -p "$state/ctld" "$state/slurmd" "$state/log"
: > "$state/pids"

# munge on its default socket (slurmd fetches its configuration before it could read another):
# reuse a running munged, else start one as the munge user and record its PID
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    install -d -o munge -g munge -m 0755 /run/munge
    rm -f /run/munge/munged.pid  # stale: no munged answers on the socket
    runuser -u munge -- munged
    wait_for 10 munged test -s /run/munge/munged.pid
    echo "munged $(cat /run/munge/munged.pid)" >> "$state/pids"
    wait_for 10 "munge to answer" sh -c 'munge -n </dev/null | unmunge'
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
sed -e "s|@STATE@|$state|g" -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM@|$mem|g" \
    -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" \
    "$here/slurm.conf.in" > "$state/slurm.conf"
echo "NodeName=$host Name=gpu File=/dev/null" > "$state/gres.conf"
export SLURM_CONF="$state/slurm.conf"
mkdir -p "$state/bin"
printf '#!/bin/sh\n# srun of the test cluster, whatever /etc/slurm holds (see tests/slurm/start.sh)\nexport SLURM_CONF=%s\nexec %s "$@"\n' \
    "$SLURM_CONF" "$(command -v srun)" > "$state/bin/srun"
chmod 755 "$state/bin/srun"
printf 'export SLURM_CONF=%s\nexport PATH=%s:$PATH\n' "$SLURM_CONF" "$state/bin" > "$state/env"

/usr/sbin/slurmctld -f "$SLURM_CONF"
wait_for 20 slurmctld test -s "$state/slurmctld.pid"
echo "slurmctld $(cat "$state/slurmctld.pid")" >> "$state/pids"
wait_for 20 "scontrol ping" scontrol ping

/usr/sbin/slurmd --conf-server "127.0.0.1:$port"
wait_for 20 slurmd test -s "$state/slurmd.pid"
echo "slurmd $(cat "$state/slurmd.pid")" >> "$state/pids"
node_idle() { [ "$(sinfo -h -o %T)" = idle ]; }
wait_for 30 "the node to be idle" node_idle || { sinfo -N -l >&2; tail -20 "$state/log/slurmd.log" >&2; exit 1; }
echo "start.sh: SLURM up on $host ($cpus CPUs, $mem MB, 1 fake GPU); source $state/env"
