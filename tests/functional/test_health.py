"""Liveness and readiness (docs/OPERATIONS.md "Health"): GET /health/live answers while the
process serves; GET /health/ready only while every part it needs is usable; the old GET /health
keeps its meaning. Readiness failing for a part the embedded mode can lose: SMTP."""

from __future__ import annotations

import time

import requests

import harness
import imagegen


def logs(s) -> str:
    """What the last run logged (spdlog writes to stdout, the server's own lines to stderr)."""
    run = s.runs[-1]
    return run.stdout.read_text(errors="replace") + run.stderr.read_text(errors="replace")


def on(port: int, path: str, **kw) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=harness.scaled(10), **kw)


EMBEDDED_CHECKS = {"upload_database", "dither_database", "notification_database",
                   "identity_database", "bus", "blob_store", "mail"}


def test_every_server_of_the_process_is_live_and_ready(server):
    for port, service in ((server.port, "gateway"), (server.upload_port, "upload"),
                          (server.dither_port, "dither"), (server.notify_port, "notify")):
        live = on(port, "/health/live")
        assert live.status_code == 200, live.text
        assert live.json() == {"status": "ok", "service": service}
        ready = on(port, "/health/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "ok" and body["service"] == service, body
        # One process: every part is its own, each checked.
        assert set(body["checks"]) == EMBEDDED_CHECKS, body
        assert set(body["checks"].values()) == {"ok"}, body
        # In process there are no services to ask over HTTP.
        assert "services" not in body, body


def test_the_old_health_keeps_its_answer(server):
    r = server.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    assert set(r.json()["services"]) == {"upload", "dither", "notify"}


def test_health_routes_need_no_key_no_host_and_no_service_token(server):
    # A container's health check or a balancer calls by address, without a key; the services'
    # ports otherwise require the gateway's token (docs/SECURITY.md).
    for port in (server.port, server.upload_port):
        for path in ("/health/live", "/health/ready"):
            r = on(port, path, headers={"Host": "probe.internal:1"})
            assert r.status_code == 200, (port, path, r.text)


def test_an_unreachable_smtp_server_makes_the_process_unready_but_live(start_server):
    (closed,) = harness.free_ports(1)  # nothing listens there
    s = start_server(SMTP_HOST="127.0.0.1", SMTP_PORT=str(closed), SMTP_SECURITY="none")
    for port in (s.port, s.notify_port, s.upload_port):
        ready = on(port, "/health/ready")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "unavailable" and body["checks"]["mail"] == "unavailable", body
        assert body["checks"]["upload_database"] == "ok", body
        # Public: the reason stays in the log, never the address or the error.
        assert str(closed) not in ready.text and "refused" not in ready.text.lower()
        assert on(port, "/health/live").status_code == 200
    harness.wait_until(lambda: "not ready: mail" in logs(s), harness.scaled(10),
                       "the reason was not logged")
    # Uploads are still taken (the mail waits in the database for the server to come back).
    s.upload_ok(imagegen.photo_png(64, 48, seed=3), "while-smtp-is-down.png")


def test_readiness_is_checked_at_most_once_a_second(start_server):
    (closed,) = harness.free_ports(1)
    s = start_server(SMTP_HOST="127.0.0.1", SMTP_PORT=str(closed), SMTP_SECURITY="none")
    before = logs(s).count("not ready: mail")
    start = time.monotonic()
    for _ in range(20):
        on(s.port, "/health/ready")
    elapsed = time.monotonic() - start
    logged = logs(s).count("not ready: mail") - before
    # 20 probes (within a second or two, more on a loaded machine): a check (and its log line)
    # per second at most, not 20.
    assert elapsed < 15, f"20 probes took {elapsed:.1f} s: the test cannot tell"
    assert 1 <= logged <= int(elapsed) + 2, (logged, elapsed)


def test_readiness_scope_is_self_or_nothing(server):
    r = on(server.port, "/health/ready?scope=self")
    assert r.status_code == 200 and "services" not in r.json(), r.text
    r = on(server.port, "/health/ready?scope=everything")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_argument"
