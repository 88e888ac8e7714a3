#!/usr/bin/env python3
"""SVG charts of a load test (scripts/load.sh): per mode, latency p50/p99 per window (POST and
upload -> FINISHED) above, RSS of each process over time below.

  load_chart.py --results results.json --out-dir DIR    # writes DIR/load-<mode>.svg

Needs matplotlib (scripts/load.sh runs it with the benchmarks' venv, scripts/bench/venv.sh). Small files on
purpose: text stays text (svg.fonttype none), RSS is drawn every 5 s, no metadata date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

RSS_STEP_S = 5


def chart(name: str, res: dict, mode: dict, path: Path) -> None:
    a = mode["analysis"]
    d = res["duration_s"]
    share = res["windows_share"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.2, 5.4), sharex=True)
    mid = [(w["from_s"] + w["to_s"]) / 2 for w in a["windows"]]

    def series(key: str) -> list:
        return [w[key] if w[key] is not None else float("nan") for w in a["windows"]]

    top.plot(mid, series("finished_p99_ms"), "o-", color="#c0392b", ms=3, lw=1.4,
             label="upload -> FINISHED p99")
    top.plot(mid, series("finished_p50_ms"), "o-", color="#e67e22", ms=3, lw=1.4,
             label="upload -> FINISHED p50")
    top.plot(mid, series("post_p99_ms"), "s--", color="#2c3e50", ms=3, lw=1.2, label="POST p99")
    top.plot(mid, series("post_p50_ms"), "s--", color="#7f8c8d", ms=3, lw=1.2, label="POST p50")
    top.set_ylabel(f"latency, ms (per {res['window_s']} s)")
    top.set_yscale("log")
    top.set_ylim(bottom=1)
    top.grid(True, which="major", alpha=0.3)
    top.legend(fontsize=7, ncol=2, loc="upper left", frameon=False)
    top.set_title(f"{name}: {mode['rate']['per_second']:.2f} uploads/s for {d} s", fontsize=10)

    colors = ["#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#7f7f7f"]
    samples = [s for s in a["rss_series"] if -RSS_STEP_S <= s["t"] <= d + RSS_STEP_S]
    for k, proc in enumerate(a["rss"]):
        pts = [(s["t"], s["rss_kb"][proc] / 1024) for s in samples
               if s["rss_kb"].get(proc) is not None]
        thin, last = [], None
        for t, v in pts:
            if last is None or t - last >= RSS_STEP_S - 0.01:
                thin.append((round(t, 1), round(v, 1)))
                last = t
        if thin:
            bottom.plot([p[0] for p in thin], [p[1] for p in thin], "-",
                        color=colors[k % len(colors)], lw=1.4, label=proc)
    for frac, label in ((share["warmup"], "end of warm-up"),
                        (share["after_warmup_end"], None), (1 - share["last"], "last 30%")):
        bottom.axvline(frac * d, color="#999999", lw=0.8, ls=":")
        if label:
            bottom.text(frac * d, 1.0, f" {label}", transform=bottom.get_xaxis_transform(),
                        fontsize=7, va="top", color="#555555")
    bottom.set_ylabel("RSS, MB")
    bottom.set_xlabel("seconds since the attack started")
    top_rss = max((s["rss_kb"][p] or 0) for s in samples for p in a["rss"]) / 1024 if samples else 1
    bottom.set_ylim(0, top_rss * 1.3)
    bottom.set_xlim(0, d)
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize=7, ncol=3, loc="upper right", bbox_to_anchor=(1.0, 0.93),
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args()
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "load"  # stable ids: a rerun changes only the data
    res = json.loads(args.results.read_text())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, mode in res["modes"].items():
        if "error" in mode:
            print(f"load_chart: {name} did not run to its end: no chart", file=sys.stderr)
            continue
        path = args.out_dir / f"load-{name}.svg"
        chart(name, res, mode, path)
        print(f"load_chart: {path} ({path.stat().st_size // 1024} kB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
