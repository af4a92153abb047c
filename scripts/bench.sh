#!/usr/bin/env bash
# Benchmarks dsh side by side with etcd on this machine: the same workloads, value size, client
# counts and CPU pinning, then prints one markdown table. Progress goes to stderr, the table to
# stdout. etcd is driven two ways in the same run, each a column of the table:
#   - native: its gRPC API, through bench/etcd-load (a driver on the `etcd-client` crate, its
#     own Cargo package so dsh's build never needs it or `protoc`); what etcd's users run;
#   - gateway: its HTTP/JSON gRPC gateway, through dsh's own `load --etcd` (one HTTP/1.1
#     connection per client), as earlier runs of this script did.
# Both drivers run the same closed loop as dsh's `load` (keys, values, timing; see the driver's
# header), and ratios in the table are dsh against the native column.
#
# Usage: scripts/bench.sh
#   BENCH_CPUS=0-1         cores for every server of both systems *and* the load generators.
#   BENCH_ROUNDS=3         runs of each load workload per system, rotating; medians are reported.
#   BENCH_VALUE_SIZE=256   bytes per value, for all three columns.
#   BENCH_SEQ_COUNT=2000   puts per sequential run.
#   BENCH_ETCD_CONNS=1     gRPC connections the native driver's clients share (dsh's clients
#                          share one QUIC connection per node; see bench/etcd-load/src/main.rs).
#
# Why everything shares BENCH_CPUS: on the 2-vCPU reference machine, splitting cores between
# servers and client would starve one side, and a process waking on another vCPU costs ~45 µs
# (NOTES.md), which would skew latencies if the two systems were placed differently. Sharing
# one set of cores treats both systems alike; on a larger machine set e.g. BENCH_CPUS=0-3.
#
# Both clusters stay up for the whole run: `dsh` needs its own cluster running even when it
# drives etcd, and the idle one only sends heartbeats. Workloads rotate dsh / etcd native /
# etcd gateway so slow drift on the machine hits all three.
#
# Installs what it needs with apt when missing: etcd-server, etcd-client, protobuf-compiler
# (for the native driver's build), hyperfine (optional).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DSH=$ROOT/target/release/dsh
DRIVER_DIR=$ROOT/bench/etcd-load
DRIVER=$DRIVER_DIR/target/release/etcd-load
VALUE_SIZE=${BENCH_VALUE_SIZE:-256}
ETCD_CONNS=${BENCH_ETCD_CONNS:-1}
SEQ_COUNT=${BENCH_SEQ_COUNT:-2000}
SYSTEMS=(dsh etcd gw) # dsh; etcd through its native gRPC client; etcd through its HTTP gateway
CPUS=${BENCH_CPUS:-0-1}
FAILOVER_RUNS=3
ROUNDS=${BENCH_ROUNDS:-3} # runs of each load workload per system; the table shows medians
ETCD_N=3
ETCD_CLIENT_BASE=23790 # member i serves clients on 23790+i
ETCD_PEER_BASE=23800   # and talks to peers on 23800+i
ETCD_ENDPOINTS=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793
ETCD_PIDS=() # ETCD_PIDS[i-1] is member i
TMP=""

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
pinned() { taskset -c "$CPUS" "$@"; }
etcdctl_all() { ETCDCTL_API=3 etcdctl --endpoints="$ETCD_ENDPOINTS" --command-timeout=2s "$@"; }

# json_field JSON KEY
json_field() {
	if command -v jq >/dev/null; then
		jq -r ".$2" <<<"$1"
	else
		python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
	fi
}

# Median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# `kill -0` would still find a killed process that has not been reaped yet.
alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

install_tools() {
	local missing=()
	command -v etcd >/dev/null || missing+=(etcd-server)
	command -v etcdctl >/dev/null || missing+=(etcd-client)
	command -v protoc >/dev/null || missing+=(protobuf-compiler)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	# hyperfine only adds one row, so the run goes on without it.
	if ! command -v hyperfine >/dev/null; then
		log "installing hyperfine"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null ||
			log "could not install hyperfine; the one-shot CLI row will be skipped"
	fi
	command -v taskset >/dev/null || die "taskset not found (util-linux)"
	command -v jq >/dev/null || command -v python3 >/dev/null || die "need jq or python3"
}

cleanup() {
	set +e
	if [[ -x $DSH && -n $TMP && -d $TMP/dsh ]]; then
		"$DSH" cluster down >/dev/null 2>&1
	fi
	local pid tries
	# SIGKILL: the data is thrown away anyway, and a SIGTERMed leader spends seconds trying to
	# hand leadership to members that are stopping too.
	for pid in "${ETCD_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	# Members are disowned, so `wait` cannot be used; remove their data dirs once they are gone.
	for pid in "${ETCD_PIDS[@]}"; do
		for ((tries = 0; tries < 50; tries++)); do alive "$pid" || break; sleep 0.1; done
	done
	[[ -n $TMP ]] && rm -rf "$TMP"
}

# ---- etcd -------------------------------------------------------------------------------------

# Starts member i (1-based) in the background. Restarting uses the very same command: with an
# existing data dir etcd ignores the --initial-* flags and rejoins from its WAL.
etcd_start_member() {
	local i=$1 j peers=""
	for ((j = 1; j <= ETCD_N; j++)); do
		peers+="${peers:+,}m$j=http://127.0.0.1:$((ETCD_PEER_BASE + j))"
	done
	local client=http://127.0.0.1:$((ETCD_CLIENT_BASE + i)) peer=http://127.0.0.1:$((ETCD_PEER_BASE + i))
	# Everything else stays at etcd's defaults (heartbeat 100 ms, election 1 s, fsync on): what
	# users would run. taskset execs etcd, so $! is etcd's own pid.
	taskset -c "$CPUS" etcd --name "m$i" --data-dir "$TMP/etcd/m$i" \
		--listen-client-urls "$client" --advertise-client-urls "$client" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "$peers" --initial-cluster-token dsh-bench --initial-cluster-state new \
		>>"$TMP/etcd/m$i.log" 2>&1 &
	ETCD_PIDS[i - 1]=$!
	# Disowned so bash does not print "Killed" job notices when the failover tool kills one;
	# bash still reaps it.
	disown
}

etcd_wait_healthy() {
	local deadline=$((SECONDS + 30))
	until etcdctl_all endpoint health >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "etcd not healthy after 30 s; logs in $TMP/etcd"
		sleep 0.2
	done
}

etcd_up() {
	log "starting etcd (3 members, client ports $ETCD_ENDPOINTS)"
	mkdir -p "$TMP/etcd"
	local i
	for ((i = 1; i <= ETCD_N; i++)); do etcd_start_member "$i"; done
	etcd_wait_healthy
}

# After a failover run: reap and restart whichever member was killed.
etcd_restart_dead() {
	local i
	for ((i = 1; i <= ETCD_N; i++)); do
		if ! alive "${ETCD_PIDS[i - 1]}"; then
			log "restarting etcd member m$i"
			etcd_start_member "$i"
		fi
	done
	etcd_wait_healthy
}

etcd_pids_csv() { local IFS=,; echo "${ETCD_PIDS[*]}"; }

# ---- dsh --------------------------------------------------------------------------------------

# `cluster up` runs pinned so the nodes it spawns inherit the same cores as etcd's members.
dsh_up() { pinned "$DSH" cluster up --quiet >&2; }

# ---- workloads --------------------------------------------------------------------------------

# load SYSTEM ARGS...: one put run (ARGS in `load put`'s syntax: --count/--duration,
# --concurrency); prints its JSON result line. SYSTEM: dsh, etcd (native gRPC driver) or gw
# (etcd through its gateway, driven by dsh's `load --etcd`).
load() {
	local system=$1 out
	shift
	case $system in
	dsh) out=$(pinned "$DSH" --json -c "load put $* --value-size $VALUE_SIZE") ;;
	gw) out=$(pinned "$DSH" --json -c "load put $* --value-size $VALUE_SIZE --etcd $ETCD_ENDPOINTS") ;;
	etcd) out=$(pinned "$DRIVER" --endpoints "$ETCD_ENDPOINTS" --conns "$ETCD_CONNS" --value-size "$VALUE_SIZE" "$@") ;;
	*) die "unknown system $system" ;;
	esac || die "load against $system failed: $out"
	grep '^{' <<<"$out" | tail -n1
}

# failover SYSTEM: one leader kill; sets FAILOVER_MS to the time until a write succeeded again.
# It returns through a global because it restarts etcd members, which must stay children of
# this shell (a command substitution would make them a subshell's and lose their pids).
FAILOVER_MS=""
failover() {
	local system=$1 out
	if [[ $system == etcd ]]; then
		out=$(pinned "$DSH" bench failover --json --etcd "$ETCD_ENDPOINTS" --etcd-pids "$(etcd_pids_csv)")
	else
		out=$(pinned "$DSH" bench failover --json)
	fi
	out=$(grep '^{' <<<"$out" | tail -n1)
	log "$system failover: $out"
	# Every run should start from three healthy members, so bring the killed one back.
	if [[ $system == etcd ]]; then etcd_restart_dead; else dsh_up; fi
	sleep 3
	FAILOVER_MS=$(printf '%.0f' "$(json_field "$out" failover_ms)")
}

# workload KEY ARGS...: ROUNDS runs of one put workload per system. Systems alternate, and the
# order rotates every round (dsh etcd gw, etcd gw dsh, gw dsh etcd, …), so drift on the machine
# (run-to-run noise here is 20-30 %) hits all alike. Each run's JSON line is appended to
# RESULTS[KEY/SYSTEM].
declare -A RESULTS
workload() {
	local key=$1 r sys out k n=${#SYSTEMS[@]}
	shift
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((k = 0; k < n; k++)); do
			sys=${SYSTEMS[(r - 1 + k) % n]}
			out=$(load "$sys" "$@")
			log "$key, $sys, round $r: $out"
			RESULTS[$key/$sys]+="$out"$'\n'
		done
	done
}

# values KEY SYSTEM FIELD: FIELD of every run of that workload, one per line.
values() {
	local j
	while read -r j; do
		if [[ -n $j ]]; then json_field "$j" "$3"; fi
	done <<<"${RESULTS[$1/$2]}"
}

# Table cells: the median over the runs, formatted; `runs` also lists each run.
# shellcheck disable=SC2046 # the values are numbers, one per word
ms() { printf '%.2f' "$(median $(values "$1" "$2" "$3"))"; }
# shellcheck disable=SC2046
ops() { printf '%.0f' "$(median $(values "$1" "$2" ops_per_sec))"; }
# ratio A B: A / B to two places, with a ×; "—" when B is missing or zero.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "") print "—"; else printf "%.2f×\n", a / b }'; }
runs() { printf '%s (%s)' "$(ops "$1" "$2")" "$(values "$1" "$2" ops_per_sec | xargs printf '%.0f, ' | sed 's/, $//')"; }
errors() { values "$1" "$2" errors | awk '{ s += $1 } END { print s + 0 }'; }

# hf_mean FILE INDEX: mean wall time in ms of one command from hyperfine's JSON export.
hf_mean() {
	if command -v jq >/dev/null; then
		jq -r ".results[$2].mean * 1000 * 100 | round / 100" "$1"
	else
		python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["mean"] * 1000, 2))' "$1" "$2"
	fi
}

main() {
	cd "$ROOT"
	log "building dsh (release)"
	cargo build --release --quiet
	install_tools
	log "building the native etcd driver (bench/etcd-load, release)"
	(cd "$DRIVER_DIR" && cargo build --release --locked --quiet)

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/dsh-bench.XXXXXX")
	export DSH_HOME=$TMP/dsh
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	etcd_up
	log "starting dsh (local cluster in $DSH_HOME)"
	dsh_up

	local sys
	declare -A fo fo_runs
	# Unreported warm-up: first connections, file growth and page cache hit neither system's numbers.
	for sys in "${SYSTEMS[@]}"; do load "$sys" --count 500 --concurrency 4 >/dev/null; done
	log "sequential puts, $ROUNDS rounds"
	workload seq --count "$SEQ_COUNT" --concurrency 1
	log "16 clients, 10 s, $ROUNDS rounds"
	workload c16 --duration 10s --concurrency 16
	log "64 clients, 10 s, $ROUNDS rounds"
	workload c64 --duration 10s --concurrency 64

	# Failover uses `dsh bench failover`, which drives etcd through its gateway (the gw column).
	log "failover, $FAILOVER_RUNS runs each"
	local runs r
	for sys in dsh etcd; do
		runs=()
		for ((r = 0; r < FAILOVER_RUNS; r++)); do
			failover "$sys"
			runs+=("$FAILOVER_MS")
		done
		fo[$sys]=$(median "${runs[@]}")
		fo_runs[$sys]=$(printf '%s, ' "${runs[@]}")
		fo_runs[$sys]=${fo_runs[$sys]%, }
	done

	local cli_row=""
	if command -v hyperfine >/dev/null; then
		log "one-shot CLI get (hyperfine)"
		pinned "$DSH" -c 'put a 1' >/dev/null
		etcdctl_all put a 1 >/dev/null
		local hf=$TMP/hyperfine.json
		pinned hyperfine -N --warmup 3 --runs 30 --export-json "$hf" \
			"$DSH -c 'get a'" "etcdctl --endpoints=$ETCD_ENDPOINTS get a" >&2
		local cli_dsh cli_etcd
		cli_dsh=$(hf_mean "$hf" 0)
		cli_etcd=$(hf_mean "$hf" 1)
		# etcdctl speaks gRPC: the native column.
		cli_row="| one-shot CLI get, mean wall ms (\`dsh -c 'get a'\` / \`etcdctl get a\`) | $cli_dsh | $cli_etcd | — | $(ratio "$cli_dsh" "$cli_etcd") |"
	else
		log "hyperfine not available; skipping the one-shot CLI row"
	fi

	declare -A errs=([dsh]=0 [etcd]=0 [gw]=0)
	local w
	for w in seq c16 c64; do
		for sys in "${SYSTEMS[@]}"; do errs[$sys]=$((errs[$sys] + $(errors "$w" "$sys"))); done
	done
	# Cells used in ratios, once each.
	declare -A seq50 seq99 c16o c16p c64o c64p
	for sys in "${SYSTEMS[@]}"; do
		seq50[$sys]=$(ms seq "$sys" p50_ms)
		seq99[$sys]=$(ms seq "$sys" p99_ms)
		c16o[$sys]=$(ops c16 "$sys")
		c16p[$sys]=$(ms c16 "$sys" p99_ms)
		c64o[$sys]=$(ops c64 "$sys")
		c64p[$sys]=$(ms c64 "$sys" p99_ms)
	done

	cat <<EOF

CPU pinning: servers and load generators of both systems on cores $CPUS ($(nproc) online).
Values of $VALUE_SIZE bytes. Load figures are medians of $ROUNDS runs per system. etcd native:
bench/etcd-load (gRPC, $ETCD_CONNS shared connection(s) to the leader); etcd gateway: \`dsh load
--etcd\` (HTTP/JSON, one connection per client). Ratio: dsh ÷ etcd native (below 1 is better
for latencies, above 1 for throughput).

| workload | dsh | etcd, native client | etcd, gateway | dsh ÷ etcd native |
| --- | --- | --- | --- | --- |
| sequential put, p50 / p99 ms | ${seq50[dsh]} / ${seq99[dsh]} | ${seq50[etcd]} / ${seq99[etcd]} | ${seq50[gw]} / ${seq99[gw]} | $(ratio "${seq50[dsh]}" "${seq50[etcd]}") / $(ratio "${seq99[dsh]}" "${seq99[etcd]}") |
| 16 clients put, ops/s (median; runs) | $(runs c16 dsh) | $(runs c16 etcd) | $(runs c16 gw) | $(ratio "${c16o[dsh]}" "${c16o[etcd]}") |
| 16 clients put, p99 ms | ${c16p[dsh]} | ${c16p[etcd]} | ${c16p[gw]} | $(ratio "${c16p[dsh]}" "${c16p[etcd]}") |
| 64 clients put, ops/s (median; runs) | $(runs c64 dsh) | $(runs c64 etcd) | $(runs c64 gw) | $(ratio "${c64o[dsh]}" "${c64o[etcd]}") |
| 64 clients put, p99 ms | ${c64p[dsh]} | ${c64p[etcd]} | ${c64p[gw]} | $(ratio "${c64p[dsh]}" "${c64p[etcd]}") |
| leader SIGKILL → first write, ms (median; runs; etcd watched through the gateway) | ${fo[dsh]} (${fo_runs[dsh]}) | — | ${fo[etcd]} (${fo_runs[etcd]}) | (÷ gateway) $(ratio "${fo[dsh]}" "${fo[etcd]}") |
| failed operations in the load runs | ${errs[dsh]} | ${errs[etcd]} | ${errs[gw]} | |
$cli_row
EOF
}

# Sourcing the file (for trying one function) does not run the benchmark.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
