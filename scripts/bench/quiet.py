#!/usr/bin/env python3
"""Waits (up to --max-wait seconds) until the CPUs are nearly idle, so a benchmark round does not
start while something else (a build, a test run) is using the shared cores. Prints the busy share
it last saw, in percent; exits 0 either way.

  quiet.py --below 15 --max-wait 60
"""

from __future__ import annotations

import argparse
import sys
import time


def cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]), idle


def busy_percent(interval: float) -> float:
    t0, i0 = cpu_times()
    time.sleep(interval)
    t1, i1 = cpu_times()
    return 100.0 * (1.0 - (i1 - i0) / max(1, t1 - t0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--below", type=float, default=15.0, help="busy percent to wait for")
    ap.add_argument("--max-wait", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_wait
    busy = busy_percent(args.interval)
    while busy >= args.below and time.monotonic() < deadline:
        busy = busy_percent(args.interval)
    print(f"{busy:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
