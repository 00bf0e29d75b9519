#!/usr/bin/env bash
# Marathon benchmark: one master and three agents on loopback (the `ci` preset,
# port 0), driven through the Marathon API (/v2) by `marathonbench`. Measures
#   - one app of 1,000 instances: from the POST until the last TASK_RUNNING is
#     seen on /v2/events, as launches per second;
#   - 1,000 apps of one instance in one POST /v2/groups (a group holding all
#     1,000, as the issue's "POST -> all RUNNING" for 1,000 apps reads), as one
#     PUT /v2/apps of all 1,000, POSTed to /v2/apps back to back by one client,
#     and by 8 clients at once (each one POST at a time, as a deploy tool with 8
#     workers sends them): from the first request until the last TASK_RUNNING;
#   - GET /v2/apps latency (p50, p99) with the 1,000 apps running, without and
#     with embed=apps.tasks.
# Tasks are `sleep 600` process tasks, 0.01 cpus and 8 MB each. Between runs the
# apps are deleted (DELETE /v2/groups/mb?force=true) and the run waits until
# every task has ended.
# Writes raw results as JSON lines to $BENCH_OUT/marathon.jsonl and the figures as
# KEY=VALUE lines to $BENCH_OUT/marathon.env (scripts/bench/run.sh renders them).
#
# Knobs (environment): BENCH_OUT (default target/bench), BENCH_INSTANCES (1000),
# BENCH_APPS (1000), BENCH_ROUNDS (runs of each deployment, 3; the median is
# reported), BENCH_GETS (GET /v2/apps requests, 200), BENCH_CLIENTS (the clients
# of the second many-post run, 8), BENCH_STEPS ("one many-post many-posts
# many-put get"), BENCH_MESO_LOG (warn), BENCH_KEEP_WORK=1 (keep the data dirs
# and logs), BENCH_MESO_BIN (the meso binary under test, for a before/after
# comparison; default: this tree's, built here).
# Everything started here (processes, task supervisors, cgroups) is removed on exit,
# failures included; all traffic stays on 127.0.0.1. Needs root for cgroups
# (without them tasks run unlimited).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench}
INSTANCES=${BENCH_INSTANCES:-1000}
APPS=${BENCH_APPS:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
GETS=${BENCH_GETS:-200}
CLIENTS=${BENCH_CLIENTS:-8}
STEPS=" ${BENCH_STEPS:-one many-group many-post many-posts many-put get} "
AGENTS=3
RESOURCES="cpus:1000;mem:100000;disk:100000;ports:[31000-32999]"
export RUST_BACKTRACE=0

log() { printf '[marathon %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/bench/lib.sh
source "$ROOT/scripts/bench/lib.sh"

log "building meso and marathonbench (release)"
(cd "$ROOT" && cargo build --release --quiet --bin meso --example marathonbench)
MESO=${BENCH_MESO_BIN:-$ROOT/target/release/meso}
MB=$ROOT/target/release/examples/marathonbench

mkdir -p "$OUT"
RESULTS=$OUT/marathon.jsonl
ENVOUT=$OUT/marathon.env
: >"$RESULTS"
: >"$ENVOUT"

busy_before MARATHON

WORK=$(mktemp -d "${TMPDIR:-/tmp}/meso-bench-marathon.XXXXXX")
log "work dir $WORK (data dirs and logs)"

# ------------------------------------------------------------------ processes

MASTER_PID="" MASTER=""
AGENT_PIDS=() AGENT_KEYS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    # Gently first: the agents kill their tasks and remove their cgroups.
    if [ $rc -ne 0 ] && [ -n "$MASTER" ] && kill -0 "$MASTER_PID" 2>/dev/null; then
        log "cleaning up after a failure"
        timeout 120 "$MB" --master "$MASTER" remove --group /mb --timeout 100 >/dev/null 2>&1
    fi
    for pid in "${AGENT_PIDS[@]}" $MASTER_PID; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${AGENT_PIDS[@]}" $MASTER_PID; do gone "$pid"; kill -KILL "$pid" 2>/dev/null; done
    # Whatever survived: supervisors (their tasks die with them), then cgroups.
    kill_supervisors_of "${AGENT_KEYS[@]}"
    remove_cgroups_of "${AGENT_KEYS[@]}"
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

for ((n = 1; n <= AGENTS; n++)); do
    "$MESO" agent --preset ci --master "$MASTER" --http 127.0.0.1:0 \
        --work-dir "$WORK/agent$n" --resources "$RESOURCES" --log "${BENCH_MESO_LOG:-warn}" \
        </dev/null >"$WORK/agent$n.out" 2>"$WORK/agent$n.log" &
    AGENT_PIDS+=($!)
    disown
    wait_export "$WORK/agent$n.out" MESO_AGENT_HTTP "${AGENT_PIDS[-1]}" "agent$n" >/dev/null
    AGENT_KEYS+=("$(tr -d '[:space:]' <"$WORK/agent$n/agent.key")")
done
"$MB" --master "$MASTER" wait-agents --count $AGENTS >/dev/null || die "the agents did not register"
log "master $MASTER (pid $MASTER_PID), $AGENTS agents (pids ${AGENT_PIDS[*]})"

# ------------------------------------------------------------------ helpers

bench() { # ARGS...: one marathonbench run; its line goes to the results and stdout
    local line
    line=$("$MB" --master "$MASTER" --master-pid "$MASTER_PID" "$@") || die "marathonbench $* failed; logs in $WORK"
    echo "$line" >>"$RESULTS"
    echo "$line"
}

remove_all() {
    bench remove --group /mb >/dev/null
}

# The run with the median all_running_ms of ROUNDS runs of `bench ARGS...`:
# records its figures under KEY_*; every run's total goes to KEY_ALL_MS.
deploy_rounds() { # KEY ARGS...
    local key=$1 r line
    shift
    local -a lines=()
    for ((r = 1; r <= ROUNDS; r++)); do
        line=$(bench "$@")
        lines+=("$line")
        log "  round $r: all RUNNING after $(json_num "$line" all_running_ms) ms ($(json_num "$line" launches_per_s)/s)"
        remove_all
    done
    local median
    median=$(for line in "${lines[@]}"; do json_num "$line" all_running_ms; done | pct 0.5)
    for line in "${lines[@]}"; do
        if [ "$(json_num "$line" all_running_ms)" = "$median" ]; then
            for field in all_running_ms half_running_ms first_running_ms launches_per_s \
                all_staged_ms all_running_on_agents_ms post_ms requests_ms request_p50_ms \
                request_p99_ms master_cpu_ms machine_cpu_ms machine_busy_pct; do
                local v
                v=$(json_num "$line" $field)
                [ -z "$v" ] || record "${key}_${field^^}" "$v"
            done
            break
        fi
    done
    record "${key}_ALL_MS" "\"$(for line in "${lines[@]}"; do json_num "$line" all_running_ms; done | paste -sd' ')\""
    local lost=0
    for line in "${lines[@]}"; do
        [[ $line == *'"events_lost":true'* ]] && lost=$((lost + 1))
    done
    record "${key}_EVENTS_LOST_RUNS" "$lost"
}

# ------------------------------------------------------------------ runs

remove_all
if [[ $STEPS == *" one "* ]]; then
    log "one app of $INSTANCES instances, $ROUNDS rounds"
    deploy_rounds ONE one-app --id /mb/one --instances "$INSTANCES"
fi
if [[ $STEPS == *" many-group "* ]]; then
    log "$APPS apps of one instance in one POST /v2/groups, $ROUNDS rounds"
    deploy_rounds MANY_GROUP many-apps --group /mb/many --count "$APPS" --how group
fi
if [[ $STEPS == *" many-post "* ]]; then
    log "$APPS apps of one instance, POSTed back to back, $ROUNDS rounds"
    deploy_rounds MANY_POST many-apps --group /mb/many --count "$APPS" --how post
fi
if [[ $STEPS == *" many-posts "* ]]; then
    log "$APPS apps of one instance, POSTed by $CLIENTS clients at once, $ROUNDS rounds"
    deploy_rounds MANY_POSTS many-apps --group /mb/many --count "$APPS" --how post --clients "$CLIENTS"
fi
if [[ $STEPS == *" many-put "* ]]; then
    log "$APPS apps of one instance in one PUT /v2/apps, $ROUNDS rounds"
    deploy_rounds MANY_PUT many-apps --group /mb/many --count "$APPS" --how put
fi
if [[ $STEPS == *" get "* ]]; then
    log "GET /v2/apps with $APPS apps running, $GETS requests each way"
    bench many-apps --group /mb/many --count "$APPS" --how put >/dev/null
    line=$(bench get-apps --count "$GETS")
    record GET_APPS_P50_MS "$(json_num "$line" p50_ms)"
    record GET_APPS_P99_MS "$(json_num "$line" p99_ms)"
    record GET_APPS_BYTES "$(json_num "$line" bytes)"
    record GET_APPS_CPU_MS "$(json_num "$line" master_cpu_ms_per_request)"
    line=$(bench get-apps --count "$GETS" --embed apps.tasks)
    record GET_APPS_TASKS_P50_MS "$(json_num "$line" p50_ms)"
    record GET_APPS_TASKS_P99_MS "$(json_num "$line" p99_ms)"
    record GET_APPS_TASKS_BYTES "$(json_num "$line" bytes)"
    record GET_APPS_TASKS_CPU_MS "$(json_num "$line" master_cpu_ms_per_request)"
    remove_all
fi

record BENCH_INSTANCES "$INSTANCES"
record BENCH_APPS "$APPS"
record BENCH_MARATHON_ROUNDS "$ROUNDS"
record BENCH_GETS "$GETS"
record BENCH_CLIENTS "$CLIENTS"
record BENCH_AGENTS "$AGENTS"
log "done; raw results in $RESULTS"
