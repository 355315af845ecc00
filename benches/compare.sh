#!/usr/bin/env bash
# Side-by-side load test of Jaunt against tonic, tarpc and a raw tokio echo, on loopback.
#
#   benches/compare.sh [-n N] [-c C] [-r ROUNDS] [-t THREADS] [-k CONNS] [-s SYSTEMS]
#
#   -n N        timed calls per run (default 500000); the client first makes n/10 (at most
#               20000) untimed warm-up calls
#   -c C        concurrent callers, each with one call outstanding (default 100)
#   -r ROUNDS   rounds (default 3); each round runs every system once, alternating
#               jaunt, tonic, tarpc, raw-echo; the table keeps each system's best round
#   -t THREADS  tokio worker threads of each server and each client process (default 1)
#   -k CONNS    connections shared by the callers (default: one per caller; raw-echo
#               always uses one per caller)
#   -s SYSTEMS  the systems to run, space-separated (default "jaunt tonic tarpc raw-echo")
#
# Builds both workspaces in release mode (the main one, and benches/compare, a separate
# workspace holding the tonic and tarpc baselines), then for every run starts the system's
# server process on 127.0.0.1 (a free port), waits for its `LISTENING addr` line, runs the
# client process with --json, and stops the server. Writes every run's report to
# target/bench/runs/, the table to target/bench/compare.md and the best run per system to
# target/bench/compare.json:
#   [{"system": "jaunt", "calls_per_s": .., "p50_ms": .., "p99_ms": .., "p999_ms": ..}, ...]
#
# Target directories: the main workspace's is $CARGO_TARGET_DIR (default target/), the
# baselines' is $COMPARE_TARGET_DIR (default benches/compare/target/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

N=500000
C=100
ROUNDS=3
THREADS=1
CONNS=""
SYSTEMS=(jaunt tonic tarpc raw-echo)
while getopts "n:c:r:t:k:s:h" opt; do
    case "$opt" in
        n) N=$OPTARG ;;
        c) C=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        t) THREADS=$OPTARG ;;
        k) CONNS=$OPTARG ;;
        s) read -r -a SYSTEMS <<<"$OPTARG" ;;
        *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

MAIN_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$MAIN_TARGET" in /*) ;; *) MAIN_TARGET=$ROOT/$MAIN_TARGET ;; esac
COMPARE_TARGET=${COMPARE_TARGET_DIR:-$ROOT/benches/compare/target}
case "$COMPARE_TARGET" in /*) ;; *) COMPARE_TARGET=$ROOT/$COMPARE_TARGET ;; esac
OUT=$ROOT/target/bench
mkdir -p "$OUT/runs"
rm -f "$OUT"/runs/*.json

echo "== building (release)"
CARGO_TARGET_DIR=$MAIN_TARGET cargo build --release --quiet -p jaunt-benches --bin jaunt-bench
if [ "${SYSTEMS[*]}" != jaunt ]; then
    (cd benches/compare && CARGO_TARGET_DIR=$COMPARE_TARGET cargo build --release --quiet)
fi

declare -A BIN=(
    [jaunt]=$MAIN_TARGET/release/jaunt-bench
    [tonic]=$COMPARE_TARGET/release/tonic-bench
    [tarpc]=$COMPARE_TARGET/release/tarpc-bench
    [raw-echo]=$COMPARE_TARGET/release/raw-echo
)
for system in "${SYSTEMS[@]}"; do
    if [ -z "${BIN[$system]:-}" ]; then
        echo "unknown system $system (jaunt, tonic, tarpc, raw-echo)" >&2
        exit 2
    fi
done

SERVER_PID=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

# run SYSTEM ROUND: one server process, one client process.
run() {
    local system=$1 round=$2 bin=${BIN[$1]} log=$OUT/runs/$1-$2.server.log addr="" extra=()
    : >"$log"
    "$bin" server --addr 127.0.0.1:0 --threads "$THREADS" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        addr=$(sed -n 's/^LISTENING //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "$system: the server did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    if [ -n "$CONNS" ] && [ "$system" != raw-echo ]; then
        extra=(--conns "$CONNS")
    fi
    local status=0
    "$bin" client --addr "$addr" -n "$N" -c "$C" --threads "$THREADS" --json "${extra[@]}" \
        >"$OUT/runs/$system-$round.json" || status=$?
    stop_server
    if [ "$status" != 0 ]; then
        echo "$system round $round: the client failed (exit $status)" >&2
    fi
    sed -n 's/.*"calls_per_s":\([0-9.]*\).*"p99_ms":\([0-9.]*\).*/\1 \2/p' "$OUT/runs/$system-$round.json" |
        awk -v s="$system" -v r="$round" '{ printf "   round %s %-9s %8.0f calls/s  p99 %.3f ms\n", r, s, $1, $2 }'
}

echo "== machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== n = $N, c = $C, connections = ${CONNS:-$C}, $THREADS worker thread(s) per process, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    for system in "${SYSTEMS[@]}"; do
        run "$system" "$round"
    done
done
echo "== load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
"${BIN[jaunt]}" summarize --out "$OUT/compare.json" "$OUT"/runs/*.json | tee "$OUT/compare.md"
