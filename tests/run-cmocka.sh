#!/bin/sh
# Run cmocka test binaries, show their output, and record the totals.
#
# usage: run-cmocka.sh COUNTS_FILE BINARY...
#
# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)"; a
# binary that dies before its summary (a sanitizer abort, a crash) counts
# as one failure, so a crash can never read as a pass.
set -u
counts=$1
shift
passed=0
failed=0
for bin in "$@"; do
    echo "== $bin"
    out=$("$bin" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$bin: exited with status $rc before reporting a failure" >&2
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed $failed 0" > "$counts"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
