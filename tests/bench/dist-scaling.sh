#!/bin/sh
# Multi-node scaling on one host: the same CPU-bound threaded guest
# program under dqemu with --nodes 1..MAX, alternated round by round so
# every node count sees the same machine state.  Prints each run, the
# median wall time per node count and its ratio to one node.  On a
# 2-core machine the nodes share the same two cores, so this measures
# the cost of distribution, not a speed-up.  Never fails on a timing.
#
# usage: dist-scaling.sh DQEMU GUEST_BINARY [GUEST_ARGS...]
# env:   BENCH_RUNS (default 3), BENCH_MAX_NODES (default 4)
set -eu
dqemu=$1
shift
runs=${BENCH_RUNS:-3}
max=${BENCH_MAX_NODES:-4}

now_ns() {
    date +%s%N
}

median() {
    tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

echo "bench: dqemu --nodes 1..$max, $runs runs each of: $*"
i=1
while [ "$i" -le "$runs" ]; do
    n=1
    line="bench: run $i:"
    while [ "$n" -le "$max" ]; do
        t0=$(now_ns)
        if ! "$dqemu" --nodes "$n" "$@" > /dev/null 2>&1; then
            echo "bench: '$dqemu --nodes $n $*' failed" >&2
            exit 1
        fi
        t1=$(now_ns)
        ms=$(( (t1 - t0) / 1000000 ))
        eval "times_$n=\"\${times_$n:-} $ms\""
        line="$line  N=$n $ms ms"
        n=$((n + 1))
    done
    echo "$line"
    i=$((i + 1))
done
base=$(eval "echo \$times_1" | median)
n=1
while [ "$n" -le "$max" ]; do
    m=$(eval "echo \$times_$n" | median)
    awk -v n="$n" -v m="$m" -v b="$base" 'BEGIN {
        printf "bench: median N=%d: %6d ms  (%.2fx the 1-node time)\n", n, m, m / b }'
    n=$((n + 1))
done
