"""The distributed stack (scripts/stack.sh) as a test fixture: PostgreSQL, Kafka and versitygw,
then upload-service, two dithering-service workers and api-gateway, each its own process, on
ports of their own (base DITHER_TEST_STACK_PORT_BASE, default 30000: below the kernel's ephemeral
ports, which a client connection could hold) and state under build/distributed-test
(DITHER_TEST_STACK_WORKDIR). Every process serves metrics (METRICS_ADDRESS, from PORT_BASE+464)
and a Prometheus server scrapes them every second (PORT_BASE+90, `stack.prometheus_port`). Every
process sends its spans to a Jaeger (OTLP on PORT_BASE+318, its query API on PORT_BASE+686:
`stack.jaeger_query_port`). The HTTP helpers are the functional suite's (harness.Ditherd).

    stack = Stack(tmp_dir)
    stack.up()
    record = stack.upload_ok(imagegen.photo_png())
    stack.kill("dithering-service-1")          # SIGKILL one worker
    stack.infra("kafka", "stop"); stack.infra("kafka", "start")
    messages = stack.read_topic("images")      # with kcat, as a third party
    stack.down()

Every process gets the same secrets (SERVICE_TOKEN, LINK_SIGNING_KEYS, API_KEY_PEPPER; random
for each Stack, in `stack.secrets`), as processes on several hosts would. The first up() creates
`stack.key` (owner "tests") and `stack.admin_key` with dither-keys against the stack's PostgreSQL;
requests send the key as the functional suite's do (harness.Ditherd.request).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

import harness

REPO_ROOT = harness.REPO_ROOT
BIN_DIR = Path(os.environ.get("DITHERD_BIN_DIR") or REPO_ROOT / "build/release/src/app")
PORT_BASE = int(os.environ.get("DITHER_TEST_STACK_PORT_BASE", "30000"))
WORKERS = ("dithering-service-1", "dithering-service-2")
PROGRAMS = ("upload-service",) + WORKERS + ("notification-service", "api-gateway")


class Stack(harness.Ditherd):
    def __init__(self, workdir: Path, env: Optional[dict] = None):
        super().__init__(workdir, env)
        self.stack_dir = self.workdir / "stack"
        self.port = PORT_BASE + 80
        self.upload_port = PORT_BASE + 81
        self.dither_port = PORT_BASE + 82
        self.kafka_port = PORT_BASE + 92
        self.postgres_port = PORT_BASE + 432
        self.s3_port = PORT_BASE + 70
        self.smtp_port = PORT_BASE + 25
        self.notify_port = PORT_BASE + 84
        self.prometheus_port = PORT_BASE + 90
        # Jaeger (docs/TRACING.md): OTLP in, its query API (and that + 1 for its gRPC) out;
        # JAEGER_OTLP_PORT / JAEGER_QUERY_PORT place them elsewhere.
        self.jaeger_otlp_port = int(os.environ.get("JAEGER_OTLP_PORT") or PORT_BASE + 318)
        self.jaeger_query_port = int(os.environ.get("JAEGER_QUERY_PORT") or PORT_BASE + 686)
        self.metrics_port_base = PORT_BASE + 464  # scripts/stack.sh: gateway +0, upload +1...
        self.kafka = f"127.0.0.1:{self.kafka_port}"
        # Shared by every process (docs/SECURITY.md "Secrets"); a test may read them.
        self.secrets = {
            "SERVICE_TOKEN": secrets.token_urlsafe(32),
            "LINK_SIGNING_KEYS": secrets.token_urlsafe(32),
            "API_KEY_PEPPER": secrets.token_urlsafe(32),
        }
        for name, value in self.secrets.items():
            self.extra_env.setdefault(name, value)
        self.secrets = {name: self.extra_env[name] for name in self.secrets}
        # The prototype's IMAGE_UPLOADED names its original by URL: here a signed link to this
        # stack's gateway on 127.0.0.1, which the fetcher reaches only when told to
        # (docs/SECURITY.md, "URL fetcher"; loopback is for tests only).
        self.extra_env.setdefault("FETCH_ALLOWED_HOSTS", "127.0.0.1")
        self.extra_env.setdefault("FETCH_ALLOW_LOOPBACK", "on")
        # The bursts of 50 uploads at once are one owner's: a minute's budget (120) may go at
        # once, as before bursts were 10 s of budget (tests/functional/test_limits.py tests them).
        self.extra_env.setdefault("RATE_LIMIT_BURST_SECONDS", "60")

    def stack_env(self, **overrides) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(harness._CONFIG_PREFIXES) and k not in harness._CONFIG_NAMES}
        env.update({
            "DITHER_STACK_DIR": str(self.stack_dir),
            "DITHER_STACK_NO_BUILD": "1",
            "DITHERD_BIN_DIR": str(BIN_DIR),
            "DITHER_PORT": str(self.port),
            "UPLOAD_SERVICE_PORT": str(self.upload_port),
            "DITHER_SERVICE_PORT": str(self.dither_port),
            "POSTGRES_PORT": str(self.postgres_port),
            "KAFKA_PORT": str(self.kafka_port),
            "S3_PORT": str(self.s3_port),
            "SMTP_PORT": str(self.smtp_port),
            "NOTIFY_SERVICE_PORT": str(self.notify_port),
            "METRICS_PORT_BASE": str(self.metrics_port_base),
            "DITHER_STACK_PROMETHEUS": "1",
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "PROMETHEUS_SCRAPE_INTERVAL": "1s",
            # Every process sends its spans to the stack's Jaeger, every 200 ms.
            "DITHER_STACK_JAEGER": "1",
            "JAEGER_OTLP_PORT": str(self.jaeger_otlp_port),
            "JAEGER_QUERY_PORT": str(self.jaeger_query_port),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "LOG_LEVEL": "info",
        })
        env.update(self.extra_env)
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def _script(self, *args: str, timeout: float = 600) -> str:
        r = subprocess.run(list(args), cwd=REPO_ROOT, env=self.stack_env(), capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n"
                        f"{r.stderr[-3000:]}\n{self.logs()}")
        return r.stdout

    # ---- processes -----------------------------------------------------------------------

    def up(self) -> "Stack":
        """Starts whatever is not running (servers first); waits until every /health is 200."""
        for program in ("upload-service", "dithering-service", "notification-service",
                        "api-gateway"):
            if not (BIN_DIR / program).is_file():
                pytest.fail(f"{BIN_DIR / program} is missing: build it (scripts/build.sh release)")
        # `env` first, alone: it makes the stack directory's secrets file once, before `up`
        # starts the services side by side (each of them reads it).
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        # Jaeger is built once (go install; many minutes when cold), before `up`'s own timeout.
        self._script("scripts/infra/jaeger.sh", "install", timeout=1800)
        self._script("scripts/stack.sh", "env")
        self._script("scripts/stack.sh", "up")
        if self.key is None:
            self._create_test_keys()
        return self

    def service_env(self, **extra) -> dict:
        """The environment scripts/stack.sh gives its services (PostgreSQL, Kafka, S3, SMTP,
        the data dir, the secrets), plus `extra`."""
        r = subprocess.run(["scripts/stack.sh", "env"], cwd=REPO_ROOT, env=self.stack_env(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        env = self.stack_env()
        for line in r.stdout.splitlines():
            name, _, value = line.partition("=")
            if name:
                env[name] = value
        env.update({k: str(v) for k, v in extra.items()})
        return env

    # ---- keys (dither-keys against the stack's PostgreSQL) --------------------------------

    @property
    def keys_tool_path(self) -> Path:
        return BIN_DIR / "dither-keys"

    def keys_environment(self, overrides: dict) -> dict:
        return self.service_env(**overrides)

    def down(self) -> None:
        self._script("scripts/stack.sh", "down")

    def infra(self, server: str, action: str) -> None:
        """scripts/infra/<server>.sh <action> for this stack's servers."""
        env = self.stack_env()
        env["DITHER_INFRA_RUN"] = str(self.stack_dir / "infra")
        r = subprocess.run([f"scripts/infra/{server}.sh", action], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{server}.sh {action}: {r.stderr[-2000:]}"

    def pid(self, name: str) -> Optional[int]:
        path = self.stack_dir / f"{name}.pid"
        if not path.is_file():
            return None
        pid = int(path.read_text().strip())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:  # type: ignore[override]
        pid = self.pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            # Our child's children are reparented; a zombie still answers kill(0): reap it.
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        pytest.fail(f"{name} (pid {pid}) did not exit after signal {sig}")

    def logs(self, chars: int = 3000) -> str:
        out = []
        for name in PROGRAMS:
            path = self.stack_dir / f"{name}.log"
            if path.is_file():
                out.append(f"--- {name}.log\n{harness.tail(path, chars)}")
        return "\n".join(out)

    def crashes(self) -> list[str]:
        """Sanitizer reports or fatal errors in any service log."""
        found = []
        for name in PROGRAMS:
            path = self.stack_dir / f"{name}.log"
            if not path.is_file():
                continue
            text = path.read_text(errors="replace")
            for marker in harness.SANITIZER_MARKERS + ("terminate called", "Segmentation fault"):
                if marker in text:
                    found.append(f"{name}: {marker}")
        return found

    # ---- Kafka, as a third party (kcat) --------------------------------------------------

    def read_topic(self, topic: str, timeout: float = 20) -> list[dict]:
        """Every message of `topic` from the beginning: kcat's JSON envelope per message (topic,
        partition, offset, key, headers [name, value, ...], payload)."""
        r = subprocess.run(["kcat", "-C", "-b", self.kafka, "-t", topic, "-o", "beginning", "-e",
                            "-q", "-J", "-m", "10"],
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"kcat -C {topic}: {r.stderr[-1000:]}"
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def produce(self, topic: str, key: str, body: str, headers: list[tuple[str, str]]) -> None:
        """Produces one message with kcat (acks=all)."""
        args = ["kcat", "-P", "-b", self.kafka, "-t", topic, "-k", key, "-X", "acks=all"]
        for name, value in headers:
            args += ["-H", f"{name}={value}"]
        r = subprocess.run(args, input=body, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"kcat -P {topic}: {r.stderr[-1000:]}"


def headers_of(message: dict) -> list[tuple[str, str]]:
    flat = message.get("headers") or []
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
