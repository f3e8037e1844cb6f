#!/bin/sh
# Single-node overhead: the same CPU-bound threaded guest program under
# stock qemu-user and under dqemu, alternated in one run so both see the
# same machine state.  Prints each run, the medians and their ratio.
# Never fails on a timing (it is a benchmark, not a test).
#
# usage: single-node.sh STOCK_QEMU DQEMU GUEST_BINARY [GUEST_ARGS...]
# env:   BENCH_RUNS (default 5)
set -eu
stock=$1
dqemu=$2
shift 2
runs=${BENCH_RUNS:-5}

now_ns() {
    date +%s%N
}

run_once() {
    t0=$(now_ns)
    if ! "$@" > /dev/null 2>&1; then
        echo "bench: '$*' failed" >&2
        exit 1
    fi
    t1=$(now_ns)
    echo $(( (t1 - t0) / 1000000 ))
}

median() {
    tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

echo "bench: single-node overhead, $runs runs each of: $*"
stock_ms=""
dqemu_ms=""
i=1
while [ "$i" -le "$runs" ]; do
    s=$(run_once "$stock" "$@")
    d=$(run_once "$dqemu" "$@")
    printf 'bench: run %d: stock %6d ms   dqemu %6d ms\n' "$i" "$s" "$d"
    stock_ms="$stock_ms $s"
    dqemu_ms="$dqemu_ms $d"
    i=$((i + 1))
done
sm=$(echo "$stock_ms" | median)
dm=$(echo "$dqemu_ms" | median)
echo "bench: median stock qemu-user: $sm ms"
echo "bench: median dqemu (1 node):  $dm ms"
awk -v s="$sm" -v d="$dm" 'BEGIN {
    printf "bench: ratio dqemu/stock: %.3f (overhead %+.1f %%; target <= +3 %%)\n",
           d / s, (d / s - 1) * 100 }'
