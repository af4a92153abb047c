#!/usr/bin/env bash
# What watching costs: 64-way `load put` on a local 3-node cluster with nobody watching, with
# `dsh dashboard` open in a terminal, and with `dsh web` serving a headless Chromium that keeps
# the page live. The three conditions alternate round by round (order rotated each round) and
# the table shows medians, because run-to-run noise on the reference machine is 20–30 %.
#
# Usage: scripts/bench-live.sh
#   BENCH_CPUS=0-1   cores for the nodes, the load generator and the watchers alike.
#   BENCH_ROUNDS=3   runs per condition.
#   BENCH_SECS=10    length of each load run.
#
# Everything shares BENCH_CPUS on purpose: the watchers' cost on a presenter's laptop is the CPU
# they take from the nodes, so giving them cores of their own would hide it.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DSH=$ROOT/target/release/dsh
CPUS=${BENCH_CPUS:-0-1}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECS:-10}
WEB=127.0.0.1:27342
TMP=$(mktemp -d)
WATCHER=""

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-live: %s\n' "$*" >&2; exit 1; }
pinned() { taskset -c "$CPUS" "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

stop_watcher() {
	if [[ -n $WATCHER ]]; then
		# The watcher is a process group (script → dsh, or dsh web + chromium).
		kill -- -"$WATCHER" 2>/dev/null || kill "$WATCHER" 2>/dev/null || true
		wait "$WATCHER" 2>/dev/null || true
		WATCHER=""
	fi
}

cleanup() {
	set +e
	stop_watcher
	"$DSH" cluster down >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

chromium_bin() { command -v chromium || command -v chromium-browser || die "chromium not found (apt-get install chromium)"; }

# watch CONDITION: starts what watches the cluster during the next run.
watch_start() {
	case $1 in
	none) ;;
	dashboard)
		# `script` gives the dashboard a real pseudo-terminal (80x24 by default, set larger);
		# what it draws goes to /dev/null, but it is drawn.
		setsid taskset -c "$CPUS" script -qfec "stty cols 200 rows 50; exec $DSH dashboard" /dev/null \
			</dev/null >/dev/null 2>&1 &
		WATCHER=$!
		;;
	browser)
		setsid bash -c "taskset -c $CPUS $DSH web --listen $WEB & sleep 1; exec taskset -c $CPUS $(chromium_bin) \
			--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run --disable-component-update --disable-sync \
			--user-data-dir=$TMP/chromium --remote-debugging-port=0 http://$WEB/" \
			</dev/null >"$TMP/browser.log" 2>&1 &
		WATCHER=$!
		;;
	esac
	# Let the watcher connect and settle before the run starts.
	[[ $1 == none ]] || sleep 3
}

declare -A RESULTS
run() {
	local cond=$1 out
	watch_start "$cond"
	out=$(pinned "$DSH" --json -c "load put --duration ${SECS}s --concurrency 64") || die "load failed: $out"
	stop_watcher
	out=$(grep '^{' <<<"$out" | tail -n1)
	log "$cond: $out"
	RESULTS[$cond]+="$(field "$out" ops_per_sec) "
}

command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v script >/dev/null || die "script not found (bsdutils)"
log "building dsh (release)"
(cd "$ROOT" && cargo build --release --quiet)
export DSH_HOME=$TMP/dsh
log "starting a local cluster in $DSH_HOME"
pinned "$DSH" cluster up --quiet >&2
pinned "$DSH" --json -c "load put --duration 3s --concurrency 64" >/dev/null # warm-up

conds=(none dashboard browser)
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < 3; i++)); do run "${conds[(i + r) % 3]}"; done
done

base=$(median ${RESULTS[none]})
row() {
	local m
	m=$(median ${RESULTS[$1]})
	printf '| %s | %.0f (%s) | %+.1f %% |\n' "$2" "$m" "$(printf '%.0f, ' ${RESULTS[$1]} | sed 's/, $//')" \
		"$(python3 -c "print(($m - $base) / $base * 100)")"
}
echo "| 64 clients put, ${SECS} s | ops/s (median; runs) | against nobody watching |"
echo "| --- | --- | --- |"
row none "nobody watching"
row dashboard "\`dsh dashboard\` open (200×50)"
row browser "\`dsh web\` + headless Chromium on the page"
