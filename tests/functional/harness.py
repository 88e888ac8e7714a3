"""Starts the real ditherd binary and talks to it over HTTP.

One `Ditherd` is one installation: a data directory, an event log and three ports. A test can
start it, stop it (SIGTERM, SIGINT or SIGKILL) and start it again on the same data directory and
ports as often as it needs. Every start is a "run"; when the fixture tears the installation down,
every run is checked for a crash (an exit the test did not ask for, a signal other than the one
sent, a sanitizer report on stderr).

    server = Ditherd(tmp_path / "d1", {"AUTO_DITHER": "off"})
    server.start()
    record = server.upload_ok(imagegen.photo_png(), "photo.png", "image/png")
    server.wait_for(record["uuid"], {"FINISHED"})
    server.shutdown()          # SIGTERM; problems() lists anything that looked like a crash

Callers (issue 12, docs/SECURITY.md): the first start() creates two API keys with `dither-keys`
against the data directory, `server.key` (owner "tests") and `server.admin_key`, and every
request sends `Authorization: Bearer <server.key>` unless the caller gives its own Authorization
header (`headers={"Authorization": None}` sends none). `server.as_key(key)`, `server.as_admin()`
and `server.anonymous()` are views of the same installation that send another key or none.

Environment:
    DITHERD                      path of the binary (default build/release/src/app/ditherd)
    DITHER_TEST_TIMEOUT_SCALE    multiplies every timeout (e.g. 4 for a sanitizer build)
    DITHER_TEST_KEEP_ENV=1       pass DITHER_*/KAFKA_*/POSTGRES_*/... from the caller's
                                 environment through to the binary (default: removed, so the
                                 tests run the embedded defaults)
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Callable, Iterable, Optional

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DITHERD = Path(os.environ.get("DITHERD") or REPO_ROOT / "build/release/src/app/ditherd")
# The key tool (docs/SECURITY.md), built next to ditherd.
DITHER_KEYS = DITHERD.parent / "dither-keys"
TIMEOUT_SCALE = float(os.environ.get("DITHER_TEST_TIMEOUT_SCALE", "1") or "1")

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "AddressSanitizer:DEADLYSIGNAL",
    "ERROR: LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
)

# Variables of the caller's environment that would change what the binary does; removed unless
# DITHER_TEST_KEEP_ENV=1 so that the suite always runs the embedded defaults.
_CONFIG_PREFIXES = (
    "DITHER_", "KAFKA_", "POSTGRES_", "CLOUDINARY_", "S3_", "SMTP_", "UPLOAD_SERVICE_",
    "NOTIFY_", "MAIL_", "FETCH_", "QUOTA_",
)
_CONFIG_NAMES = (
    "PUBLIC_BASE_URL", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "MAX_ANIMATION_FRAMES",
    "MAX_ANIMATION_PIXELS", "AUTO_DITHER", "AUTO_DITHER_OPTIONS",
    "AUTO_DITHER_PRESET", "PRESETS_ONLY", "LOG_LEVEL", "GATEWAY_MAX_IN_FLIGHT", "IO_THREADS", "BLOCKING_THREADS", "BLOCKING_QUEUE",
    "BLOCKING_PER_CLIENT", "GATEWAY_COMPRESS_MIN_BYTES",
    "API_KEY_PEPPER", "LINK_SIGNING_KEYS", "SERVICE_TOKEN", "LINK_TTL_SECONDS", "ALLOWED_HOSTS",
    "AUTH_CACHE_SECONDS", "SESSION_LIFETIME_DAYS", "GATEWAY_UPSTREAM", "METRICS_ADDRESS",
    "LOG_FORMAT", "ACCESS_LOG",
    # Traces (docs/TRACING.md): a caller's collector must not receive the tests' spans.
    "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
# Message bodies are version 1.x: fields are added within the major version (1.1.0: "owner").
MESSAGE_VERSION_RE = re.compile(r"^1\.\d+\.\d+$")
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

# An API key as `dither-keys create` prints it: dk_<id>_<secret>.
API_KEY_RE = re.compile(r"^dk_(k[0-9a-f]{11})_[A-Za-z0-9_-]{43}$")

IMAGE_STATUSES = {"PENDING", "FINISHED", "FAILED", "DITHER_DELETED"}
DITHER_STATUSES = {"PENDING", "FINISHED", "FAILED"}


def scaled(seconds: float) -> float:
    return seconds * TIMEOUT_SCALE


def unsigned(url: str) -> str:
    """A link without its query string (the signature: ?expires=...&sig=...). Records keep the
    unsigned URL; answers and mails sign it, each with its own expiry."""
    return url.split("?", 1)[0] if isinstance(url, str) else url


def same_file(a: str, b: str) -> bool:
    """Two links name the same stored object (their signatures may differ)."""
    return unsigned(a) == unsigned(b)


# Test servers listen on ports from here: below the kernel's ephemeral range (32768 and up), where
# the machine's own outgoing connections could take a port between our check and the server's
# bind, and below the fixed ports of the other suites (26000 and up).
PORT_RANGE = (20000, 26000)


def _worker_ports() -> tuple[int, int]:
    """This process's share of PORT_RANGE. Under pytest-xdist (scripts/functional.sh runs the suite
    on two workers per core) each worker draws from its own slice, so that one worker never picks
    a port another has checked and is about to bind. (A worker that replaces a crashed one gets the
    next id: the slice is the id modulo the number of workers.)"""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker.startswith("gw") or not worker[2:].isdigit() or not count:
        return PORT_RANGE
    workers = max(1, int(count))
    index = int(worker[2:]) % workers
    size = (PORT_RANGE[1] - PORT_RANGE[0]) // workers
    return (PORT_RANGE[0] + index * size, PORT_RANGE[0] + (index + 1) * size)


# Ports this process has handed out: not handed out again while others are left, since a test may
# check a port and bind it only later (an SMTP sink started after the server that will use it).
_handed_out: set[int] = set()


def free_ports(count: int, consecutive: bool = False) -> list[int]:
    """Distinct ports that were free a moment ago and that this process has not handed out before
    (while there are such); `consecutive`: p, p+1, ... (a server that also listens on its port +
    1)."""
    rnd = random.Random()
    low, high = _worker_ports()
    if len(_handed_out) > (high - low) // 2:
        _handed_out.clear()  # a long run: start over
    for _ in range(500):
        if consecutive:
            start = rnd.randrange(low, high - count)
            ports = list(range(start, start + count))
        else:
            ports = rnd.sample(range(low, high), count)
        if _handed_out.intersection(ports):
            continue
        socks = []
        try:
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            _handed_out.update(ports)
            return ports
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} free ports in {low}..{high - 1}")


def wait_until(condition: Callable[[], object], timeout: float, message: str | Callable[[], str],
               interval: float = 0.05):
    """Polls condition() until it returns something truthy (returned) or fails the test."""
    deadline = time.monotonic() + scaled(timeout)
    delay = interval
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            pytest.fail(f"timed out after {scaled(timeout):.0f}s: {text}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def tail(path: Path, chars: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return text if len(text) <= chars else "...\n" + text[-chars:]


# Ditherd._view_key of an installation itself: it sends its own server.key.
_OWN_KEY = object()


class Run:
    """One lifetime of the process."""

    def __init__(self, proc: subprocess.Popen, stdout: Path, stderr: Path):
        self.proc = proc
        self.stdout = stdout
        self.stderr = stderr
        self.signal_sent: Optional[int] = None
        self.exited_on_its_own = False


class Ditherd:
    """One installation of ditherd (data dir, event log, ports) plus an HTTP client for it."""

    def __init__(self, workdir: Path, env: Optional[dict] = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.event_log = self.workdir / "events.jsonl"
        self.extra_env = {k: str(v) for k, v in (env or {}).items()}
        self.host = "127.0.0.1"
        self.port = self.upload_port = self.dither_port = self.notify_port = 0
        self.runs: list[Run] = []
        self._lock = threading.Lock()
        # API keys made by the first start() (see the module's doc string).
        self.key: Optional[str] = None
        self.admin_key: Optional[str] = None
        self.key_id: Optional[str] = None
        self.admin_key_id: Optional[str] = None
        self._view_key = _OWN_KEY  # what this object sends: its own key, another, or none

    # ---- process -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def proc(self) -> Optional[subprocess.Popen]:
        return self.runs[-1].proc if self.runs else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def environment(self, overrides: dict) -> dict:
        if os.environ.get("DITHER_TEST_KEEP_ENV") == "1":
            env = dict(os.environ)
        else:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(_CONFIG_PREFIXES) and k not in _CONFIG_NAMES}
        env.update({
            "DITHER_HOST": self.host,
            "DITHER_PORT": str(self.port),
            "UPLOAD_SERVICE_PORT": str(self.upload_port),
            "DITHER_SERVICE_PORT": str(self.dither_port),
            "NOTIFY_SERVICE_PORT": str(self.notify_port),
            "DITHER_DATA_DIR": str(self.data_dir),
            "DITHER_EVENT_LOG": str(self.event_log),
            "LOG_LEVEL": "info",
            # Other tests are not about rate limits (tests/functional/test_limits.py is): one
            # module's server may take more than a minute's budget.
            "RATE_LIMIT_UPLOADS": "100000", "RATE_LIMIT_DITHERS": "100000",
            "RATE_LIMIT_READS": "1000000", "RATE_LIMIT_SESSIONS": "100000",
            # test_limits.py counts a minute's budget; its burst test sets 10 s again.
            "RATE_LIMIT_BURST_SECONDS": "60",
        })
        env.update(self.extra_env)
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def start(self, timeout: float = 20, **env_overrides) -> "Ditherd":
        """Starts the binary and waits for GET /health; a second call restarts on the same data
        directory and ports. env_overrides apply to this start (and are remembered)."""
        if not DITHERD.is_file() or not os.access(DITHERD, os.X_OK):
            pytest.fail(f"ditherd binary not found or not executable at {DITHERD}: build it "
                        "(scripts/build.sh release) or point the DITHERD variable at it")
        assert not self.running(), "start() while the previous run is still running"
        self.extra_env.update({k: str(v) for k, v in env_overrides.items()})
        restart = bool(self.runs)
        attempts = 3
        for attempt in range(1, attempts + 1):
            if not restart:
                self.port, self.upload_port, self.dither_port, self.notify_port = free_ports(4)
            if self.key is None:
                self._create_test_keys()
            n = len(self.runs) + 1
            stdout = self.workdir / f"ditherd-{n}.stdout.log"
            stderr = self.workdir / f"ditherd-{n}.stderr.log"
            with open(stdout, "wb") as out, open(stderr, "wb") as err:
                proc = subprocess.Popen([str(DITHERD)], env=self.environment({}),
                                        cwd=self.workdir, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err)
            run = Run(proc, stdout, stderr)
            self.runs.append(run)
            outcome = self._wait_healthy(run, scaled(timeout))
            if outcome == "ok":
                return self
            if outcome == "timeout":
                proc.kill()
                proc.wait()
                run.signal_sent = signal.SIGKILL
                pytest.fail(f"ditherd did not answer GET /health with 200 within "
                            f"{scaled(timeout):.0f}s (port {self.port}); stderr:\n{tail(stderr)}")
            # The process exited before it was ready: most likely a port taken in the meantime
            # (or, on restart, not yet released). Try again; give up after a few attempts. A
            # sanitizer report in its stderr is still found by problems().
            if attempt == attempts:
                pytest.fail(f"ditherd exited with code {proc.returncode} before it was ready "
                            f"({attempts} attempts); stderr:\n{tail(stderr)}")
            time.sleep(0.5)
        return self

    # ---- keys ----------------------------------------------------------------------------

    @property
    def keys_tool_path(self) -> Path:
        return DITHER_KEYS

    def keys_environment(self, overrides: dict) -> dict:
        """The environment dither-keys runs with: the servers' own (data dir, store, pepper)."""
        return self.environment(overrides)

    def keys_tool(self, *args: str, check: bool = True, **env) -> subprocess.CompletedProcess:
        """Runs `dither-keys ARGS...` against this installation's store; with check=True a
        non-zero exit fails the test."""
        tool = self.keys_tool_path
        if not tool.is_file() or not os.access(tool, os.X_OK):
            pytest.fail(f"dither-keys not found or not executable at {tool}: build it "
                        "(scripts/build.sh release)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([str(tool), *args], env=self.keys_environment(env), cwd=self.workdir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=scaled(60))
        if check and r.returncode != 0:
            pytest.fail(f"dither-keys {' '.join(args)} exited with {r.returncode}:\n"
                        f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
        return r

    def create_key(self, name: str, owner: Optional[str] = None, admin: bool = False) -> dict:
        """`dither-keys create --json`: {"id", "key", "owner", "name", "admin", "created_at"}."""
        args = ["create", "--name", name, "--json"]
        if owner is not None:
            args += ["--owner", owner]
        if admin:
            args.append("--admin")
        r = self.keys_tool(*args)
        try:
            made = json.loads(r.stdout)
        except ValueError:
            pytest.fail(f"dither-keys {' '.join(args)} did not print JSON: {r.stdout[:500]!r}")
        assert isinstance(made, dict) and isinstance(made.get("key"), str), made
        return made

    def revoke_key(self, key_id: str) -> None:
        self.keys_tool("revoke", key_id)

    def _create_test_keys(self) -> None:
        made = self.create_key("tests", owner="tests")
        admin = self.create_key("tests-admin", admin=True)
        self.key, self.key_id = made["key"], made["id"]
        self.admin_key, self.admin_key_id = admin["key"], admin["id"]

    def as_key(self, key: Optional[str]) -> "Ditherd":
        """A view of this installation whose requests send `key` (None: no Authorization).
        Views share the process; make them after start()."""
        view = copy.copy(self)
        view._view_key = key
        return view

    def as_admin(self) -> "Ditherd":
        return self.as_key(self.admin_key)

    def anonymous(self) -> "Ditherd":
        return self.as_key(None)

    @property
    def sent_key(self) -> Optional[str]:
        """The key this object's requests send."""
        return self.key if self._view_key is _OWN_KEY else self._view_key

    def auth_headers(self) -> dict:
        key = self.sent_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _wait_healthy(self, run: Run, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if run.proc.poll() is not None:
                return "exited"
            try:
                r = requests.get(self.base_url + "/health", timeout=1)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return "ok"
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.05)
        return "timeout"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Sends sig and waits for the exit; returns the exit code (negative = signal)."""
        run = self.runs[-1]
        if run.proc.poll() is None:
            run.signal_sent = sig
            run.proc.send_signal(sig)
        elif run.signal_sent is None:
            run.exited_on_its_own = True
        try:
            run.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
            pytest.fail(f"ditherd did not exit within {scaled(timeout):.0f}s of "
                        f"{signal.Signals(sig).name}; stderr:\n{tail(run.stderr)}")
        return run.proc.returncode

    def kill(self) -> None:
        """SIGKILL, the crash a test asks for."""
        self.stop(signal.SIGKILL, timeout=10)

    def problems(self) -> list[str]:
        """Everything that looks like a crash in any run so far."""
        found = []
        for i, run in enumerate(self.runs, 1):
            code = run.proc.poll()
            where = f"run {i} ({run.stderr})"
            if run.exited_on_its_own:
                found.append(f"{where}: exited on its own with code {code}")
            elif run.signal_sent is not None and code is not None:
                sent = run.signal_sent
                if sent == signal.SIGKILL:
                    pass  # asked for
                elif code < 0 and -code != sent:
                    found.append(f"{where}: died of {signal.Signals(-code).name} after "
                                 f"{signal.Signals(sent).name}")
                elif code > 0:
                    found.append(f"{where}: exit code {code} after {signal.Signals(sent).name}")
            try:
                text = run.stderr.read_text(errors="replace")
            except FileNotFoundError:
                text = ""
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    found.append(f"{where}: sanitizer report ({marker!r}) on stderr")
                    break
        return found

    def shutdown(self) -> list[str]:
        """Stops the current run with SIGTERM (if running) and returns problems()."""
        if self.runs:
            run = self.runs[-1]
            if run.proc.poll() is None:
                self.stop(signal.SIGTERM)
            elif run.signal_sent is None:
                run.exited_on_its_own = True
        return self.problems()

    def stderr_tail(self, chars: int = 4000) -> str:
        return tail(self.runs[-1].stderr, chars) if self.runs else "(never started)"

    # ---- HTTP ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def request(self, method: str, path: str, **kw) -> requests.Response:
        """Sends `Authorization: Bearer <key>` (see as_key) unless `headers` has an
        Authorization of its own; an Authorization of None sends none."""
        kw.setdefault("timeout", scaled(30))
        headers = dict(kw.pop("headers", None) or {})
        if not any(name.lower() == "authorization" for name in headers):
            headers.update(self.auth_headers())
        headers = {k: v for k, v in headers.items() if v is not None}
        return requests.request(method, self.url(path), headers=headers, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def upload(self, data: bytes, filename: str = "photo.png", content_type: str = "image/png",
               email: Optional[str] = None, field: str = "file", **kw) -> requests.Response:
        """multipart/form-data upload: the file under `field`, plus `email` if given."""
        form = {"email": email} if email is not None else None
        return self.post("/api/images", files={field: (filename, data, content_type)},
                         data=form, **kw)

    def upload_raw(self, data: bytes, content_type: str, filename: Optional[str] = None,
                   via: str = "header", **kw) -> requests.Response:
        """Raw-body upload; the name goes in X-Filename (via="header") or ?filename= ("query")."""
        headers = {"Content-Type": content_type}
        params = {}
        if filename is not None:
            if via == "header":
                headers["X-Filename"] = filename
            else:
                params["filename"] = filename
        return self.post("/api/images", data=data, headers=headers, params=params, **kw)

    def upload_ok(self, data: bytes, filename: str = "photo.png",
                  content_type: str = "image/png", email: Optional[str] = None,
                  field: str = "file") -> dict:
        r = self.upload(data, filename, content_type, email=email, field=field)
        assert r.status_code == 201, f"upload of {filename}: {r.status_code} {r.text[:500]}"
        return r.json()

    def image(self, uuid: str) -> dict:
        r = self.get(f"/api/images/{uuid}")
        assert r.status_code == 200, f"GET /api/images/{uuid}: {r.status_code} {r.text[:500]}"
        return r.json()

    def wait_for(self, uuid: str, statuses: Iterable[str] = ("FINISHED",),
                 timeout: float = 60) -> dict:
        """Polls GET /api/images/{uuid} until its status is one of `statuses`. Fails early if it
        settles on FAILED while FAILED was not asked for."""
        wanted = set(statuses)
        last: dict = {}

        def check():
            nonlocal last
            r = self.get(f"/api/images/{uuid}")
            assert r.status_code == 200, f"GET /api/images/{uuid}: {r.status_code} {r.text[:300]}"
            last = r.json()
            if last.get("status") == "FAILED" and "FAILED" not in wanted:
                pytest.fail(f"image {uuid} FAILED while waiting for {sorted(wanted)}: "
                            f"{last.get('error')!r}")
            return last.get("status") in wanted

        wait_until(check, timeout, lambda: f"image {uuid} never reached {sorted(wanted)}; "
                                           f"last record {json.dumps(last)[:800]}")
        return last

    def request_dither(self, uuid: str, channels, params: Optional[dict] = None,
                       json_body=None, **kw) -> requests.Response:
        return self.post(f"/api/dithers/{uuid}/{channels}", params=params, json=json_body, **kw)

    def request_dither_ok(self, uuid: str, channels, params: Optional[dict] = None,
                          json_body=None) -> dict:
        r = self.request_dither(uuid, channels, params, json_body)
        assert r.status_code == 202, (f"POST /api/dithers/{uuid}/{channels} {params or ''} "
                                      f"{json_body or ''}: {r.status_code} {r.text[:500]}")
        return r.json()

    def dithers_of(self, uuid: str) -> list[dict]:
        r = self.get(f"/api/dithers/{uuid}")
        assert r.status_code == 200, f"GET /api/dithers/{uuid}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body.get("uuid") == uuid, f"GET /api/dithers/{uuid} names {body.get('uuid')!r}"
        return body["items"]

    def wait_dither(self, uuid: str, dither_id, statuses: Iterable[str] = ("FINISHED",),
                    timeout: float = 60) -> dict:
        """Polls GET /api/dithers/{uuid} until dither `dither_id` has one of `statuses`."""
        wanted = set(statuses)
        last: dict = {}

        def check():
            nonlocal last
            items = [d for d in self.dithers_of(uuid) if d.get("id") == dither_id]
            if not items:
                return False
            assert len(items) == 1, f"dither id {dither_id} listed {len(items)} times"
            last = items[0]
            if last.get("status") == "FAILED" and "FAILED" not in wanted:
                pytest.fail(f"dither {dither_id} of {uuid} FAILED: {last.get('error')!r}")
            return last.get("status") in wanted

        wait_until(check, timeout, lambda: f"dither {dither_id} of image {uuid} never reached "
                                           f"{sorted(wanted)}; last {json.dumps(last)[:800]}")
        return last

    def list_pages(self, path: str = "/api/images", limit: Optional[int] = None) -> list[dict]:
        """Follows next_cursor to the end; returns the pages' bodies."""
        pages = []
        cursor = None
        for _ in range(10000):
            params = {}
            if limit is not None:
                params["limit"] = limit
            if cursor is not None:
                params["cursor"] = cursor
            r = self.get(path, params=params)
            assert r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text[:300]}"
            body = r.json()
            pages.append(body)
            cursor = body.get("next_cursor")
            if cursor is None:
                return pages
            assert isinstance(cursor, str) and cursor, f"next_cursor {cursor!r}"
        pytest.fail(f"GET {path}: cursors never ended")

    def list_all(self, path: str = "/api/images", limit: int = 1000) -> list[dict]:
        return [item for page in self.list_pages(path, limit) for item in page["items"]]

    # ---- events and files ----------------------------------------------------------------

    def events(self, strict: bool = True) -> list[dict]:
        """Every message in DITHER_EVENT_LOG so far. A last line without its newline is still
        being written and is left out. strict=False skips lines that are not JSON (the line
        torn by a SIGKILL)."""
        try:
            text = self.event_log.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        lines = text.split("\n")[:-1]
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                if strict:
                    pytest.fail(f"event log line {n} is not JSON: {line[:300]!r}")
                continue
            out.append(message)
        return out

    def wait_events(self, predicate: Callable[[dict], bool], count: int = 1,
                    timeout: float = 30) -> list[dict]:
        """Waits until at least `count` events match; returns the matching events."""
        found: list[dict] = []

        def check():
            nonlocal found
            found = [e for e in self.events() if predicate(e)]
            return len(found) >= count

        wait_until(check, timeout, lambda: f"expected {count} matching event(s), found "
                                           f"{len(found)}; log has {len(self.events())} events")
        return found

    def files(self) -> set[str]:
        """Files under the data directory (relative paths), without SQLite's -wal/-shm/-journal
        side files, whose presence depends on checkpoints rather than on what was stored."""
        out = set()
        if not self.data_dir.exists():
            return out
        for root, _dirs, names in os.walk(self.data_dir):
            for name in names:
                if name.endswith(("-wal", "-shm", "-journal")):
                    continue
                path = Path(root) / name
                if path == self.event_log:
                    continue
                out.add(str(path.relative_to(self.data_dir)))
        return out

    def snapshot(self) -> dict:
        """Everything there is (listed with the admin key: every owner's images and dithers)."""
        viewer = self.as_admin() if self.admin_key else self
        return {
            "images": [i["uuid"] for i in viewer.list_all("/api/images")],
            "dithers": [d["id"] for d in viewer.list_all("/api/dithers")],
            "files": self.files(),
            "events": len(self.events()),
        }

    def assert_unchanged(self, before: dict, settle: float = 0.3) -> None:
        """Nothing left behind since `before`: no image, no dither, no file, no event. Waits
        `settle` seconds first, because an event or file written by mistake could come just
        after the response."""
        time.sleep(settle)
        assert self.running(), f"ditherd is no longer running; stderr:\n{self.stderr_tail()}"
        after = self.snapshot()
        assert after["images"] == before["images"], (
            f"images changed: {before['images']} -> {after['images']}")
        assert after["dithers"] == before["dithers"], (
            f"dithers changed: {before['dithers']} -> {after['dithers']}")
        added = sorted(after["files"] - before["files"])
        removed = sorted(before["files"] - after["files"])
        assert not added and not removed, f"files under the data dir: added {added}, " \
                                          f"removed {removed}"
        assert after["events"] == before["events"], (
            f"new events: {self.events()[before['events']:]}")


SESSION_COOKIE = "dither_session"


def browser_session(server: "Ditherd") -> requests.Session:
    """A requests.Session that loaded the page (GET /) and so holds a `dither_session` cookie of
    its own, like a browser; it sends no key. State-changing requests made with it need the
    page's origin: pass `headers=same_origin(server)`."""
    session = requests.Session()
    r = session.get(server.url("/"), timeout=scaled(10))
    assert r.status_code == 200, f"GET /: {r.status_code} {r.text[:300]}"
    assert session.cookies.get(SESSION_COOKIE), (
        f"GET / set no {SESSION_COOKIE} cookie; Set-Cookie: {r.headers.get('Set-Cookie')!r}")
    return session


def same_origin(server: "Ditherd") -> dict:
    """The headers a browser sends with a state-changing request from the page itself."""
    return {"Origin": server.base_url, "Sec-Fetch-Site": "same-origin"}


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def assert_error(r: requests.Response, status: int, codes: Optional[Iterable[str]] = None,
                 what: str = "") -> dict:
    """A JSON error {"error": {"code", "message"}} with this status (and one of `codes`)."""
    label = what or f"{r.request.method} {r.request.url}"
    assert r.status_code == status, f"{label}: expected {status}, got {r.status_code} " \
                                    f"{r.text[:500]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"{label}: error Content-Type {ctype!r}"
    body = r.json()
    err = body.get("error") if isinstance(body, dict) else None
    assert isinstance(err, dict), f"{label}: no error object in {body!r}"
    assert isinstance(err.get("code"), str) and err["code"], f"{label}: error code {err!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"{label}: message {err!r}"
    if codes is not None:
        codes = set(codes)
        assert err["code"] in codes, f"{label}: error code {err['code']!r} not in {sorted(codes)}"
    return err


class ServerPool:
    """Starts installations for a fixture and checks them all for crashes at teardown."""

    active: list["Ditherd"] = []  # for failure reports

    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)
        self.servers: list[Ditherd] = []

    def __call__(self, start: bool = True, **env) -> Ditherd:
        server = Ditherd(self.base_dir / f"ditherd-{len(self.servers) + 1}", env)
        self.servers.append(server)
        ServerPool.active.append(server)
        if start:
            server.start()
        return server

    def close(self) -> None:
        problems = []
        for server in self.servers:
            try:
                for p in server.shutdown():
                    problems.append(f"{p}\n--- stderr tail ---\n{server.stderr_tail()}")
            finally:
                if server in ServerPool.active:
                    ServerPool.active.remove(server)
        if problems:
            pytest.fail("ditherd crashed:\n" + "\n".join(problems), pytrace=False)
