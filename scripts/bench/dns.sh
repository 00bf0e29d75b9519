#!/usr/bin/env bash
# DNS benchmark: one master on loopback (the `ci` preset, port 0, DNS on) holding
# 10,000 RUNNING Marathon tasks of simulated agents (`dnsbench agents`: the real
# agent protocol, nothing run). Measures
#   - throughput: dnsperf against meso's responder, and against NSD serving the
#     same records (made of meso's own answers), taking turns: queries/s, lost
#     queries, latency (average and p50/p99 from dnsperf's per-query lines);
#   - freshness: 1,000 more tasks, one app at a time, on a simulated agent of
#     the bench's own: from TASK_RUNNING sent until the first DNS answer with
#     the task's record (a query every 1 ms), and until the UPDATE's 202.
# Writes raw results as JSON lines to $BENCH_OUT/dns.jsonl and the figures as
# KEY=VALUE lines to $BENCH_OUT/dns.env (scripts/bench/run.sh renders them).
#
# Knobs (environment): BENCH_OUT (default target/bench), BENCH_APPS (1000),
# BENCH_INSTANCES (10 per app), BENCH_AGENTS (simulated agents, 10),
# BENCH_DNS_ROUNDS (dnsperf rounds, each meso then NSD, 3), BENCH_DNS_SECS (per
# dnsperf run, 10), BENCH_DNSPERF_ARGS (EDNS, clients, outstanding, ...;
# default "-e -c 4 -q 100"), BENCH_FRESH (freshness tasks, 1000), BENCH_STEPS ("throughput
# freshness"), BENCH_MESO_LOG (warn), BENCH_KEEP_WORK=1 (keep the work dir).
# Everything started here is stopped on exit, failures included; all traffic
# stays on 127.0.0.1. Installs dnsperf, nsd and dig (Debian) when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench}
APPS=${BENCH_APPS:-1000}
INSTANCES=${BENCH_INSTANCES:-10}
AGENTS=${BENCH_AGENTS:-10}
ROUNDS=${BENCH_DNS_ROUNDS:-3}
SECS=${BENCH_DNS_SECS:-10}
DNSPERF_ARGS=${BENCH_DNSPERF_ARGS:--e -c 4 -q 100}
FRESH=${BENCH_FRESH:-1000}
STEPS=" ${BENCH_STEPS:-throughput freshness} "
TASKS=$((APPS * INSTANCES))
export RUST_BACKTRACE=0

log() { printf '[dns %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/bench/lib.sh
source "$ROOT/scripts/bench/lib.sh"

# ------------------------------------------------------------------ prerequisites

apt_install dnsperf nsd bind9-dnsutils  # dig: readiness and same-answers checks
NSD=$(command -v nsd || echo /usr/sbin/nsd)
log "building meso and dnsbench (release)"
(cd "$ROOT" && cargo build --release --quiet --bin meso --example dnsbench)
MESO=$ROOT/target/release/meso
DB=$ROOT/target/release/examples/dnsbench

mkdir -p "$OUT"
RESULTS=$OUT/dns.jsonl
ENVOUT=$OUT/dns.env
: >"$RESULTS"
: >"$ENVOUT"
busy_before DNS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meso-bench-dns.XXXXXX")
log "work dir $WORK"

# ------------------------------------------------------------------ processes

MASTER_PID="" AGENTS_PID="" NSD_PIDS=()

descendants() { # PID: itself and every process below it
    local c
    echo "$1"
    for c in $(pgrep -P "$1"); do descendants "$c"; done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    # NSD's processes: the one started (it becomes xfrd), main, the servers.
    local nsd=()
    for pid in "${NSD_PIDS[@]}"; do mapfile -t -O "${#nsd[@]}" nsd < <(descendants "$pid"); done
    for pid in "${nsd[@]}" $AGENTS_PID $MASTER_PID; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${nsd[@]}" $AGENTS_PID $MASTER_PID; do gone "$pid"; kill -KILL "$pid" 2>/dev/null; done
    if [ -n "${BENCH_KEEP_WORK:-}" ] || [ $rc -ne 0 ]; then
        log "kept $WORK (logs, query and zone files)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_master --dns 127.0.0.1:0 --dns-resolvers none
DNS=$(wait_export "$WORK/master.out" MESO_DNS "$MASTER_PID" master)
DNS_PORT=${DNS##*:}

"$DB" --master "$MASTER" agents --count "$AGENTS" --first-ip 127.0.1.1 --pool fill \
    </dev/null >"$WORK/agents.out" 2>"$WORK/agents.log" &
AGENTS_PID=$!
disown
wait_export "$WORK/agents.out" DNSBENCH_AGENTS "$AGENTS_PID" agents >/dev/null
log "master $MASTER (pid $MASTER_PID), DNS $DNS, $AGENTS simulated agents (pid $AGENTS_PID)"

bench() { # ARGS...: one dnsbench run; its line goes to the results and stdout
    local line
    line=$("$DB" --master "$MASTER" "$@") || die "dnsbench $* failed; logs in $WORK"
    echo "$line" >>"$RESULTS"
    echo "$line"
}

log "deploying $APPS apps × $INSTANCES instances (one PUT /v2/apps)"
line=$(bench deploy --group /bench --apps "$APPS" --instances "$INSTANCES" --pool fill)
record DNS_DEPLOY_ALL_RUNNING_MS "$(json_num "$line" all_running_ms)"
log "  $TASKS tasks RUNNING after $(json_num "$line" all_running_ms) ms"

# ------------------------------------------------------------------ throughput

# One NSD on a free loopback port with the zone; sets NSD_PORT.
start_nsd() { # TAG SERVER_COUNT
    local dir=$WORK/nsd-$1 port pid n=0
    mkdir -p "$dir"
    port=$("$DB" free-port)
    cat >"$dir/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$port
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  pidfile: "$dir/nsd.pid"
  xfrdfile: "$dir/xfrd.state"
  zonelistfile: "$dir/zone.list"
  logfile: "$dir/nsd.log"
  server-count: $2
  round-robin: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  verbosity: 1
remote-control:
  control-enable: no
zone:
  name: mesos
  zonefile: "$WORK/mesos.zone"
EOF
    "$NSD" -d -c "$dir/nsd.conf" </dev/null >"$dir/nsd.out" 2>&1 &
    pid=$!
    disown
    NSD_PIDS+=("$pid")
    until [ -n "$(dig @127.0.0.1 -p "$port" "ns1.mesos" A +short +time=1 +tries=1 2>/dev/null)" ]; do
        kill -0 "$pid" 2>/dev/null || die "nsd ($1) exited: $(tail -3 "$dir/nsd.log" "$dir/nsd.out" 2>/dev/null)"
        n=$((n + 1))
        [ $n -lt 300 ] || die "nsd ($1) did not answer in 30 s"
        sleep 0.1
    done
    NSD_PORT=$port NSD_PID=$pid
}

# The same answers from both: a sample of the query file, answers sorted.
same_answers() { # PORT_A PORT_B
    local name type a b
    while read -r name type; do
        a=$(dig @127.0.0.1 -p "$1" "$name" "$type" +short +time=2 +tries=1 | sort)
        b=$(dig @127.0.0.1 -p "$2" "$name" "$type" +short +time=2 +tries=1 | sort)
        [ -n "$a" ] && [ "$a" = "$b" ] || die "$name $type: meso answers '$a', nsd '$b'"
    done < <(awk 'NR % 600 == 1' "$WORK/queries.txt")
}

# CPU (user + system, in clock ticks) used so far by a process and all its
# descendants (NSD forks its server processes; meso answers on a thread).
tree_ticks() { # PID
    local p s=0
    for p in $(descendants "$1"); do
        # Fields after "pid (comm) ": the comm may hold spaces ("nsd: server 1").
        s=$((s + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')))
    done
    echo "$s"
}
HZ=$(getconf CLK_TCK)

# One dnsperf run; a JSON line with its figures (latencies in ms).
dnsperf_run() { # TARGET PORT ROUND SERVER_PID
    local out=$WORK/dnsperf-$1-$3.out lat=$WORK/lat.txt ticks0 ticks1
    ticks0=$(tree_ticks "$4")
    # shellcheck disable=SC2086 # the arguments are a list
    dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/queries.txt" -l "$SECS" $DNSPERF_ARGS -v >"$out" 2>&1 ||
        die "dnsperf against $1 failed: $(tail -3 "$out")"
    ticks1=$(tree_ticks "$4")
    # Per query: "> NOERROR name type seconds"; then only the summary is kept.
    awk '/^> / { print $NF * 1000 }' "$out" >"$lat"
    sed -i '/^> /d' "$out"
    local qps completed lost avg sd p50 p99 noerror size
    qps=$(sed -n 's/^ *Queries per second: *//p' "$out")
    completed=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$out")
    lost=$(sed -n 's/^ *Queries lost: *[0-9]* (\([0-9.]*\)%).*/\1/p' "$out")
    avg=$(sed -n 's/^ *Average Latency (s): *\([0-9.]*\).*/\1/p' "$out")
    sd=$(sed -n 's/^ *Latency StdDev (s): *\([0-9.]*\).*/\1/p' "$out")
    noerror=$(sed -n 's/^ *Response codes: *NOERROR [0-9]* (\([0-9.]*\)%).*/\1/p' "$out")
    size=$(sed -n 's/^ *Average packet size: *request [0-9]*, response \([0-9]*\).*/\1/p' "$out")
    # Nearest rank, as pct does, from one sort of a million lines.
    read -r p50 p99 < <(sort -g "$lat" | awk '{ a[NR] = $1 } END {
        if (NR == 0) { print "nan nan"; exit }
        i = int(NR * 0.5); if (i < NR * 0.5) i++; j = int(NR * 0.99); if (j < NR * 0.99) j++
        print a[i < 1 ? 1 : i], a[j < 1 ? 1 : j] }')
    rm -f "$lat"
    [ -n "$qps" ] && [ -n "$completed" ] || die "no figures from dnsperf against $1: $(tail -5 "$out")"
    awk -v t="$1" -v r="$3" -v qps="$qps" -v lost="${lost:-0}" -v avg="$avg" -v sd="$sd" \
        -v p50="$p50" -v p99="$p99" -v ok="${noerror:-0}" -v size="${size:-0}" \
        -v ticks=$((ticks1 - ticks0)) -v hz="$HZ" -v completed="$completed" -v secs="$SECS" 'BEGIN {
        printf "{\"mode\":\"dnsperf\",\"target\":\"%s\",\"round\":%d,\"qps\":%s,\"lost_pct\":%s,", t, r, qps, lost
        printf "\"avg_ms\":%.3f,\"stddev_ms\":%.3f,\"p50_ms\":%s,\"p99_ms\":%s,", avg * 1000, sd * 1000, p50, p99
        printf "\"noerror_pct\":%s,\"response_bytes\":%s,", ok, size
        printf "\"cpu_us_per_query\":%.2f,\"cpu_pct\":%.0f}\n", completed ? ticks / hz * 1e6 / completed : 0, ticks / hz * 100 / secs }'
}

# The figures of the run with the median qps, and every run's qps.
median_of() { # TARGET KEY
    local median line lines
    lines=$(grep "\"target\":\"$1\"" "$RESULTS")
    median=$(while read -r line; do json_num "$line" qps; done <<<"$lines" | pct 0.5)
    line=$(grep "\"qps\":$median," <<<"$lines" | head -1)
    for field in qps lost_pct avg_ms stddev_ms p50_ms p99_ms noerror_pct response_bytes \
        cpu_us_per_query cpu_pct; do
        record "${2}_${field^^}" "$(json_num "$line" $field)"
    done
    record "${2}_ALL_QPS" "\"$(while read -r line; do printf '%.0f\n' "$(json_num "$line" qps)"; done <<<"$lines" | paste -sd' ')\""
}

if [[ $STEPS == *" throughput "* ]]; then
    log "query and zone files from meso's $TASKS tasks"
    line=$(bench prepare --dns "$DNS" --group /bench --queries "$WORK/queries.txt" \
        --zone "$WORK/mesos.zone" --expect "$TASKS")
    record DNS_QUERY_LINES "$(json_num "$line" queries)"
    record DNS_ZONE_RECORDS "$(json_num "$line" zone_records)"
    start_nsd one 1
    NSD1_PORT=$NSD_PORT NSD1_PID=$NSD_PID
    start_nsd two 2
    NSD2_PORT=$NSD_PORT NSD2_PID=$NSD_PID
    same_answers "$DNS_PORT" "$NSD1_PORT"
    log "meso on $DNS_PORT, nsd (server-count 1) on $NSD1_PORT, nsd (server-count 2) on $NSD2_PORT: same answers"
    for ((r = 1; r <= ROUNDS; r++)); do
        for target in meso nsd1 nsd2; do
            case $target in
                meso) port=$DNS_PORT pid=$MASTER_PID ;;
                nsd1) port=$NSD1_PORT pid=$NSD1_PID ;;
                nsd2) port=$NSD2_PORT pid=$NSD2_PID ;;
            esac
            line=$(dnsperf_run "$target" "$port" "$r" "$pid")
            echo "$line" >>"$RESULTS"
            log "  round $r $target: $(json_num "$line" qps) qps, p99 $(json_num "$line" p99_ms) ms, lost $(json_num "$line" lost_pct)%, $(json_num "$line" cpu_us_per_query) µs CPU per query"
        done
    done
    median_of meso DNS_MESO
    median_of nsd1 DNS_NSD1
    median_of nsd2 DNS_NSD2
    # Still every task RUNNING after the flood (no agent marked unreachable).
    [ "$(curl -sf "http://$MASTER/v2/apps?id=/bench/" | grep -o '"tasksRunning":[0-9]*' |
        awk -F: '{ s += $2 } END { print s + 0 }')" = "$TASKS" ] || die "tasks stopped running during the dnsperf runs"
fi

# ------------------------------------------------------------------ freshness

if [[ $STEPS == *" freshness "* ]]; then
    log "freshness: $FRESH apps of one instance, one after another"
    line=$(bench freshness --dns "$DNS" --count "$FRESH" --ip 127.0.2.1 --group /fresh --raw "$RESULTS")
    for field in dns_p50_ms dns_p99_ms dns_max_ms ack_p50_ms ack_p99_ms ack_max_ms \
        launch_p50_ms dns_before_ack probes_per_task probe_interval_ms total_ms; do
        record "DNS_FRESH_${field^^}" "$(json_num "$line" $field)"
    done
fi

record BENCH_DNS_TASKS "$TASKS"
record BENCH_DNS_APPS "$APPS"
record BENCH_DNS_INSTANCES "$INSTANCES"
record BENCH_DNS_AGENTS "$AGENTS"
record BENCH_DNS_ROUNDS "$ROUNDS"
record BENCH_DNS_SECS "$SECS"
record BENCH_DNSPERF_ARGS "\"$DNSPERF_ARGS\""
record BENCH_FRESH "$FRESH"
record DNSPERF_VERSION "\"$(dnsperf -h 2>&1 | sed -n 's/^Version //p')\""
record NSD_VERSION "\"$("$NSD" -v 2>&1 | sed -n 's/^NSD version //p')\""
log "done; raw results in $RESULTS"
