# Helpers the bench scripts that start a master and agents share (tasks.sh,
# marathon.sh, dns.sh). Sourced, not run. The caller defines log and die, and sets WORK
# (its data dirs and logs), ENVOUT (its KEY=VALUE figures) and MESO (the binary).
# shellcheck shell=bash

gone() { # pid: wait up to 10 s for it to exit
    local n=0
    while kill -0 "$1" 2>/dev/null && [ $n -lt 1000 ]; do sleep 0.01; n=$((n + 1)); done
}

wait_export() { # file key pid name: wait for `export KEY=` in file; print its value
    local deadline=$((SECONDS + 30))
    until grep -q "^export $2=" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || die "$4 exited; see $WORK/$4.log: $(tail -3 "$WORK/$4.log")"
        [ $SECONDS -lt $deadline ] || die "$4 printed no $2 in 30 s"
        sleep 0.02
    done
    sed -n "s/^export $2=//p" "$1" | head -1
}

supervisor_pids_of() { # agent-key...: pids of those agents' task supervisors (they outlive their agent while they have tasks; their tasks die with them)
    local key
    for key in "$@"; do
        [ -n "$key" ] || continue
        # cmdline is NUL-separated: -z makes each argument a line. The bracket
        # keeps grep from finding its own command line.
        grep -lzx -- "--agent-key=[${key:0:1}]${key:1}" /proc/[0-9]*/cmdline 2>/dev/null |
            sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p'
    done
    return 0
}

kill_supervisors_of() { # agent-key...: SIGKILL what is left of those agents' task supervisors (their tasks die with them)
    local supervisors pid
    supervisors=$(supervisor_pids_of "$@")
    [ -n "$supervisors" ] || return 0
    log "killing $(echo "$supervisors" | wc -l) leftover task supervisors"
    kill -KILL $supervisors 2>/dev/null
    for pid in $supervisors; do gone "$pid"; done
}

remove_cgroups_of() { # agent-key...: the cgroups those agents made, in every hierarchy
    local key dir
    for key in "$@"; do
        [ -n "$key" ] || continue
        for dir in /sys/fs/cgroup/*/meso/"$key" /sys/fs/cgroup/meso/"$key"; do
            [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
        done
    done
    return 0
}

# Pull one number out of a flat JSON line: json_num '{"a":1.5}' a -> 1.5
json_num() { sed -n "s/.*\"$2\":\(-\?[0-9.e+-]*\).*/\1/p" <<<"$1"; }

# Nearest-rank percentile of the numbers on stdin: pct 0.99
pct() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
    i = int(NR * p); if (i < NR * p) i++; if (i < 1) i = 1; print a[i] }'; }

record() { # KEY VALUE
    echo "$1=$2" >>"$ENVOUT"
    log "  $1=$2"
}

# How busy the machine is before anything starts: other work on these cores
# stretches every time measured, so the report says how much there was.
# Records PREFIX_BUSY_BEFORE_PCT and PREFIX_STEAL_BEFORE_PCT over 3 s.
busy_before() { # PREFIX
    local total0 idle0 steal0 total1 idle1 steal1
    read -r total0 idle0 steal0 < <(cpu_sample)
    sleep 3
    read -r total1 idle1 steal1 < <(cpu_sample)
    echo "$1_BUSY_BEFORE_PCT=$(awk -v t=$((total1 - total0)) -v i=$((idle1 - idle0)) 'BEGIN { printf "%.0f", t ? (t - i) * 100 / t : 0 }')" >>"$ENVOUT"
    echo "$1_STEAL_BEFORE_PCT=$(awk -v t=$((total1 - total0)) -v s=$((steal1 - steal0)) 'BEGIN { printf "%.0f", t ? s * 100 / t : 0 }')" >>"$ENVOUT"
    log "machine busy before the run: $(tail -2 "$ENVOUT" | paste -sd' ')"
}
cpu_sample() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $9 }' /proc/stat; }

# apt_install, docker_ready
# shellcheck source=scripts/ready.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ready.sh"

start_master() { # [extra flags...]: one `meso master --preset ci` on free ports in $WORK/master;
    # sets MASTER_PID and MASTER (its HTTP address) once it has printed MESO_ID, its last line
    "$MESO" master --preset ci --http 127.0.0.1:0 --raft 127.0.0.1:0 \
        --data-dir "$WORK/master" --log "${BENCH_MESO_LOG:-warn}" "$@" \
        </dev/null >"$WORK/master.out" 2>"$WORK/master.log" &
    MASTER_PID=$!
    disown
    wait_export "$WORK/master.out" MESO_ID "$MASTER_PID" master >/dev/null
    MASTER=$(wait_export "$WORK/master.out" MESOS_MASTER "$MASTER_PID" master)
}
