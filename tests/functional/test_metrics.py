"""METRICS_ADDRESS: Prometheus metrics on a listener of their own, never the gateway's port
(docs/METRICS.md). The exposition is checked with Prometheus's own `promtool check metrics`
(Debian's `prometheus` package, installed by scripts/setup.sh)."""

from __future__ import annotations

import math
import shutil
import subprocess

import requests

import harness
import imagegen


def scrape(port: int) -> str:
    r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=harness.scaled(10))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text


def sample(text: str, series: str) -> float:
    """One series' value ('name{labels}', labels in alphabetical order); NaN when absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line[len(series) + 1:])
    return math.nan


def requests_of(text: str, method: str, route: str, status: int) -> float:
    return sample(text, f'dither_http_requests_total{{method="{method}",route="{route}",'
                        f'server="gateway",status="{status}"}}')


def test_the_gateways_requests_are_counted_by_route_and_promtool_accepts_the_text(start_server):
    (port,) = harness.free_ports(1)
    s = start_server(METRICS_ADDRESS=f"127.0.0.1:{port}")
    before = scrape(port)
    assert math.isnan(requests_of(before, "POST", "/api/images", 201))
    record = s.upload_ok(imagegen.photo_png(32, 24), "m.png")
    s.wait_for(record["uuid"])  # polls GET /api/images/{uuid}: counted from here
    middle = scrape(port)
    for _ in range(3):
        assert s.get(f"/api/images/{record['uuid']}").status_code == 200
    assert s.get("/api/nowhere").status_code == 404
    # The gateway's own port has no /metrics: they are not public.
    assert s.get("/metrics").status_code == 404

    text = scrape(port)
    assert requests_of(text, "POST", "/api/images", 201) == 1
    assert requests_of(text, "GET", "/api/images/{uuid}", 200) - \
        requests_of(middle, "GET", "/api/images/{uuid}", 200) == 3
    assert requests_of(text, "GET", "unmatched", 404) == 2
    assert record["uuid"] not in text, "a label holds an id: one series per image"
    durations = 'dither_http_request_duration_seconds_count{method="GET",' \
                'route="/api/images/{uuid}",server="gateway"}'
    assert sample(text, durations) - sample(middle, durations) == 3
    assert sample(text, 'dither_http_requests_in_flight{server="gateway"}') == 0
    # A connection kept open (a session) is an open connection.
    with requests.Session() as held:
        assert held.get(s.url("/health"), timeout=harness.scaled(10)).status_code == 200
        assert sample(scrape(port), 'dither_http_connections{server="gateway"}') >= 1
    assert [line.split()[-1] for line in text.splitlines()
            if line.startswith('dither_build_info{version="')] == ["1"]
    assert sample(text, "process_resident_memory_bytes") > 1e6
    assert sample(text, "process_open_fds") > 0

    # The upload: stored, its size observed, its stages timed.
    assert sample(text, 'dither_uploads_total{outcome="stored"}') == 1
    assert sample(text, "dither_upload_size_bytes_count") == 1
    for stage in ("verify", "store", "record"):
        assert sample(text, f'dither_upload_stage_duration_seconds_count{{stage="{stage}"}}') == 1
    # The automatic dither: counted by algorithm and outcome, each stage timed once.
    assert sample(text, 'dither_dithers_total{algorithm="floyd-steinberg",outcome="finished"}') == 1
    for stage in ("queued", "read", "decode", "dither", "encode", "store"):
        assert sample(text, f'dither_stage_duration_seconds_count{{stage="{stage}"}}') == 1, stage
    assert sample(text, "dither_pending_dithers") == 0

    # A dither that fails when made (a resize past MAX_PIXELS): counted as failed.
    s.request_dither_ok(record["uuid"], 2, {"algorithm": "atkinson", "width": "100000",
                                             "height": "100000"})
    harness.wait_until(lambda: any(d["status"] == "FAILED" for d in s.dithers_of(record["uuid"])),
                       harness.scaled(30), "the oversized dither did not fail")
    # Bytes that are no image: turned away, counted by the error's kind.
    assert s.upload(b"not an image at all", "x.png").status_code in (415, 422)
    text = scrape(port)
    assert sample(text, 'dither_dithers_total{algorithm="atkinson",outcome="failed"}') == 1
    assert sample(text, 'dither_uploads_total{outcome="stored"}') == 1
    assert sum(v for line in text.splitlines() if line.startswith("dither_uploads_total{")
               for v in [float(line.split()[-1])]) == 2

    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_there_are_no_metrics_without_the_variable(server):
    lines = server.runs[-1].stdout.read_text(errors="replace").splitlines()
    assert any(line.endswith("config METRICS_ADDRESS=") for line in lines), lines[-40:]
    assert not any("metrics on" in line for line in lines)


def test_a_refused_upload_is_counted_by_its_refusal(start_server):
    (port,) = harness.free_ports(1)
    s = start_server(METRICS_ADDRESS=f"127.0.0.1:{port}", QUOTA_IMAGES="1", AUTO_DITHER="off")
    s.upload_ok(imagegen.photo_png(16, 16), "one.png")
    assert s.upload(imagegen.photo_png(16, 16), "two.png").status_code == 403
    text = scrape(port)
    assert sample(text, 'dither_uploads_total{outcome="stored"}') == 1
    assert sample(text, 'dither_uploads_total{outcome="quota_exceeded"}') == 1
    assert sample(text, "dither_upload_size_bytes_count") == 1


def test_messages_outboxes_queue_and_mails_are_measured(start_server):
    (port,) = harness.free_ports(1)
    s = start_server(METRICS_ADDRESS=f"127.0.0.1:{port}", MAIL_MAX_PER_HOUR="1")
    address = "metrics.reader@example.org"
    record = s.upload_ok(imagegen.photo_png(32, 24, seed=4), "mails.png", email=address)
    s.wait_for(record["uuid"])
    # A second dither to the same address within the hour: over the cap of 1, suppressed.
    d = s.request_dither_ok(record["uuid"], 3)
    s.wait_dither(record["uuid"], d["id"])

    def mails_settled():
        text = scrape(port)
        done = (sample(text, 'dither_mails_total{outcome="sent"}') == 1
                and sample(text, 'dither_mails_total{outcome="suppressed"}') == 1)
        return text if done else None

    text = harness.wait_until(mails_settled, harness.scaled(30),
                              lambda: "mails: " + "\n".join(
                                  line for line in scrape(port).splitlines()
                                  if line.startswith("dither_mails_total")))
    assert sample(text, 'dither_mails_total{outcome="failed"}') == 0
    assert sample(text, "dither_mail_send_duration_seconds_count") == 1
    assert address not in text and "example.org" not in text

    # IMAGE_UPLOADED went out of the upload outbox and was taken by both consumer groups; the
    # two dithers' DITHER_UPLOADED out of the dither outbox, taken by the upload and notification
    # services.
    assert sample(text, 'dither_messages_published_total{topic="images"}') == 1
    assert sample(text, 'dither_messages_published_total{topic="dithers"}') >= 2
    assert sample(text, 'dither_messages_consumed_total{group="dither-service",topic="images"}') == 1
    assert sample(text, 'dither_messages_consumed_total{group="notification-service",'
                        'topic="dithers"}') >= 2
    assert math.isnan(sample(text, 'dither_messages_dead_lettered_total{group="dither-service",'
                                   'topic="images"}'))
    # Drained: nothing waits, nothing is parked, no age.
    for outbox in ("upload", "dither"):
        for state in ("pending", "parked"):
            assert sample(text, f'dither_outbox_messages{{outbox="{outbox}",state="{state}"}}') == 0
        assert sample(text, f'dither_outbox_oldest_age_seconds{{outbox="{outbox}"}}') == 0
    assert sample(text, "dither_oldest_pending_dither_age_seconds") == 0
    # The in-process bus has no partitions and SQLite no pool: neither is reported.
    assert "dither_consumer_lag_messages{" not in text
    assert "dither_db_pool_connections{" not in text

