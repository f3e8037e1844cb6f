#!/bin/sh
# Guest atomics across nodes (issue 6), one or more guest programs, each
# under its own dqemu at --nodes 1, 2 and 4 with round-robin placement, so
# their threads really spread over the nodes:
#
#   atomics-bench      (tests/bench/atomics-bench.c) shared fetch_add
#                      counter, CAS-loop counter, mutex/condvar hand-off
#                      ring, private per-page counters;
#   atomic-step-bench  (tests/bench/atomic-step-bench.c) the cluster-wide
#                      exclusive step: misaligned LSE ldadds (EXCP_ATOMIC)
#                      by one thread while the others idle, and by every
#                      thread on one word, with aligned ldadds alongside.
#
# Node counts and programs alternate round by round so each configuration
# sees the same machine state.  Prints every run, then per program and
# node count the median of each figure and its ratio to that program's
# 1-node median of this same invocation.  The first round runs with
# --stats and shows each node's atomic_steps and atomic_pauses, so the
# reader sees which steps really went through the cluster lock.
#
# Never fails on a timing: the guests themselves cut a phase that runs past
# their MAX_SECONDS (5 s and 2 s by default) and say so on a `note` line,
# shown under the run, so a slow configuration costs at most about 20 s a
# run of atomics-bench and 6 s of atomic-step-bench (whose step phases
# beyond one node always end at the cut), and the default `make
# bench-atomics` stays within about 4 minutes even then.
#
# Fails (exit 1) when a run fails: a non-zero exit (the guests exit 1 on
# any miscount), missing results, or a run still going after
# BENCH_TIMEOUT seconds, which past those cuts means a hang (a lost
# wake-up, a livelock inside one atomic), reported as such.
#
# usage: atomics-bench.sh DQEMU GUEST_BINARY [DQEMU GUEST_BINARY]...
#        (a guest binary's file name says which program it is: one of the
#        two above)
# env:   BENCH_RUNS      runs per configuration (default 3)
#        BENCH_LEASES    e.g. "0 20 50": also run N=2 and N=4 with
#                        --atomic-lease USEC for each value; skipped, with
#                        a message, by a dqemu that does not know the option
#        BENCH_TIMEOUT   seconds one run may take (default 120)
#        BENCH_ATOMICS_ARGS  atomics-bench's arguments (default: its own
#                        defaults; see the top of atomics-bench.c)
#        BENCH_STEP_ARGS     atomic-step-bench's arguments (likewise)
set -eu
runs=${BENCH_RUNS:-3}
leases=${BENCH_LEASES:-}
limit=${BENCH_TIMEOUT:-120}
nodes="1 2 4"

if [ $# -eq 0 ] || [ $(($# % 2)) -ne 0 ]; then
    echo "usage: $0 DQEMU GUEST_BINARY [DQEMU GUEST_BINARY]..." >&2
    exit 2
fi

# describe PROGRAM: what the script knows of one guest program.  Sets
#   short    its name in the output;
#   about    what a reader of the output should know beforehand, or "";
#   gargs    its arguments (a list of plain numbers, split on purpose);
#   metrics  what it prints as `result KEY VALUE`, each as
#            KEY:LABEL:UNIT:FORMAT, in the order the lines show them.
describe() {
    case $1 in
    atomics-bench)
        short=atomics
        about=""
        gargs=${BENCH_ATOMICS_ARGS:-}
        metrics="counter_ops_per_s:counter:ops/s:%9.0f
                 cas_ops_per_s:cas:ops/s:%9.0f
                 cas_tries_per_op:cas:tries/op:%.3f
                 handoff_us:hand-off:us:%8.1f
                 private_ops_per_s:private:ops/s:%10.0f"
        ;;
    atomic-step-bench)
        short=step
        about="beyond one node its step phases normally end at their MAX_SECONDS cut: 'note' lines are expected there"
        gargs=${BENCH_STEP_ARGS:-}
        metrics="step_us:step:us:%8.2f
                 aligned_ns:aligned:ns:%5.1f
                 shared_steps_per_s:shared-step:steps/s:%9.0f
                 shared_aligned_ops_per_s:shared-aligned:ops/s:%9.0f"
        ;;
    *)
        echo "bench: no guest program '$1' known (atomics-bench, atomic-step-bench)" >&2
        exit 2
        ;;
    esac
}

# The programs as DQEMU:BINARY words: the runs below loop over them with
# the positional parameters free for each run's command line.
progs=""
while [ $# -gt 0 ]; do
    case $1$2 in
    *[[:space:]:]*)
        echo "bench: '$1' or '$2' has a blank or a colon; this script splits on them" >&2
        exit 2
        ;;
    esac
    describe "$(basename "$2")"
    progs="$progs $1:$2"
    shift 2
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A signal goes through exit, so the EXIT trap cleans up then too.
trap 'exit 1' HUP INT TERM

now_ns() {
    date +%s%N
}

# The end of a failed run's output, so the failure says what broke.  The
# --stats report (dozens of lines a node) is left out: it would push the
# guest's FAIL line out of the tail.
show_output() {
    tail -n 20 "$tmp/out" | sed 's/^/bench:   stdout: /' >&2
    grep -v '^dqemu: node [0-9]*: \(stats\|dsm\):' "$tmp/err" | tail -n 20 |
        sed 's/^/bench:   stderr: /' >&2
}

# Median of the numbers in a file, one a line (some are fractional).
median_of() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# format HEAD TAIL [VALUE BASE]...: one output line of the current
# program: HEAD, then each of its metrics (describe's order) with its VALUE
# and, when BASE is not "-", the ratio VALUE / BASE, then TAIL.
format() {
    awk -v metrics="$metrics" 'BEGIN {
        n = split(metrics, m, " ")
        line = ARGV[1]
        for (i = 1; i <= n; i++) {
            split(m[i], f, ":")
            v = ARGV[2 * i + 1]
            base = ARGV[2 * i + 2]
            line = line sprintf("  %s " f[4] " %s", f[2], v, f[3])
            if (base != "-") {
                # Three decimals would show the 1000-fold slow-down of a step
                # as 0.000x: small ratios keep two significant digits.
                r = base > 0 ? v / base : 0
                line = line sprintf(r >= 10 ? " (%5.1fx)" : r >= 0.01 ? " (%5.3fx)" : " (%.2gx)", r)
            }
        }
        print line ARGV[2] }' "$@"
}

# The per-node step counters of the last run (its stderr, from --stats).
show_steps() {
    awk '$4 == "stats:" && ($5 == "atomic_steps" || $5 == "atomic_pauses") {
        node = $3; sub(":", "", node)
        v[node, $5] = $6
        if (node + 1 > count) count = node + 1
    } END {
        if (count == 0) { print "bench:   stats: no atomic_steps lines from --stats"; exit }
        line = "bench:   stats:"
        for (k = 0; k < count; k++) {
            line = line sprintf(" node %d: %d steps, %d pauses%s", k,
                                v[k, "atomic_steps"], v[k, "atomic_pauses"],
                                k + 1 < count ? ";" : "")
            steps += v[k, "atomic_steps"]; pauses += v[k, "atomic_pauses"]
        }
        line = line sprintf("  (total %d steps, %d pauses)", steps, pauses)
        print line }' "$tmp/err"
}

# run_one PROG TAG NODES [DQEMU_OPTIONS...]: one run of PROG (a DQEMU:BINARY
# word); appends each result to $tmp/SHORT.TAG.KEY and prints the run's
# line.  Exits the script on a failure.
run_one() {
    dqemu=${1%%:*}
    bin=${1#*:}
    tag=$2
    n=$3
    shift 3
    name=$(basename "$bin")
    describe "$name"
    cmd=$(echo "$dqemu --nodes $n --placement round-robin $* $bin $gargs" |
          tr -s ' ' | sed 's/ $//')
    t0=$(now_ns)
    rc=0
    # $gargs is a list of plain numbers: splitting it is intended.
    # shellcheck disable=SC2086
    timeout -k 5 "$limit" "$dqemu" --nodes "$n" --placement round-robin "$@" \
        "$bin" $gargs > "$tmp/out" 2> "$tmp/err" < /dev/null || rc=$?
    t1=$(now_ns)
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "bench: '$cmd' still running after $limit s (hang or livelock?); stopped it" >&2
        show_output
        exit 1
    fi
    if [ "$rc" -ne 0 ] || ! grep -qx "PASS $name" "$tmp/out"; then
        echo "bench: '$cmd' failed (exit $rc):" >&2
        show_output
        exit 1
    fi
    set --
    for m in $metrics; do
        key=${m%%:*}
        v=$(awk -v k="$key" '$1 == "result" && $2 == k { print $3 }' "$tmp/out")
        if [ -z "$v" ]; then
            echo "bench: '$cmd' printed no '$key' result" >&2
            exit 1
        fi
        echo "$v" >> "$tmp/$short.$tag.$key"
        set -- "$@" "$v" -
    done
    format "$(printf 'bench: run %d %-20s' "$i" "$short $tag:")" \
        "  [$(( (t1 - t0) / 1000000 )) ms]" "$@"
    sed -n 's/^note /bench:   note: /p' "$tmp/out"
    case " $cmd " in
    *" --stats "*) show_steps ;;
    esac
}

# One row of the summary: PROG's medians for TAG, with ratios to N=1's.
summary_row() {
    describe "$(basename "${1#*:}")"
    tag=$2
    set --
    for m in $metrics; do
        key=${m%%:*}
        set -- "$@" "$(median_of "$tmp/$short.$tag.$key")" \
            "$(median_of "$tmp/$short.N=1.$key")"
    done
    format "$(printf 'bench: median %-20s' "$short $tag:")" "" "$@"
}

start=$(now_ns)
for p in $progs; do
    describe "$(basename "${p#*:}")"
    echo "bench: $short at --nodes $nodes (--placement round-robin), $runs runs each of: ${p%%:*} ${p#*:} ${gargs:-(its default sizes)}"
    if [ -n "$about" ]; then
        echo "bench:   ($about)"
    fi
done
echo "bench: medians come with their ratio to the program's N=1 median of this run (per s: higher is better; us, ns: lower is better)"

# --atomic-lease is newer than some builds: ask each dqemu once, parsing
# the option and then only printing its version, and drop the sweep
# (saying why) if one does not know it.  Any other failure (a bad value)
# is a failure of the benchmark.
if [ -n "$leases" ]; then
    # Numbers only: splitting is intended, and it drops stray blanks.
    # shellcheck disable=SC2086
    set -- $leases
    leases="$*"
    first=$1
    for p in $progs; do
        dqemu=${p%%:*}
        rc=0
        timeout -k 5 "$limit" "$dqemu" --nodes 1 --atomic-lease "$first" -version \
            > "$tmp/out" 2> "$tmp/err" < /dev/null || rc=$?
        if [ "$rc" -ne 0 ] && grep -qi 'unknown option.*atomic-lease' "$tmp/err"; then
            echo "bench: $dqemu does not know --atomic-lease ($(head -n 1 "$tmp/err")); skipping the BENCH_LEASES sweep"
            leases=""
            break
        elif [ "$rc" -ne 0 ]; then
            echo "bench: '$dqemu --nodes 1 --atomic-lease $first -version' failed (exit $rc):" >&2
            show_output
            exit 1
        fi
    done
fi

i=1
while [ "$i" -le "$runs" ]; do
    # The first round also counts the steps; --stats only prints at exit.
    stats=""
    if [ "$i" -eq 1 ]; then
        stats=--stats
    fi
    for p in $progs; do
        for n in $nodes; do
            # Empty or one word: splitting it is intended.
            # shellcheck disable=SC2086
            run_one "$p" "N=$n" "$n" $stats
        done
    done
    i=$((i + 1))
done
for p in $progs; do
    for n in $nodes; do
        summary_row "$p" "N=$n"
    done
done

if [ -n "$leases" ]; then
    echo "bench: --atomic-lease sweep at N=2 and N=4: $leases us, $runs runs each"
    i=1
    while [ "$i" -le "$runs" ]; do
        for p in $progs; do
            for l in $leases; do
                for n in 2 4; do
                    run_one "$p" "N=$n,L=$l" "$n" --atomic-lease "$l"
                done
            done
        done
        i=$((i + 1))
    done
    for p in $progs; do
        for l in $leases; do
            for n in 2 4; do
                summary_row "$p" "N=$n,L=$l"
            done
        done
    done
fi
echo "bench: atomics done in $(( ($(now_ns) - start) / 1000000000 )) s"
