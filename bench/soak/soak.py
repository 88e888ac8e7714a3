#!/usr/bin/env python3
"""The abuse soak (issue 13, item 10; docs/BENCHMARKS.md "Abuse soak"), run by scripts/soak.sh.

  soak.py --ditherd BIN --keys BIN --vegeta BIN --workdir DIR --out results.json
          [--seconds 60] [--smoke] [--pidfile FILE]

Starts one ditherd on a free loopback port with a fresh data directory and its limits at their
defaults (but QUOTA_IMAGES (40), lowered as docs/SECURITY.md suggests for public owners, so that the
abuser can reach it within the run), makes API keys with dither-keys, and runs two phases of equal
length:

- baseline: well-behaved clients alone;
- abuse: the same well-behaved load (fresh owners of their own) while an abusive client floods
  previews, uploads past its quota, floods dither requests, holds many connections and sends slow
  request bodies.

The well-behaved clients and the abuser's HTTP floods are vegeta (a third-party load generator,
constant request rates, latencies measured by it); the connections and slow bodies are raw sockets
(bench/soak/abuse.py). Well-behaved clients connect from 127.0.0.1; the abuser from 127.0.0.2
(its API traffic, previews and slow bodies) and 127.0.0.3 (idle connections): the gateway counts
rate limits and connections per client address, and all of 127.0.0.0/8 is loopback on Linux.
Nothing is sent anywhere but to the gateway on 127.0.0.1.

After each phase it waits (bounded) for the dither queue to drain and checks that everything the
server accepted (201 uploads, 202 dithers, the abuser's included) is listed and FINISHED. Writes
everything measured to --out (JSON); bench/soak/report.py renders it and judges the goals.
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "scripts" / "bench"))
import abuse  # noqa: E402
import report  # noqa: E402
# The other benchmarks' /proc readings: CPU of a process and its threads, the machine's jiffies,
# waiting for idle CPUs, the CPU model.
from quiet import cpu_times as machine_jiffies  # noqa: E402
from services import cpu_model, proc_cpu, thread_cpu, wait_quiet  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
GOOD_ADDRESS = "127.0.0.1"
ABUSER_ADDRESS = "127.0.0.2"  # the abuser's API traffic, preview flood and slow bodies
HOLDER_ADDRESS = "127.0.0.3"  # the abuser's idle connections

# Well-behaved load: GOOD_OWNERS owners (API keys of their own), each GOOD_RATE requests a second
# in a fixed mix (per 10 requests: 1 upload, 1 dither request, 8 reads: records, lists, previews).
# Per owner that is 30 uploads and 30 dither requests a minute, well within the default budgets
# (120 and 240 a minute), and never near the pending-dither quota (20) while the worker keeps up.
GOOD_OWNERS = 4
GOOD_RATE = 5.0
GOOD_IMAGES = 3  # uploaded per owner before the phase: what its dithers and reads are about

# The abuser.
ABUSER_IMAGES = 3
FLOOD_RATE = int(os.environ.get("SOAK_FLOOD_RATE", "5000"))  # preview GETs a second
FLOOD_WORKERS = 128  # vegeta's concurrent requests at most (connections from 127.0.0.2)
UPLOAD_FLOOD_RATE = 20  # uploads a second (its budget: 120 a minute, burst 120)
DITHER_FLOOD_RATE = 20  # dither requests a second (its budget: 240 a minute, burst 240)
HELD_CONNECTIONS = 320  # idle connections from 127.0.0.3 (the cap per address: 256)
SLOW_BODIES = 32  # uploads whose bodies drip at 64 bytes/s (BODY_MIN_RATE: 4096)
ATTACKS = ("previews", "uploads", "dithers", "connections", "slow_bodies")

# The server: the defaults, but a lower image quota (docs/SECURITY.md: "lower them for public
# sessions"), so that the abuser, which may upload 20 at once (10 s of its budget) and then 2 a
# second, reaches it within a --smoke phase too, while a well-behaved owner (3 images, then one
# upload every 2 s for at most 60 s) stays under it.
QUOTA_IMAGES = 40


def log(msg: str) -> None:
    print(f"soak: {msg}", file=sys.stderr, flush=True)


_PIDFILE: Path | None = None


def register_pid(pid: int) -> None:
    """Records a started process for the shell's cleanup trap (scripts/soak.sh)."""
    if _PIDFILE is not None:
        with open(_PIDFILE, "a") as f:
            f.write(f"{pid}\n")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def parse_time(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ---- the server ------------------------------------------------------------------------------

class Ditherd:
    def __init__(self, binary: Path, keys_binary: Path, workdir: Path):
        self.binary, self.keys_binary = binary, keys_binary
        self.dir = workdir / "ditherd"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.config = {
            "DITHER_HOST": HOST,
            "DITHER_PORT": str(self.port),
            # The services' own loopback ports: any free ones.
            "UPLOAD_SERVICE_PORT": "0", "DITHER_SERVICE_PORT": "0", "NOTIFY_SERVICE_PORT": "0",
            "DITHER_DATA_DIR": str(self.dir / "data"),
            "QUOTA_IMAGES": str(QUOTA_IMAGES),
        }

    def env(self) -> dict:
        # Only what a shell needs, then our configuration: nothing the caller's environment sets
        # (a RATE_LIMIT_*, a KAFKA_SERVER) changes what is measured.
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        env.update(self.config)
        return env

    def start(self) -> None:
        self.proc = subprocess.Popen([str(self.binary)], env=self.env(), cwd=self.dir,
                                     stdout=open(self.dir / "stdout.log", "w"),
                                     stderr=open(self.dir / "stderr.log", "w"),
                                     start_new_session=True)
        register_pid(self.proc.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ditherd exited with {self.proc.returncode}: "
                                   f"{(self.dir / 'stderr.log').read_text()[-2000:]}")
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    c.close()
                    return
                c.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ditherd did not answer /health within 30 s")

    def create_key(self, name: str, owner: str) -> str:
        r = subprocess.run([str(self.keys_binary), "create", "--name", name, "--owner", owner],
                           env=self.env(), cwd=self.dir, capture_output=True, text=True,
                           timeout=60)
        key = r.stdout.strip().split()[-1] if r.stdout.strip() else ""
        if r.returncode != 0 or not key.startswith("dk_"):
            raise RuntimeError(f"dither-keys create failed ({r.returncode}): {r.stderr[-2000:]}")
        return key

    def log_counts(self) -> dict:
        """How often ditherd has logged each 5xx answer so far ("http: 503 overloaded ...")."""
        counts: dict[str, int] = {}
        for log_file in ("stdout.log", "stderr.log"):
            path = self.dir / log_file
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("http: 5"):
                    key = " ".join(line.split()[1:3])
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def config_line(self, name: str) -> str:
        """The value ditherd logged for a variable at start-up ("config NAME=VALUE")."""
        marker = f"config {name}="
        for log_file in ("stdout.log", "stderr.log"):
            for line in (self.dir / log_file).read_text(errors="replace").splitlines():
                if marker in line:
                    return line.split(marker, 1)[1].strip()
        return ""

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


class Api:
    """One keep-alive connection to the gateway with one API key."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, bytes, dict]:
        hdrs = {**(headers or {}), "Authorization": f"Bearer {self.key}"}
        for attempt in (1, 2, 3):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                if r.status == 429 and attempt < 3:
                    time.sleep(float(r.getheader("Retry-After") or 1))
                    continue
                return r.status, data, dict(r.getheaders())
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
                if attempt == 3:
                    raise
        raise AssertionError("unreachable")

    def upload(self, data: bytes, filename: str) -> dict:
        status, body, _ = self.call("POST", f"/api/images?filename={filename}", data,
                                    {"Content-Type": "image/jpeg"})
        if status != 201:
            raise RuntimeError(f"setup upload: {status} {body[:300]!r}")
        return json.loads(body)

    def list_all(self, path: str) -> list[dict]:
        items, cursor = [], None
        while True:
            q = f"{path}?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            status, body, _ = self.call("GET", q)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
            page = json.loads(body)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def close(self) -> None:
        self.conn.close()


def make_jpeg(path: Path, width: int, height: int, seed: int) -> bytes:
    subprocess.run(["convert", "-seed", str(seed), "-size", f"{width}x{height}", "plasma:fractal",
                    "-quality", "88", str(path)], check=True, timeout=120)
    return path.read_bytes()


def thumbnail_link(url: str) -> str:
    """The preview of a stored file: the same signed link under /thumbnails/ (docs/API.md)."""
    u = urllib.parse.urlsplit(url)
    if not u.path.startswith("/files/") or "sig=" not in u.query:
        raise RuntimeError(f"not a signed file link: {url}")
    return f"http://{HOST}:{u.port}/thumbnails/{u.path[len('/files/'):]}?{u.query}"


def wait_finished(api: Api, uuids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for uuid in uuids:
        while True:
            status, body, _ = api.call("GET", f"/api/images/{uuid}")
            state = json.loads(body).get("status") if status == 200 else None
            if state == "FINISHED":
                break
            if state == "FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"setup image {uuid} is {state or status}, not FINISHED")
            time.sleep(0.05)


# ---- vegeta ----------------------------------------------------------------------------------

def json_target(method: str, url: str, key: str | None = None, body: bytes | None = None,
                content_type: str | None = None) -> str:
    header = {}
    if key:
        header["Authorization"] = [f"Bearer {key}"]
    if content_type:
        header["Content-Type"] = [content_type]
    t = {"method": method, "url": url, "header": header}
    if body is not None:
        t["body"] = base64.b64encode(body).decode()
    return json.dumps(t)


class Vegeta:
    def __init__(self, binary: Path, workdir: Path):
        self.binary, self.dir = binary, workdir

    def start(self, name: str, targets: list[str], fmt: str, rate: float, seconds: float,
              source: str, timeout: str, max_body: int, workers: int,
              max_workers: int) -> tuple[subprocess.Popen, Path]:
        tfile = self.dir / f"{name}.targets"
        tfile.write_text("\n".join(targets) + "\n")
        out = self.dir / f"{name}.bin"
        # The rate per minute keeps fractional rates exact.
        argv = [str(self.binary), "attack", f"-name={name}", f"-format={fmt}",
                f"-targets={tfile}", f"-rate={round(rate * 60)}/1m", f"-duration={seconds}s",
                f"-timeout={timeout}", f"-laddr={source}", f"-max-body={max_body}",
                f"-workers={workers}", f"-max-workers={max_workers}", f"-output={out}"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                stderr=open(self.dir / f"{name}.stderr", "w"))
        register_pid(proc.pid)
        return proc, out

    def results(self, path: Path):
        """Each result of an attack, as a dict (vegeta encode -to json)."""
        proc = subprocess.Popen([str(self.binary), "encode", "-to", "json", str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                yield json.loads(line)
        if proc.wait() != 0:
            raise RuntimeError(f"vegeta encode {path} failed")

    def summary(self, path: Path) -> dict:
        r = subprocess.run([str(self.binary), "report", "-type=json", str(path)],
                           capture_output=True, text=True, check=True, timeout=600)
        return json.loads(r.stdout)


def error_code(result: dict) -> str:
    """"429 rate_limited": the status and the JSON error's code (or vegeta's error)."""
    code = result.get("code", 0)
    body = result.get("body") or ""
    name = ""
    if body:
        try:
            name = json.loads(base64.b64decode(body))["error"]["code"]
        except (ValueError, KeyError, TypeError):
            name = ""
    if not name:
        name = (result.get("error") or "").split(": ")[-1][:80] or "no body"
    return f"{code} {name}" if code else f"no answer: {name}"


def kind_of(result: dict) -> str:
    method, path = result["method"], urllib.parse.urlsplit(result["url"]).path
    if method == "POST" and path == "/api/images":
        return "upload"
    if method == "POST" and path.startswith("/api/dithers/"):
        return "dither"
    if path.startswith("/thumbnails/"):
        return "preview"
    return "read"


def percentiles(values: list[float]) -> dict:
    """Nearest-rank p50/p90/p99 and max (ms), and n."""
    if not values:
        return {"n": 0}
    v = sorted(values)

    def rank(p: float) -> float:
        return v[max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))]

    return {"n": len(v), "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": v[-1]}


# ---- the soak --------------------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        self.workdir = Path(args.workdir)
        self.seconds = args.seconds
        self.server = Ditherd(Path(args.ditherd), Path(args.keys), self.workdir)
        self.vegeta = Vegeta(Path(args.vegeta), self.workdir)
        self.results: dict = {"phases": {}}
        self.attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
        unknown = set(self.attacks) - set(ATTACKS)
        if unknown:
            raise SystemExit(f"soak: unknown attacks {sorted(unknown)} (known: {ATTACKS})")

    # -- setup --

    def setup(self) -> None:
        log(f"test images (ImageMagick) in {self.workdir}")
        self.good_jpeg = make_jpeg(self.workdir / "good.jpg", 640, 480, 1)
        # The abuser's photo: 1 MP (a smaller one with --smoke, so that the queue of its
        # accepted dithers drains sooner after the phase).
        w, h = (800, 560) if self.args.smoke else (1200, 840)
        self.abuse_jpeg = make_jpeg(self.workdir / "abuse.jpg", w, h, 2)
        self.abuse_size = f"{w}x{h}"
        log(f"ditherd on {HOST}:{self.server.port}, data in {self.server.dir / 'data'}")
        self.server.start()
        base = f"http://{HOST}:{self.server.port}"
        self.base = base
        self.owners: dict[str, list[dict]] = {}
        for phase in ("baseline", "abuse"):
            owners = []
            for i in range(1, GOOD_OWNERS + 1):
                name = f"soak-{phase}-good-{i}"
                owners.append({"owner": name, "key": self.server.create_key(name, name)})
            self.owners[phase] = owners
        self.abuser = {"owner": "soak-abuser",
                       "key": self.server.create_key("soak-abuser", "soak-abuser")}
        # What each owner's dithers and reads are about: images uploaded before the phases.
        for owner in [o for os_ in self.owners.values() for o in os_] + [self.abuser]:
            api = Api(self.server.port, owner["key"])
            data, count = ((self.abuse_jpeg, ABUSER_IMAGES) if owner is self.abuser
                           else (self.good_jpeg, GOOD_IMAGES))
            records = [api.upload(data, f"setup-{i}.jpg") for i in range(count)]
            wait_finished(api, [r["uuid"] for r in records], 120)
            owner["images"] = [r["uuid"] for r in records]
            owner["previews"] = [thumbnail_link(r["url"]) for r in records]
            # Made once, at the first request: from here on previews are files.
            for link in owner["previews"]:
                u = urllib.parse.urlsplit(link)
                status, _, _ = api.call("GET", f"{u.path}?{u.query}")
                if status != 200:
                    raise RuntimeError(f"preview {u.path}: {status}")
            api.close()
        log(f"{GOOD_OWNERS} well-behaved owners per phase and 1 abuser, "
            f"{GOOD_IMAGES}/{ABUSER_IMAGES} images each uploaded and FINISHED")

    def good_targets(self, owners: list[dict]) -> list[str]:
        """A fixed mix per owner, interleaved over the owners; vegeta cycles through the list."""
        per_owner = []
        for o in owners:
            img, prev, key = o["images"], o["previews"], o["key"]
            seq = []
            for k in range(GOOD_IMAGES):  # one cycle per image, so dithers go to each in turn
                u = img[k]
                seq += [
                    json_target("POST", f"{self.base}/api/images?filename=good-{k}.jpg", key,
                                self.good_jpeg, "image/jpeg"),
                    json_target("GET", f"{self.base}/api/images/{u}", key),
                    json_target("GET", f"{self.base}/api/images?limit=20", key),
                    json_target("GET", prev[k]),
                    json_target("GET", f"{self.base}/api/dithers/{img[(k + 1) % len(img)]}", key),
                    json_target("POST", f"{self.base}/api/dithers/{u}/4?algorithm=atkinson"
                                f"&palette=pico8", key),
                    json_target("GET", f"{self.base}/api/images/{img[(k + 2) % len(img)]}", key),
                    json_target("GET", prev[(k + 1) % len(prev)]),
                    json_target("GET", f"{self.base}/api/dithers?limit=20", key),
                    json_target("GET", f"{self.base}/api/me", key),
                ]
            per_owner.append(seq)
        return [t for group in zip(*per_owner) for t in group]

    # -- one phase --

    def run_phase(self, name: str, with_abuser: bool) -> dict:
        owners = self.owners[name]
        seconds = self.seconds
        busy_before = wait_quiet(self.args.quiet_wait)
        log(f"phase {name}: {seconds} s, {GOOD_OWNERS} well-behaved owners at "
            f"{GOOD_RATE:g} requests/s each" + (", with the abuser" if with_abuser else "")
            + f" (CPUs busy just before: {busy_before:.0f}%)")
        pid = self.server.proc.pid
        cpu0 = (proc_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN),
                resource.getrusage(resource.RUSAGE_SELF), machine_jiffies())
        log0 = self.server.log_counts()
        threads0 = thread_cpu(pid)
        started_wall = time.time()
        start = time.monotonic()
        deadline = start + seconds
        procs = {}
        procs["good"] = self.vegeta.start(
            f"{name}-good", self.good_targets(owners), "json", GOOD_RATE * GOOD_OWNERS, seconds,
            GOOD_ADDRESS, "30s", -1, 8, 200)
        threads = {}
        attacks = self.attacks if with_abuser else ()
        a = self.abuser
        if "previews" in attacks:
            previews = [f"GET {link}" for link in a["previews"]]
            procs["previews"] = self.vegeta.start(
                f"{name}-abuser-previews", previews, "http", FLOOD_RATE, seconds, ABUSER_ADDRESS,
                "10s", 0, 32, FLOOD_WORKERS)
        if "uploads" in attacks:
            uploads = [json_target("POST", f"{self.base}/api/images?filename=abuse.jpg", a["key"],
                                   self.abuse_jpeg, "image/jpeg")]
            procs["uploads"] = self.vegeta.start(
                f"{name}-abuser-uploads", uploads, "json", UPLOAD_FLOOD_RATE, seconds,
                ABUSER_ADDRESS, "30s", 4096, 4, 64)
        if "dithers" in attacks:
            dithers = [json_target("POST", f"{self.base}/api/dithers/{u}/2", a["key"])
                       for u in a["images"]]
            procs["dithers"] = self.vegeta.start(
                f"{name}-abuser-dithers", dithers, "json", DITHER_FLOOD_RATE, seconds,
                ABUSER_ADDRESS, "30s", 4096, 4, 64)
        if "connections" in attacks:
            threads["connections"] = abuse.ConnectionHolder(
                HOLDER_ADDRESS, HOST, self.server.port, HELD_CONNECTIONS, deadline)
        if "slow_bodies" in attacks:
            threads["slow_bodies"] = abuse.SlowBodies(
                ABUSER_ADDRESS, HOST, self.server.port, a["key"], SLOW_BODIES, deadline)
        for t in threads.values():
            t.start()
        for t in threads.values():
            t.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
        for key, (proc, _) in procs.items():
            try:
                proc.wait(timeout=seconds + 120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - start
        threads1 = thread_cpu(pid)
        cpu1 = (proc_cpu(pid), resource.getrusage(resource.RUSAGE_CHILDREN),
                resource.getrusage(resource.RUSAGE_SELF), machine_jiffies())
        if self.server.proc.poll() is not None:
            raise RuntimeError(f"ditherd exited during the {name} phase "
                               f"({self.server.proc.returncode})")

        total_j = cpu1[3][0] - cpu0[3][0]
        busy_s = (total_j - (cpu1[3][1] - cpu0[3][1])) / HZ
        cores = total_j / HZ / elapsed if elapsed > 0 else 0
        ditherd_s = cpu1[0] - cpu0[0]
        vegeta_s = ((cpu1[1].ru_utime + cpu1[1].ru_stime) - (cpu0[1].ru_utime + cpu0[1].ru_stime))
        self_s = ((cpu1[2].ru_utime + cpu1[2].ru_stime) - (cpu0[2].ru_utime + cpu0[2].ru_stime))
        phase = {
            "seconds": seconds, "elapsed": round(elapsed, 2), "started": started_wall,
            "busy_before_percent": round(busy_before),
            "cpu": {  # percent of one core, averaged over the phase
                "cores": round(cores, 2),
                "ditherd": round(100 * ditherd_s / elapsed),
                "vegeta": round(100 * vegeta_s / elapsed),
                "raw_sockets": round(100 * self_s / elapsed),
                "machine": round(100 * busy_s / elapsed),
                "others": round(100 * max(0.0, busy_s - ditherd_s - vegeta_s - self_s) / elapsed),
                # ditherd's busiest threads (percent of one core): the one I/O thread, the
                # blocking pool's, the dithering worker's and libvips's.
                "ditherd_threads": sorted(
                    (round(100 * (s - threads0.get(k, 0.0)) / elapsed) for k, s in
                     threads1.items()), reverse=True)[:6],
            },
        }
        phase["good"], accepted_good = self.good_figures(procs["good"][1], started_wall)
        accepted = {"good": accepted_good}
        if with_abuser:
            phase["abuser"], accepted["abuser"] = self.abuser_figures(procs, threads)
        log1 = self.server.log_counts()
        phase["server_5xx_logged"] = {k: n - log0.get(k, 0) for k, n in log1.items()
                                      if n - log0.get(k, 0) > 0}
        phase["work"] = self.verify(name, owners, accepted, started_wall)
        return phase

    def good_figures(self, path: Path, started: float) -> tuple[dict, dict]:
        by_kind: dict[str, list[float]] = {}
        everything: list[float] = []
        failures: dict[str, int] = {}
        ok = total = 0
        first = last = None
        uploads, dithers = [], []
        windows: dict[int, list] = {}  # 10 s windows of the phase: latencies, failures
        csv = open(path.with_suffix(".csv"), "w")
        csv.write("seconds_into_phase,kind,status,latency_ms\n")
        for r in self.vegeta.results(path):
            total += 1
            ms = r["latency"] / 1e6
            kind = kind_of(r)
            by_kind.setdefault(kind, []).append(ms)
            everything.append(ms)
            t = parse_time(r["timestamp"])
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
            code = r.get("code", 0)
            csv.write(f"{t - started:.3f},{kind},{code},{ms:.3f}\n")
            window = windows.setdefault(int((t - started) // 10), [[], 0])
            window[0].append(ms)
            window[1] += not 200 <= code < 300
            if 200 <= code < 300:
                ok += 1
                if kind in ("upload", "dither"):
                    rec = json.loads(base64.b64decode(r["body"]))
                    if kind == "upload":
                        uploads.append(rec["uuid"])
                    else:
                        dithers.append((rec["uuid"], rec["id"]))
            else:
                k = f"{kind}: {error_code(r)}"
                failures[k] = failures.get(k, 0) + 1
        figures = {
            "requests": total, "ok": ok,
            "success_rate": ok / total if total else 0.0,
            "rate": round(total / (last - first), 1) if first and last and last > first else 0,
            "latency_ms": {"all": percentiles(everything),
                           **{k: percentiles(v) for k, v in sorted(by_kind.items())}},
            "failures": failures,
            "windows": [{"from_s": 10 * w, "n": len(v[0]), "failed": v[1],
                         "p99": percentiles(v[0])["p99"]} for w, v in sorted(windows.items())],
        }
        csv.close()
        return figures, {"uploads": uploads, "dithers": dithers}

    def api_attack(self, path: Path) -> tuple[dict, list]:
        """An abuser's vegeta attack on the API: answers by status and error code, and what was
        accepted (records)."""
        answers: dict[str, int] = {}
        accepted = []
        total = 0
        latencies = []
        for r in self.vegeta.results(path):
            total += 1
            latencies.append(r["latency"] / 1e6)
            code = r.get("code", 0)
            if 200 <= code < 300:
                key = f"{code} accepted"
                try:
                    accepted.append(json.loads(base64.b64decode(r["body"])))
                except ValueError:
                    key = f"{code} accepted (answer cut)"
            else:
                key = error_code(r)
            answers[key] = answers.get(key, 0) + 1
        return {"requests": total, "answers": answers,
                "latency_ms": percentiles(latencies)}, accepted

    def abuser_figures(self, procs: dict, threads: dict) -> tuple[dict, dict]:
        figures: dict = {"attacks": list(self.attacks)}
        if "previews" in procs:
            s = self.vegeta.summary(procs["previews"][1])
            answers = {("no answer" if c == "0" else c): n for c, n in s["status_codes"].items()}
            lat = s.get("latencies", {})
            figures["previews"] = {
                "requests": s["requests"], "rate": round(s.get("rate", 0)),
                "answers": answers, "errors": s.get("errors", [])[:5],
                "latency_ms": {"p50": lat.get("50th", 0) / 1e6, "p99": lat.get("99th", 0) / 1e6,
                               "max": lat.get("max", 0) / 1e6},
            }
        up = di = []
        if "uploads" in procs:
            figures["uploads"], up = self.api_attack(procs["uploads"][1])
        if "dithers" in procs:
            figures["dithers"], di = self.api_attack(procs["dithers"][1])
        if "connections" in threads:
            hs = dict(threads["connections"].stats)
            samples = hs.pop("held_samples")
            hs["median_held"] = sorted(samples)[len(samples) // 2] if samples else 0
            figures["connections"] = hs
        if "slow_bodies" in threads:
            figures["slow_bodies"] = dict(threads["slow_bodies"].stats)
        return figures, {"uploads": [r["uuid"] for r in up],
                         "dithers": [(r["uuid"], r["id"]) for r in di]}

    # -- nothing accepted is lost --

    def drain(self, apis: list[Api], uploads: set[str], timeout: float) -> tuple[float, int]:
        """Waits until no dither of these owners is PENDING and every accepted upload has its
        automatic dither; (seconds waited, dithers still pending or missing)."""
        t0 = time.monotonic()
        while True:
            pending, auto = 0, set()
            for api in apis:
                for d in api.list_all("/api/dithers"):
                    pending += d["status"] == "PENDING"
                    if d.get("source") == "auto":
                        auto.add(d["uuid"])
            pending += len(uploads - auto)
            waited = time.monotonic() - t0
            if pending == 0 or waited > timeout:
                return waited, pending
            time.sleep(1.0)

    def verify(self, name: str, owners: list[dict], accepted: dict, started: float) -> dict:
        who = {"good": owners}
        if "abuser" in accepted:
            who["abuser"] = [self.abuser]
        apis = {group: [Api(self.server.port, o["key"]) for o in os_] for group, os_ in who.items()}
        timeout = max(120.0, 3.0 * self.seconds)
        uploads = {u for group in accepted.values() for u in group["uploads"]}
        waited, pending = self.drain([a for group in apis.values() for a in group], uploads,
                                     timeout)
        log(f"phase {name}: queue drained after {waited:.0f} s" +
            (f" ({pending} still PENDING after the {timeout:.0f} s bound)" if pending else ""))
        work = {"drain_s": round(waited, 1), "pending_after_drain": pending}
        for group, group_apis in apis.items():
            images, dithers = {}, {}
            setup = set()
            for o, api in zip(who[group], group_apis):
                for rec in api.list_all("/api/images"):
                    images[rec["uuid"]] = rec
                for rec in api.list_all("/api/dithers"):
                    dithers[(rec["uuid"], rec["id"])] = rec
                setup |= set(o["images"])
                api.close()
            acc = accepted[group]
            lost = {"upload not listed": 0, "upload not FINISHED": 0, "dither not listed": 0,
                    "dither not FINISHED": 0}
            autos = {}
            for (uuid, _), rec in dithers.items():
                if rec.get("source") == "auto":
                    autos[uuid] = rec
            for uuid in acc["uploads"]:
                if uuid not in images:
                    lost["upload not listed"] += 1
                elif autos.get(uuid, {}).get("status") != "FINISHED":
                    lost["upload not FINISHED"] += 1
            for key in acc["dithers"]:
                if key not in dithers:
                    lost["dither not listed"] += 1
                elif dithers[key]["status"] != "FINISHED":
                    lost["dither not FINISHED"] += 1
            # The other way round: every record made in the phase was answered as accepted (a
            # refusal leaves nothing behind; a client-side timeout may).
            new_images = [u for u in images if u not in setup]
            unexpected = len(set(new_images) - set(acc["uploads"]))
            # Time from a dither's creation to FINISHED (the server's own timestamps), for the
            # dithers made during this phase: automatic (uploads) and requested.
            finish = [parse_time(d["updated_at"]) - parse_time(d["created_at"])
                      for d in dithers.values()
                      if d["status"] == "FINISHED" and parse_time(d["created_at"]) >= started]
            work[group] = {
                "uploads_accepted": len(acc["uploads"]), "dithers_accepted": len(acc["dithers"]),
                "images_listed_new": len(new_images),
                "lost": lost, "lost_total": sum(lost.values()),
                "records_without_acceptance": unexpected,
                "dither_to_finished_s": {k: (round(v / 1000, 3) if k != "n" else v)
                                         for k, v in percentiles(
                                             [f * 1000 for f in finish]).items()},
            }
        return work

    def run(self) -> dict:
        abuse.raise_fd_limit(8192)
        self.setup()
        r = self.results
        r["meta"] = {
            "seconds": self.seconds, "smoke": self.args.smoke,
            "cpu_model": cpu_model(), "cores": os.cpu_count(),
            "kernel": platform.release(),
            "good": {"owners": GOOD_OWNERS, "rate_per_owner": GOOD_RATE, "address": GOOD_ADDRESS,
                     "image": f"640x480 JPEG, {len(self.good_jpeg)} bytes"},
            "abuser": {"address": ABUSER_ADDRESS, "holder_address": HOLDER_ADDRESS,
                       "flood_rate": FLOOD_RATE, "flood_workers": FLOOD_WORKERS,
                       "upload_rate": UPLOAD_FLOOD_RATE, "dither_rate": DITHER_FLOOD_RATE,
                       "held_connections": HELD_CONNECTIONS, "slow_bodies": SLOW_BODIES,
                       "image": f"{self.abuse_size} JPEG, {len(self.abuse_jpeg)} bytes"},
            "server": {name: self.server.config_line(name) for name in (
                "IO_THREADS", "BLOCKING_THREADS", "BLOCKING_QUEUE", "BLOCKING_PER_CLIENT",
                "DITHER_WORKERS",
                "GATEWAY_MAX_IN_FLIGHT", "RATE_LIMIT_UPLOADS", "RATE_LIMIT_DITHERS",
                "RATE_LIMIT_READS", "RATE_LIMIT_ADDRESS_FACTOR", "RATE_LIMIT_BURST_SECONDS",
                "RATE_LIMIT_TARPIT_MS",
                "DITHER_NICE", "QUOTA_IMAGES", "QUOTA_BYTES",
                "QUOTA_PENDING_DITHERS", "QUOTA_DITHERS_PER_IMAGE", "MAX_PENDING_DITHERS",
                "GATEWAY_MAX_CONNECTIONS", "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
                "BODY_MIN_RATE", "BODY_GRACE_SECONDS")},
        }
        r["phases"]["baseline"] = self.run_phase("baseline", with_abuser=False)
        r["phases"]["abuse"] = self.run_phase("abuse", with_abuser=True)
        code = self.server.stop()
        r["meta"]["ditherd_exit"] = code
        r["meta"]["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        log(f"ditherd stopped (exit {code})")
        return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ditherd", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--vegeta", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=int, default=60, help="length of each phase")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--pidfile")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="seconds to wait at most for idle CPUs before each phase")
    ap.add_argument("--attacks", default=",".join(ATTACKS),
                    help="the abuser's attacks, comma-separated (for diagnosis): " +
                    ", ".join(ATTACKS))
    args = ap.parse_args()
    global _PIDFILE
    _PIDFILE = Path(args.pidfile) if args.pidfile else None
    soak = Soak(args)
    try:
        results = soak.run()
    finally:
        soak.server.stop()
    Path(args.out).write_text(json.dumps(results, indent=1))
    goals = report.judge(results)
    results["goals"] = goals
    Path(args.out).write_text(json.dumps(results, indent=1))
    return 0 if report.passed(goals) else 1


if __name__ == "__main__":
    sys.exit(main())
