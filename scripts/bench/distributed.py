#!/usr/bin/env python3
"""Distributed mode beside embedded mode, for scripts/bench_distributed.sh (docs/BENCHMARKS.md,
"Distributed mode").

  distributed.py --bin-dir build/release/src/app --workdir DIR \
                 --stack-dir build/bench-distributed-stack --out DIR/results.json \
                 [--port-base 26000] [--pidfile FILE] [--quick | --smoke]

Standard library only, plus the clients the stack already needs (psql). Reuses the HTTP client,
the ditherd launcher and the photo maker of scripts/bench/services.py.

One run, the same generated JPEGs (1 MP and 4 MP) for every measurement:
1. Latency: sequential uploads through the gateway, each polled with GET /api/images/{uuid}
   every 5 ms until FINISHED, alternating an embedded ditherd (defaults, fresh data directory)
   and the distributed stack (scripts/stack.sh, two dithering-service workers); both run all along.
2. Throughput: a burst of uploads from concurrent clients, on each mode, rounds alternated: time
   from the first upload to the last FINISHED, and the CPU time each process used.
3. Scale: the stack restarted with one dithering worker, then two (same burst), images per
   minute; with two, which worker did each dither, seen by sampling the lease column
   (dither.dithers.claimed_by = "<host>:<pid>:<thread>") while the burst runs; the embedded
   ditherd gets the same burst beside the 1-worker stack (one dither at a time in both).

--smoke (CI): every step above, each as small as it can be: 1 MP and 0.25 MP photos, one upload
per size and mode for latency, bursts of 2 uploads from 2 clients, one throughput round, the scale
step as 2 workers (the stack as first started), 1 worker (one restart), then the embedded ditherd,
no waits for idle CPUs and no repeated bursts. Its figures mean nothing.

Authentication (docs/SECURITY.md): an API key is made for each mode before any load, with
dither-keys (the embedded ditherd: its DITHER_DATA_DIR; the stack: `scripts/stack.sh key create`,
its PostgreSQL, kept across the stack's restarts), and every request of the benchmark carries it.
The embedded ditherd runs on ports of its own, its notification service's included.

Writes everything measured to --out (JSON); scripts/bench/distributed_report.py renders it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402
import services as sv  # noqa: E402  (Client, Ditherd, wait_finished, make_photo, proc_cpu...)

REPO = Path(__file__).resolve().parents[2]
HZ = os.sysconf("SC_CLK_TCK")
MAX_WORKERS = 2


def log(msg: str) -> None:
    print(f"bench-distributed: {msg}", file=sys.stderr, flush=True)


def cpu_busy_before(args) -> float:
    """Waits up to args.quiet_wait s for idle CPUs (services.py); a smoke run only samples."""
    return quiet.busy_percent(0.1) if args.smoke else sv.wait_quiet(args.quiet_wait)


# ---- the stack ---------------------------------------------------------------------------------

class Stack:
    """scripts/stack.sh on ports of our own, state under --stack-dir."""

    def __init__(self, stack_dir: Path, bin_dir: Path, base: int):
        self.dir = stack_dir
        self.bin_dir = bin_dir
        self.port = base + 80
        self.upload_port = base + 81
        self.dither_port = base + 82
        self.postgres_port = base + 432
        self.kafka_port = base + 92
        self.s3_port = base + 70
        self.workers = 0
        self.script_log = stack_dir.parent / f"{stack_dir.name}-script.log"
        self.key = ""    # API key made by create_key(), in the stack's PostgreSQL
        self.owner = ""

    def env(self, workers: int) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(sv.CONFIG_PREFIXES) and k not in sv.CONFIG_NAMES}
        env.update({
            "DITHER_STACK_DIR": str(self.dir),
            "DITHER_STACK_NO_BUILD": "1",
            "DITHER_STACK_WORKERS": str(workers),
            "DITHERD_BIN_DIR": str(self.bin_dir),
            "DITHER_PORT": str(self.port),
            "UPLOAD_SERVICE_PORT": str(self.upload_port),
            "DITHER_SERVICE_PORT": str(self.dither_port),
            "POSTGRES_PORT": str(self.postgres_port),
            "KAFKA_PORT": str(self.kafka_port),
            "S3_PORT": str(self.s3_port),
            "SMTP_PORT": str(self.port - 80 + 25),
            "NOTIFY_SERVICE_PORT": str(self.port - 80 + 84),
            "LOG_LEVEL": "info",
        })
        return env

    def _script(self, action: str, workers: int) -> float:
        t0 = time.perf_counter()
        with open(self.script_log, "a") as out:
            out.write(f"\n### scripts/stack.sh {action} (DITHER_STACK_WORKERS={workers})\n")
            out.flush()
            r = subprocess.run([str(REPO / "scripts/stack.sh"), action], cwd=REPO,
                               env=self.env(workers), stdout=out, stderr=subprocess.STDOUT,
                               timeout=600)
        if r.returncode != 0:
            tail = self.script_log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"scripts/stack.sh {action} failed ({r.returncode}):\n{tail}")
        return time.perf_counter() - t0

    def up(self, workers: int) -> float:
        self.workers = workers
        took = self._script("up", workers)
        for name in self.service_names():
            sv.register_pid(self.pid(name))
        return took

    def create_key(self, name: str = "bench") -> str:
        """An API key in the stack's store (scripts/stack.sh key create: dither-keys with the
        stack's PostgreSQL and pepper); it outlives restarts of the services."""
        with open(self.script_log, "a") as log_file:
            log_file.write(f"\n### scripts/stack.sh key create --name {name}\n")
            log_file.flush()
            r = subprocess.run([str(REPO / "scripts/stack.sh"), "key", "create", "--name", name],
                               cwd=REPO, env=self.env(self.workers or MAX_WORKERS),
                               stdout=subprocess.PIPE, stderr=log_file, text=True, timeout=120)
        m = re.search(r"\bdk_\S+", r.stdout)
        if r.returncode != 0 or not m:
            tail = self.script_log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"scripts/stack.sh key create failed ({r.returncode}):\n{tail}")
        self.key = m.group(0)
        self.owner = sv.api_owner(self.port, self.key)
        return self.key

    def down(self) -> float:
        # Always with the most workers we ever start, so that none is left behind.
        took = self._script("down", MAX_WORKERS)
        self.workers = 0
        return took

    def worker_names(self) -> list[str]:
        return [f"dithering-service-{i}" for i in range(1, self.workers + 1)]

    def service_names(self) -> list[str]:
        return ["api-gateway", "upload-service", "notification-service"] + self.worker_names()

    def pid(self, name: str) -> int:
        return int((self.dir / f"{name}.pid").read_text().strip())

    def _pid_file(self, path: Path) -> list[int]:
        try:
            return [int(path.read_text().split()[0])]
        except (OSError, ValueError, IndexError):
            return []

    def process_groups(self) -> dict[str, list[int]]:
        """Every process of the stack by role; PostgreSQL with its backends."""
        groups = {name: [self.pid(name)] for name in self.service_names()}
        infra = self.dir / "infra"
        pg = self._pid_file(infra / "postgres/data/postmaster.pid")
        groups["postgres"] = pg + (sv.children_of(pg[0]) if pg else [])
        groups["kafka"] = self._pid_file(infra / "kafka/kafka.pid")
        groups["s3 (versitygw)"] = self._pid_file(infra / "s3/versitygw.pid")
        return groups


class Psql:
    """One long-lived psql session to the stack's database (a query every few ms stays cheap)."""

    def __init__(self, port: int):
        env = dict(os.environ, PGPASSWORD="dither", PGCONNECT_TIMEOUT="10")
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", "dither",
             "-d", "dither", "-v", "ON_ERROR_STOP=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1, env=env)
        sv.register_pid(self.proc.pid)

    def query(self, sql: str) -> list[list[str]]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __end__\n")
        self.proc.stdin.flush()
        rows = []
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == "__end__":
                return rows
            if line.startswith(("ERROR", "FATAL", "psql:")):
                raise RuntimeError(f"psql: {line}")
            if line:
                rows.append(line.split("|"))
        raise RuntimeError(f"psql exited ({self.proc.wait()})")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class ClaimSampler(threading.Thread):
    """Samples which worker holds a lease on which dither while a burst runs."""

    def __init__(self, port: int, interval: float):
        super().__init__(daemon=True)
        self.psql = Psql(port)
        self.interval = interval
        self.seen: dict[int, set[str]] = {}
        self.samples = 0
        self.error: str | None = None
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.is_set():
                for dither_id, worker in self.psql.query(
                        "SELECT id, claimed_by FROM dither.dithers WHERE claimed_by <> ''"):
                    self.seen.setdefault(int(dither_id), set()).add(worker)
                self.samples += 1
                self._done.wait(self.interval)
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
        self.psql.close()


# ---- measurements ------------------------------------------------------------------------------

def one_upload(client: sv.Client, data: bytes, name: str, poll: float) -> dict:
    t0 = time.perf_counter()
    record = client.upload(data, name)
    t_post = time.perf_counter() - t0
    done = sv.wait_finished(client, record["uuid"], poll)
    return {"uuid": record["uuid"], "post_s": t_post, "finished_s": time.perf_counter() - t0,
            "created_at": done.get("created_at"), "updated_at": done.get("updated_at")}


def latency(args, ports: dict[str, int], keys: dict[str, str], photos: dict[str, bytes],
            pids: list[int]) -> dict:
    """Sequential uploads, the modes alternated (and which goes first alternated too). `pids`:
    both modes' processes, to tell how much CPU anything else took meanwhile."""
    out = {}
    clients = {mode: sv.Client(port, keys[mode]) for mode, port in ports.items()}
    modes = list(ports)
    for size, count in args.latency_counts.items():
        busy = cpu_busy_before(args)
        log(f"latency, {size}: {count} uploads per mode, alternated (CPU busy {busy:.0f}% before)")
        runs: dict[str, list] = {m: [] for m in modes}
        ours0, m0, w0 = sum(sv.proc_cpu(p) for p in pids), quiet.cpu_times(), time.perf_counter()
        for i in range(count):
            for mode in (modes if i % 2 == 0 else modes[::-1]):
                runs[mode].append(one_upload(clients[mode], photos[size], f"lat-{size}-{i}.jpg",
                                             args.poll))
        wall = time.perf_counter() - w0
        m1, ours = quiet.cpu_times(), sum(sv.proc_cpu(p) for p in pids) - ours0
        machine = ((m1[0] - m0[0]) - (m1[1] - m0[1])) / HZ
        others_share = max(0.0, machine - ours) / (wall * (os.cpu_count() or 1))
        for mode in modes:
            ms = sorted(1e3 * r["finished_s"] for r in runs[mode])
            log(f"  {mode:12s} p50 {statistics.median(ms):7.0f} ms  max {ms[-1]:7.0f} ms")
        log(f"  others' CPU meanwhile {100 * others_share:.0f}% (the client included)")
        out[size] = {"busy_before": busy, "runs": runs, "others_share": others_share}
    for c in clients.values():
        c.close()
    return out


def burst(args, port: int, key: str, data: bytes, label: str, groups: dict[str, list[int]],
          sampler_port: int | None = None) -> dict:
    """args.burst uploads from args.clients clients back to back; waits until all FINISHED."""
    busy = cpu_busy_before(args)
    uuids: list[str] = []
    posted_at: dict[str, float] = {}
    lock = threading.Lock()
    errors: list[str] = []
    per_client = [args.burst // args.clients + (1 if k < args.burst % args.clients else 0)
                  for k in range(args.clients)]
    sampler = ClaimSampler(sampler_port, args.sample_interval) if sampler_port else None

    def uploader(k: int) -> None:
        c = sv.Client(port, key)
        try:
            for j in range(per_client[k]):
                u = c.upload(data, f"burst-{label}-{k}-{j}.jpg")["uuid"]
                with lock:
                    uuids.append(u)
                    posted_at[u] = time.perf_counter()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    cpu0 = {k: sum(sv.proc_cpu(p) for p in pids) for k, pids in groups.items()}
    m0 = quiet.cpu_times()
    if sampler:
        sampler.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=uploader, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_posted = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"burst uploads failed: {errors}")
    finished_at: dict[str, float] = {}
    client = sv.Client(port, key)
    deadline = time.monotonic() + 600
    while len(finished_at) < len(uuids):
        status, body = client.call("GET", "/api/images?limit=1000")
        if status != 200:
            raise RuntimeError(f"GET /api/images: {status} {body[:300]!r}")
        now = time.perf_counter()
        for item in json.loads(body)["items"]:
            u = item["uuid"]
            if u in posted_at and u not in finished_at:
                if item["status"] == "FAILED":
                    raise RuntimeError(f"{u} FAILED: {item.get('error')}")
                if item["status"] == "FINISHED":
                    finished_at[u] = now
        if len(finished_at) < len(uuids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(uuids) - len(finished_at)} images not FINISHED "
                                   "after 600 s")
            time.sleep(args.list_poll)
    t_all = time.perf_counter() - t0
    m1 = quiet.cpu_times()
    cpu1 = {k: sum(sv.proc_cpu(p) for p in pids) for k, pids in groups.items()}
    client.close()
    if sampler:
        sampler.stop()
    res = {
        "label": label, "uploads": len(uuids), "clients": args.clients, "busy_before": busy,
        "all_posted_s": t_posted, "all_finished_s": t_all,
        "images_per_minute": 60 * len(uuids) / t_all,
        "cpu_s": {k: cpu1[k] - cpu0[k] for k in groups},
        "machine_cpu_s": ((m1[0] - m0[0]) - (m1[1] - m0[1])) / HZ,
        "wall_per_image_s": sorted(finished_at[u] - posted_at[u] for u in uuids),
    }
    res["others_share"] = max(0.0, res["machine_cpu_s"] - sum(res["cpu_s"].values())) / \
        (t_all * (os.cpu_count() or 1))
    if sampler:
        res["split"] = split_of(sampler, sampler_port, uuids, groups)
    log(f"  {label:28s} {res['images_per_minute']:6.0f} images/min "
        f"({len(uuids)} in {t_all:.1f} s, all posted after {t_posted:.1f} s)"
        + (f"; split {res['split']['per_worker']}" if sampler else "")
        + f"; others' CPU {100 * res['others_share']:.0f}%")
    return res


def steady_burst(args, *a, **kw) -> dict:
    """burst(), run again (twice at most; never in a smoke run) when something else took more
    than args.max_others of the machine meanwhile: the machine is shared."""
    disturbed = []
    attempts = 1 if args.smoke else 3
    for attempt in range(attempts):
        res = burst(args, *a, **kw)
        if res["others_share"] <= args.max_others or attempt == attempts - 1:
            res["disturbed_attempts"] = disturbed
            return res
        disturbed.append(res["others_share"])
        log(f"  disturbed (others used {100 * res['others_share']:.0f}% of the machine): again")
    raise AssertionError("unreachable")


def split_of(sampler: ClaimSampler, port: int, uuids: list[str],
             groups: dict[str, list[int]]) -> dict:
    """Which worker held each of the burst's dithers, and whether any was held by two."""
    psql = Psql(port)
    try:
        quoted = ",".join(f"'{u}'" for u in uuids)  # uuids come from our own server's answers
        rows = psql.query(f"SELECT id, uuid, status FROM dither.dithers WHERE uuid IN ({quoted})")
    finally:
        psql.close()
    by_pid = {str(pids[0]): name for name, pids in groups.items()
              if name.startswith("dithering-service") and pids}
    per_worker: dict[str, int] = {}
    unseen = twice = 0
    for dither_id, _, _ in rows:
        holders = sampler.seen.get(int(dither_id), set())
        if not holders:
            unseen += 1
            continue
        if len(holders) > 1:
            twice += 1
        for h in holders:
            # "<host>:<pid>:<thread>" -> the process's name in the stack
            parts = h.rsplit(":", 2)
            name = by_pid.get(parts[1], h) if len(parts) == 3 else h
            per_worker[name] = per_worker.get(name, 0) + 1
    per_uuid: dict[str, int] = {}
    for _, u, _ in rows:
        per_uuid[u] = per_uuid.get(u, 0) + 1
    return {
        "dithers": len(rows), "finished": sum(1 for r in rows if r[2] == "FINISHED"),
        "images": len(uuids), "images_with_one_dither": sum(1 for n in per_uuid.values() if n == 1),
        "per_worker": dict(sorted(per_worker.items())), "not_seen": unseen,
        "held_by_two_workers": twice, "samples": sampler.samples,
        "sample_interval_s": sampler.interval, "sampler_error": sampler.error,
    }


def warm(port: int, key: str, data: bytes, poll: float, count: int = 2) -> None:
    c = sv.Client(port, key)
    for i in range(count):
        one_upload(c, data, f"warmup-{i}.jpg", poll)
    c.close()


# ---- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--stack-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--port-base", type=int, default=26000)
    ap.add_argument("--pidfile", type=Path)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--smoke", action="store_true",
                      help="every step with the fewest uploads and small photos (CI)")
    ap.add_argument("--quiet-wait", type=float, default=10)
    args = ap.parse_args()
    args.bin_dir = args.bin_dir.resolve()
    args.workdir = args.workdir.resolve()
    args.stack_dir = args.stack_dir.resolve()
    sv._PIDFILE = args.pidfile
    args.poll = 0.005
    args.list_poll = 0.02
    args.sample_interval = 0.02
    args.clients = 4
    args.max_others = 0.15
    # The larger photo first: the bursts and the warm-ups use it.
    sizes = {"4MP": (2400, 1680), "1MP": (1200, 840)}
    warm_counts = (2, 1)
    if args.smoke:
        sizes = {"1MP": (1200, 840), "0.25MP": (600, 420)}
        warm_counts = (1, 1)
        args.latency_counts = {size: 1 for size in sizes}
        args.burst, args.throughput_rounds, args.scale_rounds = 2, 1, 1
        args.clients = 2
        args.quiet_wait = 0
    elif args.quick:
        args.latency_counts = dict(zip(sizes, (6, 4)))
        args.burst, args.throughput_rounds, args.scale_rounds = 12, 1, 1
        args.quiet_wait = min(args.quiet_wait, 3)
    else:
        args.latency_counts = dict(zip(sizes, (30, 15)))
        args.burst, args.throughput_rounds, args.scale_rounds = 40, 2, 2

    big, small = sizes
    args.workdir.mkdir(parents=True, exist_ok=True)
    photos = {}
    for size, (w, h) in sizes.items():
        path = args.workdir / f"photo-{size}.jpg"
        sv.make_photo(path, w, h)
        photos[size] = path.read_bytes()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    stack = Stack(args.stack_dir, args.bin_dir, args.port_base)
    embedded = sv.Ditherd(args.bin_dir / "ditherd", args.workdir, "ditherd",
                          keys_binary=args.bin_dir / "dither-keys")
    # All four of its ports: the notification service's default (8084) may be taken.
    embedded.port, embedded.upload_port, embedded.dither_port, embedded.notify_port = (
        args.port_base + 180, args.port_base + 181, args.port_base + 182, args.port_base + 183)
    results: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "model": sv.cpu_model(), "kernel": platform.release()},
        "quick": args.quick,
        "smoke": args.smoke,
        "photos": {s: {"width": w, "height": h, "bytes": len(photos[s])}
                   for s, (w, h) in sizes.items()},
        "burst_photo": big,
        "warmups_after_restart": warm_counts[0],
        "poll_interval_s": args.poll, "clients": args.clients, "burst": args.burst,
        "stack_timings_s": {},
    }
    try:
        # A fresh stack: whatever an earlier, interrupted run left is stopped and removed.
        if args.stack_dir.exists():
            stack.down()
            subprocess.run(["rm", "-rf", str(args.stack_dir)], check=True)
        log(f"stack up ({MAX_WORKERS} dithering workers), gateway :{stack.port}")
        results["stack_timings_s"]["first_up"] = stack.up(MAX_WORKERS)
        embedded.start()
        log(f"ditherd (embedded) up, gateway :{embedded.port}")
        # An API key for each mode before any load.
        stack.create_key("bench-distributed")
        embedded.create_key("bench-distributed")
        log(f"API keys made (owners: stack {stack.owner}, embedded {embedded.owner})")
        ports = {"embedded": embedded.port, "distributed": stack.port}
        keys = {"embedded": embedded.key, "distributed": stack.key}
        for mode, port in ports.items():
            warm(port, keys[mode], photos[big], args.poll, warm_counts[0])
            warm(port, keys[mode], photos[small], args.poll, warm_counts[1])

        both = [embedded.proc.pid] + [p for g in stack.process_groups().values() for p in g]
        results["latency"] = latency(args, ports, keys, photos, both)

        log(f"throughput: {args.burst} uploads of {big} from {args.clients} clients, "
            f"{args.throughput_rounds} round(s) per mode")
        rounds = []
        for r in range(args.throughput_rounds):
            order = ["embedded", "distributed"] if r % 2 == 0 else ["distributed", "embedded"]
            rnd = {}
            for mode in order:
                groups = ({"ditherd": [embedded.proc.pid]} if mode == "embedded"
                          else stack.process_groups())
                rnd[mode] = steady_burst(args, ports[mode], keys[mode], photos[big],
                                         f"{mode} r{r + 1}", groups)
            rounds.append(rnd)
        results["throughput"] = rounds
        log("scale: the stack with 1 dithering worker and with 2 (restarted between), the "
            "embedded ditherd beside")
        # Round 1: restart with 1, then 2; round 2: 2 again (already up), then restart with 1.
        # The embedded ditherd (one dither at a time by default) gets a burst next to the
        # 1-worker stack each round: the like-for-like comparison.
        # A smoke run starts with the 2 workers already up: one restart instead of two.
        plan: list = [1, "embedded", 2] + ([2, "embedded", 1] if args.scale_rounds > 1 else [])
        if args.smoke:
            plan = [2, 1, "embedded"]
        scale = []
        for workers in plan:
            if workers == "embedded":
                res = steady_burst(args, embedded.port, embedded.key, photos[big], "embedded",
                                   {"ditherd": [embedded.proc.pid]})
                res["workers"] = 0
                scale.append(res)
                continue
            if stack.workers != workers:
                down = stack.down()
                up = stack.up(workers)
                results["stack_timings_s"].setdefault("restarts", []).append(
                    {"down": down, "up": up, "workers": workers})
                warm(stack.port, stack.key, photos[big], args.poll, warm_counts[0])
            res = steady_burst(args, stack.port, stack.key, photos[big],
                               f"stack, {workers} worker(s)", stack.process_groups(),
                               sampler_port=stack.postgres_port)
            res["workers"] = workers
            scale.append(res)
        results["scale"] = scale
        ditherd_log = (embedded.dir / "stderr.log").read_text(errors="replace") + \
            (embedded.dir / "stdout.log").read_text(errors="replace")
        results["ditherd_config"] = dict(re.findall(r"config (\w+)=(\S*)", ditherd_log))
    finally:
        # A second Ctrl-C or TERM must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        embedded.stop()
        try:
            if stack.dir.exists():
                results["stack_timings_s"]["last_down"] = stack.down()
        except Exception as e:  # noqa: BLE001
            log(f"stack down failed: {e}")
    args.out.write_text(json.dumps(results, indent=1))
    log(f"raw results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
