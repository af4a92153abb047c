#!/usr/bin/env bash
# CPU time each put costs the nodes (BENCHMARKS.md), for one binary or two side by side: each
# run starts a fresh local 3-node cluster in a temp DSH_HOME, warms it up, then counts the node
# processes' task-clock (perf stat) over CPU_PUTS puts from CPU_CLIENTS clients. With two
# binaries the runs alternate (a, b, a, b, …), so the machine's drift hits both alike.
# Hardware instruction counters are not available in this VM; task-clock is.
#
# Usage: scripts/cpu-per-put.sh BINARY [BINARY2]
#   CPU_ROUNDS=3  CPU_PUTS=30000  CPU_CLIENTS=64  BENCH_CPUS=0-1  BENCH_VALUE_SIZE=256

set -euo pipefail

ROUNDS=${CPU_ROUNDS:-3}
PUTS=${CPU_PUTS:-30000}
CLIENTS=${CPU_CLIENTS:-64}
CPUS=${BENCH_CPUS:-0-1}
SIZE=${BENCH_VALUE_SIZE:-256}
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }

one_run() {
    local bin=$1 home leader all out
    home=$(mktemp -d)
    export DSH_HOME=$home
    taskset -c "$CPUS" "$bin" cluster up --quiet >/dev/null 2>&1
    taskset -c "$CPUS" "$bin" -c "load put --count 3000 --concurrency $CLIENTS --value-size $SIZE" >/dev/null 2>&1
    local lead pids lpid
    lead=$("$bin" -c status | awk '/★/ {print $1}')
    pids=$(for n in n1 n2 n3; do pgrep -f "node --id $n --data $home"; done | paste -sd,)
    lpid=$(pgrep -f "node --id $lead --data $home")
    perf stat -e task-clock -x, -p "$lpid" -o "$home/leader.csv" &
    local p1=$!
    perf stat -e task-clock -x, -p "$pids" -o "$home/all.csv" &
    local p2=$!
    sleep 0.3
    out=$(taskset -c "$CPUS" "$bin" --json -c "load put --count $PUTS --concurrency $CLIENTS --value-size $SIZE")
    kill -INT $p1 $p2
    wait $p1 $p2 || true
    leader=$(awk -F, '/task-clock/ {print $1}' "$home/leader.csv")
    all=$(awk -F, '/task-clock/ {print $1}' "$home/all.csv")
    "$bin" cluster down >/dev/null 2>&1 || true
    rm -rf "$home"
    # task-clock is in ms: µs per put = ms * 1000 / puts.
    printf '| %s | %.0f | %.1f | %.0f | %.0f |\n' "$(basename "$bin")" \
        "$(jq .ops_per_sec <<<"$out")" "$(jq .p99_ms <<<"$out")" \
        "$(echo "$leader * 1000 / $PUTS" | bc -l)" "$(echo "$all * 1000 / $PUTS" | bc -l)"
}

echo "| binary | puts/s | p99 ms | leader µs/put | all nodes µs/put |"
echo "| --- | --- | --- | --- | --- |"
for _ in $(seq 1 "$ROUNDS"); do
    for bin in "$@"; do
        one_run "$bin"
    done
done
