#!/usr/bin/env python3
"""SVG charts for docs/BENCHMARKS.md from the benchmarks' JSON (needs matplotlib: run it with the
benchmarks' venv, scripts/bench/venv.sh).

  charts.py cli-stages --json build/bench-cli-run/stages.json --out docs/img/cli-stages.svg
  charts.py engine --json build/bench-results.json --out docs/img/engine.svg
  charts.py service-stages --json build/bench-services-run/results.json \
      --out docs/img/service-stages.svg

cli-stages: where the command line's time goes, per case (stacked: read, decode, dither, encode,
write, other), beside Pillow's whole job and Pillow decoding the photo alone (the floor).
engine: megapixels per second per algorithm and palette, ours beside Pillow and ImageMagick.
service-stages: upload to FINISHED of the services benchmark's photo, stage by stage, beside the
command line's whole job on the same file.

Small files on purpose: text stays text (svg.fonttype none), no metadata date.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"
plt.rcParams["svg.hashsalt"] = "dither-bench"  # stable ids: a rerun changes only what changed

STAGE_COLOURS = {"read": "#95a5a6", "decode": "#2980b9", "dither": "#27ae60",
                 "encode": "#e67e22", "write": "#8e44ad", "other": "#bdc3c7"}


def save(fig, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, format="svg", metadata={"Date": None})
    plt.close(fig)


def stacked_bars(ax, rows: list, y: list, colours: dict, total) -> None:
    """One horizontal bar per row (label, [(stage, value), ...]) at height y, its stages stacked
    left to right in `colours`, each stage named once in the legend; total(sum) labels its end."""
    seen = set()
    for yi, (_label, parts) in zip(y, rows):
        left = 0.0
        for stage, value in parts:
            ax.barh(yi, value, left=left, color=colours[stage], height=0.6,
                    label=stage if stage not in seen else None)
            seen.add(stage)
            left += value
        ax.text(left, yi, total(left), va="center", fontsize=8)


def decode_part(t: dict) -> float:
    """The decode+dither phase runs on two threads (the dither waits for rows; the decoder waits
    when it is too far ahead): its wall time, less the dither's own time, drawn as "decode"."""
    return max(t["decode"], t["waited"] + t["dither"]) - t["dither"]


def cli_stages(data: dict, out: Path) -> None:
    cases = data["cases"]
    names = list(cases)
    labels = [n.replace(" -> ", "\n-> ") for n in names]
    fig, ax = plt.subplots(figsize=(8.0, 0.9 * (len(names) + 2) + 1.0))
    rows = []
    for name, label in zip(names, labels):
        t = cases[name]
        # Decode and dither overlap: the bar shows their phase once (see decode_part).
        rows.append((label, [("read", t["read"]), ("decode", decode_part(t)),
                             ("dither", t["dither"]), ("encode", t["encode"]),
                             ("write", t["write"]), ("other", t["other"])]))
    y = list(range(len(rows) + 2))[::-1]
    stacked_bars(ax, rows, y, STAGE_COLOURS, lambda t: f"  {t:.2f} s")
    refs = [("Pillow, whole job", data.get("pillow_whole")),
            ("Pillow, decode alone\n(the floor)", data.get("pillow_decode"))]
    for yi, (label, value) in zip(y[len(rows):], refs):
        if value:
            ax.barh(yi, value, color="#34495e", height=0.6, alpha=0.55)
            ax.text(value, yi, f"  {value:.2f} s", va="center", fontsize=8)
    ax.set_yticks(y, [label for label, _ in rows] + [label for label, _ in refs], fontsize=8)
    ax.set_xlabel("seconds, whole process (median)")
    ax.set_title(f"Command line, where the time goes: {data.get('photo', '')}\n"
                 f"{data.get('machine', '')}", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.45, -0.12), fontsize=8, ncol=6,
              frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    save(fig, out)


def service_stages(data: dict, out: Path) -> None:
    st = data["uploads"]["stages_ms"]
    up, di, cli = st["upload"], st["dither"], st["cli"]
    photo = data["uploads"]["photo"]
    colours = {"verify": "#16a085", "store": "#8e44ad", "record": "#7f8c8d", "queued": "#f1c40f",
               "read": "#95a5a6", "decode": "#2980b9", "dither": "#27ae60", "encode": "#e67e22"}
    rows = [
        ("service: upload\n(POST answered)", [("verify", up["verify"]),
                                               ("store", up["store_original"]),
                                               ("record", up["record_upload"])]),
        ("service: dither\n(queued, then a worker)", [
            ("queued", di["queued"]), ("read", di["read"]),
            ("decode", decode_part(di)), ("dither", di["dither"]),
            ("encode", di["encode"]), ("store", di["store"]), ("record", di["record"])]),
        ("command line\n(the same job)", [
            ("read", cli["read"]), ("decode", decode_part(cli)),
            ("dither", cli["dither"]), ("encode", cli["encode"]), ("store", cli["write"])]),
    ]
    fig, ax = plt.subplots(figsize=(8.0, 3.2))
    stacked_bars(ax, rows, list(range(len(rows) - 1, -1, -1)), colours, lambda t: f"  {t:.0f} ms")
    ax.set_yticks(range(len(rows) - 1, -1, -1), [r[0] for r in rows], fontsize=8)
    ax.set_xlabel("milliseconds (medians)")
    ax.set_title(f"Where the time goes: a {photo['width']}x{photo['height']} JPEG, "
                 f"Floyd-Steinberg levels:2 to PNG\n{data['machine']['model']}", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.45, -0.22), fontsize=7, ncol=8,
              frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    save(fig, out)


def engine(data: dict, out: Path) -> None:
    """data: {"machine": ..., "rows": [{"case": "floyd-steinberg / levels:2", "ours": MP/s,
    "Pillow": MP/s or null, "ImageMagick": MP/s or null}, ...]}"""
    rows = data["rows"]
    tools = [("ours", "#27ae60"), ("Pillow", "#2980b9"), ("ImageMagick", "#e67e22")]
    fig, ax = plt.subplots(figsize=(8.0, 0.55 * len(rows) + 1.4))
    height = 0.8 / len(tools)
    for k, (tool, colour) in enumerate(tools):
        ys, xs = [], []
        for i, row in enumerate(rows):
            if row.get(tool):
                ys.append(len(rows) - 1 - i + (1 - k) * height)
                xs.append(row[tool])
        ax.barh(ys, xs, height=height, color=colour, label=tool)
        for yv, xv in zip(ys, xs):
            ax.text(xv * 1.05, yv, f"{xv:.0f}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_yticks([len(rows) - 1 - i for i in range(len(rows))], [r["case"] for r in rows],
                  fontsize=8)
    ax.set_xlabel("megapixels per second, one thread (log scale; higher is faster)")
    ax.set_title(f"Engine speed, same image and palette\n{data.get('machine', '')}", fontsize=9)
    ax.legend(loc="upper right", fontsize=8, frameon=True)
    ax.spines[["top", "right"]].set_visible(False)
    save(fig, out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["cli-stages", "engine", "service-stages"])
    ap.add_argument("--json", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    data = json.loads(a.json.read_text())
    {"cli-stages": cli_stages, "engine": engine, "service-stages": service_stages}[a.kind](
        data, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
