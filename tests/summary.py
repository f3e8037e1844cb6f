#!/usr/bin/env python3
"""Sum the results of every suite `make test` ran into one closing line.

Reads RESULTS_DIR/*.xml (pytest's JUnit files) and RESULTS_DIR/*.counts
("passed failed skipped" from tests/run-cmocka.sh), prints one line per
suite and then "tests: N passed, N failed, N skipped".  Exits non-zero
when anything failed, or when no suite reported at all.
"""
import pathlib
import sys
import xml.etree.ElementTree as ET


def junit_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = failed = skipped = 0
    for s in suites:
        total += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return total - failed - skipped, failed, skipped


def main():
    results = pathlib.Path(sys.argv[1])
    expected = sys.argv[2:]
    totals = [0, 0, 0]
    seen = set()
    for f in sorted(results.glob("*")):
        if f.suffix == ".xml":
            counts = junit_counts(f)
        elif f.suffix == ".counts":
            counts = tuple(int(x) for x in f.read_text().split())
        else:
            continue
        seen.add(f.stem)
        print(f"  {f.stem:<10} {counts[0]:5d} passed, {counts[1]:3d} failed,"
              f" {counts[2]:3d} skipped")
        for i in range(3):
            totals[i] += counts[i]
    for name in expected:
        if name not in seen:
            print(f"  {name:<10} did not report (crashed or did not run)")
            totals[1] += 1
    print(f"tests: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] or not seen else 0


if __name__ == "__main__":
    sys.exit(main())
