"""A real Jaeger (scripts/infra/jaeger.sh: v1.75.0, all-in-one, in memory) for the trace tests,
and the questions they ask its query API (docs/TRACING.md).

    j = Jaeger(run_dir).start()               # builds it once (go install), minutes when cold
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlp_endpoint}
    trace = j.wait_for_trace(lambda t: t.has("mail"), service="ditherd")
    upload = trace.one("upload"); assert trace.parent(upload).name == "POST /images"
    j.stop()
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Optional

import pytest
import requests

import harness

# A cold build of Jaeger takes many minutes on a small machine (the script caches it).
BUILD_TIMEOUT = 1800


class Span:
    def __init__(self, raw: dict, service: str):
        self.raw = raw
        self.id: str = raw["spanID"]
        self.name: str = raw["operationName"]
        self.service = service
        self.tags = {t["key"]: t["value"] for t in raw.get("tags") or []}
        refs = [r for r in raw.get("references") or [] if r.get("refType") == "CHILD_OF"]
        self.parent_id: Optional[str] = refs[0]["spanID"] if refs else None
        self.start: int = raw["startTime"]  # microseconds
        self.duration: int = raw["duration"]

    @property
    def kind(self) -> str:
        return self.tags.get("span.kind", "internal")

    @property
    def error(self) -> bool:
        return self.tags.get("error") is True or self.tags.get("otel.status_code") == "ERROR"

    def __repr__(self) -> str:
        return f"<{self.service}: {self.name} ({self.kind}) {self.id}>"


class Trace:
    """One trace as Jaeger's /api/traces answers it."""

    def __init__(self, raw: dict):
        self.raw = raw
        self.id: str = raw["traceID"]
        processes = {k: v["serviceName"] for k, v in (raw.get("processes") or {}).items()}
        self.spans = [Span(s, processes.get(s.get("processID"), "?")) for s in raw["spans"]]
        self.by_id = {s.id: s for s in self.spans}

    def named(self, name: str, service: Optional[str] = None) -> list[Span]:
        return [s for s in self.spans if s.name == name and (service is None or s.service == service)]

    def has(self, name: str, service: Optional[str] = None) -> bool:
        return bool(self.named(name, service))

    def one(self, name: str, service: Optional[str] = None) -> Span:
        found = self.named(name, service)
        assert len(found) == 1, f"{len(found)} spans {name!r} ({service}) in\n{self.outline()}"
        return found[0]

    def parent(self, span: Span) -> Optional[Span]:
        return self.by_id.get(span.parent_id) if span.parent_id else None

    def children(self, span: Span, name: Optional[str] = None) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span.id and (name is None or s.name == name)]

    def outline(self) -> str:
        """The tree, for failure messages."""
        lines = []

        def walk(span: Span, depth: int) -> None:
            lines.append(f"{'  ' * depth}{span.service}: {span.name} ({span.kind}) {span.id}")
            for child in sorted(self.children(span), key=lambda s: s.start):
                walk(child, depth + 1)

        for root in sorted((s for s in self.spans if s.parent_id not in self.by_id),
                           key=lambda s: s.start):
            walk(root, 0)
        return "\n".join(lines)


class Jaeger:
    def __init__(self, run_dir: Path, otlp_port: Optional[int] = None,
                 query_port: Optional[int] = None):
        self.run_dir = Path(run_dir)
        if otlp_port is None or query_port is None:
            # The query API's gRPC listener takes the query port + 1.
            otlp_port, query_port, _ = harness.free_ports(3, consecutive=True)
        self.otlp_port = otlp_port
        self.query_port = query_port

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def script(self, action: str, timeout: float = 120) -> str:
        env = dict(os.environ, DITHER_INFRA_RUN=str(self.run_dir),
                   JAEGER_OTLP_PORT=str(self.otlp_port), JAEGER_QUERY_PORT=str(self.query_port))
        r = subprocess.run(["scripts/infra/jaeger.sh", action], cwd=harness.REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            pytest.fail(f"scripts/infra/jaeger.sh {action} failed ({r.returncode}):\n"
                        f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
        return r.stdout

    def start(self) -> "Jaeger":
        self.script("install", timeout=BUILD_TIMEOUT)
        self.script("start")
        return self

    def stop(self) -> None:
        self.script("stop")

    def log(self, chars: int = 3000) -> str:
        return harness.tail(self.run_dir / "jaeger" / "server.log", chars)

    # ---- the query API -------------------------------------------------------------------

    def services(self) -> list[str]:
        r = requests.get(f"{self.query_url}/api/services", timeout=10)
        assert r.status_code == 200, r.text[:500]
        return r.json().get("data") or []

    def traces(self, service: str, operation: Optional[str] = None, limit: int = 50) -> list[Trace]:
        params = {"service": service, "limit": str(limit)}
        if operation:
            params["operation"] = operation
        r = requests.get(f"{self.query_url}/api/traces", params=params, timeout=10)
        assert r.status_code == 200, r.text[:500]
        return [Trace(t) for t in r.json().get("data") or []]

    def trace(self, trace_id: str) -> Optional[Trace]:
        r = requests.get(f"{self.query_url}/api/traces/{trace_id}", timeout=10)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text[:500]
        data = r.json().get("data") or []
        return Trace(data[0]) if data else None

    def wait_for_trace(self, complete: Callable[[Trace], bool], service: Optional[str] = None,
                       trace_id: Optional[str] = None, operation: Optional[str] = None,
                       timeout: float = 60) -> Trace:
        """Polls until a trace (of `service`, or the one with `trace_id`) is `complete`: spans
        arrive from each process in batches, in any order."""
        last: list[Trace] = []

        def check():
            nonlocal last
            if trace_id is not None:
                t = self.trace(trace_id)
                last = [t] if t else []
            else:
                last = self.traces(service, operation)
            return next((t for t in last if complete(t)), None)

        return harness.wait_until(
            check, timeout,
            lambda: "no complete trace in Jaeger; the last seen:\n" +
                    "\n---\n".join(t.outline() for t in last[:3]) + f"\njaeger log:\n{self.log()}",
            interval=0.2)

