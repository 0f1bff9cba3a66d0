"""Per-binary times of a nextest run, from its JUnit report (scripts/test.sh prints them).

Tests of different binaries run side by side, so the sums add up to more than the wall time; the
longest test of each binary is what bounds the run.

    python scripts/test_times.py target/nextest/default/junit.xml
"""

import sys
import xml.etree.ElementTree as ET


def main(path: str) -> None:
    rows = []
    for suite in ET.parse(path).getroot().iter("testsuite"):
        cases = [(float(c.get("time", 0)), c.get("name", "")) for c in suite.iter("testcase")]
        if not cases:
            continue
        longest = max(cases)
        failed = sum(1 for c in suite.iter("testcase") if c.find("failure") is not None or c.find("error") is not None)
        rows.append((sum(t for t, _ in cases), suite.get("name", "?"), len(cases), failed, longest))
    rows.sort(reverse=True)
    print("== Rust tests by binary (seconds; tests of all binaries run in parallel)")
    print(f"  {'binary':<28} {'tests':>5} {'failed':>6} {'sum':>8} {'longest':>8}  longest test")
    for total, name, n, failed, (t, case) in rows:
        print(f"  {name.removeprefix('drctl::'):<28} {n:>5} {failed:>6} {total:>8.1f} {t:>8.1f}  {case}")


if __name__ == "__main__":
    main(sys.argv[1])
