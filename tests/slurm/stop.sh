#!/usr/bin/env bash
# Stop the private cluster started by tests/slurm/start.sh STATE_DIR: cancel its jobs (their
# slurmstepd would outlive slurmd), then end the daemons recorded in STATE_DIR/pids, by PID.
set -uo pipefail
state=${1:?usage: stop.sh STATE_DIR}
[ -d "$state" ] && state=$(cd "$state" && pwd)
[ -f "$state/pids" ] || exit 0
if [ -f "$state/slurm.conf" ]; then
    export SLURM_CONF="$state/slurm.conf"
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 60); do  # KillWait is 10 s
            [ -z "$(timeout 10 squeue -h -t R,CG,PD -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi
# slurmd first, munged last (the others authenticate through it)
for name in slurmd slurmctld munged; do
    pid=$(awk -v n="$name" '$1 == n {print $2}' "$state/pids")
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done
: > "$state/pids"
# slurmd's configless link, if it points into this cluster's state
if [ -L /run/slurm/conf ] && [[ "$(readlink /run/slurm/conf)" == "$state"/* ]]; then
    rm -f /run/slurm/conf
fi
exit 0
