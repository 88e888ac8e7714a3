#!/usr/bin/env python3
"""The load test (issue 14, item 6; docs/BENCHMARKS.md "Load test"), run by scripts/load.sh.

  load.py --bin-dir DIR --vegeta BIN --workdir DIR --stack-dir DIR --out results.json
          [--modes embedded,distributed] [--duration 300] [--rate R] [--smoke]
          [--port-base 28000] [--pidfile FILE] [--quiet-wait 10]

For each mode in turn (an embedded ditherd, then the distributed stack of scripts/stack.sh with
two dithering-service workers), on 127.0.0.1 only:

1. Start it fresh (its defaults, but no per-owner rate limits or quotas: one owner sends the
   whole load, and the point is the machine's capacity, not the limits of docs/SECURITY.md).
   Two API keys (dither-keys): one for the probe, one for the load, so that the load owner's
   lists hold exactly the attack's uploads.
2. Capacity probe (always; its figure sets the rate unless --rate or --smoke does): 15 s (2 s
   with --smoke) of uploads of the same JPEGs from 2 clients, never more than 8 not yet FINISHED
   (a closed loop: the dithering workers always have work, the queue stays short), timed from
   the first POST to the last image FINISHED. The attack's rate is RATE_SHARE (80 %) of that: a
   constant-rate generator does not slow down when the server does, so a rate at 100 % of the
   capacity makes the dither queue grow with the least disturbance of the shared machine, and
   the latency then measures the queue's length, not the system.
3. The attack: vegeta (third party, constant rate, open loop) POSTs /api/images (multipart, a few
   distinct generated 1 MP JPEGs) at that rate for --duration seconds; every upload is dithered
   automatically (AUTO_DITHER=on, the default: checked in the records below). Meanwhile every
   process of the mode is sampled once a second: RSS (VmRSS) and CPU time.
4. Drain (bounded: max(60 s, the duration)): the load owner's images are listed until every
   accepted (201) upload is FINISHED.
5. Checks: every accepted upload listed once and FINISHED, with exactly one automatic dither,
   FINISHED; no image or dither listed twice; no image stored that was not answered 201; the same
   counted in the store itself (SQLite or PostgreSQL), by uuid. Latency p50/p99 per 10 s window
   (vegeta's: request sent to answer read) and upload -> FINISHED (request sent to the image
   record's updated_at: the server's clock, the same machine's), the dither queue's length over
   time, and RSS growth: max over the last 30 % of the attack against max over the window right
   after warm-up (20 %-50 %; warm-up is the first 20 %).

Writes everything to --out (JSON); scripts/bench/load_report.py renders it and judges the goals.
Standard library only (plus psql for the stack's database, ImageMagick for the JPEGs).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import csv
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402  (machine CPU jiffies)
import services as sv  # noqa: E402  (Ditherd, Client, register_pid, proc_cpu, cpu_model...)
import distributed as dist  # noqa: E402  (Stack: scripts/stack.sh on ports of our own; Psql)

HZ = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
RATE_SHARE = 0.8            # the attack's rate: this share of the probe's measured capacity
WINDOW_S = 10               # latency windows
WARMUP_SHARE = 0.2          # the first 20 % of the attack is warm-up
AFTER_WARMUP_END = 0.5      # "right after warm-up": 20 %-50 % of the attack
LAST_SHARE = 0.3            # "the end": the last 30 %
RSS_GROWTH_GOAL = 0.10
PHOTO_SIZE = (1200, 840)    # 1 MP, as the distributed benchmark's small photo
PHOTOS = 4                  # distinct JPEGs, cycled by vegeta
PROBE_CLIENTS = 2           # the probe's posting clients ...
PROBE_IN_FLIGHT = 8         # ... with at most this many uploads not yet FINISHED
VEGETA_WORKERS = 8          # vegeta's initial workers ...
VEGETA_MAX_WORKERS = 64     # ... and its bound: requests in flight at most
VEGETA_TIMEOUT_S = 60
BOUNDARY = "loadtestboundary7MA4YWxkTrZu0gW"

# What the servers run with beyond their defaults: one owner sends everything, so the per-owner
# budgets and quotas (docs/SECURITY.md "Limits") are off; the global dither-queue bound stays.
SERVER_ENV = {
    "RATE_LIMIT_UPLOADS": "0", "RATE_LIMIT_DITHERS": "0", "RATE_LIMIT_READS": "0",
    "QUOTA_IMAGES": "0", "QUOTA_BYTES": "0",
}


def log(msg: str) -> None:
    print(f"load: {msg}", file=sys.stderr, flush=True)


def parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values: list[float]) -> dict:
    v = sorted(values)
    return {"n": len(v), "p50": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "max": v[-1] if v else None}


# ---- the images --------------------------------------------------------------------------------

def make_photos(workdir: Path, count: int) -> list[bytes]:
    """Distinct photo-like JPEGs (ImageMagick's plasma fractal, a seed each)."""
    out = []
    w, h = PHOTO_SIZE
    for i in range(count):
        path = workdir / f"photo-{i}.jpg"
        subprocess.run(["convert", "-seed", str(101 + i), "-size", f"{w}x{h}", "plasma:fractal",
                        "-quality", "90", "-sampling-factor", "2x2", str(path)],
                       check=True, timeout=120)
        out.append(path.read_bytes())
    return out


def multipart(data: bytes, filename: str) -> tuple[str, bytes]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return f"multipart/form-data; boundary={BOUNDARY}", head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


# ---- the modes ---------------------------------------------------------------------------------

def safe_owner(owner: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9:._@-]+", owner):
        raise RuntimeError(f"unexpected characters in the owner {owner!r}")
    return owner


class Embedded:
    name = "embedded"

    def __init__(self, args):
        self.d = sv.Ditherd(args.bin_dir / "ditherd", args.workdir, "ditherd", dict(SERVER_ENV),
                            keys_binary=args.bin_dir / "dither-keys")
        b = args.port_base
        self.d.port, self.d.upload_port, self.d.dither_port, self.d.notify_port = (
            b + 180, b + 181, b + 182, b + 183)
        self.port = self.d.port

    def start(self) -> float:
        t0 = time.perf_counter()
        self.d.start()
        return time.perf_counter() - t0

    def create_key(self, name: str) -> tuple[str, str]:
        key = self.d.create_key(name)
        return key, self.d.owner

    def processes(self) -> dict[str, int]:
        return {"ditherd": self.d.proc.pid}

    def helpers(self) -> dict:
        return {}

    def config(self) -> dict:
        text = (self.d.dir / "stderr.log").read_text(errors="replace") + \
            (self.d.dir / "stdout.log").read_text(errors="replace")
        return dict(re.findall(r"config (\w+)=(\S*)", text))

    def store_counts(self, owner: str) -> dict:
        """The owner's rows counted in the SQLite files themselves (read-only, beside ditherd)."""
        data = self.d.dir / "data"
        out = {}
        for db, table in (("upload.db", "images"), ("dither.db", "dithers")):
            con = sqlite3.connect(f"file:{data / db}?mode=ro", uri=True, timeout=30)
            try:
                rows, uuids, finished = con.execute(
                    f"SELECT count(*), count(DISTINCT uuid), "
                    f"coalesce(sum(status = 'FINISHED'), 0) FROM {table} WHERE owner = ?",
                    (owner,)).fetchone()
                dups = con.execute(f"SELECT uuid, count(*) FROM {table} WHERE owner = ? "
                                   f"GROUP BY uuid HAVING count(*) > 1 LIMIT 20",
                                   (owner,)).fetchall()
            finally:
                con.close()
            out[table] = {"rows": rows, "uuids": uuids, "finished": finished,
                          "uuids_twice": [[u, n] for u, n in dups]}
        out["where"] = "SQLite: upload.db images, dither.db dithers"
        return out

    def stop(self) -> None:
        self.d.stop()

    def keep_logs(self, dest: Path) -> None:
        for name in ("stderr.log", "stdout.log"):
            src = self.d.dir / name
            if src.exists():
                (dest / f"ditherd.{name}").write_bytes(src.read_bytes())


class LoadStack(dist.Stack):
    """scripts/stack.sh with the load's server settings on top of the benchmark's."""

    def env(self, workers: int) -> dict:
        env = super().env(workers)
        env.update(SERVER_ENV)
        return env


class Distributed:
    name = "distributed"
    workers = 2

    def __init__(self, args):
        self.stack = LoadStack(args.stack_dir, args.bin_dir, args.port_base)
        self.port = self.stack.port

    def start(self) -> float:
        if self.stack.dir.exists():  # what an interrupted run left: stopped and removed
            self.stack.down()
            subprocess.run(["rm", "-rf", str(self.stack.dir)], check=True)
        return self.stack.up(self.workers)

    def create_key(self, name: str) -> tuple[str, str]:
        key = self.stack.create_key(name)
        return key, self.stack.owner

    def processes(self) -> dict[str, int]:
        return {name: self.stack.pid(name) for name in
                ["api-gateway", "upload-service"] + self.stack.worker_names() +
                ["notification-service"]}

    def helpers(self) -> dict:
        """The stack's servers (CPU accounting only): PostgreSQL with its backends, Kafka, S3."""
        groups = self.stack.process_groups()
        pg = groups.get("postgres", [])[:1]
        return {
            "postgres": lambda: pg + (sv.children_of(pg[0]) if pg else []),
            "kafka": lambda: groups.get("kafka", []),
            "s3 (versitygw)": lambda: groups.get("s3 (versitygw)", []),
        }

    def config(self) -> dict:
        out = {}
        for name in self.processes():
            path = self.stack.dir / f"{name}.log"
            if path.exists():
                for k, v in re.findall(r"config (\w+)=(\S*)", path.read_text(errors="replace")):
                    out.setdefault(k, v)
        return out

    def store_counts(self, owner: str) -> dict:
        o = safe_owner(owner)
        psql = dist.Psql(self.stack.postgres_port)
        out = {}
        try:
            for table in ("upload.images", "dither.dithers"):
                rows, uuids, finished = psql.query(
                    f"SELECT count(*), count(DISTINCT uuid), "
                    f"count(*) FILTER (WHERE status = 'FINISHED') FROM {table} WHERE owner = '{o}'")[0]
                dups = psql.query(f"SELECT uuid, count(*) FROM {table} WHERE owner = '{o}' "
                                  f"GROUP BY uuid HAVING count(*) > 1 LIMIT 20")
                out[table.split(".")[1]] = {"rows": int(rows), "uuids": int(uuids),
                                            "finished": int(finished),
                                            "uuids_twice": [[u, int(n)] for u, n in dups]}
        finally:
            psql.close()
        out["where"] = "PostgreSQL: upload.images, dither.dithers"
        return out

    def stop(self) -> None:
        if self.stack.dir.exists():
            self.stack.down()

    def keep_logs(self, dest: Path) -> None:
        # (scripts/load.sh keeps the log of the stack.sh commands themselves.)
        for path in self.stack.dir.glob("*.log"):
            (dest / f"stack.{path.name}").write_bytes(path.read_bytes())


# ---- API helpers -------------------------------------------------------------------------------

def list_all(client: sv.Client, path: str) -> list[dict]:
    items: list[dict] = []
    cursor = ""
    for _ in range(10000):
        status, body = client.call("GET", f"{path}?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        doc = json.loads(body)
        items += doc["items"]
        cursor = doc.get("next_cursor") or ""
        if not cursor:
            return items
    raise RuntimeError(f"GET {path}: more than 10,000 pages")


def post_upload(client: sv.Client, data: bytes, filename: str) -> dict:
    ctype, body = multipart(data, filename)
    status, answer = client.call("POST", "/api/images", body, {"Content-Type": ctype})
    if status != 201:
        raise RuntimeError(f"upload: {status} {answer[:300]!r}")
    return json.loads(answer)


# ---- capacity probe ----------------------------------------------------------------------------

def probe(port: int, key: str, photos: list[bytes], seconds: float, quiet_wait: float) -> dict:
    """Two uploads to FINISHED one at a time (warm-up, not counted), then uploads for `seconds`
    from PROBE_CLIENTS clients, never more than PROBE_IN_FLIGHT of them not yet FINISHED (enough
    to keep every dithering worker busy, few enough that the queue drains at once): uploads per
    second from the first POST to the last FINISHED. A closed loop: it measures what the server
    sustains, where an open-loop rate above it would only measure a growing queue."""
    c = sv.Client(port, key)
    for i in range(2):
        sv.wait_finished(c, post_upload(c, photos[i % len(photos)], f"warmup-{i}.jpg")["uuid"],
                         0.01, timeout=120)
    busy = sv.wait_quiet(quiet_wait)
    slots = threading.Semaphore(PROBE_IN_FLIGHT)
    lock = threading.Lock()
    in_flight: set[str] = set()
    posted: list[str] = []
    errors: list[str] = []
    stop_posting = threading.Event()

    def uploader(k: int) -> None:
        cc = sv.Client(port, key)
        j = 0
        try:
            while not stop_posting.is_set():
                if not slots.acquire(timeout=0.1):
                    continue
                if stop_posting.is_set():
                    slots.release()
                    break
                u = post_upload(cc, photos[(k + j) % len(photos)], f"probe-{k}-{j}.jpg")["uuid"]
                j += 1
                with lock:
                    in_flight.add(u)
                    posted.append(u)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            stop_posting.set()
        finally:
            cc.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=uploader, args=(k,)) for k in range(PROBE_CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds + 180
    t_posted = None
    try:
        while True:
            if t_posted is None and time.perf_counter() - t0 >= seconds:
                stop_posting.set()
                for t in threads:
                    t.join()
                t_posted = time.perf_counter() - t0
            if errors:
                raise RuntimeError(f"probe uploads failed: {errors[:3]}")
            status, body = c.call("GET", f"/api/images?limit={4 * PROBE_IN_FLIGHT}")
            if status != 200:
                raise RuntimeError(f"GET /api/images: {status} {body[:300]!r}")
            for item in json.loads(body)["items"]:
                with lock:
                    if item["uuid"] not in in_flight:
                        continue
                    if item["status"] == "FAILED":
                        raise RuntimeError(f"probe image {item['uuid']} FAILED: "
                                           f"{item.get('error')}")
                    if item["status"] == "FINISHED":
                        in_flight.discard(item["uuid"])
                        slots.release()
            with lock:
                if t_posted is not None and not in_flight:
                    break
                waiting = len(in_flight)
            if time.monotonic() > deadline:
                raise RuntimeError(f"probe: {waiting} images not FINISHED after {seconds + 180:.0f} s")
            time.sleep(0.02)
    finally:
        stop_posting.set()
        for t in threads:
            t.join()
        c.close()
    took = time.perf_counter() - t0
    return {"uploads": len(posted), "clients": PROBE_CLIENTS, "in_flight": PROBE_IN_FLIGHT,
            "seconds": seconds, "busy_before": busy, "all_posted_s": t_posted,
            "all_finished_s": took, "per_second": len(posted) / took}


# ---- sampling ----------------------------------------------------------------------------------

def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Sampler(threading.Thread):
    """Every second: RSS (kB) and CPU seconds of each process of the mode, CPU seconds of the
    helpers (the stack's servers, vegeta: for the CPU accounting only) and the machine's jiffies.
    A helper is a function giving its pids (PostgreSQL's backends come and go)."""

    def __init__(self, procs: dict[str, int], helpers: dict, interval: float = 1.0):
        super().__init__(daemon=True)
        self.procs = procs
        self.helpers = dict(helpers)
        self.interval = interval
        self.samples: list[dict] = []
        self._halt = threading.Event()

    def run(self) -> None:
        nxt = time.monotonic()
        while not self._halt.is_set():
            total, idle = quiet.cpu_times()
            self.samples.append({
                "t": time.time(),
                "rss_kb": {n: rss_kb(p) for n, p in self.procs.items()},
                "cpu_s": {n: sv.proc_cpu(p) for n, p in self.procs.items()},
                "helper_cpu_s": {n: sum(sv.proc_cpu(p) for p in pids())
                                 for n, pids in list(self.helpers.items())},
                "machine": [total, idle],
            })
            nxt += self.interval
            self._halt.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


# ---- the attack --------------------------------------------------------------------------------

def vegeta_targets(path: Path, port: int, key: str, photos: list[bytes]) -> int:
    """vegeta's JSON targets, one line each, cycled in order: POST /api/images, multipart."""
    with open(path, "w") as f:
        for i, data in enumerate(photos):
            ctype, body = multipart(data, f"load-{i}.jpg")
            f.write(json.dumps({
                "method": "POST", "url": f"http://{HOST}:{port}/api/images",
                "header": {"Authorization": [f"Bearer {key}"], "Content-Type": [ctype]},
                "body": base64.b64encode(body).decode()}) + "\n")
    return len(multipart(photos[0], "load-0.jpg")[1])


def attack(args, mode, key: str, photos: list[bytes], rate_per_min: int, workdir: Path,
           procs: dict[str, int], helpers: dict) -> dict:
    targets = workdir / f"{mode.name}.targets"  # holds the key: stays in the temp dir
    body_bytes = vegeta_targets(targets, mode.port, key, photos)
    out = workdir / f"{mode.name}.bin"
    argv = [str(args.vegeta), "attack", f"-name={mode.name}", "-format=json",
            f"-targets={targets}", f"-rate={rate_per_min}/1m", f"-duration={args.duration}s",
            f"-timeout={VEGETA_TIMEOUT_S}s", f"-laddr={HOST}", f"-workers={VEGETA_WORKERS}",
            f"-max-workers={VEGETA_MAX_WORKERS}", "-keepalive=true", f"-output={out}"]
    sampler = Sampler(procs, helpers)
    sampler.start()
    time.sleep(2.5)  # a few samples of the idle processes before the attack
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m0 = quiet.cpu_times()
    started = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                            stderr=open(workdir / f"{mode.name}.vegeta.stderr", "w"))
    sv.register_pid(proc.pid)
    sampler.helpers["vegeta"] = lambda: [proc.pid]
    bound = args.duration + VEGETA_TIMEOUT_S + 60
    try:
        rc = proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        sampler.stop()
        raise RuntimeError(f"vegeta did not end within {bound} s")
    except BaseException:
        # Ctrl-C or TERM: vegeta is our child; it goes with us.
        proc.terminate()
        proc.wait(timeout=15)
        sampler.stop()
        raise
    ended = time.time()
    m1 = quiet.cpu_times()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        sampler.stop()
        err = (workdir / f"{mode.name}.vegeta.stderr").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"vegeta attack exited with {rc}: {err}")
    csv_path = workdir / f"{mode.name}.csv"
    with open(csv_path, "w") as f:
        subprocess.run([str(args.vegeta), "encode", "--to", "csv", str(out)], stdout=f,
                       check=True, timeout=300)
    rows = []
    with open(csv_path, newline="") as f:
        for r in csv.reader(f):
            if not r:
                continue
            rows.append({"t": int(r[0]) / 1e9, "code": int(r[1]), "latency_ms": int(r[2]) / 1e6,
                         "error": r[5], "body": base64.b64decode(r[6]) if r[6] else b"",
                         "seq": int(r[8])})
    rows.sort(key=lambda r: r["seq"])
    return {"argv": [a if not a.startswith("-targets=") else "-targets=<file>" for a in argv],
            "rows": rows, "sampler": sampler, "started": started, "ended": ended,
            "vegeta_cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
            "machine_jiffies": [m1[0] - m0[0], m1[1] - m0[1]], "body_bytes": body_bytes,
            "csv": csv_path}


def answer_code(row: dict) -> str:
    """"201", "503 queue_full", "no answer: <vegeta's error>"."""
    if row["code"] == 0:
        return f"no answer: {row['error'].split(': ')[-1][:80] or 'unknown'}"
    name = ""
    if row["code"] != 201 and row["body"]:
        try:
            name = json.loads(row["body"])["error"]["code"]
        except (ValueError, KeyError, TypeError):
            name = ""
    return f"{row['code']} {name}".strip()


def drain(client: sv.Client, accepted: set[str], timeout: float) -> dict:
    """Lists the owner's images until every accepted one is FINISHED (or FAILED), bounded. Each
    poll walks the list newest first only as far as the oldest upload still waited for."""
    t0 = time.monotonic()
    polls = 0
    waiting = set(accepted)
    while True:
        polls += 1
        unseen = set(waiting)
        cursor = ""
        while unseen:
            status, body = client.call(
                "GET", "/api/images?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            if status != 200:
                raise RuntimeError(f"GET /api/images: {status} {body[:300]!r}")
            doc = json.loads(body)
            for item in doc["items"]:
                u = item["uuid"]
                if u in unseen:
                    unseen.discard(u)
                    if item["status"] in ("FINISHED", "FAILED"):
                        waiting.discard(u)
            cursor = doc.get("next_cursor") or ""
            if not cursor:
                break
        if not waiting:
            return {"waited_s": time.monotonic() - t0, "polls": polls, "timed_out": False}
        if time.monotonic() - t0 > timeout:
            return {"waited_s": time.monotonic() - t0, "polls": polls, "timed_out": True,
                    "still_waiting": len(waiting)}
        time.sleep(1.0)


def verify(client: sv.Client, accepted: dict[str, float]) -> dict:
    """Every accepted upload listed once, FINISHED, with exactly one automatic dither, FINISHED;
    nothing listed twice; nothing stored that was not answered 201."""
    images = list_all(client, "/api/images")
    dithers = list_all(client, "/api/dithers")
    img_count: dict[str, int] = {}
    img_by_uuid: dict[str, dict] = {}
    for i in images:
        img_count[i["uuid"]] = img_count.get(i["uuid"], 0) + 1
        img_by_uuid[i["uuid"]] = i
    ids_seen: dict[int, int] = {}
    auto: dict[str, list[dict]] = {}
    other_sources = 0
    for d in dithers:
        ids_seen[d["id"]] = ids_seen.get(d["id"], 0) + 1
        if d.get("source") == "auto":
            auto.setdefault(d["uuid"], []).append(d)
        else:
            other_sources += 1
    not_listed, not_finished, no_auto, auto_not_finished = [], [], [], []
    for u in accepted:
        rec = img_by_uuid.get(u)
        if rec is None:
            not_listed.append(u)
            continue
        if rec["status"] != "FINISHED":
            not_finished.append(f"{u} {rec['status']} {rec.get('error') or ''}".strip())
        ds = auto.get(u, [])
        if not ds:
            no_auto.append(u)
        elif any(d["status"] != "FINISHED" for d in ds):
            auto_not_finished.append(f"{u} " + ",".join(d["status"] for d in ds))
    finished_at = {}
    for u in accepted:
        rec = img_by_uuid.get(u)
        if rec is not None and rec["status"] == "FINISHED":
            finished_at[u] = parse_iso(rec["updated_at"])
    return {
        "images_listed": len(images), "dithers_listed": len(dithers),
        "accepted": len(accepted),
        "not_listed": not_listed, "not_finished": not_finished,
        "without_auto_dither": no_auto, "auto_dither_not_finished": auto_not_finished,
        "images_listed_twice": [u for u, n in img_count.items() if n > 1],
        "dither_ids_listed_twice": [i for i, n in ids_seen.items() if n > 1],
        "two_auto_dithers": [u for u, ds in auto.items() if len(ds) > 1],
        "stored_not_accepted": [u for u in img_count if u not in accepted],
        "dithers_not_auto": other_sources,
        "finished_at": finished_at,
    }


# ---- analysis ----------------------------------------------------------------------------------

def analyse(att: dict, accepted: dict[str, float], finished_at: dict[str, float],
            duration: float) -> dict:
    rows = att["rows"]
    t0 = min((r["t"] for r in rows), default=att["started"])
    sent_sorted = sorted(accepted.values())
    fin_sorted = sorted(finished_at.values())

    def queue_at(t: float) -> int:
        return bisect.bisect_right(sent_sorted, t) - bisect.bisect_right(fin_sorted, t)

    samples = att["sampler"].samples
    ncpu = os.cpu_count() or 1

    def cpu_shares(lo: float, hi: float) -> dict | None:
        """Shares of the machine's CPU between two samples (the first at or after lo, the last
        at or before hi): the mode's processes (and the stack's servers), vegeta, the rest."""
        inside = [x for x in samples if lo - 0.01 <= x["t"] <= hi + 0.01]
        if len(inside) < 2:
            return None
        s0, s1 = inside[0], inside[-1]
        span = s1["t"] - s0["t"]
        total = s1["machine"][0] - s0["machine"][0]
        if span <= 0 or total <= 0:
            return None
        busy = 1 - (s1["machine"][1] - s0["machine"][1]) / total

        def used(key: str, names) -> float:
            return sum(max(0.0, s1[key].get(n, 0) - s0[key].get(n, 0)) for n in names)

        mode_cpu = used("cpu_s", s1["cpu_s"]) + \
            used("helper_cpu_s", [n for n in s1["helper_cpu_s"] if n != "vegeta"])
        veg = used("helper_cpu_s", ["vegeta"])
        mode_share, veg_share = mode_cpu / (span * ncpu), veg / (span * ncpu)
        return {"busy": busy, "mode": mode_share, "vegeta": veg_share,
                "others": max(0.0, busy - mode_share - veg_share)}

    windows = []
    n_windows = max(1, math.ceil(duration / WINDOW_S))
    for w in range(n_windows):
        a, b = t0 + w * WINDOW_S, t0 + min((w + 1) * WINDOW_S, duration)
        in_w = [r for r in rows if a <= r["t"] < b or (w == n_windows - 1 and r["t"] >= b)]
        lat = sorted(r["latency_ms"] for r in in_w)
        e2e = sorted(1e3 * (finished_at[u] - s) for u, s in accepted.items()
                     if u in finished_at and (a <= s < b or (w == n_windows - 1 and s >= b)))
        steps = [a + k * 0.5 for k in range(int((b - a) / 0.5) + 1)]
        windows.append({
            "from_s": a - t0, "to_s": b - t0, "sent": len(in_w),
            "accepted": sum(1 for r in in_w if r["code"] == 201),
            "post_p50_ms": percentile(lat, 50), "post_p99_ms": percentile(lat, 99),
            "finished_p50_ms": percentile(e2e, 50), "finished_p99_ms": percentile(e2e, 99),
            "queue_max": max(queue_at(t) for t in steps),
            "cpu": cpu_shares(a, b),
        })
    codes: dict[str, int] = {}
    for r in rows:
        c = answer_code(r)
        codes[c] = codes.get(c, 0) + 1
    e2e_all = [1e3 * (finished_at[u] - s) for u, s in accepted.items() if u in finished_at]
    last_sent = max((r["t"] for r in rows), default=t0)
    # RSS and CPU over the attack, per process.
    names = list(samples[0]["rss_kb"]) if samples else []
    series = [{"t": s["t"] - t0, "rss_kb": s["rss_kb"]} for s in samples]

    def rss_max(name: str, lo: float, hi: float) -> int | None:
        vals = [s["rss_kb"][name] for s in samples
                if lo <= s["t"] - t0 <= hi and s["rss_kb"][name] is not None]
        return max(vals) if vals else None

    rss = {}
    for n in names:
        before = [s["rss_kb"][n] for s in samples if s["t"] < t0 and s["rss_kb"][n] is not None]
        after_warm = rss_max(n, WARMUP_SHARE * duration, AFTER_WARMUP_END * duration)
        last = rss_max(n, (1 - LAST_SHARE) * duration, duration)
        tenths = [rss_max(n, k * duration / 10, (k + 1) * duration / 10) for k in range(10)]
        in_run = [s for s in samples if t0 <= s["t"] <= t0 + duration]
        cpu = (in_run[-1]["cpu_s"][n] - in_run[0]["cpu_s"][n]) if len(in_run) > 1 else None
        span = (in_run[-1]["t"] - in_run[0]["t"]) if len(in_run) > 1 else None
        rss[n] = {
            "before_kb": before[-1] if before else None,
            "warmup_max_kb": rss_max(n, 0, WARMUP_SHARE * duration),
            "after_warmup_max_kb": after_warm, "last_max_kb": last,
            "growth": (last / after_warm - 1) if last and after_warm else None,
            "end_kb": rss_max(n, duration - 1.5, duration),
            "after_drain_kb": samples[-1]["rss_kb"][n] if samples else None,
            "tenths_max_kb": tenths,
            "cpu_percent": 100 * cpu / span if cpu is not None and span else None,
            "alive_at_end": samples[-1]["rss_kb"][n] is not None if samples else False,
        }
    total_j, idle_j = att["machine_jiffies"]
    wall = att["ended"] - att["started"]
    return {
        "t0": t0, "sent": len(rows), "accepted": sum(1 for r in rows if r["code"] == 201),
        "codes": codes,
        "achieved_rate": len(rows) / duration if duration else None,
        "post_ms": summary([r["latency_ms"] for r in rows]),
        "post_accepted_ms": summary([r["latency_ms"] for r in rows if r["code"] == 201]),
        "finished_ms": summary(e2e_all),
        "last_finished_after_last_sent_s": (max(finished_at.values()) - last_sent)
        if finished_at else None,
        "windows": windows, "rss": rss, "rss_series": series,
        "vegeta_cpu_percent": 100 * att["vegeta_cpu_s"] / wall if wall else None,
        "cpu": cpu_shares(t0, t0 + duration),
        "machine_busy_percent": 100 * (1 - idle_j / total_j) if total_j else None,
    }


# ---- one mode ----------------------------------------------------------------------------------

def run_mode(args, mode, photos: list[bytes]) -> dict:
    res: dict = {"mode": mode.name}
    log(f"{mode.name}: starting (gateway 127.0.0.1:{mode.port})")
    res["start_s"] = mode.start()
    probe_key, _ = mode.create_key("load-probe")
    load_key, load_owner = mode.create_key("load")
    res["config"] = mode.config()
    procs = mode.processes()
    res["processes"] = list(procs)
    seconds = 2.0 if args.smoke else 15.0
    log(f"{mode.name}: capacity probe, {seconds:.0f} s of uploads, at most {PROBE_IN_FLIGHT} "
        "not yet FINISHED")
    res["probe"] = probe(mode.port, probe_key, photos, seconds, args.quiet_wait)
    log(f"{mode.name}: capacity {res['probe']['per_second']:.2f} uploads/s "
        f"({res['probe']['uploads']} in {res['probe']['all_finished_s']:.1f} s)")
    if args.rate is not None:
        rate, how = args.rate, "LOAD_RATE"
    elif args.smoke:
        rate, how = 2.0, "smoke"
    else:
        rate, how = max(0.5, RATE_SHARE * res["probe"]["per_second"]), "probe"
    per_min = max(1, round(rate * 60))
    res["rate"] = {"per_second": per_min / 60, "per_minute": per_min, "chosen_by": how,
                   "share_of_probe": RATE_SHARE}
    res["busy_before"] = sv.wait_quiet(args.quiet_wait)
    log(f"{mode.name}: vegeta, {per_min / 60:.2f} uploads/s for {args.duration} s "
        f"(CPU busy {res['busy_before']:.0f}% before)")
    att = attack(args, mode, load_key, photos, per_min, args.workdir, procs, mode.helpers())
    accepted: dict[str, float] = {}
    answered_twice: list[str] = []  # one uuid in two 201 answers
    bad_bodies = 0
    for r in att["rows"]:
        if r["code"] == 201:
            try:
                u = json.loads(r["body"])["uuid"]
            except (ValueError, KeyError, TypeError):
                bad_bodies += 1
                continue
            if u in accepted:
                answered_twice.append(u)
            accepted.setdefault(u, r["t"])
    log(f"{mode.name}: {len(att['rows'])} sent, {len(accepted)} accepted; waiting for FINISHED "
        f"(at most {args.drain_timeout:.0f} s)")
    client = sv.Client(mode.port, load_key)
    try:
        res["drain"] = drain(client, set(accepted), args.drain_timeout)
        att["sampler"].stop()
        checks = verify(client, accepted)
    finally:
        client.close()
        att["sampler"].stop()
    finished_at = checks.pop("finished_at")
    checks["accepted_without_uuid"] = bad_bodies
    checks["uuids_answered_twice"] = answered_twice
    checks["store"] = mode.store_counts(load_owner)
    res["checks"] = checks
    res["vegeta"] = {"argv": att["argv"], "body_bytes": att["body_bytes"],
                     "workers": VEGETA_WORKERS, "max_workers": VEGETA_MAX_WORKERS,
                     "timeout_s": VEGETA_TIMEOUT_S}
    res["analysis"] = analyse(att, accepted, finished_at, args.duration)
    t0 = res["analysis"]["t0"]
    res["requests"] = [[round(r["t"] - t0, 4), r["code"], round(r["latency_ms"], 3)]
                       for r in att["rows"]]
    (args.keep_dir / f"{mode.name}.csv").write_bytes(att["csv"].read_bytes())
    a = res["analysis"]
    log(f"{mode.name}: POST p50 {a['post_ms']['p50'] or 0:.1f} ms p99 {a['post_ms']['p99'] or 0:.1f} ms; "
        f"upload->FINISHED p50 {a['finished_ms']['p50'] or 0:.0f} ms "
        f"p99 {a['finished_ms']['p99'] or 0:.0f} ms; "
        f"not finished {len(checks['not_finished']) + len(checks['not_listed'])}; "
        f"RSS growth " + ", ".join(f"{n} {100 * v['growth']:+.1f}%" if v['growth'] is not None
                                   else f"{n} ?" for n, v in a["rss"].items()))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", type=Path, required=True)
    ap.add_argument("--vegeta", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--stack-dir", type=Path, required=True)
    ap.add_argument("--keep-dir", type=Path, required=True,
                    help="where vegeta's results (CSV) and the logs are kept")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--modes", default="embedded,distributed")
    ap.add_argument("--duration", type=int, default=300)
    ap.add_argument("--rate", type=float)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--port-base", type=int, default=28000)
    ap.add_argument("--pidfile", type=Path)
    ap.add_argument("--quiet-wait", type=float, default=10)
    args = ap.parse_args()
    for name in ("bin_dir", "vegeta", "workdir", "stack_dir", "keep_dir"):
        setattr(args, name, getattr(args, name).resolve())
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("embedded", "distributed") for m in modes):
        ap.error("--modes takes embedded and/or distributed, comma-separated")
    if args.rate is not None and not (0 < args.rate <= 1000):
        ap.error("--rate takes 0 < R <= 1000 uploads a second")
    args.drain_timeout = max(60.0, float(args.duration))
    sv._PIDFILE = args.pidfile
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.keep_dir.mkdir(parents=True, exist_ok=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    photos = make_photos(args.workdir, PHOTOS)
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "model": sv.cpu_model(), "kernel": platform.release()},
        "smoke": args.smoke, "duration_s": args.duration, "drain_timeout_s": args.drain_timeout,
        "photos": {"count": PHOTOS, "width": PHOTO_SIZE[0], "height": PHOTO_SIZE[1],
                   "bytes": [len(p) for p in photos]},
        "server_env": SERVER_ENV, "window_s": WINDOW_S,
        "windows_share": {"warmup": WARMUP_SHARE, "after_warmup_end": AFTER_WARMUP_END,
                          "last": LAST_SHARE},
        "rss_growth_goal": RSS_GROWTH_GOAL, "modes": {},
    }
    status = 0
    for name in modes:
        mode = Embedded(args) if name == "embedded" else Distributed(args)
        try:
            results["modes"][name] = run_mode(args, mode, photos)
        except Exception as e:  # noqa: BLE001  (recorded; the other mode still runs)
            log(f"{name}: FAILED: {e}")
            results["modes"][name] = {"mode": name, "error": f"{type(e).__name__}: {e}"}
            status = 1
        finally:
            # A second Ctrl-C or TERM must not cut the clean-up short.
            old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                mode.stop()
            except Exception as e:  # noqa: BLE001
                log(f"{name}: stopping failed: {e}")
            try:
                mode.keep_logs(args.keep_dir)
            except OSError as e:
                log(f"{name}: logs not kept: {e}")
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)
        args.out.write_text(json.dumps(results, indent=1))
    log(f"raw results in {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
