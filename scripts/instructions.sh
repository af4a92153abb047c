#!/usr/bin/env bash
# Instructions per sequential put: a noise-free figure beside the wall-clock benchmarks
# (BENCHMARKS.md, issue 16). Counts are exact and repeatable to within a few percent, where
# latencies on this shared 2-vCPU machine drift by 2× within an hour.
#
# Usage: scripts/instructions.sh [N]
#   N                  sequential puts measured (default 500); callgrind runs programs ~50×
#                      slower, so keep it in the hundreds.
#   INSTR_VALUE_SIZE   bytes per value (default 256, as scripts/bench.sh).
#   INSTR_NO_BUILD=1   use target/release/dsh as it is instead of running `cargo build --release`.
# Prints a markdown table on stdout; progress on stderr.
#
# Method. `perf stat -e instructions` would count user and kernel instructions, but this VM
# exposes no hardware counters (`perf stat -e instructions true` says <not supported>), so the
# count is valgrind's callgrind `Ir`: instructions executed in user space, by every thread of a
# process. Kernel work (fdatasync, sendmsg, the QUIC UDP path below the socket) is NOT in it.
#   1. A fresh 3-node local cluster (`dsh cluster up` in a temp DSH_HOME), release build.
#   2. Client: with the nodes running natively, `dsh -c 'load put --count N --concurrency 1'`
#      runs under callgrind, and again with --count 1; (I(N) - I(1)) / (N - 1) is the client's
#      instructions per put, without its start-up (runtime, TLS handshake, connecting).
#   3. Nodes: the three node processes are stopped and started again, with the very same
#      command lines (read from /proc), under callgrind with instrumentation off: valgrind alone
#      slows them ~5×, and with full instrumentation from the start the restarted nodes spent
#      minutes in failed elections (their TLS handshakes and vote RPCs outran dsh's 100-200 ms
#      election timeout). Once they serve, instrumentation goes on (`callgrind_control -i on`),
#      and after a warm-up the counters of every
#      node are zeroed (`callgrind_control -z`), N sequential puts run from a native client,
#      and every node's counters are dumped (`callgrind_control -d`). The counts are summed
#      over the three nodes and divided by N.
#   4. Baseline: the same nodes, counters zeroed again, idle (heartbeats, timers) for as long
#      as the N puts took, dumped. "net" figures subtract it; under callgrind the puts take
#      long enough that heartbeats (every 50 ms) are a visible share of the raw count.
# Under callgrind one node handles a put ~50× slower than natively, close to dsh's 100-200 ms
# election timeout: the script reports the Raft term before and after each window, and a
# window in which the term changed (an election happened) is flagged, since its count
# includes the election.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DSH=${INSTR_DSH:-$ROOT/target/release/dsh} # INSTR_DSH: another build (only for trying the script)
N=${1:-500}
VALUE_SIZE=${INSTR_VALUE_SIZE:-256}
TMP=""
VG_PIDS=()  # the nodes' valgrind processes (Debian's /usr/bin/valgrind execs valgrind.bin), in node order
NODE_IDS=() # n1, n2, n3

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'instructions: %s\n' "$*" >&2; exit 1; }

cleanup() {
	local status=$?
	set +e
	local pid
	for pid in "${VG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${VG_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	if [[ -n $TMP && -d $TMP/home ]]; then DSH_HOME=$TMP/home "$DSH" cluster down >/dev/null 2>&1; fi
	# A failed run keeps its logs (node logs, valgrind's) for a look.
	if ((status == 0)); then [[ -n $TMP ]] && rm -rf "$TMP"; else log "logs kept in $TMP"; fi
}

# The client, pointed at the cluster file so it never starts or manages nodes itself.
dsh_client() { "$DSH" --cluster "$TMP/home/cluster.toml" "$@"; }

# run_puts FILE: N sequential puts from a native client, its JSON summary into FILE.
run_puts() { dsh_client --json -c "load put --count $N --concurrency 1 --value-size $VALUE_SIZE" >"$1"; }

# Ir total of one callgrind output file.
ir_of() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# The highest Raft term any node reports.
term() { dsh_client --json -c status 2>/dev/null | grep -o '"term": *[0-9]*' | grep -o '[0-9]*$' | sort -n | tail -n1; }

# cg PID COMMAND...: one callgrind_control command; it exits 0 even when it found no such
# process, so its answer is checked.
cg() {
	local pid=$1 out
	shift
	out=$(callgrind_control "$@" "$pid" 2>&1)
	grep -q OK <<<"$out" || die "callgrind_control $* $pid: $out"
}

# window NAME CMD...: zeroes every node's counters, runs CMD, dumps them; sets W_IR[i] to node
# i's instructions in the window and W_SECS to its length.
declare -a W_IR
W_SECS=0
window() {
	local name=$1 i pid f t0 t1
	shift
	for pid in "${VG_PIDS[@]}"; do cg "$pid" -z; done
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	for pid in "${VG_PIDS[@]}"; do cg "$pid" -d "$name"; done
	W_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	for i in "${!VG_PIDS[@]}"; do
		# Dumps are numbered files (n1.out.1, …), each naming what triggered it.
		f=$(grep -l "^desc: Trigger: dump $name\$" "$TMP/cg/${NODE_IDS[i]}.out."*) ||
			die "no dump $name for ${NODE_IDS[i]}"
		W_IR[i]=$(ir_of "$f")
	done
}

main() {
	if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
		die "needs valgrind (Debian's valgrind package: apt-get install valgrind)"
	fi
	cd "$ROOT"
	if [[ -z ${INSTR_NO_BUILD:-} ]]; then
		log "building dsh (release)"
		cargo build --release --quiet
	fi
	[[ -x $DSH ]] || die "no $DSH"

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/dsh-instr.XXXXXX")
	mkdir -p "$TMP/cg"
	export DSH_HOME=$TMP/home
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	log "starting a local cluster in $DSH_HOME"
	"$DSH" cluster up --quiet >&2
	dsh_client -c "load put --count 200 --concurrency 1 --value-size $VALUE_SIZE" >/dev/null

	log "client: $N puts and 1 put under callgrind (nodes native)"
	local cn c1
	valgrind --tool=callgrind --callgrind-out-file="$TMP/cg/client-n.out" --log-file="$TMP/cg/client-n.log" \
		"$DSH" --cluster "$DSH_HOME/cluster.toml" -c "load put --count $N --concurrency 1 --value-size $VALUE_SIZE" >&2
	valgrind --tool=callgrind --callgrind-out-file="$TMP/cg/client-1.out" --log-file="$TMP/cg/client-1.log" \
		"$DSH" --cluster "$DSH_HOME/cluster.toml" -c "load put --count 1 --concurrency 1 --value-size $VALUE_SIZE" >&2
	cn=$(ir_of "$TMP/cg/client-n.out")
	c1=$(ir_of "$TMP/cg/client-1.out")

	# The node processes' command lines, then the same nodes again under callgrind.
	local pidfile pid id i
	declare -a cmds
	for pidfile in "$DSH_HOME"/*/pid "$DSH_HOME"/*/*/pid; do
		[[ -f $pidfile ]] || continue
		pid=$(<"$pidfile")
		[[ -r /proc/$pid/cmdline ]] || continue
		mapfile -d '' -t argv <"/proc/$pid/cmdline"
		id=""
		for ((i = 0; i < ${#argv[@]}; i++)); do [[ ${argv[i]} == --id ]] && id=${argv[i + 1]}; done
		[[ -n $id ]] || continue
		NODE_IDS+=("$id")
		cmds+=("$(printf '%q ' "${argv[@]}")")
	done
	((${#NODE_IDS[@]} == 3)) || die "expected 3 node processes, found ${#NODE_IDS[@]} (${NODE_IDS[*]})"
	log "restarting ${NODE_IDS[*]} under callgrind"
	"$DSH" cluster down >&2
	for i in "${!NODE_IDS[@]}"; do
		id=${NODE_IDS[i]}
		eval "argv=(${cmds[i]})"
		valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/cg/$id.out" \
			--log-file="$TMP/cg/$id.vg.log" "${argv[@]}" >>"$TMP/cg/$id.node.log" 2>&1 &
		VG_PIDS+=($!)
	done
	local deadline=$((SECONDS + 180))
	until dsh_client -c 'put instr:ready 1' >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "cluster under callgrind not serving after 180 s; logs in $TMP/cg"
		sleep 1
	done
	log "instrumentation on; warm-up (50 puts)"
	for pid in "${VG_PIDS[@]}"; do cg "$pid" -i on; done
	dsh_client -c "load put --count 50 --concurrency 1 --value-size $VALUE_SIZE" >/dev/null

	local term0 term1 term2 out
	term0=$(term)
	log "nodes: $N sequential puts (term $term0)"
	out=$TMP/load.json
	window puts run_puts "$out"
	local puts_secs=$W_SECS
	declare -a put_ir=("${W_IR[@]}")
	term1=$(term)
	log "nodes: idle for ${puts_secs}s (term $term1)"
	window idle sleep "$puts_secs"
	declare -a idle_ir=("${W_IR[@]}")
	term2=$(term)
	local ops errors
	ops=$(grep -o '"ops": *[0-9]*' "$out" | head -n1 | grep -o '[0-9]*$')
	errors=$(grep -o '"errors": *[0-9]*' "$out" | head -n1 | grep -o '[0-9]*$')

	local sum_put=0 sum_idle=0 rows=""
	for i in "${!NODE_IDS[@]}"; do
		sum_put=$((sum_put + put_ir[i]))
		sum_idle=$((sum_idle + idle_ir[i]))
		rows+=$(awk -v id="${NODE_IDS[i]}" -v p="${put_ir[i]}" -v b="${idle_ir[i]}" -v n="$N" \
			'BEGIN { printf "| node %s | %.0f | %.0f | %.0f |\n", id, p / n, b / n, (p - b) / n }')$'\n'
	done
	cat <<EOF

$N sequential puts of $VALUE_SIZE-byte values, 3-node local cluster, release build, $(date -u '+%Y-%m-%d %H:%M UTC').
callgrind Ir (user-space instructions), per put. Node window: ${puts_secs}s under callgrind
(client reported ops $ops, errors $errors); idle window the same length. Raft term before the
puts / after the puts / after idle: $term0 / $term1 / $term2$([[ $term0 == "$term2" ]] || echo " (an election happened: counts include it)").

| process | during puts | idle baseline | net |
| --- | --- | --- | --- |
${rows}| all three nodes | $(awk -v p="$sum_put" -v n="$N" 'BEGIN { printf "%.0f", p / n }') | $(awk -v b="$sum_idle" -v n="$N" 'BEGIN { printf "%.0f", b / n }') | $(awk -v p="$sum_put" -v b="$sum_idle" -v n="$N" 'BEGIN { printf "%.0f", (p - b) / n }') |
| client (\`dsh -c 'load put'\`), (I(N) − I(1)) / (N − 1) | $(awk -v a="$cn" -v b="$c1" -v n="$N" 'BEGIN { printf "%.0f", (a - b) / (n - 1) }') | | |
| client, whole process with start-up, N=$N / N=1 | $cn / $c1 | | |
EOF
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
