#!/usr/bin/env python3
"""CPU quietness on a shared machine, for scripts/bench.sh.

  quiet.py wait [--below 15] [--max-wait 30]
      Waits (up to --max-wait seconds) until the CPUs are nearly idle, so a benchmark round does
      not start while something else (a build, a test run) is using the shared cores. Prints the
      busy share it last saw, in percent; exits 0 either way.
  quiet.py run -- COMMAND ARGS...
      Runs COMMAND (standard streams passed through) and then prints to stderr, and to --record
      if given, the share of the machine's CPU time that *other* processes used meanwhile (all
      CPU time spent, less COMMAND's own). Exits with COMMAND's status.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time


def cpu_times() -> tuple[int, int]:
    """(total, idle) jiffies over all CPUs, idle counting iowait."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]


def busy_percent(interval: float) -> float:
    t0, i0 = cpu_times()
    time.sleep(interval)
    t1, i1 = cpu_times()
    return 100.0 * (1.0 - (i1 - i0) / max(1, t1 - t0))


def wait_until_quiet(below: float, max_wait: float, interval: float = 1.0) -> float:
    """Waits up to `max_wait` seconds for the CPUs to be less than `below` percent busy; returns
    the busy share it last saw."""
    deadline = time.monotonic() + max_wait
    busy = busy_percent(interval)
    while busy >= below and time.monotonic() < deadline:
        busy = busy_percent(interval)
    return busy


def wait(args) -> int:
    print(f"{wait_until_quiet(args.below, args.max_wait, args.interval):.0f}")
    return 0


def run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("quiet.py run: no command")
    hz = os.sysconf("SC_CLK_TCK")
    t0, i0 = cpu_times()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    status = subprocess.run(command).returncode
    t1, i1 = cpu_times()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    total = (t1 - t0) / hz
    busy = ((t1 - t0) - (i1 - i0)) / hz
    others = 100.0 * max(0.0, busy - ours) / total if total > 0 else 0.0
    print(f"quiet.py: other processes used {others:.0f}% of the CPUs meanwhile", file=sys.stderr)
    if args.record:
        with open(args.record, "w") as f:
            f.write(f"{others:.0f}\n")
    return status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--below", type=float, default=15.0, help="busy percent to wait for")
    w.add_argument("--max-wait", type=float, default=30.0)
    w.add_argument("--interval", type=float, default=1.0)
    r = sub.add_parser("run")
    r.add_argument("--record", help="file to write the others' share (percent) to")
    r.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    return wait(args) if args.mode == "wait" else run(args)


if __name__ == "__main__":
    sys.exit(main())
