#!/usr/bin/env bash
# Where a sequential put's time goes (BENCHMARKS.md): TRACE_PUTS traced puts, one after another
# from one shell (one connection, as `load --concurrency 1` uses), on a fresh local 3-node
# cluster in a temp DSH_HOME; prints the median and p90 of each stage as a markdown table.
# The stages are the nodes' own monotonic timers (`put --trace`, README), not the client's guess.
#
# Usage: scripts/bench-trace.sh
#   TRACE_PUTS=200    puts measured, after 20 more as warm-up (connection, leader hint, caches)
#   TRACE_VALUE=256   bytes per value, as bench.sh's sequential put
#   BENCH_CPUS=0-1    cores for the nodes and the shell, as bench.sh pins them
#   DSH=…             the binary (default target/release/dsh)

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DSH=${DSH:-$ROOT/target/release/dsh}
PUTS=${TRACE_PUTS:-200}
WARM=20
VALUE=$(head -c "${TRACE_VALUE:-256}" /dev/zero | tr '\0' v)
CPUS=${BENCH_CPUS:-0-1}

export DSH_HOME
DSH_HOME=$(mktemp -d)
trap 'taskset -c "$CPUS" "$DSH" cluster down >/dev/null 2>&1 || true; rm -rf "$DSH_HOME"' EXIT
taskset -c "$CPUS" "$DSH" cluster up >&2

# One `-c` line of puts: each prints one JSON object with its `trace`.
line=""
for i in $(seq 1 $((WARM + PUTS))); do
    line+="put seq:$((i % 64)) $VALUE --trace;"
done
taskset -c "$CPUS" "$DSH" --json -c "$line" | tail -n "$PUTS" | python3 -c '
import json, statistics, sys

runs = [json.loads(l)["trace"] for l in sys.stdin if l.strip()]
spans, took, at = {}, {}, {}
def add(name, span, stage_at, stage_ms):
    spans.setdefault(name, span)
    if stage_ms is not None:
        took.setdefault(name, []).append(stage_ms)
    if stage_at is not None:
        at.setdefault(name, []).append(stage_at)
for t in runs:
    acks = sorted(a["at_ms"] for a in t["acks"])
    fsync = next(s for s in t["stages"] if s["stage"] == "fsync")["at_ms"]
    for s in t["stages"]:
        if not s["stage"].startswith("ack "):
            add(s["stage"], s["span"], s["at_ms"], s["ms"])
    # Followers by order of answer, not by name: the leader may change between runs.
    for n, a in enumerate(acks):
        d = None if fsync is None else max(a - fsync, 0.0)
        add(("first", "second", "third", "fourth")[n] + " ack", "leader durable → that follower acknowledged", a, d)
order = ["network", "forward", "proposer", "append", "fsync", "first ack", "second ack", "commit", "apply", "reply", "total"]
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]
# The spans name nodes; across runs the leader may differ, so say it in words.
spans.update({"network": "client ↔ the node it called, both ways", "proposer": "leader received → handed to Raft"})
print(f"{len(runs)} traced sequential puts; ms, median (p90)\n")
print("| stage | from → to | ends at (leader clock) | takes |")
print("| --- | --- | --- | --- |")
for name in order:
    if name not in spans:
        continue
    a = at.get(name, [])
    d = took.get(name, [])
    cell = lambda xs: f"{statistics.median(xs):.3f} ({q(xs, 0.9):.3f})" if xs else "–"
    print(f"| {name} | {spans[name]} | {cell(a)} | {cell(d)} |")
'
