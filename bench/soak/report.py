#!/usr/bin/env python3
"""Judges and renders the abuse soak's results (bench/soak/soak.py writes them).

  report.py --results results.json [--command CMD] [--commit TEXT] [--versions TEXT] [--out FILE]

Prints the Markdown report (docs/BENCHMARKS.md, "Abuse soak") and writes it to --out; exits 1
when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

SUCCESS_GOAL = 0.99
P99_RATIO_GOAL = 2.0


def _refused(answers: dict, code: str) -> int:
    return sum(n for k, n in answers.items() if k.startswith(code))


def passed(goals: list[dict]) -> bool:
    """Every judged goal met (with --smoke the p99 ratio is reported, not judged)."""
    return all(g["met"] or not g.get("judged", True) for g in goals)


def judge(r: dict) -> list[dict]:
    """The goals, each {"goal", "required", "measured", "met"}."""
    base, ab = r["phases"]["baseline"], r["phases"]["abuse"]
    goals = []
    for name, phase in (("with the abuser", ab), ("baseline, alone", base)):
        g = phase["good"]
        goals.append({
            "goal": f"well-behaved success rate, {name}",
            "required": f">= {SUCCESS_GOAL:.0%}",
            "measured": f"{100 * g['success_rate']:.2f}% ({g['ok']:,} of {g['requests']:,})",
            "met": g["requests"] > 0 and g["success_rate"] >= SUCCESS_GOAL})
    b99 = base["good"]["latency_ms"]["all"].get("p99", 0)
    a99 = ab["good"]["latency_ms"]["all"].get("p99", 0)
    ratio = a99 / b99 if b99 else float("inf")
    smoke = r["meta"].get("smoke", False)
    goals.append({
        "goal": "well-behaved p99 latency, with / without the abuser" +
                (" (reported, not judged with --smoke: a p99 of ~200 requests is their 3rd "
                 "slowest)" if smoke else ""),
        "required": f"<= {P99_RATIO_GOAL:.2f}x",
        "measured": f"{ratio:.2f}x ({a99:.1f} ms / {b99:.1f} ms)",
        "met": ratio <= P99_RATIO_GOAL,
        "judged": not smoke})
    lost = accepted = pending = 0
    for phase in (base, ab):
        w = phase["work"]
        pending += w["pending_after_drain"]
        for group in ("good", "abuser"):
            if group in w:
                lost += w[group]["lost_total"]
                accepted += w[group]["uploads_accepted"] + w[group]["dithers_accepted"]
    goals.append({
        "goal": "accepted uploads and dithers not listed or not FINISHED (both phases, abuser "
                "included)",
        "required": "0",
        "measured": f"{lost} of {accepted:,}" + (f"; {pending} still pending" if pending else ""),
        "met": lost == 0 and pending == 0})
    a = ab["abuser"]
    checks = {}
    if "previews" in a:
        checks["previews 429"] = a["previews"]["answers"].get("429", 0)
    if "uploads" in a:
        checks["uploads 403 quota_exceeded"] = _refused(a["uploads"]["answers"],
                                                        "403 quota_exceeded")
        checks["uploads 429"] = _refused(a["uploads"]["answers"], "429")
    if "dithers" in a:
        checks["dithers 429"] = _refused(a["dithers"]["answers"], "429")
    if "connections" in a:
        checks["connections closed at once"] = a["connections"]["refused_at_once"]
    if "slow_bodies" in a:
        checks["slow bodies cut"] = a["slow_bodies"]["cut"]
    missing = [k for k, n in checks.items() if n == 0]
    goals.append({
        "goal": "the abuser met every limit it tries (else the soak tests nothing)",
        "required": "each > 0",
        "measured": "all" if not missing else "none of: " + ", ".join(missing),
        "met": not missing})
    return goals


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 1 else f"{v:.2f} ms"


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _answers(answers: dict, skip_prefix: str = "") -> str:
    items = sorted(((k, n) for k, n in answers.items()
                    if not (skip_prefix and k.startswith(skip_prefix))), key=lambda kv: -kv[1])
    return ", ".join(f"{k}: {n:,}" for k, n in items) or "none"


def render(r: dict, command: str, commit: str, versions: str) -> str:
    meta, base, ab = r["meta"], r["phases"]["baseline"], r["phases"]["abuse"]
    goals = r.get("goals") or judge(r)
    when = meta.get("date") or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    srv = meta["server"]
    out = []
    w = out.append
    w(f"Produced by `{command}` on {when}, {commit}; {versions}. Machine: {meta['cores']} cores "
      f"({meta['cpu_model']}, Linux {meta['kernel']}) **shared by everything**: ditherd, the load "
      f"generators and the raw-socket abuser (nothing is pinned). Each phase ran "
      f"{meta['seconds']} s; CPUs busy just before: {base['busy_before_percent']}% (baseline), "
      f"{ab['busy_before_percent']}% (abuse). Read the ratios within this run.")
    busy = [(label, phase["cpu"]["others"]) for label, phase in (("baseline", base),
                                                                  ("abuse", ab))]
    if any(o >= 20 for _, o in busy):
        w("")
        w("**The machine was busy with other work during the run** (others' CPU: " +
          ", ".join(f"{o}% in the {label} phase" for label, o in busy) +
          ", of 200%): the figures are disturbed; run it again on a quiet machine.")
    w("")
    w("| Goal | Required | Measured | Status |")
    w("|---|---|---|---|")
    for g in goals:
        status = "met" if g["met"] else "**NOT met**" if g.get("judged", True) else "not met"
        w(f"| {g['goal']} | {g['required']} | {g['measured']} | {status} |")
    w("")
    good = meta["good"]
    w(f"**Well-behaved clients**: {good['owners']} owners (an API key each, fresh owners per "
      f"phase) from {good['address']}, {good['rate_per_owner']:g} requests/s each at a constant "
      f"rate (vegeta), per 10 requests: 1 upload ({good['image']}), 1 dither request "
      f"(atkinson, pico8), 6 API reads (image records, lists, dithers, `/api/me`) and 2 preview "
      f"GETs of their own images. Latency is vegeta's, request sent to answer read, over every "
      f"request (failed ones included); p99 is nearest-rank.")
    w("")
    bg, ag = base["good"], ab["good"]
    w("| Well-behaved | baseline (alone) | with the abuser | with / without |")
    w("|---|---|---|---|")
    w(f"| requests (rate) | {bg['requests']:,} ({bg['rate']}/s) | {ag['requests']:,} "
      f"({ag['rate']}/s) | |")
    w(f"| success (2xx) | {100 * bg['success_rate']:.2f}% | {100 * ag['success_rate']:.2f}% | |")
    bl, al = bg["latency_ms"], ag["latency_ms"]
    for stat in ("p50", "p90", "p99", "max"):
        b, a = bl["all"].get(stat), al["all"].get(stat)
        label = f"**{stat}**" if stat == "p99" else stat
        w(f"| {label}, all requests | {_ms(b)} | {_ms(a)} | {_ratio(a, b)} |")
    names = {"upload": "uploads", "dither": "dither requests", "read": "API reads",
             "preview": "preview GETs"}
    for kind, label in names.items():
        b, a = bl.get(kind, {}), al.get(kind, {})
        w(f"| p99, {label} (n = {b.get('n', 0)} / {a.get('n', 0)}) | {_ms(b.get('p99'))} | "
          f"{_ms(a.get('p99'))} | {_ratio(a.get('p99'), b.get('p99'))} |")
    bf = base["work"]["good"]["dither_to_finished_s"]
    af = ab["work"]["good"]["dither_to_finished_s"]
    w(f"| their dithers (automatic and requested), created -> FINISHED, p50 | {_s(bf.get('p50'))} "
      f"| {_s(af.get('p50'))} | {_ratio(af.get('p50'), bf.get('p50'))} |")
    w(f"| same, p99 (n = {bf.get('n', 0)} / {af.get('n', 0)}) | {_s(bf.get('p99'))} | "
      f"{_s(af.get('p99'))} | {_ratio(af.get('p99'), bf.get('p99'))} |")
    w(f"| failures | {_answers(bg['failures'])} | {_answers(ag['failures'])} | |")
    w("")
    for label, g in (("baseline", bg), ("with the abuser", ag)):
        if g.get("windows"):
            # The last requests' answers may come in after the phase's end: not a window.
            windows = [x for x in g["windows"] if x["from_s"] < meta["seconds"]]
            w(f"p99 of all well-behaved requests per 10 s, {label}: " + ", ".join(
                f"{_ms(x['p99'])}" + (f" ({x['failed']} failed)" if x["failed"] else "")
                for x in windows) + ".")
            w("")
    w("*Created -> FINISHED* is the server's own timestamps of the well-behaved owners' dithers "
      "(informative, not a goal): how long their work waited in the one dither queue.")
    w("")
    a, ma = ab["abuser"], meta["abuser"]
    w(f"**The abuser** (owner `soak-abuser`, its own API key), during the whole abuse phase, "
      f"from {ma['address']} (and {ma['holder_address']} for idle connections), against the "
      f"server's limits: {_limits(srv)}.")
    w("")
    w("| Attack | Sent | Answers | Limits in its way |")
    w("|---|---|---|---|")
    if "previews" in a:
        p = a["previews"]
        ok = p["answers"].get("200", 0)
        refused = 100 * (1 - ok / p["requests"]) if p["requests"] else 0
        w(f"| preview flood: GET `/thumbnails/...` of its own images, vegeta at "
          f"{ma['flood_rate']:,}/s (at most {ma['flood_workers']} at once) | {p['requests']:,} "
          f"({p['rate']:,}/s) | {_answers(p['answers'])} ({refused:.1f}% refused) | 429 "
          f"`rate_limited` per client address (its budget: {_address_reads(srv)} a minute, "
          f"{srv.get('RATE_LIMIT_BURST_SECONDS') or '?'} s' worth at once); previews not yet made "
          f"use at most {srv.get('BLOCKING_PER_CLIENT') or '?'} blocking threads at once for one "
          f"address, and 503 `overloaded` past its half of the pool's places |")
    if "uploads" in a:
        u = a["uploads"]
        w(f"| uploads past its quota: {ma['image']}, vegeta at {ma['upload_rate']}/s | "
          f"{u['requests']:,} | {_answers(u['answers'])} | 403 `quota_exceeded` (QUOTA_IMAGES "
          f"{srv.get('QUOTA_IMAGES', '?')}), 429 `rate_limited` (RATE_LIMIT_UPLOADS "
          f"{srv.get('RATE_LIMIT_UPLOADS', '?')} a minute per owner) |")
    if "dithers" in a:
        d = a["dithers"]
        w(f"| dither requests on its images, vegeta at {ma['dither_rate']}/s | "
          f"{d['requests']:,} | {_answers(d['answers'])} | 429 `too_many_pending` "
          f"(QUOTA_PENDING_DITHERS {srv.get('QUOTA_PENDING_DITHERS', '?')}), 429 `rate_limited` "
          f"(RATE_LIMIT_DITHERS {srv.get('RATE_LIMIT_DITHERS', '?')}), 403 `quota_exceeded` "
          f"(QUOTA_DITHERS_PER_IMAGE {srv.get('QUOTA_DITHERS_PER_IMAGE', '?')}) |")
    if "connections" in a:
        c = a["connections"]
        w(f"| idle connections from {ma['holder_address']}, {c['target']} kept open (reopened "
          f"when closed) | {c['opened']:,} opened | held: median {c['median_held']}, at most "
          f"{c['max_held']}; {c['refused_at_once']:,} closed at once, {c['closed_later']:,} "
          f"closed later, {c['connect_errors']} connects failed | "
          f"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS "
          f"{srv.get('GATEWAY_MAX_CONNECTIONS_PER_ADDRESS', '?')} (closed without an answer) |")
    if "slow_bodies" in a:
        s = a["slow_bodies"]
        cut = s.get("cut_after_s", {})
        cut_text = (f"cut after {cut['min']}-{cut['max']} s (median {cut['median']})"
                    if cut else "none cut")
        w(f"| slow bodies: {s['count']} uploads at once announcing 2 MB, sent at "
          f"{s['bytes_per_second']} bytes/s each (restarted when cut) | {s['started']:,} started | "
          f"{s['cut']:,} {cut_text}; answered: {_answers(s['answered'])}; {s['open_at_end']} "
          f"still open at the end | BODY_MIN_RATE {srv.get('BODY_MIN_RATE', '?')} bytes/s after "
          f"BODY_GRACE_SECONDS {srv.get('BODY_GRACE_SECONDS', '?')} (closed without an answer) |")
    logged = ab.get("server_5xx_logged", {})
    w("")
    w("5xx answers ditherd logged during the abuse phase (to anyone): "
      + (", ".join(f"{k}: {n:,}" for k, n in sorted(logged.items())) or "none") + "; during "
      "the baseline: " + (", ".join(f"{k}: {n:,}" for k, n in
                                    sorted(base.get("server_5xx_logged", {}).items())) or "none")
      + ".")
    w("")
    w("**Nothing accepted is lost**: after each phase the soak waits for the dither queue to "
      "drain, then lists every owner's images and dithers and checks each accepted upload (201: "
      "listed, its automatic dither FINISHED) and dither request (202: listed, FINISHED).")
    w("")
    w("| Phase | Clients | uploads accepted | dithers accepted | lost | records never "
      "answered as accepted | drain after the phase |")
    w("|---|---|---|---|---|---|---|")
    for label, phase in (("baseline", base), ("with the abuser", ab)):
        wk = phase["work"]
        for group in ("good", "abuser"):
            if group not in wk:
                continue
            g = wk[group]
            lost = g["lost_total"]
            lost_text = str(lost) if not lost else ", ".join(
                f"{k}: {n}" for k, n in g["lost"].items() if n)
            w(f"| {label} | {'well-behaved' if group == 'good' else 'abuser'} | "
              f"{g['uploads_accepted']:,} | {g['dithers_accepted']:,} | {lost_text} | "
              f"{g['records_without_acceptance']} | {wk['drain_s']} s"
              + (f", {wk['pending_after_drain']} still pending" if wk["pending_after_drain"]
                 else "") + " |")
    w("")
    w("CPU, percent of one core averaged over each phase (the machine has "
      f"{100 * meta['cores']}%):")
    w("")
    w("| Phase | ditherd | vegeta (all attacks) | raw-socket abuser | whole machine | others |")
    w("|---|---|---|---|---|---|")
    for label, phase in (("baseline", base), ("with the abuser", ab)):
        cpu = phase["cpu"]
        w(f"| {label} | {cpu['ditherd']}% | {cpu['vegeta']}% | {cpu['raw_sockets']}% | "
          f"{cpu['machine']}% | {cpu['others']}% |")
    w("")
    w("*others*: CPU time no process of the soak was charged with (other work on the machine, "
      "some kernel network processing). ditherd's six busiest threads, percent of one core "
      "(they are unnamed; with `IO_THREADS=0` ditherd runs one I/O thread per two cores, "
      f"`BLOCKING_THREADS={srv.get('BLOCKING_THREADS') or '?'}` blocking-pool threads and a "
      "dithering worker whose engine uses every core): " + "; ".join(
          f"{label} " + ", ".join(f"{x}%" for x in phase["cpu"].get("ditherd_threads", []))
          for label, phase in (("baseline", base), ("with the abuser", ab))) + ".")
    return "\n".join(out) + "\n"


def _limits(srv: dict) -> str:
    keys = ("RATE_LIMIT_UPLOADS", "RATE_LIMIT_DITHERS", "RATE_LIMIT_READS",
            "RATE_LIMIT_ADDRESS_FACTOR", "RATE_LIMIT_BURST_SECONDS", "RATE_LIMIT_TARPIT_MS",
            "DITHER_NICE", "QUOTA_IMAGES",
            "QUOTA_PENDING_DITHERS",
            "QUOTA_DITHERS_PER_IMAGE", "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "BODY_MIN_RATE",
            "BODY_GRACE_SECONDS", "BLOCKING_THREADS", "BLOCKING_QUEUE", "BLOCKING_PER_CLIENT",
            "IO_THREADS",
            "DITHER_WORKERS")
    return ", ".join(f"`{k}={srv[k]}`" for k in keys if srv.get(k))


def _address_reads(srv: dict) -> str:
    try:
        return f"{int(srv['RATE_LIMIT_READS']) * int(srv['RATE_LIMIT_ADDRESS_FACTOR']):,}"
    except (KeyError, ValueError):
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--command", default="scripts/soak.sh")
    ap.add_argument("--commit", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--out")
    args = ap.parse_args()
    r = json.loads(Path(args.results).read_text())
    r["goals"] = judge(r)
    text = render(r, args.command, args.commit, args.versions)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0 if passed(r["goals"]) else 1


if __name__ == "__main__":
    sys.exit(main())
