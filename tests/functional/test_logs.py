"""Structured logs (issue 17 item 4, docs/LOGGING.md): LOG_FORMAT=json gives one JSON object per
line on standard error with time, level, program, message and, when known, the request id and
trace; every request answered gets an access line with the route's template (never the path or
the query), status, duration and bytes; ACCESS_LOG=off turns those off; a bad LOG_FORMAT stops the
start. No key, cookie, signature, query string or full e-mail address is ever logged."""

from __future__ import annotations

import json
import re
import subprocess

import requests

import harness
import imagegen

ADDRESS = "log.reader.secret@example.org"
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def json_lines(run: harness.Run) -> list[dict]:
    """Every line of a run's stderr, each of which must be one JSON object with the fields."""
    lines = []
    for number, line in enumerate(run.stderr.read_text(errors="strict").splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"stderr line {number} is not JSON: {line[:500]!r}") from None
        assert isinstance(entry, dict), line
        assert TIME_RE.match(entry.get("time", "")), line
        assert entry.get("level") in {"trace", "debug", "info", "warning", "error", "critical"}, line
        assert entry.get("program") == "ditherd", line
        assert isinstance(entry.get("message"), str), line
        for name in ("request_id", "trace_id", "span_id"):
            assert name not in entry or isinstance(entry[name], str) and entry[name], line
        lines.append(entry)
    return lines


def access_lines(lines: list[dict]) -> list[dict]:
    return [e for e in lines if e.get("event") == "access"]


def the_access_line(lines: list[dict], request_id: str) -> dict:
    found = [e for e in access_lines(lines) if e.get("request_id") == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


def test_json_lines_access_lines_and_no_secrets(start_server):
    s = start_server(LOG_FORMAT="json")
    record = s.upload_ok(imagegen.photo_png(48, 32), "logged.png", email=ADDRESS)
    uuid = record["uuid"]
    s.wait_for(uuid)
    # The mail is written (to <data>/mail without SMTP) and logged, with the address masked.
    harness.wait_until(lambda: list((s.data_dir / "mail").glob("*.eml")), 30, "no mail written")

    # A read with a request id, a trace, and a query string that must not be logged.
    get = s.get(f"/api/images/{uuid}", params={"query_secret": "qs-value-1"},
                headers={"X-Request-Id": "logs-get-1", "traceparent": TRACEPARENT,
                         "Accept-Encoding": "identity"})
    assert get.status_code == 200, get.text[:300]
    # A traced upload: the dithering's own lines carry its trace.
    traced = s.upload(imagegen.photo_png(40, 30), "traced.png",
                      headers={"X-Request-Id": "logs-upload-2", "traceparent": TRACEPARENT})
    assert traced.status_code == 201, traced.text[:300]
    s.wait_for(traced.json()["uuid"])
    # A signed link (its signature is in the query), a browser session (a cookie), an unknown
    # path with an id in it.
    link = s.get(get.json()["url"], headers={"X-Request-Id": "logs-file-3"})
    assert link.status_code == 200
    browser = harness.browser_session(s)
    cookie = browser.cookies.get(harness.SESSION_COOKIE)
    me = browser.get(s.url("/api/me"), headers={"X-Request-Id": "logs-me-4"}, timeout=10)
    assert me.status_code == 200, me.text[:300]
    assert s.get(f"/api/nowhere/{uuid}", headers={"X-Request-Id": "logs-404-5"}).status_code == 404
    # Undecodable uploads: whatever the image libraries say about them stays in the JSON lines.
    jpeg, png = imagegen.photo_jpeg(128, 96, seed=2), imagegen.photo_png(128, 96, seed=3)
    assert s.upload(jpeg[: len(jpeg) // 2], "cut.jpg", "image/jpeg").status_code == 422
    assert s.upload(png[: len(png) // 2], "cut.png", "image/png").status_code == 422
    assert s.shutdown() == []

    run = s.runs[-1]
    assert run.stdout.read_text() == "", "json mode writes everything to stderr"
    lines = json_lines(run)
    read = the_access_line(lines, "logs-get-1")
    assert read["server"] == "dither" and read["method"] == "GET", read
    assert read["route"] == "/api/images/{uuid}", read
    assert read["status"] == 200 and read["bytes"] == len(get.content), read
    assert isinstance(read["duration_ms"], float) and 0 <= read["duration_ms"] < 30000, read
    assert read["client"] == "127.0.0.1" and read["level"] == "info", read
    assert read["trace_id"] == TRACE_ID, read
    upload = the_access_line(lines, "logs-upload-2")
    assert (upload["method"], upload["route"], upload["status"]) == ("POST", "/api/images", 201)
    assert the_access_line(lines, "logs-404-5")["route"] == "unmatched"
    assert the_access_line(lines, "logs-file-3")["status"] == 200
    assert the_access_line(lines, "logs-me-4")["route"] == "/api/me"
    # The worker's line about the traced upload's dither carries its trace.
    assert any(e.get("trace_id") == TRACE_ID and "finished" in e["message"]
               for e in lines if e.get("event") != "access"), "no dither line with the trace"
    for entry in access_lines(lines):
        assert uuid not in json.dumps(entry), f"an access line holds a path: {entry}"

    text = run.stderr.read_text()
    signature = get.json()["url"].split("sig=", 1)[1]
    # "dk_<id>_<secret>": the id is hex, the secret 43 base64url characters, which may hold "_".
    key_secret = s.key.split("_", 2)[2]
    assert len(key_secret) == 43, s.key
    for secret, what in ((s.key, "API key"), (key_secret, "key secret"),
                         (cookie, "session cookie"), (ADDRESS, "e-mail address"),
                         ("qs-value-1", "query value"), ("query_secret", "query name"),
                         (signature, "link signature")):
        assert secret not in text, f"the {what} is in the log"
    assert "l***@example.org" in text, "the masked address is logged"


def test_access_log_off(start_server):
    s = start_server(LOG_FORMAT="json", ACCESS_LOG="off")
    assert s.get("/api/images", headers={"X-Request-Id": "logs-off-1"}).status_code == 200
    assert s.shutdown() == []
    lines = json_lines(s.runs[-1])
    assert lines, "no log lines at all"
    assert access_lines(lines) == []
    assert not any(e.get("request_id") == "logs-off-1" for e in lines)


def test_text_access_line(start_server):
    s = start_server()  # LOG_FORMAT=text, the default: spdlog's lines on standard output
    r = s.get("/api/images?limit=3", headers={"X-Request-Id": "logs-text-1"})
    assert r.status_code == 200
    assert s.shutdown() == []
    out = s.runs[-1].stdout.read_text()
    line = next((l for l in out.splitlines() if "request=logs-text-1" in l), None)
    assert line is not None, out[-2000:]
    assert re.search(r"\[info\] access dither 127\.0\.0\.1 GET /api/images 200 [0-9.]+ms \d+B "
                     r"request=logs-text-1$", line), line
    assert "limit" not in line


def run_briefly(tmp_path, **env) -> subprocess.CompletedProcess:
    d = harness.Ditherd(tmp_path / "d")
    d.port, d.upload_port, d.dither_port, d.notify_port = harness.free_ports(4)
    environment = d.environment({k: str(v) for k, v in env.items()})
    return subprocess.run([str(harness.DITHERD)], env=environment, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=harness.scaled(30))


def test_a_bad_log_format_stops_the_start(tmp_path):
    r = run_briefly(tmp_path, LOG_FORMAT="yaml")
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "LOG_FORMAT='yaml'" in r.stdout + r.stderr


def test_a_configuration_error_is_said_in_json(tmp_path):
    r = run_briefly(tmp_path, LOG_FORMAT="json", DITHER_PORT="http")
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert r.stdout == ""
    (line,) = r.stderr.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error" and "DITHER_PORT" in entry["message"], entry
