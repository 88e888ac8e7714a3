#!/usr/bin/env python3
"""Renders scripts/bench/load.py's results as markdown and judges the goals (scripts/load.sh).

  load_report.py --results results.json --command CMD --commit TEXT --versions TEXT --out FILE
                 [--charts-dir img]

Prints the report, writes it to --out, and exits 1 when a judged goal is missed (or a mode did
not run to its end). Goals, per mode: every upload accepted (201) and the rate kept, every
accepted upload FINISHED with exactly one automatic dither FINISHED, no duplicates (nothing
listed twice, no two automatic dithers for one upload, nothing stored that was not answered 201;
in the API's lists and in the store itself), every process up to the end, and, except with
--smoke, RSS growth of each process at most 10 % (max over the last 30 % of the attack against
max over 20 %-50 %). Latency is reported, not judged. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LABEL = {"embedded": "embedded (`ditherd`)", "distributed": "distributed (2 workers)"}


def ms(v) -> str:
    if v is None:
        return "-"
    if v >= 10000:
        return f"{v / 1000:.1f} s"
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def cpu_cell(c) -> str:
    if not c:
        return "-"
    return f"{100 * c['mode']:.0f}% / {100 * c['vegeta']:.0f}% / {100 * c['others']:.0f}%"


def mb(kb) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f}"


def pct(v, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%"


def few(items: list, n: int = 3) -> str:
    if not items:
        return ""
    shown = ", ".join(str(i) for i in items[:n])
    return f" ({shown}{', ...' if len(items) > n else ''})"


def goals(res: dict, mode: dict) -> list[tuple[str, str, str, str]]:
    """(goal, required, measured, status) for one mode."""
    smoke = res["smoke"]
    if "error" in mode:
        return [("the run itself", "to its end", mode["error"][:300], "not met")]
    a, c = mode["analysis"], mode["checks"]
    planned = mode["rate"]["per_second"] * res["duration_s"]
    out = []
    ok = a["sent"] > 0 and a["accepted"] >= 0.99 * a["sent"]
    refused = {k: v for k, v in a["codes"].items() if k != "201"}
    out.append(("uploads accepted (201)", ">= 99% of those sent",
                f"{pct(a['accepted'] / a['sent'] if a['sent'] else None)} "
                f"({a['accepted']:,} of {a['sent']:,})"
                + (f"; refused: " + ", ".join(f"{k}: {v}" for k, v in refused.items())
                   if refused else ""),
                "met" if ok else "not met"))
    ok = a["sent"] >= 0.95 * planned
    out.append(("the rate kept (vegeta)", f">= 95% of {planned:,.0f} planned",
                f"{a['sent']:,} sent ({a['achieved_rate']:.2f}/s)", "met" if ok else "not met"))
    store = c["store"]
    lost = (c["not_listed"] + c["not_finished"] + c["without_auto_dither"] +
            c["auto_dither_not_finished"])
    store_ok = (store["images"]["finished"] == store["images"]["rows"] == c["accepted"] +
                len(c["stored_not_accepted"]) and
                store["dithers"]["finished"] == store["dithers"]["rows"])
    ok = not lost and not mode["drain"]["timed_out"] and store_ok and c["accepted"] > 0
    detail = (f"{c['accepted'] - len(set(c['not_listed']) | set(x.split()[0] for x in c['not_finished'])):,}"
              f" of {c['accepted']:,} FINISHED")
    if c["not_listed"]:
        detail += f"; not listed: {len(c['not_listed'])}{few(c['not_listed'])}"
    if c["not_finished"]:
        detail += f"; not FINISHED: {len(c['not_finished'])}{few(c['not_finished'])}"
    if c["without_auto_dither"]:
        detail += (f"; no automatic dither: {len(c['without_auto_dither'])}"
                   f"{few(c['without_auto_dither'])}")
    if c["auto_dither_not_finished"]:
        detail += (f"; automatic dither not FINISHED: {len(c['auto_dither_not_finished'])}"
                   f"{few(c['auto_dither_not_finished'])}")
    if mode["drain"]["timed_out"]:
        detail += f"; still waiting after {mode['drain']['waited_s']:.0f} s"
    detail += (f"; store: {store['images']['finished']:,} of {store['images']['rows']:,} image "
               f"rows, {store['dithers']['finished']:,} of {store['dithers']['rows']:,} dither "
               f"rows FINISHED")
    out.append(("every accepted upload FINISHED, with its automatic dither FINISHED",
                "all", detail, "met" if ok else "not met"))
    dup_items = {
        "uuids in two 201 answers": c["uuids_answered_twice"],
        "images listed twice": c["images_listed_twice"],
        "dither ids listed twice": c["dither_ids_listed_twice"],
        "uploads with two automatic dithers": c["two_auto_dithers"],
        "images stored but not answered 201": c["stored_not_accepted"],
        "image uuids twice in the store": store["images"]["uuids_twice"],
        "dither rows of one upload in the store": store["dithers"]["uuids_twice"],
    }
    extra_dithers = store["dithers"]["rows"] - store["dithers"]["uuids"]
    n_dups = sum(len(v) for v in dup_items.values()) + c["dithers_not_auto"] + \
        (1 if extra_dithers else 0) + c["accepted_without_uuid"]
    parts = [f"{k}: {len(v)}{few(v)}" for k, v in dup_items.items() if v]
    if c["dithers_not_auto"]:
        parts.append(f"dithers not automatic: {c['dithers_not_auto']}")
    if extra_dithers:
        parts.append(f"{extra_dithers} dither rows more than uploads with dithers in the store")
    if c["accepted_without_uuid"]:
        parts.append(f"201 answers without a uuid: {c['accepted_without_uuid']}")
    detail = "; ".join(parts)
    if n_dups == 0:
        detail = (f"none: {c['images_listed']:,} images and {c['dithers_listed']:,} dithers "
                  f"listed, {store['images']['uuids']:,} distinct image uuids and "
                  f"{store['dithers']['rows']:,} dither rows for {store['dithers']['uuids']:,} "
                  f"uploads in the store")
    out.append(("duplicates (API lists and the store)", "0", detail,
                "met" if n_dups == 0 else "not met"))
    dead = [n for n, r in a["rss"].items() if not r["alive_at_end"]]
    out.append(("every process of the mode up to the end", "all",
                "all" if not dead else "exited: " + ", ".join(dead),
                "met" if not dead else "not met"))
    growths = {n: r["growth"] for n, r in a["rss"].items()}
    worst = max(growths.items(), key=lambda kv: -1e9 if kv[1] is None else kv[1])
    measured = ", ".join(f"{n} {pct(g, True)}" for n, g in growths.items())
    if smoke:
        status = "not judged (smoke)"
    elif any(g is None for g in growths.values()):
        status = "not met"
        measured += " (too few samples)"
    else:
        status = "met" if worst[1] <= res["rss_growth_goal"] else "not met"
    out.append(("RSS growth, each process: max over the last 30% vs max over 20-50%",
                f"<= {100 * res['rss_growth_goal']:.0f}%", measured, status))
    return out


def render(res: dict, command: str, commit: str, versions: str, charts_dir: str | None
           ) -> tuple[str, bool]:
    lines: list[str] = []
    w = lines.append
    m = res["machine"]
    modes = res["modes"]
    w(f"Produced by `{command}` on {res['date']}, {commit}; {versions}. Machine: {m['cpus']} "
      f"cores ({m['model']}, Linux {m['kernel']}) **shared by everything**: vegeta, the servers "
      f"and, in the distributed mode, PostgreSQL, Kafka and versitygw (nothing is pinned)."
      + (" **Smoke run**: a few seconds per mode at a tiny rate; it judges correctness (every "
         "accepted upload FINISHED, no duplicates), not memory or latency." if res["smoke"] else ""))
    w("")
    all_goals = {name: goals(res, mode) for name, mode in modes.items()}
    failed = any(g[3] == "not met" for gs in all_goals.values() for g in gs)
    w("| Mode | Goal | Required | Measured | Status |")
    w("|---|---|---|---|---|")
    for name, gs in all_goals.items():
        for g in gs:
            status = f"**{g[3]}**" if g[3] == "not met" else g[3]
            w(f"| {name} | {g[0]} | {g[1]} | {g[2]} | {status} |")
    w("")
    ph = res["photos"]
    w(f"**Load**: vegeta `attack` (constant rate, open loop: a slow answer does not "
      f"slow the sending down) POSTs `/api/images` as `multipart/form-data` with an API key, "
      f"cycling through {ph['count']} distinct {ph['width']}x{ph['height']} JPEGs (ImageMagick "
      f"`plasma:fractal`, quality 90, {min(ph['bytes']) // 1000}-{max(ph['bytes']) // 1000} kB), "
      f"for {res['duration_s']} s per mode; each upload is dithered automatically "
      f"(`AUTO_DITHER=on`, Floyd-Steinberg, 8 colours, the defaults). Connections are kept "
      f"alive, from 127.0.0.1 to 127.0.0.1. The servers run their defaults except "
      + ", ".join(f"`{k}={v}`" for k, v in res["server_env"].items())
      + " (one owner sends the whole load: the per-owner budgets and quotas of docs/SECURITY.md "
      "would refuse most of it; the global `MAX_PENDING_DITHERS` stays). *Rate*: unless "
      "`LOAD_RATE` is given, 80% of the capacity a probe measured just before on the same "
      "server (uploads for a few seconds from 2 clients, never more than 8 not yet `FINISHED`, "
      "so that the dithering workers always have work; uploads per second from the first POST "
      "to the last `FINISHED`): vegeta does not slow down when the server does, so at 100% the "
      "dither queue grows with the least disturbance of the shared machine and the latency "
      "measures the queue, not the system. After the attack the script waits (at most "
      f"{res['drain_timeout_s']:.0f} s) until every accepted upload is `FINISHED`, then lists "
      "the load owner's images and dithers and counts its rows in the store.")
    w("")
    w(f"*POST* latency is vegeta's (request sent to answer read); *upload -> FINISHED* runs from "
      f"the request sent to the image record's `updated_at` (the server's clock, same machine). "
      f"Percentiles are nearest-rank, per {res['window_s']} s window of sending. *Queue*: "
      f"accepted uploads not yet `FINISHED`, the most at any half second of the window. *CPU*: "
      f"shares of the whole machine's CPU time (100% = every core) over the window: the mode's "
      f"processes (in the distributed mode with PostgreSQL, Kafka and versitygw), vegeta, and "
      f"everything else on the shared machine. RSS is "
      f"`VmRSS` sampled every second; warm-up is the first "
      f"{100 * res['windows_share']['warmup']:.0f}% of the attack; growth compares the maximum "
      f"over the last {100 * res['windows_share']['last']:.0f}% with the maximum over "
      f"{100 * res['windows_share']['warmup']:.0f}%-"
      f"{100 * res['windows_share']['after_warmup_end']:.0f}%.")
    for name, mode in modes.items():
        w("")
        w(f"### {LABEL.get(name, name).capitalize()}")
        w("")
        if "error" in mode:
            w(f"The run failed: {mode['error']}")
            continue
        a, p, r = mode["analysis"], mode["probe"], mode["rate"]
        how = {"probe": f"{100 * r['share_of_probe']:.0f}% of the probe's capacity",
               "LOAD_RATE": "`LOAD_RATE`", "smoke": "the smoke run's rate"}[r["chosen_by"]]
        busy = a["machine_busy_percent"]
        w(f"Capacity probe: {p['seconds']:.0f} s of uploads from {p['clients']} clients (at most "
          f"{p['in_flight']} not yet `FINISHED`), {p['uploads']} uploads, all `FINISHED` after "
          f"{p['all_finished_s']:.1f} s: **{p['per_second']:.2f} uploads/s** (CPUs busy before: "
          f"{p['busy_before']:.0f}%). Rate: "
          f"**{r['per_second']:.2f} uploads/s** ({how}; vegeta `-rate={r['per_minute']}/1m`, "
          f"`-workers={mode['vegeta']['workers']}`, `-max-workers={mode['vegeta']['max_workers']}`, "
          f"`-timeout={mode['vegeta']['timeout_s']}s`; {mode['vegeta']['body_bytes']:,} bytes a "
          f"request). Sent {a['sent']:,}, accepted {a['accepted']:,}; answers: "
          + ", ".join(f"{k}: {v:,}" for k, v in a["codes"].items())
          + f". CPUs busy before: {mode['busy_before']:.0f}%; during the attack: "
          f"{busy:.0f}% of the machine busy ({cpu_cell(a.get('cpu'))}: the mode's processes"
          + (" with PostgreSQL, Kafka and versitygw" if name == "distributed" else "")
          + ", vegeta, everything else).")
        w("")
        f_, po = a["finished_ms"], a["post_ms"]
        lf = a["last_finished_after_last_sent_s"]
        w(f"Overall: POST p50 **{ms(po['p50'])}**, p99 **{ms(po['p99'])}** (max {ms(po['max'])}); "
          f"upload -> FINISHED p50 **{ms(f_['p50'])}**, p99 **{ms(f_['p99'])}** "
          f"(max {ms(f_['max'])}). The last upload was `FINISHED` "
          + (f"{lf:.1f} s after the last was sent" if lf is not None else "-")
          + f" (the script's wait: {mode['drain']['waited_s']:.1f} s).")
        w("")
        w("| Window | sent | 201 | POST p50 | POST p99 | upload -> FINISHED p50 | p99 | queue (max) "
          "| CPU: mode / vegeta / others |")
        w("|---|---|---|---|---|---|---|---|---|")
        for win in a["windows"]:
            w(f"| {win['from_s']:.0f}-{win['to_s']:.0f} s | {win['sent']} | {win['accepted']} | "
              f"{ms(win['post_p50_ms'])} | {ms(win['post_p99_ms'])} | "
              f"{ms(win['finished_p50_ms'])} | {ms(win['finished_p99_ms'])} | {win['queue_max']} "
              f"| {cpu_cell(win.get('cpu'))} |")
        w("")
        d = res["duration_s"]
        w("RSS in MB (growth: last 30% against 20%-50%) and CPU in % of one core over the attack:")
        w("")
        w("| Process | before | warm-up max | 20-50% max | last 30% max | growth | at the end | "
          "after the wait | CPU |")
        w("|---|---|---|---|---|---|---|---|---|")
        for n, x in a["rss"].items():
            cpu = "-" if x["cpu_percent"] is None else f"{x['cpu_percent']:.0f}%"
            w(f"| {n} | {mb(x['before_kb'])} | {mb(x['warmup_max_kb'])} | "
              f"{mb(x['after_warmup_max_kb'])} | {mb(x['last_max_kb'])} | "
              f"{pct(x['growth'], True)} | {mb(x['end_kb'])} | {mb(x['after_drain_kb'])} | {cpu} |")
        w("")
        w("RSS over time, MB (the most in each tenth of the attack):")
        w("")
        nd = 0 if d >= 50 else 1
        heads = [f"{k * d / 10:.{nd}f}-{(k + 1) * d / 10:.{nd}f} s" for k in range(10)]
        w("| Process | " + " | ".join(heads) + " |")
        w("|---|" + "---|" * 10)
        for n, x in a["rss"].items():
            w(f"| {n} | " + " | ".join(mb(v) for v in x["tenths_max_kb"]) + " |")
        if charts_dir:
            w("")
            w(f"![{name}: latency and RSS over time]({charts_dir}/load-{name}.svg)")
        cfg = mode.get("config", {})
        keys = ["AUTO_DITHER", "AUTO_DITHER_OPTIONS", "DITHER_WORKERS", "IO_THREADS",
                "BLOCKING_THREADS", "MAX_PENDING_DITHERS"]
        shown = [f"`{k}={cfg[k]}`" for k in keys if k in cfg]
        if shown:
            w("")
            w("As the servers logged their settings: " + ", ".join(shown) + ".")
    return "\n".join(lines) + "\n", failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--versions", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--charts-dir", help="the SVG charts' directory, relative to the document")
    args = ap.parse_args()
    res = json.loads(args.results.read_text())
    if not res["modes"]:
        print("load_report: no mode ran", file=sys.stderr)
        return 1
    text, failed = render(res, args.command, args.commit, args.versions, args.charts_dir)
    args.out.write_text(text)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
