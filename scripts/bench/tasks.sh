#!/usr/bin/env bash
# Tasks benchmark: one master and one agent on loopback (the `ci` preset, port 0).
# Measures
#   - process launch latency: LAUNCH_TASKS answered 200 (committed, STAGING) until
#     TASK_RUNNING is committed on the master, one `sleep 600` task at a time
#     (back to back, and with a pause between launches), each beside the floor:
#     a spawn of /bin/true just before it;
#   - docker launch latency the same way (busybox `sleep 600`, HOST and BRIDGE
#     network), in rounds interleaved with plain `docker run -d` of the same image
#     (`--network host`, and docker's default bridge);
#   - 1,000 sleeping process tasks on the agent: the agent's RSS and CPU (and the
#     master's, and the task supervisor's memory), against the same agent idle without tasks.
# Writes raw results as JSON lines to $BENCH_OUT/tasks.jsonl and the figures as
# KEY=VALUE lines to $BENCH_OUT/tasks.env (scripts/bench/run.sh renders them).
#
# Knobs (environment): BENCH_OUT (default target/bench), BENCH_LAUNCHES (process
# launches, 100), BENCH_ISOLATED (process launches with a pause, 30), BENCH_GAP_MS
# (that pause, 100), BENCH_DOCKER_ROUNDS (rounds of 10 launches of each docker
# series, 10), BENCH_FILL (sleeping tasks, 1000), BENCH_IDLE_SECS (CPU window, 30),
# BENCH_IMAGE (meso-test/busybox:latest), BENCH_STEPS ("process docker fill"),
# BENCH_MESO_LOG (warn), BENCH_KEEP_WORK=1 (keep the data dirs and logs),
# BENCH_MESO_BIN (another meso binary for master and agent, for before/after
# pairs), BENCH_DOCKER_NETWORKS ("host bridge": which networks' series the docker
# step runs; "bridge" alone for a quicker look at that one), BENCH_DOCKER_POLL_US
# (the docker launches' shortest poll interval; launchbench's default, 250, unless set).
# Everything started here (processes, task supervisors, containers, cgroups) is removed on
# exit, failures included; all traffic stays on 127.0.0.1. Needs root for cgroups
# (without them tasks run unlimited) and a Docker engine for the docker step.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench}
LAUNCHES=${BENCH_LAUNCHES:-100}
ISOLATED=${BENCH_ISOLATED:-30}
GAP_MS=${BENCH_GAP_MS:-100}
DOCKER_ROUNDS=${BENCH_DOCKER_ROUNDS:-10}
ROUND=10
FILL=${BENCH_FILL:-1000}
IDLE_SECS=${BENCH_IDLE_SECS:-30}
IMAGE=${BENCH_IMAGE:-meso-test/busybox:latest}
STEPS=" ${BENCH_STEPS:-process docker fill} "
NETWORKS=" ${BENCH_DOCKER_NETWORKS:-host bridge} "
DOCKER_POLL_US=${BENCH_DOCKER_POLL_US:-}
RESOURCES="cpus:1000;mem:100000;disk:10000;ports:[31000-32000]"
RUN_ID=bench-$$-$RANDOM
export RUST_BACKTRACE=0

log() { printf '[tasks %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/bench/lib.sh
source "$ROOT/scripts/bench/lib.sh"

# ------------------------------------------------------------------ prerequisites

if [[ $STEPS == *" docker "* ]]; then
    docker_ready || die "no Docker engine; run without the docker step: BENCH_STEPS=\"process fill\""
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE is not here"
fi
log "building meso and launchbench (release)"
(cd "$ROOT" && cargo build --release --quiet --bin meso --example launchbench)
MESO=${BENCH_MESO_BIN:-$ROOT/target/release/meso}
LB=$ROOT/target/release/examples/launchbench

mkdir -p "$OUT"
RESULTS=$OUT/tasks.jsonl
ENVOUT=$OUT/tasks.env
: >"$RESULTS"
: >"$ENVOUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meso-bench-tasks.XXXXXX")
log "work dir $WORK (data dirs and logs)"

# ------------------------------------------------------------------ processes

MASTER_PID="" AGENT_PID="" AGENT_KEY=""

# Pids of this agent's task supervisors (they outlive the agent by design).
supervisor_pids() { supervisor_pids_of "$AGENT_KEY"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    # Gently first: the agent kills its tasks and removes their cgroups.
    if [ $rc -ne 0 ] && [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null && [ -n "${MASTER:-}" ]; then
        log "cleaning up after a failure"
        timeout 120 "$LB" kill --master "$MASTER" --prefix "$RUN_ID" --timeout 100 >/dev/null 2>&1
    fi
    for pid in $AGENT_PID $MASTER_PID; do kill -INT "$pid" 2>/dev/null; done
    for pid in $AGENT_PID $MASTER_PID; do gone "$pid"; kill -KILL "$pid" 2>/dev/null; done
    # Whatever survived: supervisors (their tasks die with them), containers, cgroups.
    kill_supervisors_of "$AGENT_KEY"
    if command -v docker >/dev/null; then
        {
            [ -z "$AGENT_KEY" ] || docker ps -aq --filter "label=meso.agent=$AGENT_KEY"
            docker ps -aq --filter "label=meso-bench=$RUN_ID"
        } | xargs -r -n 1 docker rm -f >/dev/null 2>&1
    fi
    remove_cgroups_of "$AGENT_KEY"
    if [ -n "${BENCH_KEEP_WORK:-}" ]; then
        log "kept $WORK (data dirs and logs)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_master

"$MESO" agent --preset ci --master "$MASTER" --http 127.0.0.1:0 \
    --work-dir "$WORK/agent" --resources "$RESOURCES" --log "${BENCH_MESO_LOG:-warn}" \
    </dev/null >"$WORK/agent.out" 2>"$WORK/agent.log" &
AGENT_PID=$!
disown
wait_export "$WORK/agent.out" MESO_AGENT_HTTP "$AGENT_PID" agent >/dev/null
AGENT_KEY=$(tr -d '[:space:]' <"$WORK/agent/agent.key")
AGENT_ID=$("$LB" wait-agent --master "$MASTER" | sed -n 's/.*"agent_id":"\([^"]*\)".*/\1/p')
[ -n "$AGENT_ID" ] || die "the agent did not register"
log "master $MASTER (pid $MASTER_PID), agent $AGENT_ID (pid $AGENT_PID)"
CGROUPS=none

# ------------------------------------------------------------------ helpers

latency() { # PREFIX-SUFFIX ARGS...: one launchbench latency run; prints its summary line
    local line
    line=$("$LB" latency --master "$MASTER" --agent-id "$AGENT_ID" --prefix "$RUN_ID-$1" "${@:2}") ||
        die "launchbench latency $* failed; logs in $WORK"
    echo "$line" >>"$RESULTS"
    echo "$line"
}

record_latency() { # KEY_PREFIX summary-line
    local l=$2
    record "${1}_P50_MS" "$(json_num "$l" p50_ms)"
    record "${1}_P99_MS" "$(json_num "$l" p99_ms)"
    record "${1}_MAX_MS" "$(json_num "$l" max_ms)"
    record "${1}_COUNT" "$(json_num "$l" count)"
}

cpu_ticks() { # pid: utime + stime, in clock ticks
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

rss_mb() { # pid
    awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# ------------------------------------------------------------------ process launches

if [[ $STEPS == *" process "* ]]; then
    log "process tasks: $LAUNCHES launches, one at a time, back to back, each after a spawn of /bin/true"
    line=$(latency proc --kind process --count "$LAUNCHES" --floor --samples "$WORK/proc.jsonl")
    cat "$WORK/proc.jsonl" >>"$RESULTS"
    record_latency PROC "$line"
    record SPAWN_TRUE_P50_MS "$(json_num "$line" floor_p50_ms)"
    record SPAWN_TRUE_P99_MS "$(json_num "$line" floor_p99_ms)"
    for k in call staging_to_accepted accepted_to_starting starting_to_running running_to_seen; do
        record "PROC_${k^^}_P50_MS" "$(json_num "$line" "${k}_p50_ms")"
    done
    record PROC_OBSERVER_CPU_PCT "$(json_num "$line" observer_cpu_pct)"
    record PROC_POLLS_PER_LAUNCH "$(json_num "$line" polls_per_launch)"

    log "process tasks: $ISOLATED launches with ${GAP_MS} ms between them"
    line=$(latency iso --kind process --count "$ISOLATED" --gap-ms "$GAP_MS")
    record_latency PROC_ISO "$line"
    record PROC_ISO_STARTING_TO_RUNNING_P50_MS "$(json_num "$line" starting_to_running_p50_ms)"

    # The observer's own cost: the launches apart again, polled 8x less often (the
    # same cadence, so the cgroup effect above is the same for both).
    log "process tasks: $ISOLATED launches ${GAP_MS} ms apart, polled every 2 ms (observer check)"
    line=$(latency slowpoll --kind process --count "$ISOLATED" --gap-ms "$GAP_MS" --poll-us 2000)
    record_latency PROC_SLOWPOLL "$line"
    record PROC_SLOWPOLL_STARTING_TO_RUNNING_P50_MS "$(json_num "$line" starting_to_running_p50_ms)"
    record BENCH_GAP_MS "$GAP_MS"
fi

# ------------------------------------------------------------------ docker launches

# What meso's docker task gets besides image and command (launchbench: 0.1 cpus,
# 16 MB): its limits and a sandbox mounted at Mesos's path. The "-same" series
# give plain `docker run -d` the same, to tell meso's cost from docker's own.
SAME_AS_MESO=(--memory 16m --memory-swap 16m --cpu-shares 102
    -e MESOS_SANDBOX=/mnt/mesos/sandbox)

docker_run_round() { # series (host|bridge[-same]) round count: time `docker run -d`, µs resolution
    local series=$1 r=$2 n=$3 i t0 t1 net=() same=()
    [ "${series%-same}" = host ] && net=(--network host)
    for ((i = 0; i < n; i++)); do
        if [[ $series == *-same ]]; then
            mkdir -p "$WORK/peer-sandboxes/$r-$i-$series"
            same=("${SAME_AS_MESO[@]}" -v "$WORK/peer-sandboxes/$r-$i-$series:/mnt/mesos/sandbox")
        fi
        t0=$EPOCHREALTIME
        docker run -d "${net[@]}" "${same[@]}" --label "meso-bench=$RUN_ID" --name "$RUN_ID-run-$series-$r-$i" \
            "$IMAGE" sleep 600 >/dev/null || die "docker run -d $IMAGE failed"
        t1=$EPOCHREALTIME
        awk -v a="$t0" -v b="$t1" -v s="$series" \
            'BEGIN { printf "{\"mode\":\"docker-run\",\"network\":\"%s\",\"ms\":%.3f}\n", s, (b - a) * 1000 }'
    done
}

if [[ $STEPS == *" docker "* ]]; then
    log "docker: $DOCKER_ROUNDS rounds of $ROUND launches each, networks:$NETWORKS- meso, then docker run -d, then docker run -d with meso's limits and mount"
    # One warm-up of each, unmeasured: the first container on a fresh engine
    # state pays for things later ones do not.
    latency warm-host --kind docker --network host --count 1 --image "$IMAGE" >/dev/null
    docker_run_round host warm 1 >/dev/null
    series_list=()
    [[ $NETWORKS == *" host "* ]] && series_list+=(meso-host docker-run-host)
    [[ $NETWORKS == *" bridge "* ]] && series_list+=(meso-bridge docker-run-bridge)
    [[ $NETWORKS == *" host "* ]] && series_list+=(docker-run-host-same)
    [[ $NETWORKS == *" bridge "* ]] && series_list+=(docker-run-bridge-same)
    [ ${#series_list[@]} -gt 0 ] || die "BENCH_DOCKER_NETWORKS names neither host nor bridge"
    for ((r = 1; r <= DOCKER_ROUNDS; r++)); do
        # Every other round each meso series and its `docker run -d` peer swap
        # places, so that neither always follows the same neighbour: a series
        # right after the teardown of ten bridge containers (meso's kill at the
        # end of its series) starts on an engine and kernel still busy with it.
        order=("${series_list[@]}")
        if ((r % 2 == 0)); then
            for ((i = 0; i + 1 < ${#order[@]}; i++)); do
                if [[ ${order[i]} == meso-* ]]; then
                    order[i]=${series_list[i + 1]} order[i + 1]=${series_list[i]}
                    i=$((i + 1))
                fi
            done
        fi
        for series in "${order[@]}"; do
            case $series in
            meso-host | meso-bridge)
                latency "d${series#meso-}$r" --kind docker --network "${series#meso-}" --count $ROUND \
                    --image "$IMAGE" --samples "$WORK/$series.jsonl" ${DOCKER_POLL_US:+--poll-us "$DOCKER_POLL_US"} >/dev/null
                ;;
            *) docker_run_round "${series#docker-run-}" "$r" $ROUND >>"$WORK/$series.jsonl" ;;
            esac
        done
        # One at a time: Docker 20.10 (Debian's) deadlocked here removing 40
        # bridge containers at once (libnetwork's sandbox delete against its
        # store lock; every container call hung until dockerd was restarted).
        docker ps -aq --filter "label=meso-bench=$RUN_ID" | xargs -r -n 1 docker rm -f >/dev/null
        first=${series_list[0]} second=${series_list[1]}
        log "  round $r of $DOCKER_ROUNDS: $first p50 so far $(sed -n 's/.*"ms":\([0-9.]*\).*/\1/p' "$WORK/$first.jsonl" | pct 0.5) ms," \
            "$second $(sed -n 's/.*"ms":\([0-9.]*\).*/\1/p' "$WORK/$second.jsonl" | pct 0.5) ms"
    done
    for series in "${series_list[@]}"; do
        cat "$WORK/$series.jsonl" >>"$RESULTS"
        key=${series//-/_}
        key=${key^^}
        ms=$(sed -n 's/.*"ms":\([0-9.]*\).*/\1/p' "$WORK/$series.jsonl")
        record "${key}_P50_MS" "$(pct 0.50 <<<"$ms")"
        record "${key}_P99_MS" "$(pct 0.99 <<<"$ms")"
        record "${key}_MAX_MS" "$(pct 1 <<<"$ms")"
        record "${key}_COUNT" "$(wc -l <<<"$ms")"
    done
    for net in host bridge; do
        [[ $NETWORKS == *" $net "* ]] || continue
        for part in starting_to_running running_to_seen; do
            record "MESO_${net^^}_${part^^}_P50_MS" "$(sed -n "s/.*\"${part}_ms\":\(-\?[0-9.]*\).*/\1/p" "$WORK/meso-$net.jsonl" | pct 0.5)"
        done
    done
    record DOCKER_VERSION "\"$(docker version --format '{{.Server.Version}}' 2>/dev/null)\""
fi

# ------------------------------------------------------------------ 1,000 tasks

supervisors_pss_mb() { # total proportional set size of the task supervisors, in MB
    local total=0 pid kb
    for pid in $(supervisor_pids); do
        kb=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    awk -v k="$total" 'BEGIN { printf "%.1f\n", k / 1024 }'
}

idle_cpu_pct() { # seconds pid...: CPU of each pid over the window, % of one core
    local secs=$1 pid
    shift
    local -a before=()
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    sleep "$secs"
    local i=0 hz
    hz=$(getconf CLK_TCK)
    for pid in "$@"; do
        awk -v a="${before[$i]}" -v b="$(cpu_ticks "$pid")" -v hz="$hz" -v s="$secs" \
            'BEGIN { printf "%.2f\n", (b - a) / hz / s * 100 }'
        i=$((i + 1))
    done
}

if [[ $STEPS == *" fill "* ]]; then
    log "idle agent without tasks: RSS, and CPU over ${IDLE_SECS} s"
    sleep 2
    read -r agent_cpu master_cpu < <(idle_cpu_pct "$IDLE_SECS" "$AGENT_PID" "$MASTER_PID" | paste -sd' ')
    record AGENT_IDLE0_RSS_MB "$(rss_mb "$AGENT_PID")"
    record AGENT_IDLE0_CPU_PCT "$agent_cpu"
    record MASTER_IDLE0_RSS_MB "$(rss_mb "$MASTER_PID")"
    record MASTER_IDLE0_CPU_PCT "$master_cpu"

    log "launching $FILL sleeping process tasks, 100 per LAUNCH_TASKS"
    line=$("$LB" fill --master "$MASTER" --agent-id "$AGENT_ID" --count "$FILL" --batch 100 \
        --prefix "$RUN_ID-fill") || die "launchbench fill failed; logs in $WORK"
    echo "$line" >>"$RESULTS"
    record FILL_COUNT "$FILL"
    record FILL_ALL_RUNNING_MS "$(json_num "$line" all_running_ms)"
    # Which cgroup hierarchies the agent put its tasks in.
    dirs=$(find /sys/fs/cgroup -maxdepth 3 -type d -name "$AGENT_KEY" 2>/dev/null |
        sed 's|^/sys/fs/cgroup/||; s|/\?meso/.*||' | sort | paste -sd' ' -)
    if [ -z "$dirs" ]; then
        CGROUPS="none (tasks run without limits)"
    elif [ -e /sys/fs/cgroup/cgroup.controllers ]; then
        CGROUPS="v2"
    else
        CGROUPS="v1 (${dirs// /, })"
    fi
    supervised=0
    for pid in $(supervisor_pids); do
        supervised=$((supervised + $(pgrep -c -P "$pid" || true)))
    done
    [ "$supervised" -ge "$FILL" ] || die "$FILL tasks RUNNING but only $supervised under the agent's supervisor"
    record FILL_SUPERVISED "$supervised"

    log "$FILL tasks running: agent and master CPU over ${IDLE_SECS} s"
    sleep 5  # let the launch burst's updates and checkpoints settle
    read -r agent_cpu master_cpu < <(idle_cpu_pct "$IDLE_SECS" "$AGENT_PID" "$MASTER_PID" | paste -sd' ')
    record AGENT_FILL_RSS_MB "$(rss_mb "$AGENT_PID")"
    record AGENT_FILL_CPU_PCT "$agent_cpu"
    record MASTER_FILL_RSS_MB "$(rss_mb "$MASTER_PID")"
    record MASTER_FILL_CPU_PCT "$master_cpu"
    record FILL_SUPERVISORS_PSS_MB "$(supervisors_pss_mb)"
    record BENCH_IDLE_SECS "$IDLE_SECS"

    log "killing the $FILL tasks"
    line=$("$LB" kill --master "$MASTER" --prefix "$RUN_ID-fill" --timeout 300) ||
        die "launchbench kill failed; logs in $WORK"
    echo "$line" >>"$RESULTS"
    record FILL_KILL_MS "$(json_num "$line" ms)"
fi

record BENCH_LAUNCHES "$LAUNCHES"
record BENCH_ISOLATED "$ISOLATED"
record BENCH_DOCKER_ROUNDS "$DOCKER_ROUNDS"
record BENCH_CGROUPS "\"$CGROUPS\""
log "done; raw results in $RESULTS"
