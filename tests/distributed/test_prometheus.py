"""A real Prometheus (Debian's, started by scripts/stack.sh with DITHER_STACK_PROMETHEUS=1 and
scripts/infra/prometheus.sh) scrapes every process of the stack every second and evaluates
deploy/prometheus's rules. Asked through its HTTP API (/api/v1/query, /api/v1/rules), never
through the processes' own /metrics: what an operator's Prometheus sees, labels included."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
import requests

import harness
import imagegen
from stack import WORKERS

RULES = harness.REPO_ROOT / "deploy" / "prometheus"
# job (= service label) -> the instances scripts/stack.sh gives it.
TARGETS = {
    "api-gateway": {"api-gateway"},
    "upload-service": {"upload-service"},
    "dithering-service": set(WORKERS),
    "notification-service": {"notification-service"},
}


def query(stack, expr: str) -> list[dict]:
    r = requests.get(f"http://127.0.0.1:{stack.prometheus_port}/api/v1/query",
                     params={"query": expr}, timeout=harness.scaled(10))
    assert r.status_code == 200, f"{expr}: {r.status_code} {r.text[:500]}"
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def total(stack, selector: str) -> float:
    """The sum of the series `selector` selects, as Prometheus last scraped them (0 if none)."""
    result = query(stack, f"sum({selector})")
    return float(result[0]["value"][1]) if result else 0.0


def targets_up(stack) -> dict:
    """(job, instance) -> value of `up`, for the stack's processes."""
    return {(s["metric"]["job"], s["metric"]["instance"]): s["value"][1]
            for s in query(stack, 'up{job!="prometheus"}')}


def expected_targets() -> set:
    return {(job, instance) for job, instances in TARGETS.items() for instance in instances}


def wait_all_up(stack, timeout: float = 30) -> None:
    harness.wait_until(
        lambda: targets_up(stack) == {t: "1" for t in expected_targets()}, timeout,
        lambda: f"targets are not all up: {targets_up(stack)}; want {sorted(expected_targets())}")


def wait_fresh_scrape(stack) -> None:
    """Until every process has been scraped since now: what it counted before is in Prometheus."""
    now = time.time()

    def fresh():
        stamps = query(stack, 'timestamp(up{job!="prometheus"})')
        return len(stamps) == len(expected_targets()) and \
            all(float(s["value"][1]) > now for s in stamps)

    harness.wait_until(fresh, 15, "Prometheus does not scrape every second")


def test_prometheus_scrapes_every_process_with_its_service_and_instance(stack):
    wait_all_up(stack)
    # The labels reach every series a process exposes: build info and process metrics per process.
    build = {(s["metric"]["job"], s["metric"]["service"], s["metric"]["instance"])
             for s in query(stack, "dither_build_info == 1")}
    assert build == {(job, job, instance) for job, instance in expected_targets()}
    memory = query(stack, 'process_resident_memory_bytes{job!="prometheus"}')
    assert len(memory) == len(expected_targets())
    assert all(float(s["value"][1]) > 1e6 for s in memory), memory
    r = requests.get(f"http://127.0.0.1:{stack.prometheus_port}/api/v1/targets",
                     params={"state": "active"}, timeout=harness.scaled(10))
    active = r.json()["data"]["activeTargets"]
    assert {t["scrapeUrl"] for t in active if t["labels"]["job"] != "prometheus"} == {
        f"http://127.0.0.1:{stack.metrics_port_base + offset}/metrics"
        for offset in range(len(expected_targets()))}
    assert all(t["health"] == "up" and not t["lastError"] for t in active), active


def test_an_upload_and_its_dither_move_the_counters_prometheus_reads(stack):
    wait_all_up(stack)
    wait_fresh_scrape(stack)
    selectors = {
        "stored": 'dither_uploads_total{job="upload-service",outcome="stored"}',
        "size_count": 'dither_upload_size_bytes_count{job="upload-service"}',
        "size_sum": 'dither_upload_size_bytes_sum{job="upload-service"}',
        "posts": 'dither_http_requests_total{job="api-gateway",server="gateway",'
                 'route="/api/images",method="POST",status="201"}',
        "finished": 'dither_dithers_total{job="dithering-service",outcome="finished"}',
        "dither_stage": 'dither_stage_duration_seconds_count{job="dithering-service",'
                        'stage="dither"}',
        # Through Kafka: IMAGE_UPLOADED out of the upload outbox into the workers' group, and the
        # finished dither's message back.
        "images_out": 'dither_messages_published_total{job="upload-service",topic="images"}',
        "images_in": 'dither_messages_consumed_total{job="dithering-service",topic="images"}',
        "dithers_out": 'dither_messages_published_total{job="dithering-service",topic="dithers"}',
        "dithers_in": 'dither_messages_consumed_total{job="upload-service",topic="dithers"}',
    }
    before = {name: total(stack, selector) for name, selector in selectors.items()}

    picture = imagegen.photo_png(96, 64, seed=1717)
    record = stack.upload_ok(picture, "prometheus.png")
    stack.wait_for(record["uuid"])

    def moved():
        values = now()
        return values if all(values[name] > before[name] for name in selectors) else None

    def now() -> dict:
        return {name: total(stack, selector) for name, selector in selectors.items()}

    after = harness.wait_until(moved, 30, lambda: f"counters did not all move in Prometheus: "
                                                  f"before {before}, now {now()}")
    # Exactly this upload: one stored, its bytes, one 201 from the gateway's upload route.
    assert after["stored"] - before["stored"] == 1
    assert after["size_count"] - before["size_count"] == 1
    assert after["size_sum"] - before["size_sum"] == len(picture)
    assert after["posts"] - before["posts"] == 1
    assert after["finished"] - before["finished"] >= 1
    assert after["dither_stage"] - before["dither_stage"] >= 1
    # The route is the pattern: no series carries the image's id.
    assert not query(stack, f'{{__name__=~"dither_.+",route=~".*{record["uuid"]}.*"}}')


def test_every_dashboard_query_runs_on_the_stacks_series(stack):
    # The dashboard's queries as Grafana sends them (every variable at All), on the real labels:
    # each runs without error, and the panels of what the stack has done by now show data.
    board = json.loads((harness.REPO_ROOT / "deploy/grafana/dither-dashboard.json").read_text())
    wait_all_up(stack)
    # A counter's series is born at its first increment: a rate needs a second sample of it.
    wait_fresh_scrape(stack)
    wait_fresh_scrape(stack)
    empty = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r"\$\{?__rate_interval\}?", "1m", target["expr"])
            if not query(stack, re.sub(r"\$\{?\w+\}?", ".*", expr)):
                empty.append(panel["title"])
    for title in ("Processes up", "Requests per second by route", "Latency by route (p50, p99)",
                  "Uploads per second by outcome", "Dithers per second by algorithm and outcome",
                  "Stage durations (p50, p99)", "CPU (cores)", "Resident memory"):
        assert title not in empty, f"{title} shows nothing (empty: {empty})"


def alert_names() -> set[str]:
    return set(re.findall(r"^\s*- alert: (\w+)\s*$", (RULES / "alerts.yml").read_text(), re.M))


def recorded_names() -> set[str]:
    return set(re.findall(r"^\s*- record: (\S+)\s*$", (RULES / "recording.yml").read_text(), re.M))


def test_the_rules_are_loaded_and_every_one_evaluates_without_error(stack):
    wait_all_up(stack)

    def rules():
        r = requests.get(f"http://127.0.0.1:{stack.prometheus_port}/api/v1/rules",
                         timeout=harness.scaled(10))
        assert r.status_code == 200, r.text[:500]
        return [rule for group in r.json()["data"]["groups"] for rule in group["rules"]]

    # Evaluated at least once (health "unknown" before), each without an error: an expression
    # that matches many-to-many on the real labels would be "err" here.
    harness.wait_until(lambda: all(rule["health"] != "unknown" for rule in rules()), 15,
                       "rules not evaluated yet")
    loaded = rules()
    assert {r["name"] for r in loaded if r["type"] == "alerting"} == alert_names()
    assert {r["name"] for r in loaded if r["type"] == "recording"} == recorded_names()
    broken = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert not broken, broken
    # A recording rule over the dithering workers' gauge gives one series for their job.
    recorded = query(stack, "job:dither_pending_dithers:max")
    assert [s["metric"]["job"] for s in recorded] == ["dithering-service"], recorded


def alerts(stack, name: str, **labels) -> set[str]:
    matchers = "".join(f',{k}="{v}"' for k, v in labels.items())
    series = query(stack, f'ALERTS{{alertname="{name}"{matchers}}}')
    return {s["metric"]["alertstate"] for s in series}


@pytest.mark.slow
def test_a_killed_process_is_down_and_its_alerts_go_pending(up):
    stack = up
    wait_all_up(stack)
    assert not alerts(stack, "DitherTargetDown")
    stack.kill("notification-service", signal.SIGKILL)
    harness.wait_until(lambda: targets_up(stack).get(
        ("notification-service", "notification-service")) == "0", 15, "up did not drop to 0")
    # `for: 2m` and `for: 1m`: pending within an evaluation or two, not firing yet.
    harness.wait_until(
        lambda: alerts(stack, "DitherTargetDown", instance="notification-service") == {"pending"}
        and alerts(stack, "DitherServiceDown", job="notification-service") == {"pending"},
        15, lambda: f"alerts: {query(stack, 'ALERTS')}")
    assert not alerts(stack, "DitherTargetDown", job="api-gateway")
    stack.up()
    wait_all_up(stack)
    harness.wait_until(lambda: not alerts(stack, "DitherTargetDown"), 15,
                       lambda: f"the alert stays: {query(stack, 'ALERTS')}")
