#!/usr/bin/env python3
"""Markdown report of the service benchmarks (scripts/bench_services.sh), from the JSON written by
scripts/bench/services.py.

  services_report.py --results RESULTS.json --command "scripts/bench_services.sh ..." \
      --commit "abc1234 (plus uncommitted changes)" --versions "wrk 4.1.0, nginx 1.22.1" --out OUT.md
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from datetime import datetime
from pathlib import Path

LABELS = {
    "gateway": ("our gateway (ditherd default: services in process)",
                "`GET /api/images/{uuid}` on the gateway port, with the API key"),
    "upload-direct": ("upload service, direct",
                      "`GET /images/{uuid}` on its loopback port, with the service token and "
                      "owner headers"),
    "nginx": ("nginx (`worker_processes auto`) -> upload service",
              "`GET /api/images/{uuid}` on nginx (API key sent, not checked), keep-alive "
              "upstream, service token and owner added by nginx"),
    "nginx-1": ("nginx (`worker_processes 1`) -> upload service",
                "the same, one nginx worker"),
    "api-gateway": ("our `api-gateway` process -> upload service",
                    "`GET /api/images/{uuid}` on the distributed mode's gateway in front of the "
                    "same upload service as nginx, with the API key (checked)"),
    "api-gateway-1": ("our `api-gateway` process (`IO_THREADS=1`) -> upload service",
                      "the same, one event loop"),
    "gateway-http": ("our gateway over loopback HTTP (`GATEWAY_UPSTREAM=http`)",
                     "the same, second ditherd whose gateway reaches the services over TCP"),
}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def rng(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return ""
    return f" ({fmt.format(min(values))}-{fmt.format(max(values))})"


def ms(v):
    if v is None:
        return "-"
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def ratio_cell(values):
    m = med(values)
    return "-" if m is None else f"{m:.2f}x{rng(values)}"


def gateway_section(g: dict, rounds: int) -> tuple[list[str], list[tuple]]:
    out, goals = [], []
    for si, series in enumerate(g["series"]):
        c, names, dur = series["connections"], series["targets"], series["duration_s"]
        key = lambda name: f"c{c}/{name}"  # noqa: E731
        runs = {n: [r["runs"][key(n)] for r in g["rounds"] if key(n) in r["runs"]] for n in names}
        cmd = f"wrk -t{g['wrk_threads']} -c{c} -d{dur}s --latency URL"
        out.append(f"#### `{cmd}`, {rounds} round{'s' if rounds > 1 else ''}\n")
        out.append("| Target | Route | Requests/s | p50 | p99 | Requests/s vs best nginx | "
                   "p99 vs best nginx | Errors |")
        out.append("|---|---|---|---|---|---|---|---|")
        per_round_rps = {n: [x["rps"] for x in runs[n]] for n in names}
        per_round_p99 = {n: [x.get("p99_ms") for x in runs[n]] for n in names}
        # The reference is the best nginx of each round: the configuration that served more.
        nginxes = [n for n in ("nginx", "nginx-1") if n in names]
        best = [max(nginxes, key=lambda n: per_round_rps[n][i])
                for i in range(len(per_round_rps["nginx"]))]
        ref_rps = [per_round_rps[b][i] for i, b in enumerate(best)]
        ref_p99 = [per_round_p99[b][i] for i, b in enumerate(best)]
        ratios = {}
        for n in names:
            rps_r = [a / b for a, b in zip(per_round_rps[n], ref_rps)]
            p99_r = [a / b for a, b in zip(per_round_p99[n], ref_p99) if a is not None and b]
            ratios[n] = (rps_r, p99_r)
            errors = sum(x.get("non_2xx", 0) + x.get("socket_errors", 0) for x in runs[n])
            label, route = LABELS[n]
            wins = sum(1 for b in best if b == n)
            vs = f"best nginx in {wins} of {len(best)}" if wins else ratio_cell(rps_r)
            vs99 = "-" if wins == len(best) else ratio_cell(p99_r)
            out.append(f"| {label} | {route} | {med(per_round_rps[n]):,.0f}"
                       f"{rng(per_round_rps[n], '{:,.0f}')} | "
                       f"{ms(med([x.get('p50_ms') for x in runs[n]]))} | "
                       f"{ms(med(per_round_p99[n]))}{rng(per_round_p99[n], '{:.1f}')} | {vs} | {vs99} | "
                       f"{errors} |")
        out.append("")
        # The api-gateway process, like nginx, in its better configuration of each round (one
        # event loop per core, or IO_THREADS=1).
        if "api-gateway" in ratios and "api-gateway-1" in ratios:
            pair = ("api-gateway", "api-gateway-1")
            better = [max(pair, key=lambda n: per_round_rps[n][i])
                      for i in range(len(per_round_rps["api-gateway"]))]
            ratios["api-gateway-best"] = (
                [ratios[b][0][i] for i, b in enumerate(better)],
                [per_round_p99[b][i] / ref_p99[i] for i, b in enumerate(better)
                 if per_round_p99[b][i] is not None and ref_p99[i]])
        for n, what in (("gateway", "ditherd's gateway (in process)"),
                        ("api-gateway-best" if "api-gateway-best" in ratios else "api-gateway",
                         "the api-gateway process (distributed mode, its better configuration)"),
                        ("gateway-http", "ditherd's gateway over loopback HTTP")):
            if n not in ratios:
                continue
            rps_r, p99_r = ratios[n]
            goals.append((f"{what}: requests/s >= the best nginx's (`-c{c}`)", ">= 1.00x",
                          ratio_cell(rps_r), med(rps_r) >= 1.0))
            if p99_r:
                goals.append((f"{what}: p99 within 10% of the best nginx's (`-c{c}`)",
                              "<= 1.10x", ratio_cell(p99_r), med(p99_r) <= 1.10))

        # CPU: what every party used during the runs of this series (medians over rounds).
        out.append(f"CPU during the `-c{c}` runs, percent of one core (the machine has "
                   f"{g.get('cores', 2) * 100}%), medians over the rounds; *server CPU per request* "
                   "is ditherd's CPU time (plus the proxy's: nginx or api-gateway) divided by the "
                   "requests wrk completed:\n")
        out.append("| Target | wrk | ditherd | proxy | whole machine | others | "
                   "server CPU per request |")
        out.append("|---|---|---|---|---|---|---|")
        for n in names:
            cpu = lambda k: med([x["cpu_percent"].get(k) for x in runs[n]])  # noqa: E731
            per_req = med([x.get("server_cpu_us_per_request") for x in runs[n]])
            proxy_cpu = cpu("proxy")
            out.append(f"| {LABELS[n][0]} | {cpu('wrk'):.0f}% | {cpu('ditherd'):.0f}% | "
                       f"{'-' if proxy_cpu is None else f'{proxy_cpu:.0f}%'} | "
                       f"{cpu('machine'):.0f}% | {cpu('others'):.0f}% | "
                       f"{'-' if per_req is None else f'{per_req:.0f} us'} |")
        out.append("")
        busy = [r.get("busy_before") for r in g["rounds"]]
        if si == 0 and all(b is not None for b in busy):
            out.append("*others* is CPU time no process of this benchmark was charged with: "
                       "other work on the machine, plus some kernel network processing. CPUs "
                       "busy just before each round (after waiting up to the quiet-wait for "
                       "them to settle): " + ", ".join(f"{b:.0f}%" for b in busy) + ".\n")
        if si == 0:
            last = g["rounds"][-1]["runs"]
            lines = []
            for n in names:
                tops = last.get(key(n), {}).get("busiest_threads_percent", {}).get("ditherd")
                if tops:
                    lines.append(f"- {LABELS[n][0]}: " + ", ".join(
                        f"{name.split(' ', 1)[1]} {p:.0f}%" for name, p in tops[:5] if p >= 0.5))
            if lines:
                out.append(f"Busiest ditherd threads during the last round's `-c{c}` runs "
                           "(thread name, percent of one core):\n")
                out += lines
                out.append("")
            conns = []
            for n in names:
                up = last.get(key(n), {}).get("upstream_connections")
                if up:
                    conns.append(f"{LABELS[n][0]}: {up['established']} established, "
                                 f"{up['new_time_wait']} closed since the start")
            if conns:
                out.append(f"The proxy's TCP connections to the upload service half-way through "
                           f"the last round's `-c{c}` runs (*closed*: new TIME-WAIT sockets): "
                           + "; ".join(conns) + ".\n")
    return out, goals


def parse_ts(text):
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def upload_section(u: dict) -> tuple[list[str], list[tuple]]:
    out = []
    seq = u["sequential"]
    n = len(seq)
    total = [1e3 * s["finished_s"] for s in seq]
    post = [1e3 * s["post_s"] for s in seq]
    after = [1e3 * (s["finished_s"] - s["post_s"]) for s in seq]
    server = []
    for s in seq:
        a, b = parse_ts(s.get("created_at")), parse_ts(s.get("updated_at"))
        if a and b:
            server.append(1e3 * (b - a).total_seconds())
    cli_wall = [1e3 * c["wall_s"] for c in u["cli"]]
    cli_cpu = [1e3 * c["cpu_s"] for c in u["cli"]]
    ph = u["photo"]
    out.append(f"{n} uploads, one after the other, of the same {ph['width']}x{ph['height']} "
               f"({ph['width'] * ph['height'] / 1e6:.1f} MP) JPEG ({ph['bytes'] / 1e3:.0f} kB, "
               "ImageMagick `plasma:fractal`, quality 90, made by the script) as a raw "
               "`POST /api/images` through the gateway, each polled with `GET /api/images/{uuid}` "
               f"every {u['poll_interval_s'] * 1e3:.0f} ms until `FINISHED`, timed from the start "
               "of the POST; after each upload, one timed run of "
               f"`{u['cli_command']}` (the automatic dither's options: Floyd-Steinberg, "
               "`levels:2`, PNG, all cores) on the same file. p99 is nearest-rank: with "
               f"{n} samples it is the {'largest' if n <= 100 else '99th percentile'}.\n")
    out.append("| Measure | p50 | p99 | min | max |")
    out.append("|---|---|---|---|---|")
    rows = [
        ("**upload -> FINISHED** (service)", total),
        ("POST answered (receive, sniff, verify the pixels, store original, record)", post),
        ("POST answered -> FINISHED seen (queue, second decode, dither, PNG encode, store, "
         "record; plus up to one poll interval)", after),
    ]
    if server:
        rows.append(("server's own view: record `created_at` -> `updated_at`", server))
    rows += [("**CLI** `dither photo.jpg out.png --channels 2`, wall-clock", cli_wall),
             ("CLI, CPU time (user + system, all threads)", cli_cpu)]
    tiny = [1e3 * c["tiny_wall_s"] for c in u["cli"] if "tiny_wall_s" in c]
    if tiny:
        rows.append(("CLI on a 16x16 JPEG, wall-clock (its fixed cost: process start, libvips "
                     "start-up)", tiny))
    for label, vals in rows:
        out.append(f"| {label} | {ms(statistics.median(vals))} | {ms(pct(vals, 99))} | "
                   f"{ms(min(vals))} | {ms(max(vals))} |")
    out.append("")
    p50, cli = statistics.median(total), statistics.median(cli_wall)
    out.append(f"**Service overhead** = service p50 - CLI median = {p50:.0f} - {cli:.0f} = "
               f"**{p50 - cli:.0f} ms**; service p50 / CLI median = **{p50 / cli:.2f}x**. "
               f"ditherd used {u['sequential_ditherd_cpu_s'] / n * 1e3:.0f} ms of CPU per upload "
               f"(the CLI {statistics.median(cli_cpu):.0f} ms per run). "
               f"Dithered PNG: {u['dither_png_bytes']['service'] or 0:,} bytes from the service, "
               f"{u['dither_png_bytes']['cli']:,} from the CLI.\n")
    busy = u.get("busy_before_percent", {})
    if busy:
        out.append(f"CPUs busy just before (other processes): {busy['sequential']:.0f}% before the "
                   f"sequential uploads, {busy['sustained']:.0f}% before the sustained run.\n")
    s = u["sustained"]
    per_min = 60 * s["uploads"] / s["all_finished_s"]
    out.append(f"**Sustained**: {s['uploads']} uploads from {s['clients']} concurrent clients "
               f"(each uploading back to back): all answered after {s['all_posted_s']:.1f} s, all "
               f"`FINISHED` after {s['all_finished_s']:.1f} s: **{per_min:.0f} images per minute** "
               f"(ditherd CPU {s['ditherd_cpu_s'] / s['uploads'] * 1e3:.0f} ms per image). "
               f"For comparison, the CLI back to back at its median: {60e3 / cli:.0f} per "
               "minute.\n")
    st = u.get("stages_ms")
    if st:
        up, di, c = st["upload"], st["dither"], st["cli"]
        out.append("**Where the time goes**, milliseconds, medians over the sequential uploads: "
                   "the service's stages as ditherd logs them (an upload when it is stored, a "
                   "dither when it finishes), the CLI's from `--timings`. *queued* is the dither "
                   "row's age when a worker took it (from the upload's commit: the outbox, the "
                   "message, the queue); decode and dither overlap on two threads (*waited* is "
                   "the dither waiting for decoded rows).\n")
        out.append("| Stage | service | CLI |")
        out.append("|---|---|---|")
        rows = [("upload: verify the pixels", up["verify"], None),
                ("upload: store the original", up["store_original"], None),
                ("upload: record and message", up["record_upload"], None),
                ("dither: queued", di["queued"], None),
                ("read the original", di["read"], c["read"]),
                ("decode", di["decode"], c["decode"]),
                ("dither (after its wait for rows)", di["dither"], c["dither"]),
                ("waited for decoded rows", di["waited"], c["waited"]),
                ("encode", di["encode"], c["encode"]),
                ("store the result / write the file", di["store"], c["write"]),
                ("record and message", di["record"], None),
                ("dither: from taken to finished", di["total"], None)]
        for label, a, b in rows:
            out.append(f"| {label} | {a:.1f} | {'-' if b is None else f'{b:.1f}'} |")
        out.append("")
        out.append("![Where the time goes, 4 MP](img/service-stages.svg)\n")
    return out, []


def render(r: dict, command: str, commit: str, versions: str) -> str:
    out = []
    m = r["machine"]
    r["gateway"]["cores"] = m["cpus"]
    out.append(f"Produced by `{command}` on {r['date']}, {commit}; {versions}. "
               f"Machine: {m['cpus']} cores ({m['model']}, Linux {m['kernel']}), **shared by "
               "wrk, nginx and ditherd** and by whatever else runs on the machine (nothing is "
               "pinned): every requests/s figure is what client and server reach together on "
               f"{m['cpus']} cores, and a server that needs less CPU per request leaves more to "
               "wrk; *server CPU per request* is the steadier comparison. ditherd runs with its defaults "
               f"(`IO_THREADS={r.get('ditherd_config', {}).get('IO_THREADS', '0')}` = one per "
               f"core, `DITHER_WORKERS={r.get('ditherd_config', {}).get('DITHER_WORKERS', '1')}`, "
               f"`LOG_LEVEL={r.get('ditherd_config', {}).get('LOG_LEVEL', 'info')}`) on a fresh "
               "data directory (its own free ports, its own `SERVICE_TOKEN`, the other secrets "
               "generated); two nginx, `worker_processes auto` and `worker_processes 1`, each "
               "with `access_log off`, an `upstream` block with `keepalive 64`, "
               "`proxy_http_version 1.1` and `Connection \"\"`; the ratios are against the "
               "better of the two in each round."
               + (" **Quick run** (`--quick`): one round, short durations; indicative only."
                  if r.get("quick") else "") + "\n")

    g = r["gateway"]
    out.append("### Gateway: `GET` of one image record\n")
    out.append("All targets return the same record (" + ", ".join(
        f"{LABELS[k][0]}: {v} bytes" for k, v in g["body_bytes"].items()) + ", the upload "
               "service's answer with its signed links behind all of them). "
               "Authentication (docs/SECURITY.md): every request carries an API key made for the "
               "benchmark with `dither-keys`, which **the gateway authenticates on every "
               "request** (HMAC-SHA256 of the key, found in its cache of checked keys, which it "
               "believes while the SQLite store's revocation stamp for keys stays; the first "
               "request looked the key up in SQLite and compared in constant time); nginx "
               "checks "
               "nothing: it drops the key and adds the headers the gateway adds on the way to "
               "the upload service (`X-Service-Token` and "
               "`X-Dither-Owner` with the key's owner, fixed in its configuration), as does the "
               "direct target's client, so the upload service does the same work behind all of "
               "them and the gateway rows include the cost of authentication. Same wrk "
               "settings for all; within a round the targets run one after the other (in an "
               "order rotated from round to round); figures are medians over the rounds with "
               "the range in brackets, and each ratio is taken within a round, then the median. "
               "The `api-gateway` row is the distributed mode's gateway, a process of its own in "
               "front of the same upload service as nginx, reached over loopback TCP with its "
               "keep-alive pool: the proxy-to-proxy comparison with nginx. It shares the first "
               "ditherd's data directory (secrets, the SQLite store of API keys) and caches "
               "authentication for 5 s (`AUTH_CACHE_SECONDS`, the default of a gateway whose "
               "store is PostgreSQL, as in the distributed mode). The `GATEWAY_UPSTREAM=http` row "
               "is a second ditherd, idle otherwise, whose gateway reaches its own services over "
               "loopback TCP: one process, one event loop for gateway and services. The default "
               "row's gateway calls the services' routers in process (same routes, validation "
               "and limits, no TCP hop), which is what `scripts/run.sh` starts.\n")
    lines, goals = gateway_section(g, r["rounds"])
    up_lines, _ = upload_section(r["uploads"])
    u = r["uploads"]
    seq_total = statistics.median(1e3 * x["finished_s"] for x in u["sequential"])
    cli_wall = statistics.median(1e3 * c["wall_s"] for c in u["cli"])
    goals.append(("upload -> FINISHED p50 at most 1.15x the CLI's whole process (same file)",
                  "<= 1.15x", f"{seq_total / cli_wall:.2f}x", seq_total / cli_wall <= 1.15))
    b = r.get("baseline")
    if b:
        per_min = {k: [60 * x["uploads"] / x["all_finished_s"] for x in v]
                   for k, v in b["runs"].items()}
        ratio = [a / c for a, c in zip(per_min["ours"], per_min["baseline"])]
        goals.append((f"sustained images per minute vs {b['name']} (same run, alternating)",
                      ">= 2.50x", ratio_cell(ratio), med(ratio) >= 2.5))
        up_lines.append(
            f"**Against {b['name']}**, the same sustained run alternating on a ditherd built from "
            f"that commit (ours, {b['name']}, ours, {b['name']}): ours " +
            ", ".join(f"{x:.0f}" for x in per_min["ours"]) + f" images per minute, {b['name']} " +
            ", ".join(f"{x:.0f}" for x in per_min["baseline"]) +
            f": **{med(ratio):.2f}x** (ditherd CPU per image: ours " +
            ", ".join(f"{1e3 * x['ditherd_cpu_s'] / x['uploads']:.0f}" for x in b["runs"]["ours"]) +
            f" ms, {b['name']} " +
            ", ".join(f"{1e3 * x['ditherd_cpu_s'] / x['uploads']:.0f}"
                      for x in b["runs"]["baseline"]) + " ms).\n")

    out.append("| Goal (issue) | Required | Measured | Status |")
    out.append("|---|---|---|---|")
    for name, req, measured, ok in goals:
        out.append(f"| {name} | {req} | {measured} | {'met' if ok else '**NOT met**'} |")
    out.append("")
    out += lines
    out.append("### Upload to FINISHED, 4 MP JPEG\n")
    out += up_lines
    out.append("Where the time goes: the upload service verifies every pixel (in *POST "
               "answered*, with receiving and storing the original; a JPEG is read at 1/8 scale, "
               "docs/SERVICES.md), and the dithering service decodes it in full (in *POST "
               "answered -> FINISHED*, with the dither, the indexed PNG encode and the store). "
               "The CLI does one decode, the dither and the same PNG encode, plus its fixed cost "
               "(the 16x16 row), which a running service does not pay.\n")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--commit", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = render(json.loads(args.results.read_text()), args.command, args.commit, args.versions)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
