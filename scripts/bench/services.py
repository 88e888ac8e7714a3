#!/usr/bin/env python3
"""Service benchmarks of ditherd, for scripts/bench_services.sh (see docs/BENCHMARKS.md).

  services.py --ditherd build/release/src/app/ditherd --cli build/release/src/cli/dither \
              --workdir build/bench-services-run --out build/bench-services-run/results.json \
              [--keys build/release/src/app/dither-keys] [--quick]

Standard library only (HTTP through http.client; the test photo is made by ImageMagick).

Authentication (docs/SECURITY.md): every ditherd gets a service token of our own (SERVICE_TOKEN)
and its own free ports (gateway, upload, dithering and notification services); an API key is
made for it with dither-keys (same DITHER_DATA_DIR) before any load and sent on every /api/
request (`Authorization: Bearer`, wrk's -H too). Stored files are fetched only through the signed
links of the API's answers. The direct and nginx targets on the upload service's own port carry
`X-Service-Token` and `X-Dither-Owner` (the key's owner, from GET /api/me) as the gateway does.
Keys and tokens are never written to the results (wrk commands are recorded with placeholders).

1. Gateway: wrk against GET of one image record (a) through our gateway, (b) directly on the
   upload service's loopback port and (c) through nginx as a keep-alive reverse proxy to the same
   upload service; plus (d) the gateway of a second ditherd started with GATEWAY_UPSTREAM=http. The targets
   alternate within each round; every run records the CPU time that wrk, nginx, ditherd and the
   rest of the machine used meanwhile.
2. Uploads: a 4 MP JPEG uploaded sequentially, each followed by polling GET /api/images/{uuid}
   every 5 ms until FINISHED, alternating with timed runs of the dither CLI on the same file with
   the automatic dither's options; then sustained images per minute from concurrent clients.

Writes everything measured to --out (JSON); scripts/bench/services_report.py renders it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quiet  # noqa: E402  (scripts/bench/quiet.py: CPU idle wait)

HZ = os.sysconf("SC_CLK_TCK")

# Variables that would change what ditherd does; removed so that it runs its defaults
# (tests/functional/harness.py's list, plus SERVICE_BIND_HOST and STARTUP_WAIT_SECONDS). The
# secrets are among them: each ditherd gets its own service token and generates the rest.
CONFIG_PREFIXES = ("DITHER_", "KAFKA_", "POSTGRES_", "CLOUDINARY_", "S3_", "SMTP_",
                   "UPLOAD_SERVICE_", "NOTIFY_", "MAIL_")
CONFIG_NAMES = ("PUBLIC_BASE_URL", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "AUTO_DITHER",
                "AUTO_DITHER_OPTIONS", "LOG_LEVEL", "GATEWAY_MAX_IN_FLIGHT", "GATEWAY_UPSTREAM",
                "IO_THREADS", "BLOCKING_THREADS", "API_KEY_PEPPER", "LINK_SIGNING_KEYS",
                "SERVICE_TOKEN", "LINK_TTL_SECONDS", "ALLOWED_HOSTS", "AUTH_CACHE_SECONDS",
                "RATE_LIMIT_UPLOADS", "RATE_LIMIT_DITHERS", "RATE_LIMIT_READS",
                "RATE_LIMIT_ADDRESS_FACTOR", "TRUSTED_PROXIES",
                "SESSION_LIFETIME_DAYS", "SERVICE_BIND_HOST", "STARTUP_WAIT_SECONDS")


def log(msg: str) -> None:
    print(f"bench-services: {msg}", file=sys.stderr, flush=True)


_HANDED_OUT: set[int] = set()


def free_ports(count: int) -> list[int]:
    """Ports free now, none handed out before by this process (two ditherds are given their
    ports before either listens: they must not get the same one)."""
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


# ---- CPU accounting ----------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, all its threads; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread ("tid name" -> seconds)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
            name = text[text.index("(") + 1:text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            out[f"{tid} {name}"] = (int(fields[11]) + int(fields[12])) / HZ
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return out


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(entry))
        except (FileNotFoundError, IndexError, ValueError):
            continue
    return kids


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ---- processes ---------------------------------------------------------------------------------

def launch(binary: Path, env: dict, workdir: Path, port: int, name: str) -> subprocess.Popen:
    """Starts one of our programs in `workdir` (its logs there) and waits until its /health on
    `port` answers 200, at most 30 s."""
    proc = subprocess.Popen([str(binary)], env=env, cwd=workdir,
                            stdout=open(workdir / "stdout.log", "w"),
                            stderr=open(workdir / "stderr.log", "w"), start_new_session=True)
    register_pid(proc.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: "
                               f"{(workdir / 'stderr.log').read_text()[-2000:]}")
        try:
            status, _ = http_get("127.0.0.1", port, "/health", timeout=2)
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer /health within 30 s")


class Ditherd:
    """One ditherd on free ports of its own (all four: two ditherds at once must not meet on a
    service's default port), with a fresh data directory and a service token of its own."""

    def __init__(self, binary: Path, workdir: Path, name: str, extra_env: dict | None = None,
                 keys_binary: Path | None = None):
        self.binary = binary
        self.keys_binary = keys_binary or binary.parent / "dither-keys"
        self.dir = workdir / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.name = name
        self.port, self.upload_port, self.dither_port, self.notify_port = free_ports(4)
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        # What the gateway shows the services; the nginx and direct targets show it too.
        self.service_token = secrets.token_urlsafe(32)
        self.key = ""    # API key made by create_key()
        self.owner = ""  # its owner (GET /api/me)

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(CONFIG_PREFIXES) and k not in CONFIG_NAMES}
        env.update({
            "DITHER_HOST": "127.0.0.1",
            "DITHER_PORT": str(self.port),
            "UPLOAD_SERVICE_PORT": str(self.upload_port),
            "DITHER_SERVICE_PORT": str(self.dither_port),
            "NOTIFY_SERVICE_PORT": str(self.notify_port),
            "DITHER_DATA_DIR": str(self.dir / "data"),
            "SERVICE_TOKEN": self.service_token,
            # The load is the point: rate limits (issue 13) would answer most of it with 429.
            "RATE_LIMIT_UPLOADS": "0", "RATE_LIMIT_DITHERS": "0", "RATE_LIMIT_READS": "0",
        })
        env.update(self.extra_env)
        return env

    def create_key(self, name: str = "bench") -> str:
        """An API key in this ditherd's store (dither-keys, same environment), and its owner."""
        r = subprocess.run([str(self.keys_binary), "create", "--name", name], env=self.env(),
                           cwd=self.dir, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not r.stdout.strip():
            raise RuntimeError(f"dither-keys create ({self.name}) failed ({r.returncode}): "
                               f"{r.stderr[-2000:]}")
        m = re.search(r"\bdk_\S+", r.stdout)
        if not m:
            raise RuntimeError(f"dither-keys create ({self.name}) printed no key")
        self.key = m.group(0)
        self.owner = api_owner(self.port, self.key)
        return self.key

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def service_headers(self) -> dict:
        """What the gateway adds on its way to a service's own port."""
        return {"X-Service-Token": self.service_token, "X-Dither-Owner": self.owner}

    def start(self) -> None:
        self.proc = launch(self.binary, self.env(), self.dir, self.port, f"ditherd ({self.name})")

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM)


class Nginx:
    """nginx as a reverse proxy with keep-alive upstream connections, everything in a temp dir.
    It adds the headers the gateway adds for the upload service (`service_headers`: the service
    token and the caller's owner), read from a file of their own so that nginx.conf, which the
    shell script keeps, holds no secret."""

    def __init__(self, workdir: Path, upstream_port: int, service_headers: dict[str, str],
                 workers: str = "auto"):
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=workdir))
        self.workers = workers
        self.port = free_ports(1)[0]
        self.upstream_port = upstream_port
        self.proc: subprocess.Popen | None = None
        self.conf = self.dir / "nginx.conf"
        d = self.dir
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / sub).mkdir()
        # Workers run as root's default "nobody" when started by root: let them into the dir.
        os.chmod(d, 0o755)
        user = "user root;\n" if os.geteuid() == 0 else ""
        # Read by the master process only (as the user who starts nginx).
        headers_conf = d / "service-headers.conf"
        fd = os.open(headers_conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for name, value in service_headers.items():
                if not re.fullmatch(r"[A-Za-z0-9._:@-]+", value):
                    raise ValueError(f"{name}: unexpected characters for nginx.conf")
                f.write(f'proxy_set_header {name} "{value}";\n')
        workers = self.workers
        self.conf.write_text(f"""\
# Generated by scripts/bench/services.py.
{user}worker_processes {workers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream upload_service {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        # /api/images/{{uuid}} -> upload service /images/{{uuid}}, as the gateway does, with the
        # headers the gateway adds: X-Service-Token and X-Dither-Owner (the benchmark key's owner,
        # fixed here). Not apples to apples in one respect: the gateway also authenticates every
        # request (HMAC of the API key, found in its cache of checked keys while the store's
        # revocation stamp stays, else looked up); nginx checks nothing (the key it is sent is
        # dropped). The record, signed links included, is the upload
        # service's answer behind both.
        location /api/ {{
            proxy_pass http://upload_service/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "";
            proxy_set_header X-Dither-Admin "";
            include {headers_conf};
        }}
    }}
}}
""")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["nginx", "-e", str(self.dir / "error.log"), "-p", str(self.dir), "-c", str(self.conf)],
            stdout=open(self.dir / "stdout.log", "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        register_pid(self.proc.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: "
                                   f"{(self.dir / 'error.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen within 10 s")

    def pids(self) -> list[int]:
        return [self.proc.pid] + children_of(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGQUIT)


class ApiGateway:
    """The api-gateway program alone, in front of `main`'s services (the upload service nginx
    fronts too), as a distributed deployment runs it: its own process and port, the services
    reached over loopback HTTP. It shares `main`'s data directory for the secrets and the SQLite
    identity store (the API keys), and caches authentication for 5 s (AUTH_CACHE_SECONDS), the
    default of a gateway whose identity store is PostgreSQL, as in every distributed deployment.
    `io_threads` sets IO_THREADS (default: one event loop per core), as nginx runs with
    `worker_processes auto` and 1 beside it."""

    def __init__(self, binary: Path, main: "Ditherd", io_threads: str | None = None):
        self.binary = binary
        self.main = main
        self.io_threads = io_threads
        self.dir = main.dir.parent / ("api-gateway" + (f"-{io_threads}" if io_threads else ""))
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.port = free_ports(1)[0]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = self.main.env()
        env.update({"DITHER_PORT": str(self.port), "UPLOAD_SERVICE_HOST": "127.0.0.1",
                    "DITHER_SERVICE_HOST": "127.0.0.1", "NOTIFY_SERVICE_HOST": "127.0.0.1",
                    "AUTH_CACHE_SECONDS": "5"})
        if self.io_threads:
            env["IO_THREADS"] = self.io_threads
        self.proc = launch(self.binary, env, self.dir, self.port, "api-gateway")

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM)


_PIDFILE: Path | None = None


def register_pid(pid: int) -> None:
    """Records a started process for the shell's cleanup trap (scripts/bench_services.sh)."""
    if _PIDFILE is not None:
        with open(_PIDFILE, "a") as f:
            f.write(f"{pid}\n")


def stop_process(proc: subprocess.Popen | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- HTTP --------------------------------------------------------------------------------------

def http_get(host: str, port: int, path: str, timeout: float = 10,
             conn: http.client.HTTPConnection | None = None,
             headers: dict | None = None) -> tuple[int, bytes]:
    c = conn or http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if conn is None:
            c.close()


def api_owner(port: int, key: str) -> str:
    """The owner the gateway sees for `key` (GET /api/me)."""
    status, body = http_get("127.0.0.1", port, "/api/me",
                            headers={"Authorization": f"Bearer {key}"})
    if status != 200:
        raise RuntimeError(f"GET /api/me on :{port}: {status} {body[:300]!r}")
    return json.loads(body)["owner"]


def get_signed(url: str, timeout: float = 60) -> tuple[int, bytes]:
    """GETs a signed link from an API answer as it is (absolute, or a path with its query), with
    no credentials: the signature alone must open it."""
    u = urllib.parse.urlsplit(url)
    if not u.query or "sig=" not in u.query:
        raise RuntimeError(f"not a signed link: {url}")
    host, port = u.hostname or "127.0.0.1", u.port or 80
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", f"{u.path}?{u.query}")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Client:
    """One keep-alive connection to the gateway, reopened after errors; every request carries the
    API key."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.auth = {"Authorization": f"Bearer {key}"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers={**(headers or {}), **self.auth})
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def upload(self, data: bytes, filename: str) -> dict:
        status, body = self.call("POST", "/api/images", data,
                                 {"Content-Type": "image/jpeg", "X-Filename": filename})
        if status != 201:
            raise RuntimeError(f"upload: {status} {body[:300]!r}")
        return json.loads(body)

    def image(self, uuid: str) -> dict:
        status, body = self.call("GET", f"/api/images/{uuid}")
        if status != 200:
            raise RuntimeError(f"GET /api/images/{uuid}: {status} {body[:300]!r}")
        return json.loads(body)

    def close(self) -> None:
        self.conn.close()


def wait_finished(client: Client, uuid: str, interval: float, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = client.image(uuid)
        status = record.get("status")
        if status == "FINISHED":
            return record
        if status == "FAILED":
            raise RuntimeError(f"image {uuid} FAILED: {record.get('error')!r}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"image {uuid} not FINISHED after {timeout} s: {status}")
        time.sleep(interval)


# ---- wrk ---------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {"non_2xx": 0, "socket_errors": 0}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not m:
        raise ValueError(f"no Requests/sec in wrk output:\n{out}")
    res["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    if m:
        res["avg_ms"], res["max_ms"] = _ms(m.group(1)), _ms(m.group(3))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+\w+) read", out)
    if m:
        res["requests"] = int(m.group(1))
        res["read"] = m.group(4)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non_2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = sum(int(x) for x in m.groups())
    return res


def socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def tcp_to_port(port: int, owners: list[int]) -> tuple[int, int]:
    """(established connections owned by `owners`, all TIME-WAIT ones) whose remote end is
    127.0.0.1:port, i.e. client sides of connections to that server (/proc/net/tcp)."""
    mine = socket_inodes(owners)
    est = tw = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or int(f[2].rsplit(":", 1)[1], 16) != port:
                continue
            if f[3] == "01" and f[9] in mine:
                est += 1
            elif f[3] == "06":
                tw += 1
    return est, tw


def redact_header(name: str, value: str) -> str:
    """How a header is shown in the results: secrets as placeholders."""
    if name == "Authorization":
        return "Authorization: Bearer <key>"
    if name == "X-Service-Token":
        return "X-Service-Token: <token>"
    return f"{name}: {value}"


def run_wrk(url: str, threads: int, connections: int, duration: int, watch: dict[str, list[int]],
            thread_pids: dict[str, int], upstream: tuple[int, list[int]] | None = None,
            headers: dict[str, str] | None = None) -> dict:
    """Runs wrk once; returns its figures plus the CPU used meanwhile (percent of one core):
    by wrk, by each watched group of processes, by the whole machine and by everything else."""
    hdr_args, shown = [], []
    for name, value in (headers or {}).items():
        hdr_args += ["-H", f"{name}: {value}"]
        shown += ["-H", f"'{redact_header(name, value)}'"]
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", *hdr_args,
            url]
    display = " ".join(argv[:5] + shown + [url])
    before = {k: sum(proc_cpu(p) for p in pids) for k, pids in watch.items()}
    threads_before = {k: thread_cpu(p) for k, p in thread_pids.items()}
    t0, i0 = quiet.cpu_times()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conns = None
    if upstream:
        # The proxy's connections to the upload service half-way through the run: established
        # ones, and how many more closed ones (TIME-WAIT) there are than at the start.
        port, owners = upstream
        _, tw0 = tcp_to_port(port, owners)
        time.sleep(duration / 2)
        est, tw = tcp_to_port(port, owners)
        conns = {"established": est, "new_time_wait": max(0, tw - tw0)}
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t1, i1 = quiet.cpu_times()
    after = {k: sum(proc_cpu(p) for p in pids) for k, pids in watch.items()}
    threads_after = {k: thread_cpu(p) for k, p in thread_pids.items()}
    if proc.returncode != 0:
        raise RuntimeError(f"{display}: exit {proc.returncode}\n{stderr}")
    res = parse_wrk(stdout)
    res["command"] = display
    if conns is not None:
        res["upstream_connections"] = conns
    wrk_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    busy = ((t1 - t0) - (i1 - i0)) / HZ
    cpu = {"wrk": 100 * wrk_cpu / wall}
    used = wrk_cpu
    for k in watch:
        d = after[k] - before[k]
        cpu[k] = 100 * d / wall
        used += d
    cpu["machine"] = 100 * busy / wall  # out of 100 * cores
    cpu["others"] = 100 * max(0.0, busy - used) / wall
    res["cpu_percent"] = {k: round(v, 1) for k, v in cpu.items()}
    res["wall_s"] = wall
    server_cpu = sum(after[k] - before[k] for k in watch)
    if res.get("requests"):
        res["server_cpu_us_per_request"] = 1e6 * server_cpu / res["requests"]
    tops = {}
    for k in thread_pids:
        deltas = {name: threads_after[k].get(name, 0.0) - threads_before[k].get(name, 0.0)
                  for name in threads_after[k]}
        busiest = sorted(deltas.items(), key=lambda kv: -kv[1])[:6]
        tops[k] = [[name, round(100 * d / wall, 1)] for name, d in busiest if d > 0]
    res["busiest_threads_percent"] = tops
    return res


def gateway_bench(args, main: Ditherd, single: Ditherd, nginx: Nginx, nginx1: Nginx,
                  api: ApiGateway, api1: ApiGateway, uuid: str, uuid_single: str) -> dict:
    targets = {
        "gateway": f"http://127.0.0.1:{main.port}/api/images/{uuid}",
        "upload-direct": f"http://127.0.0.1:{main.upload_port}/images/{uuid}",
        "nginx": f"http://127.0.0.1:{nginx.port}/api/images/{uuid}",
        "nginx-1": f"http://127.0.0.1:{nginx1.port}/api/images/{uuid}",
        "api-gateway": f"http://127.0.0.1:{api.port}/api/images/{uuid}",
        "api-gateway-1": f"http://127.0.0.1:{api1.port}/api/images/{uuid}",
        "gateway-http": f"http://127.0.0.1:{single.port}/api/images/{uuid_single}",
    }
    # What each target gets: the gateways an API key; the upload service's own port the service
    # token and the caller's owner, as the gateway sends them. nginx gets the API key too (the
    # same request as the gateway's), drops it and adds the service headers itself.
    headers = {"gateway": main.auth(), "upload-direct": main.service_headers(),
               "nginx": main.auth(), "nginx-1": main.auth(), "api-gateway": main.auth(),
               "api-gateway-1": main.auth(),
               "gateway-http": single.auth()}
    bodies = {}
    for name, url in targets.items():
        port = int(url.split(":")[2].split("/")[0])
        path = "/" + url.split("/", 3)[3]
        status, body = http_get("127.0.0.1", port, path, headers=headers[name])
        if status != 200:
            raise RuntimeError(f"{url}: {status} {body[:300]!r}")
        bodies[name] = len(body)
        # Without credentials every target must refuse: nothing is measured unauthenticated.
        if not name.startswith("nginx"):
            status, _ = http_get("127.0.0.1", port, path)
            if status not in (401, 403):
                raise RuntimeError(f"{url} without credentials: {status}, expected 401 or 403")
    log(f"response bodies (bytes): {bodies}")

    # The proxy in front of the upload service: nginx or the api-gateway process.
    watch_main = {"ditherd": [main.proc.pid]}
    watch = {"gateway": watch_main, "upload-direct": watch_main,
             "nginx": {"ditherd": [main.proc.pid], "proxy": nginx.pids()},
             "nginx-1": {"ditherd": [main.proc.pid], "proxy": nginx1.pids()},
             "api-gateway": {"ditherd": [main.proc.pid], "proxy": [api.proc.pid]},
             "api-gateway-1": {"ditherd": [main.proc.pid], "proxy": [api1.proc.pid]},
             "gateway-http": {"ditherd": [single.proc.pid]}}
    thread_pids = {name: {"ditherd": main.proc.pid} for name in targets}
    thread_pids["gateway-http"] = {"ditherd": single.proc.pid}
    thread_pids["api-gateway"] = {"ditherd": main.proc.pid, "api-gateway": api.proc.pid}
    thread_pids["api-gateway-1"] = {"ditherd": main.proc.pid, "api-gateway": api1.proc.pid}

    upstream_ports = {"gateway": (main.upload_port, [main.proc.pid]), "upload-direct": None,
                      "nginx": (main.upload_port, nginx.pids()),
                      "nginx-1": (main.upload_port, nginx1.pids()),
                      "api-gateway": (main.upload_port, [api.proc.pid]),
                      "api-gateway-1": (main.upload_port, [api1.proc.pid]),
                      "gateway-http": (single.upload_port, [single.proc.pid])}

    # Warm-up: every target once, short, not recorded.
    for name, url in targets.items():
        run_wrk(url, args.wrk_threads, args.connections[0], 2, watch[name], {},
                headers=headers[name])

    series = []  # (connections, targets, duration)
    for c in args.connections:
        names = list(targets) if c == args.connections[0] else \
            ["gateway", "upload-direct", "nginx", "nginx-1", "api-gateway", "api-gateway-1"]
        dur = args.duration if c == args.connections[0] else args.duration_extra
        series.append((c, names, dur))

    rounds = []
    for r in range(1, args.rounds + 1):
        busy = wait_quiet(args.quiet_wait)
        log(f"wrk round {r} of {args.rounds} (CPU busy {busy:.0f}% before)")
        rnd = {"busy_before": busy, "runs": {}}
        for c, names, dur in series:
            # Rotate the order from round to round so that no target always goes first.
            order = names[(r - 1) % len(names):] + names[:(r - 1) % len(names)]
            for name in order:
                res = run_wrk(targets[name], args.wrk_threads, c, dur, watch[name],
                              thread_pids[name], upstream_ports[name], headers[name])
                log(f"  c={c} {name:14s} {res['rps']:9.0f} req/s  p99 {res.get('p99_ms', 0):7.2f} ms"
                    f"  cpu {res['cpu_percent']}")
                rnd["runs"][f"c{c}/{name}"] = res
        rounds.append(rnd)
    return {"targets": targets, "body_bytes": bodies, "rounds": rounds,
            "headers": {n: [redact_header(k, v) for k, v in h.items()]
                        for n, h in headers.items()},
            "nginx_adds": ["X-Service-Token: <token>", f"X-Dither-Owner: {main.owner}"],
            "series": [{"connections": c, "targets": n, "duration_s": d} for c, n, d in series],
            "wrk_threads": args.wrk_threads}


def wait_quiet(max_wait: float) -> float:
    if max_wait <= 0:
        return quiet.busy_percent(0.5)
    deadline = time.monotonic() + max_wait
    busy = quiet.busy_percent(1.0)
    while busy >= 15 and time.monotonic() < deadline:
        busy = quiet.busy_percent(1.0)
    return busy


# ---- uploads -----------------------------------------------------------------------------------

def make_photo(path: Path, width: int, height: int) -> None:
    """A photo-like JPEG: ImageMagick's plasma fractal (smooth areas plus fine detail)."""
    subprocess.run(["convert", "-seed", "7", "-size", f"{width}x{height}", "plasma:fractal",
                    "-quality", "90", "-sampling-factor", "2x2", str(path)], check=True)


def time_cli(cli: Path, photo: Path, out: Path,
             stages: list | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one CLI run; with `stages`, its --timings (seconds per stage) are
    appended there."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    extra = ["--timings"] if stages is not None else []
    proc = subprocess.run([str(cli), str(photo), str(out), "--channels", "2", *extra],
                          check=True, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if stages is not None:
        stages.append(json.loads(proc.stderr.strip().splitlines()[-1]))
    return wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


UPLOAD_LOG = re.compile(r"upload (\S+) stored: \d+ bytes, verify ([\d.]+) ms, store ([\d.]+) ms, "
                        r"record ([\d.]+) ms")
DITHER_LOG = re.compile(r"dither \d+ of (\S+) finished in ([\d.]+) ms: queued (\d+) ms, read "
                        r"([\d.]+) ms, decode ([\d.]+) ms, dither ([\d.]+) ms \(waited ([\d.]+) ms "
                        r"for rows\), encode ([\d.]+) ms, store ([\d.]+) ms, record ([\d.]+) ms")


def service_stages(main: "Ditherd", uuids: list[str]) -> dict:
    """Milliseconds per stage of the uploads and automatic dithers of `uuids`, medians, from the
    lines ditherd logs when an upload is stored and when a dither finishes."""
    text = "".join((main.dir / f).read_text(errors="replace") for f in ("stdout.log", "stderr.log"))
    wanted = set(uuids)
    up: dict[str, list[float]] = {k: [] for k in ("verify", "store_original", "record_upload")}
    di: dict[str, list[float]] = {k: [] for k in ("total", "queued", "read", "decode", "dither",
                                                  "waited", "encode", "store", "record")}
    for m in UPLOAD_LOG.finditer(text):
        if m.group(1) in wanted:
            for k, v in zip(up, m.groups()[1:]):
                up[k].append(float(v))
    for m in DITHER_LOG.finditer(text):
        if m.group(1) in wanted:
            for k, v in zip(di, m.groups()[1:]):
                di[k].append(float(v))
    if not up["verify"] or not di["total"]:
        raise RuntimeError("ditherd logged no stage times for the sequential uploads")
    return {"upload": {k: statistics.median(v) for k, v in up.items()},
            "dither": {k: statistics.median(v) for k, v in di.items()},
            "samples": {"upload": len(up["verify"]), "dither": len(di["total"])}}


def sustained(args, main: Ditherd, data: bytes, name: str) -> dict:
    """args.sustained uploads from args.clients clients, back to back, through `main`'s gateway;
    the time until every one is FINISHED, and ditherd's CPU meanwhile."""
    busy = wait_quiet(args.quiet_wait)
    log(f"sustained ({name}): {args.sustained} uploads from {args.clients} clients "
        f"(CPU busy {busy:.0f}% before)")
    client = Client(main.port, main.key)
    uuids: list[str] = []
    lock = threading.Lock()
    errors: list[str] = []
    per_client = [args.sustained // args.clients + (1 if k < args.sustained % args.clients else 0)
                  for k in range(args.clients)]

    def uploader(k: int) -> None:
        c = Client(main.port, main.key)
        try:
            for j in range(per_client[k]):
                u = c.upload(data, f"sustained-{k}-{j}.jpg")["uuid"]
                with lock:
                    uuids.append(u)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            c.close()

    d0 = proc_cpu(main.proc.pid)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=uploader, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_posted = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"sustained uploads failed: {errors}")
    pending = set(uuids)
    deadline = time.monotonic() + 600
    while pending:
        status, body = client.call("GET", "/api/images?limit=1000")
        if status != 200:
            raise RuntimeError(f"GET /api/images: {status}")
        for item in json.loads(body)["items"]:
            if item["uuid"] in pending:
                if item["status"] == "FAILED":
                    raise RuntimeError(f"{item['uuid']} FAILED: {item.get('error')}")
                if item["status"] == "FINISHED":
                    pending.discard(item["uuid"])
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} images not FINISHED after 600 s")
            time.sleep(0.02)
    t_all = time.perf_counter() - t0
    cpu = proc_cpu(main.proc.pid) - d0
    client.close()
    return {"uploads": args.sustained, "clients": args.clients, "all_posted_s": t_posted,
            "all_finished_s": t_all, "ditherd_cpu_s": cpu, "busy_before_percent": busy}


def upload_bench(args, main: Ditherd, photo: Path) -> dict:
    data = photo.read_bytes()
    # The CLI's fixed cost (process start, libvips start-up): the same command on a tiny JPEG.
    tiny = args.workdir / "tiny.jpg"
    make_photo(tiny, 16, 16)
    client = Client(main.port, main.key)
    # Warm-up (not recorded): one upload to FINISHED and one CLI run.
    wait_finished(client, client.upload(data, "warmup.jpg")["uuid"], args.poll)
    time_cli(args.cli, photo, args.workdir / "cli-out.png")

    busy = busy_seq = wait_quiet(args.quiet_wait)
    log(f"sequential uploads: {args.uploads} (CPU busy {busy:.0f}% before), alternating with the CLI")
    seq, cli, cli_stages = [], [], []
    d0 = proc_cpu(main.proc.pid)
    for i in range(args.uploads):
        t0 = time.perf_counter()
        record = client.upload(data, f"seq-{i}.jpg")
        t_post = time.perf_counter() - t0
        done = wait_finished(client, record["uuid"], args.poll)
        t_done = time.perf_counter() - t0
        seq.append({"uuid": record["uuid"], "post_s": t_post, "finished_s": t_done,
                    "created_at": done.get("created_at"), "updated_at": done.get("updated_at")})
        wall, cpu = time_cli(args.cli, photo, args.workdir / "cli-out.png", cli_stages)
        tiny_wall, tiny_cpu = time_cli(args.cli, tiny, args.workdir / "cli-tiny.png")
        cli.append({"wall_s": wall, "cpu_s": cpu, "tiny_wall_s": tiny_wall,
                    "tiny_cpu_s": tiny_cpu})
    seq_cpu = proc_cpu(main.proc.pid) - d0
    stages = service_stages(main, [x["uuid"] for x in seq])
    stages["cli"] = {k: 1e3 * statistics.median(x[k] for x in cli_stages)
                     for k in cli_stages[0]}
    dither_png = next((d for d in done.get("dithers", []) if d.get("status") == "FINISHED"), {})
    out_size = None
    url = done.get("url_dither") or dither_png.get("url_dither")
    if url:
        # Only through the signed link of the answer (no key sent).
        status, body = get_signed(url)
        if status != 200:
            raise RuntimeError(f"signed link of the dither: {status} {body[:300]!r}")
        out_size = len(body)
    cli_png = (args.workdir / "cli-out.png").stat().st_size

    sustained_res = sustained(args, main, data, "ours")
    busy = sustained_res["busy_before_percent"]
    client.close()
    return {
        "photo": {"width": args.width, "height": args.height, "bytes": len(data)},
        "poll_interval_s": args.poll,
        "sequential": seq,
        "sequential_ditherd_cpu_s": seq_cpu,
        "stages_ms": stages,
        "cli": cli,
        "cli_command": f"{args.cli_display} photo.jpg out.png --channels 2",
        "busy_before_percent": {"sequential": busy_seq, "sustained": busy},
        "dither_png_bytes": {"service": out_size, "cli": cli_png},
        "sustained": sustained_res,
    }


def baseline_bench(args, main: Ditherd, photo: Path) -> dict:
    """The sustained run on a ditherd built from an earlier commit, alternating with ours
    (ours, baseline, ours, baseline): images per minute of each, in the same run."""
    base = Ditherd(args.baseline_bin / "ditherd", args.workdir, "ditherd-baseline",
                   keys_binary=args.baseline_bin / "dither-keys")
    data = photo.read_bytes()
    runs: dict[str, list[dict]] = {"ours": [], "baseline": []}
    try:
        base.start()
        base.create_key("bench")
        c = Client(base.port, base.key)
        wait_finished(c, c.upload(data, "warmup.jpg")["uuid"], args.poll)
        c.close()
        for _ in range(2):
            runs["ours"].append(sustained(args, main, data, "ours"))
            runs["baseline"].append(sustained(args, base, data, args.baseline_name))
    finally:
        base.stop()
    return {"name": args.baseline_name, "runs": runs}


# ---- main --------------------------------------------------------------------------------------

def main() -> int:
    global _PIDFILE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ditherd", type=Path, required=True)
    ap.add_argument("--keys", type=Path, help="dither-keys (default: next to --ditherd)")
    ap.add_argument("--cli", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pidfile", type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--baseline-bin", type=Path,
                    help="a directory with ditherd and dither-keys built from an earlier commit: "
                         "the sustained run is repeated on it, alternating with ours")
    ap.add_argument("--baseline-name", default="baseline")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--quiet-wait", type=float, default=10)
    args = ap.parse_args()
    args.cli_display = str(args.cli)
    try:
        args.cli_display = str(args.cli.resolve().relative_to(Path.cwd()))
    except ValueError:
        pass
    args.cli = args.cli.resolve()
    args.ditherd = args.ditherd.resolve()
    if args.baseline_bin:
        args.baseline_bin = args.baseline_bin.resolve()  # ditherds start in their own directory
    args.keys = (args.keys or args.ditherd.parent / "dither-keys").resolve()
    args.workdir = args.workdir.resolve()
    _PIDFILE = args.pidfile
    args.wrk_threads = 2
    args.connections = [64, 16]
    args.width, args.height = 2400, 1680
    args.poll = 0.005
    args.clients = 4
    if args.quick:
        args.rounds = args.rounds or 1
        args.duration, args.duration_extra = 4, 3
        args.uploads, args.sustained = 6, 12
        args.quiet_wait = min(args.quiet_wait, 5)
    else:
        args.rounds = args.rounds or 3
        args.duration, args.duration_extra = 10, 5
        args.uploads, args.sustained = 20, 40

    args.workdir.mkdir(parents=True, exist_ok=True)
    photo = args.workdir / "photo.jpg"
    make_photo(photo, args.width, args.height)

    # SIGTERM (e.g. from the shell's trap) unwinds through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main_d = Ditherd(args.ditherd, args.workdir, "ditherd", keys_binary=args.keys)
    single = Ditherd(args.ditherd, args.workdir, "ditherd-http", {"GATEWAY_UPSTREAM": "http"},
                     keys_binary=args.keys)
    nginx = nginx1 = api = api1 = None
    try:
        main_d.start()
        single.start()
        # An API key of each ditherd's own (its store, its pepper) before any load.
        for d in (main_d, single):
            d.create_key("bench")
        log(f"API keys made (owners {main_d.owner}, {single.owner})")
        nginx = Nginx(args.workdir, main_d.upload_port, main_d.service_headers())
        nginx.start()
        nginx1 = Nginx(args.workdir, main_d.upload_port, main_d.service_headers(), workers="1")
        nginx1.start()
        api = ApiGateway(args.ditherd.parent / "api-gateway", main_d)
        api.start()
        api1 = ApiGateway(args.ditherd.parent / "api-gateway", main_d, io_threads="1")
        api1.start()
        log(f"ditherd: gateway :{main_d.port}, upload :{main_d.upload_port}, "
            f"notify :{main_d.notify_port}; ditherd GATEWAY_UPSTREAM=http: gateway "
            f":{single.port}, notify :{single.notify_port}; nginx :{nginx.port}")
        data = photo.read_bytes()
        uuids = []
        for d in (main_d, single):
            c = Client(d.port, d.key)
            u = c.upload(data, "record.jpg")["uuid"]
            wait_finished(c, u, 0.02)
            c.close()
            uuids.append(u)
        results = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "model": cpu_model(),
                        "kernel": platform.release()},
            "quick": args.quick,
            "rounds": args.rounds,
            "gateway": gateway_bench(args, main_d, single, nginx, nginx1, api, api1, uuids[0],
                                     uuids[1]),
        }
        results["uploads"] = upload_bench(args, main_d, photo)
        if args.baseline_bin:
            results["baseline"] = baseline_bench(args, main_d, photo)
        config = (main_d.dir / "stderr.log").read_text(errors="replace") + \
            (main_d.dir / "stdout.log").read_text(errors="replace")
        results["ditherd_config"] = dict(re.findall(r"config (\w+)=(\S*)", config))
    finally:
        for proxy in (api1, api, nginx1, nginx):
            if proxy is not None:
                proxy.stop()
        single.stop()
        main_d.stop()
    args.out.write_text(json.dumps(results, indent=1))
    log(f"raw results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
