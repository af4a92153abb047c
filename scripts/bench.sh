#!/usr/bin/env bash
# Benchmarks dsh side by side with etcd on this machine: the same workloads, client counts and
# load generator (dsh's own `load` command drives both), the same CPU pinning, then prints one
# markdown table. Progress goes to stderr, the table to stdout.
#
# Usage: scripts/bench.sh
#   BENCH_CPUS=0-1   cores for every server of both systems *and* the load generator.
#   BENCH_ROUNDS=3   runs of each load workload per system, alternating; medians are reported.
#
# Why everything shares BENCH_CPUS: on the 2-vCPU reference machine, splitting cores between
# servers and client would starve one side, and a process waking on another vCPU costs ~45 µs
# (NOTES.md), which would skew latencies if the two systems were placed differently. Sharing
# one set of cores treats both systems alike; on a larger machine set e.g. BENCH_CPUS=0-3.
#
# Both clusters stay up for the whole run: `dsh` needs its own cluster running even when it
# drives etcd, and the idle one only sends heartbeats. Workloads alternate dsh/etcd so slow
# drift on the machine hits both.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DSH=$ROOT/target/release/dsh
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

# load SYSTEM ARGS...: one `load put` run; prints its JSON result line.
load() {
	local system=$1 out
	shift
	local extra=()
	[[ $system == etcd ]] && extra=(--etcd "$ETCD_ENDPOINTS")
	out=$(pinned "$DSH" --json -c "load put $* ${extra[*]}") || die "load against $system failed: $out"
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

# workload KEY ARGS...: ROUNDS runs of one `load put` per system. Systems alternate, and the
# order flips every round, so drift on the machine (run-to-run noise here is 20-30 %) hits both
# alike. Each run's JSON line is appended to RESULTS[KEY/SYSTEM].
declare -A RESULTS
workload() {
	local key=$1 r sys out order
	shift
	for ((r = 1; r <= ROUNDS; r++)); do
		order="dsh etcd"
		((r % 2 == 0)) && order="etcd dsh"
		for sys in $order; do
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
ms() { printf '%.2f' "$(median $(values "$1" "$2" "$3"))"; }
ops() { printf '%.0f' "$(median $(values "$1" "$2" ops_per_sec))"; }
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
	for sys in dsh etcd; do load "$sys" --count 500 --concurrency 4 >/dev/null; done
	log "sequential puts, $ROUNDS rounds"
	workload seq --count 2000 --concurrency 1
	log "16 clients, 10 s, $ROUNDS rounds"
	workload c16 --duration 10s --concurrency 16
	log "64 clients, 10 s, $ROUNDS rounds"
	workload c64 --duration 10s --concurrency 64

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
		cli_row="| one-shot CLI get, mean wall ms (\`dsh -c 'get a'\` / \`etcdctl get a\`) | $(hf_mean "$hf" 0) | $(hf_mean "$hf" 1) |"
	else
		log "hyperfine not available; skipping the one-shot CLI row"
	fi

	local errors_dsh=0 errors_etcd=0 w
	for w in seq c16 c64; do
		errors_dsh=$((errors_dsh + $(errors "$w" dsh)))
		errors_etcd=$((errors_etcd + $(errors "$w" etcd)))
	done

	cat <<EOF

CPU pinning: servers and load generator of both systems on cores $CPUS ($(nproc) online).
Load figures are medians of $ROUNDS runs per system.

| workload | dsh | etcd |
| --- | --- | --- |
| sequential put, p50 / p99 ms | $(ms seq dsh p50_ms) / $(ms seq dsh p99_ms) | $(ms seq etcd p50_ms) / $(ms seq etcd p99_ms) |
| 16 clients put, ops/s (median; runs) | $(runs c16 dsh) | $(runs c16 etcd) |
| 16 clients put, p99 ms | $(ms c16 dsh p99_ms) | $(ms c16 etcd p99_ms) |
| 64 clients put, ops/s (median; runs) | $(runs c64 dsh) | $(runs c64 etcd) |
| 64 clients put, p99 ms | $(ms c64 dsh p99_ms) | $(ms c64 etcd p99_ms) |
| leader SIGKILL → first write, ms (median; runs) | ${fo[dsh]} (${fo_runs[dsh]}) | ${fo[etcd]} (${fo_runs[etcd]}) |
| failed operations in the load runs | $errors_dsh | $errors_etcd |
$cli_row
EOF
}

# Sourcing the file (for trying one function) does not run the benchmark.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
