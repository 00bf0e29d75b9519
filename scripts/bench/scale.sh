#!/usr/bin/env bash
# Scale benchmark: three masters as processes on loopback and a fleet of
# simulated agents (`meso sim`: the real agent protocol, nothing run), at each
# fleet size in turn, each on a fresh cluster. Measures, per size:
#   - registration: `meso sim` start → every agent subscribed;
#   - master RSS: the leader's, before the agents, with them, and with the tasks;
#   - deployment: one `PUT /v2/apps` of BENCH_SCALE_APPS apps holding
#     BENCH_SCALE_TASKS_PER_AGENT tasks per agent in all → every task placed,
#     → every task RUNNING (committed), from the leader's /metrics/snapshot;
#     the CPU of the leader, of the two followers and of the fleet meanwhile;
#   - reads: GET /master/slaves and /v2/apps with everything loaded;
#   - failover: `kill -9` of the leader (loadgen failover: a write to a
#     survivor every 5 ms, time to the first 200), then until every agent has
#     subscribed to the new leader and it counts every task RUNNING, and the
#     most agents it ever counted unreachable meanwhile (the aim: none).
# Writes raw results as JSON lines to $BENCH_OUT/scale.jsonl and the figures as
# KEY=VALUE lines to $BENCH_OUT/scale.env (scripts/bench/run.sh renders them).
#
# Knobs (environment): BENCH_OUT (default target/bench), BENCH_SCALE_AGENTS
# ("1000 2000 5000 10000"; e.g. "1000" for a short run), BENCH_SCALE_TASKS_PER_AGENT
# (10), BENCH_SCALE_APPS (100), BENCH_SCALE_SETTLE (seconds before each RSS
# reading, 5), BENCH_SCALE_WATCH (seconds the agents are watched after the
# failover, 10), BENCH_MESO_LOG (warn), BENCH_KEEP_WORK=1 (keep the work dir),
# BENCH_MESO_BIN (another meso binary for the masters, for before/after pairs),
# BENCH_SIM_BIN (another meso binary for the fleet; default this tree's),
# BENCH_SCALE_MASTER_ARGS (more flags for every master, e.g. --config FILE).
# Everything started here is stopped on exit, failures included; all traffic
# stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench}
SIZES=${BENCH_SCALE_AGENTS:-1000 2000 5000 10000}
PER_AGENT=${BENCH_SCALE_TASKS_PER_AGENT:-10}
APPS=${BENCH_SCALE_APPS:-100}
SETTLE=${BENCH_SCALE_SETTLE:-5}
WATCH=${BENCH_SCALE_WATCH:-10}
PORT_BASE=${BENCH_PORT_BASE:-25000}
export RUST_BACKTRACE=0

log() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/bench/lib.sh
source "$ROOT/scripts/bench/lib.sh"

log "building meso, scalebench and loadgen (release)"
(cd "$ROOT" && cargo build --release --quiet --bin meso --example scalebench --example loadgen)
# The masters' binary and the fleet's may each be another (before/after pairs).
MESO=${BENCH_MESO_BIN:-$ROOT/target/release/meso}
SIM=${BENCH_SIM_BIN:-$ROOT/target/release/meso}
SB=$ROOT/target/release/examples/scalebench
LOADGEN=$ROOT/target/release/examples/loadgen

mkdir -p "$OUT"
RESULTS=$OUT/scale.jsonl
ENVOUT=$OUT/scale.env
: >"$RESULTS"
: >"$ENVOUT"
# One socket per simulated agent on each side of loopback; meso raises its
# soft limit to the hard one itself, this says what the hard one is.
record SCALE_NOFILE_HARD "$(ulimit -Hn)"
record SCALE_SIZES "\"$SIZES\""
record SCALE_PER_AGENT "$PER_AGENT"
record SCALE_APPS "$APPS"
record SCALE_WATCH "$WATCH"
busy_before SCALE
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meso-bench-scale.XXXXXX")
log "work dir $WORK"

declare -A PIDS=()
SIM_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for pid in $SIM_PID "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $SIM_PID "${PIDS[@]}"; do gone "$pid"; kill -KILL "$pid" 2>/dev/null; done
    if [ -n "${BENCH_KEEP_WORK:-}" ] || [ $rc -ne 0 ]; then
        log "kept $WORK (logs)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

http_port() { echo $((PORT_BASE + $1)); }
raft_port() { echo $((PORT_BASE + 10 + $1)); }
PEERS="1=127.0.0.1:$(raft_port 1),2=127.0.0.1:$(raft_port 2),3=127.0.0.1:$(raft_port 3)"
ENDPOINTS="http://127.0.0.1:$(http_port 1),http://127.0.0.1:$(http_port 2),http://127.0.0.1:$(http_port 3)"
MASTERS="127.0.0.1:$(http_port 1),127.0.0.1:$(http_port 2),127.0.0.1:$(http_port 3)"

start_masters() { # dir
    local i deadline
    for i in 1 2 3; do
        # shellcheck disable=SC2086 # BENCH_SCALE_MASTER_ARGS is a list of flags
        "$MESO" master --id "$i" --peers "$PEERS" \
            --raft "127.0.0.1:$(raft_port "$i")" --http "127.0.0.1:$(http_port "$i")" \
            --dns off --data-dir "$1/meso-$i" --log "${BENCH_MESO_LOG:-warn}" ${BENCH_SCALE_MASTER_ARGS:-} \
            </dev/null >"$1/meso-$i.out" 2>>"$1/meso-$i.log" &
        PIDS[$i]=$!
        disown
    done
    for i in 1 2 3; do
        deadline=$((SECONDS + 20))
        until grep -qs '^export MESOS_MASTER=' "$1/meso-$i.out"; do
            kill -0 "${PIDS[$i]}" 2>/dev/null || die "master $i exited: $(tail -3 "$1/meso-$i.log")"
            [ $SECONDS -lt $deadline ] || die "master $i printed nothing in 20 s"
            sleep 0.02
        done
    done
    "$LOADGEN" settle --target meso --endpoints "$ENDPOINTS" >/dev/null || die "the masters did not settle"
}

stop_all() {
    local pid
    for pid in $SIM_PID "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in $SIM_PID "${PIDS[@]}"; do gone "$pid"; done
    SIM_PID=""
    PIDS=()
}

leader_index() { # the number (1-3) of the master that leads
    local leader i
    leader=$(curl -sf "http://127.0.0.1:$(http_port 1)/v2/leader" | sed -n 's/.*"leader":"\([^"]*\)".*/\1/p')
    for i in 1 2 3; do [ "$leader" = "127.0.0.1:$(http_port "$i")" ] && echo "$i" && return; done
    die "no leader named ($leader)"
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
followers_ticks() { # leader index: the other masters' ticks, summed
    local i sum=0
    for i in 1 2 3; do
        [ "$i" = "$1" ] || sum=$((sum + $(cpu_ticks "${PIDS[$i]}")))
    done
    echo "$sum"
}
HZ=$(getconf CLK_TCK)

wait_sim() { # out-file timeout-s: until `export MESO_SIM_AGENTS=` is printed
    local deadline=$((SECONDS + $2))
    until grep -qs '^export MESO_SIM_AGENTS=' "$1"; do
        kill -0 "$SIM_PID" 2>/dev/null || die "meso sim exited: $(tail -3 "$WORK/sim.log")"
        [ $SECONDS -lt "$deadline" ] || die "the simulated agents did not all subscribe in $2 s"
        sleep 0.05
    done
}

# The sim's last counters line (it prints one every --every seconds).
sim_count() { # key
    json_num "$(grep -s '^{' "$1" | tail -1)" "$2"
}

for N in $SIZES; do
    TASKS=$((N * PER_AGENT))
    INSTANCES=$(((TASKS + APPS - 1) / APPS))
    TASKS=$((INSTANCES * APPS))
    dir=$WORK/n$N
    mkdir -p "$dir"
    log "== $N simulated agents, $APPS apps × $INSTANCES instances = $TASKS tasks"
    start_masters "$dir"
    L=$(leader_index)
    LPID=${PIDS[$L]}
    sleep "$SETTLE"
    record "SCALE_${N}_RSS_IDLE_MB" "$(rss_mb "$LPID")"

    t0=$(date +%s.%N)
    "$SIM" sim --agents "$N" --master "$MASTERS" --json --every 0.2 --log "${BENCH_SIM_LOG:-warn}" \
        </dev/null >"$dir/sim.out" 2>"$dir/sim.log" &
    SIM_PID=$!
    disown
    wait_sim "$dir/sim.out" 600
    t1=$(date +%s.%N)
    record "SCALE_${N}_SUBSCRIBE_MS" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
    sleep "$SETTLE"
    record "SCALE_${N}_RSS_AGENTS_MB" "$(rss_mb "$LPID")"
    record "SCALE_${N}_SIM_RSS_AGENTS_MB" "$(rss_mb "$SIM_PID")"

    c0=$(cpu_ticks "$LPID")
    s0=$(cpu_ticks "$SIM_PID")
    f0=$(followers_ticks "$L")
    line=$("$SB" --master "$MASTERS" deploy --apps "$APPS" --instances "$INSTANCES") ||
        die "the deployment failed; logs in $dir"
    c1=$(cpu_ticks "$LPID")
    s1=$(cpu_ticks "$SIM_PID")
    f1=$(followers_ticks "$L")
    echo "{\"agents\":$N,${line#\{}" >>"$RESULTS"
    for k in put_ms all_placed_ms half_running_ms all_running_ms placed_per_s running_per_s; do
        record "SCALE_${N}_${k^^}" "$(json_num "$line" "$k")"
    done
    record "SCALE_${N}_TASKS" "$TASKS"
    record "SCALE_${N}_DEPLOY_CPU_MS" "$(((c1 - c0) * 1000 / HZ))"
    record "SCALE_${N}_FOLLOWERS_CPU_MS" "$(((f1 - f0) * 1000 / HZ))"
    record "SCALE_${N}_SIM_CPU_MS" "$(((s1 - s0) * 1000 / HZ))"
    sleep "$SETTLE"
    record "SCALE_${N}_RSS_TASKS_MB" "$(rss_mb "$LPID")"
    record "SCALE_${N}_SIM_RSS_TASKS_MB" "$(rss_mb "$SIM_PID")"
    line=$("$SB" --master "$MASTERS" reads --rounds 3) || die "the reads failed"
    echo "{\"agents\":$N,${line#\{}" >>"$RESULTS"
    for k in slaves_ms apps_ms snapshot_ms slaves_bytes apps_bytes; do
        record "SCALE_${N}_GET_${k^^}" "$(json_num "$line" "$k")"
    done

    # Failover with everything loaded.
    subs_before=$(sim_count "$dir/sim.out" subscriptions)
    line=$("$LOADGEN" failover --target meso --endpoints "$ENDPOINTS" \
        --pids "${PIDS[1]},${PIDS[2]},${PIDS[3]}" --signal KILL) || die "the failover failed"
    echo "{\"agents\":$N,${line#\{}" >>"$RESULTS"
    record "SCALE_${N}_FAILOVER_MS" "$(json_num "$line" ms)"
    tf=$(date +%s.%N)
    survivors=""
    for i in 1 2 3; do [ "$i" = "$L" ] || survivors+="127.0.0.1:$(http_port "$i"),"; done
    # Every agent subscribed again (to the new leader).
    deadline=$((SECONDS + 300))
    until [ "$(sim_count "$dir/sim.out" subscriptions)" -ge $((subs_before + N)) ]; do
        [ $SECONDS -lt $deadline ] || die "the agents did not all resubscribe in 300 s"
        sleep 0.05
    done
    tr=$(date +%s.%N)
    record "SCALE_${N}_RESUBSCRIBED_MS" "$(awk -v a="$tf" -v b="$tr" 'BEGIN { printf "%.0f", (b - a) * 1000 }')"
    line=$("$SB" --master "${survivors%,}" wait --agents "$N" --tasks "$TASKS" --timeout 120) ||
        die "the new leader did not count every agent and task"
    echo "{\"agents\":$N,${line#\{}" >>"$RESULTS"
    # Then watch: an agent the new leader lost track of turns unreachable only
    # after the agent timeout, so the watch lasts a while.
    worst=0
    end=$((SECONDS + WATCH))
    while [ $SECONDS -lt $end ]; do
        snap=$(curl -sf "http://${survivors%%,*}/metrics/snapshot" || true)
        u=$(json_num "$snap" 'master\/slaves_unreachable')
        u=${u%.*}
        [ -z "$u" ] || [ "$u" -le "$worst" ] || worst=$u
        sleep 0.5
    done
    record "SCALE_${N}_MAX_UNREACHABLE" "$(( $(json_num "$line" max_unreachable_agents) > worst ? $(json_num "$line" max_unreachable_agents) : worst ))"
    record "SCALE_${N}_SIM_UPDATE_FAILURES" "$(sim_count "$dir/sim.out" update_failures)"
    stop_all
done
log "done"
