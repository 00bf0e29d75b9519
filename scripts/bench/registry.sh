#!/usr/bin/env bash
# Registry benchmark: meso's Raft-replicated master beside etcd, three members each,
# on loopback. Measures
#   - committed writes/s and p50/p99 latency with 1 and 64 concurrent clients,
#   - leader failover: kill -9 of the leader, and a hung leader (SIGSTOP), until a
#     surviving member accepts a write (BENCH_ROUNDS rounds each, median),
#   - `meso up` time to ready (and a one-member etcd's time to its first write).
# Writes raw results as JSON lines to $BENCH_OUT/registry.jsonl and the figures as
# KEY=VALUE lines to $BENCH_OUT/registry.env (scripts/bench/run.sh renders them).
#
# Knobs (environment): BENCH_OUT (default target/bench), BENCH_DURATION (seconds per
# writes run, 10), BENCH_CLIENTS ("1 64"), BENCH_REPEATS (writes runs per figure, the
# median stands, 3), BENCH_ROUNDS (failover rounds, 10),
# BENCH_READY_RUNS (10), BENCH_PORT_BASE (first of the loopback ports used, 24000),
# BENCH_STEPS ("ready writes failover"), BENCH_TARGETS ("etcd meso"), BENCH_MESO_LOG
# (meso's --log, warn), BENCH_KEEP_WORK=1 (keep the data dirs and logs).
# Everything started here is stopped on exit; all traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench}
DURATION=${BENCH_DURATION:-10}
CLIENTS=${BENCH_CLIENTS:-1 64}
ROUNDS=${BENCH_ROUNDS:-10}
REPEATS=${BENCH_REPEATS:-3}
READY_RUNS=${BENCH_READY_RUNS:-10}
STEPS=" ${BENCH_STEPS:-ready writes failover} "
TARGETS=${BENCH_TARGETS:-etcd meso}
PORT_BASE=${BENCH_PORT_BASE:-24000}
# etcd's defaults, spelled out so the report can name them.
ETCD_HEARTBEAT_MS=100
ETCD_ELECTION_MS=1000

log() { printf '[registry %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ prerequisites

install_etcd() {
    command -v etcd >/dev/null && return
    log "installing etcd-server and etcd-client (Debian)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q etcd-server etcd-client >/dev/null ||
        { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q etcd-server etcd-client >/dev/null; } ||
        die "could not install etcd-server"
}

install_etcd
ETCD=$(command -v etcd)
log "building meso and the load generator (release)"
(cd "$ROOT" && cargo build --release --quiet --bin meso --example loadgen)
MESO=$ROOT/target/release/meso
LOADGEN=$ROOT/target/release/examples/loadgen

mkdir -p "$OUT"
RESULTS=$OUT/registry.jsonl
ENVOUT=$OUT/registry.env
: >"$RESULTS"
: >"$ENVOUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meso-bench.XXXXXX")
log "work dir $WORK (data dirs and logs)"

# ------------------------------------------------------------------ processes

declare -A PIDS=()   # "etcd1" / "meso2" -> pid

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for name in "${!PIDS[@]}"; do
        kill -CONT "${PIDS[$name]}" 2>/dev/null || true
        kill -KILL "${PIDS[$name]}" 2>/dev/null || true
    done
    for name in "${!PIDS[@]}"; do gone "${PIDS[$name]}"; done
    if [ -n "${BENCH_KEEP_WORK:-}" ]; then
        log "kept $WORK (data dirs and logs)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gone() { # pid: wait up to 5 s for it to exit (its ports are free then)
    local n=0
    while kill -0 "$1" 2>/dev/null && [ $n -lt 500 ]; do sleep 0.01; n=$((n + 1)); done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

etcd_client_port() { echo $((PORT_BASE + $1)); }        # 24001..24003
etcd_peer_port() { echo $((PORT_BASE + 10 + $1)); }     # 24011..24013
meso_http_port() { echo $((PORT_BASE + 20 + $1)); }     # 24021..24023
meso_raft_port() { echo $((PORT_BASE + 30 + $1)); }     # 24031..24033
ETCD_SOLO_PORT=$((PORT_BASE + 40))                      # 24040 (+1 for its peer port)

for p in 1 2 3 11 12 13 21 22 23 31 32 33 40 41; do
    port_free $((PORT_BASE + p)) || die "port $((PORT_BASE + p)) is in use; set BENCH_PORT_BASE"
done

ETCD_CLUSTER="e1=http://127.0.0.1:$(etcd_peer_port 1),e2=http://127.0.0.1:$(etcd_peer_port 2),e3=http://127.0.0.1:$(etcd_peer_port 3)"
MESO_PEERS="1=127.0.0.1:$(meso_raft_port 1),2=127.0.0.1:$(meso_raft_port 2),3=127.0.0.1:$(meso_raft_port 3)"
ETCD_ENDPOINTS="http://127.0.0.1:$(etcd_client_port 1),http://127.0.0.1:$(etcd_client_port 2),http://127.0.0.1:$(etcd_client_port 3)"
MESO_ENDPOINTS="http://127.0.0.1:$(meso_http_port 1),http://127.0.0.1:$(meso_http_port 2),http://127.0.0.1:$(meso_http_port 3)"

start_etcd() { # member number; same command line for the first start and a restart
    local i=$1 c p
    c=http://127.0.0.1:$(etcd_client_port "$i")
    p=http://127.0.0.1:$(etcd_peer_port "$i")
    "$ETCD" --name "e$i" --data-dir "$WORK/etcd-$i" \
        --listen-client-urls "$c" --advertise-client-urls "$c" \
        --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
        --initial-cluster-token meso-bench \
        --heartbeat-interval "$ETCD_HEARTBEAT_MS" --election-timeout "$ETCD_ELECTION_MS" \
        --logger zap --log-level warn \
        </dev/null >>"$WORK/etcd-$i.log" 2>&1 &
    PIDS[etcd$i]=$!
    disown  # no "Killed" notices from bash; cleanup() stops it by pid
}

start_meso() { # master number
    local i=$1
    : >"$WORK/meso-$i.out"
    # --dns off: the figures are the registry's (etcd serves no DNS), and three
    # masters on one IP would all want DNS's default port, 8053.
    "$MESO" master --id "$i" --peers "$MESO_PEERS" --dns off \
        --raft "127.0.0.1:$(meso_raft_port "$i")" --http "127.0.0.1:$(meso_http_port "$i")" \
        --data-dir "$WORK/meso-$i" --log "${BENCH_MESO_LOG:-warn}" \
        </dev/null >"$WORK/meso-$i.out" 2>>"$WORK/meso-$i.log" &
    PIDS[meso$i]=$!
    disown
    local deadline=$((SECONDS + 20))
    until grep -q '^export MESOS_MASTER=' "$WORK/meso-$i.out"; do
        kill -0 "${PIDS[meso$i]}" 2>/dev/null || die "meso master $i exited; see $WORK/meso-$i.log: $(tail -3 "$WORK/meso-$i.log")"
        [ $SECONDS -lt $deadline ] || die "meso master $i printed nothing in 20 s"
        sleep 0.02
    done
}

pids_of() { echo "${PIDS[${1}1]},${PIDS[${1}2]},${PIDS[${1}3]}"; }
endpoints_of() { if [ "$1" = etcd ]; then echo "$ETCD_ENDPOINTS"; else echo "$MESO_ENDPOINTS"; fi; }

settle() { # target
    "$LOADGEN" settle --target "$1" --endpoints "$(endpoints_of "$1")" >/dev/null ||
        die "$1 did not settle; logs in $WORK"
}

# Pull one number out of a flat JSON line: json_num '{"a":1.5}' a -> 1.5
json_num() { sed -n "s/.*\"$2\":\(-\?[0-9.e+-]*\).*/\1/p" <<<"$1"; }

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

record() { # KEY VALUE
    echo "$1=$2" >>"$ENVOUT"
    log "  $1=$2"
}

# ------------------------------------------------------------------ ready time

# First, while the machine is quiet: `meso up` (the local preset: one master) and,
# for scale, a one-member etcd from spawn to its first committed write.
if [[ $STEPS == *" ready "* ]]; then
    log "meso up: time to ready, $READY_RUNS runs"
    line=$("$LOADGEN" ready-meso --bin "$MESO" --data-dir "$WORK/up" --runs "$READY_RUNS")
    echo "$line" >>"$RESULTS"
    record MESO_UP_LINE_MS "$(json_num "$line" line_ms)"
    record MESO_UP_HEALTH_MS "$(json_num "$line" health_ms)"
    record MESO_UP_WRITE_MS "$(json_num "$line" write_ms)"
    record MESO_UP_RSS_MB "$(json_num "$line" rss_mb)"
    log "meso up --masters 3: time to ready, $READY_RUNS runs"
    line=$("$LOADGEN" ready-meso --bin "$MESO" --data-dir "$WORK/up3" --runs "$READY_RUNS" --args="--masters 3")
    echo "$line" >>"$RESULTS"
    record MESO_UP3_LINE_MS "$(json_num "$line" line_ms)"
    record MESO_UP3_WRITE_MS "$(json_num "$line" write_ms)"
    record MESO_UP3_RSS_MB "$(json_num "$line" rss_mb)"
    log "etcd (one member): time to first write, $READY_RUNS runs"
    line=$("$LOADGEN" ready-etcd --bin "$ETCD" --data-dir "$WORK/etcd-solo" --runs "$READY_RUNS" --port "$ETCD_SOLO_PORT")
    echo "$line" >>"$RESULTS"
    record ETCD_UP_WRITE_MS "$(json_num "$line" write_ms)"
fi

# ------------------------------------------------------------------ clusters

if [[ $STEPS == *" writes "* || $STEPS == *" failover "* ]]; then
    log "starting $TARGETS, three members each ($("$ETCD" --version | head -1))"
    for target in $TARGETS; do
        for i in 1 2 3; do "start_$target" "$i"; done
    done
    for target in $TARGETS; do settle "$target"; done
fi

# ------------------------------------------------------------------ writes

# Interleaved (etcd, meso, etcd, meso, ...), so both systems see the same machine at
# nearly the same time; the idle cluster's heartbeats cost next to nothing.
if [[ $STEPS == *" writes "* ]]; then
    declare -A RUNS=()   # "etcd 64" -> JSON lines of its runs
    for ((rep = 1; rep <= REPEATS; rep++)); do
        for n in $CLIENTS; do
            for target in $TARGETS; do
                log "$target: writes with $n client(s) for ${DURATION}s (run $rep of $REPEATS)"
                line=$("$LOADGEN" writes --target "$target" --endpoints "$(endpoints_of "$target")" \
                    --clients "$n" --duration "$DURATION")
                echo "$line" >>"$RESULTS"
                log "  $(json_num "$line" writes_per_s) writes/s, p50 $(json_num "$line" p50_ms) ms, p99 $(json_num "$line" p99_ms) ms, $(json_num "$line" errors) errors"
                RUNS["$target $n"]+="$line"$'\n'
            done
        done
    done
    # The run with the median writes/s stands for its (target, clients) pair.
    for n in $CLIENTS; do
        for target in $TARGETS; do
            T=${target^^}
            all=$(printf '%s' "${RUNS["$target $n"]}" | while read -r l; do json_num "$l" writes_per_s; done)
            mid=$(printf '%s' "${RUNS["$target $n"]}" | while read -r l; do
                printf '%s\t%s\n' "$(json_num "$l" writes_per_s)" "$l"
            done | sort -n | sed -n "$(((REPEATS + 1) / 2))p" | cut -f2-)
            record "${T}_W${n}_PER_S" "$(json_num "$mid" writes_per_s)"
            record "${T}_W${n}_P50_MS" "$(json_num "$mid" p50_ms)"
            record "${T}_W${n}_P99_MS" "$(json_num "$mid" p99_ms)"
            record "${T}_W${n}_ALL_PER_S" "\"$(echo $all)\""
            errors=0
            for e in $(printf '%s' "${RUNS["$target $n"]}" | while read -r l; do json_num "$l" errors; done); do
                errors=$((errors + e))
            done
            record "${T}_W${n}_ERRORS" "$errors"
        done
    done
fi

# ------------------------------------------------------------------ failover

failover_rounds() { # target signal
    local target=$1 sig=$2 r line victim ms T=${1^^}
    local -a times=()
    for ((r = 1; r <= ROUNDS; r++)); do
        settle "$target"
        sleep 0.5
        line=$("$LOADGEN" failover --target "$target" --endpoints "$(endpoints_of "$target")" \
            --pids "$(pids_of "$target")" --signal "$sig") ||
            die "$target failover (SIG$sig) round $r failed; logs in $WORK"
        echo "$line" >>"$RESULTS"
        victim=$(( $(json_num "$line" victim) + 1 ))
        ms=$(json_num "$line" ms)
        times+=("$ms")
        log "  $target SIG$sig round $r: member $victim, new leader took a write after ${ms} ms"
        if [ "$sig" = KILL ]; then
            gone "${PIDS[$target$victim]}"
            "start_$target" "$victim"
        else
            kill -CONT "${PIDS[$target$victim]}"
        fi
    done
    settle "$target"
    record "${T}_FAILOVER_${sig}_MEDIAN_MS" "$(printf '%s\n' "${times[@]}" | median)"
    record "${T}_FAILOVER_${sig}_MIN_MS" "$(printf '%s\n' "${times[@]}" | sort -n | head -1)"
    record "${T}_FAILOVER_${sig}_MAX_MS" "$(printf '%s\n' "${times[@]}" | sort -n | tail -1)"
    record "${T}_FAILOVER_${sig}_ALL_MS" "\"${times[*]}\""
}

if [[ $STEPS == *" failover "* ]]; then
    for sig in KILL STOP; do
        for target in $TARGETS; do
            log "$target: leader failover after SIG$sig, $ROUNDS rounds"
            failover_rounds "$target" "$sig"
        done
    done
fi

record BENCH_DURATION "$DURATION"
record BENCH_REPEATS "$REPEATS"
record BENCH_ROUNDS "$ROUNDS"
record BENCH_READY_RUNS "$READY_RUNS"
record ETCD_VERSION "\"$("$ETCD" --version | sed -n 's/^etcd Version: //p')\""
record ETCD_HEARTBEAT_MS "$ETCD_HEARTBEAT_MS"
record ETCD_ELECTION_MS "$ETCD_ELECTION_MS"
log "done; raw results in $RESULTS"
