"""Traces exported over OTLP/HTTP (docs/TRACING.md) to a real Jaeger (scripts/infra/jaeger.sh,
built with `go install` the first time: many minutes when cold). One ditherd sends its spans there;
the tests read them back from Jaeger's query API: the request, the upload and its stages, the
message, the dither and its stages, the notification and its mail, linked in one trace, with the
messages' `traceparent` headers naming the spans that made them."""

from __future__ import annotations

import json
import secrets
import time

import pytest
import requests

import harness
import imagegen
from jaeger import Jaeger, Trace

# One worker runs this module's tests (scripts/functional.sh: --dist loadgroup), so that one Jaeger
# and one traced ditherd serve them all.
pytestmark = pytest.mark.xdist_group("traces")


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    j = Jaeger(tmp_path_factory.mktemp("jaeger")).start()
    yield j
    j.stop()


@pytest.fixture(scope="module")
def traced(module_start_server, jaeger):
    """A ditherd that exports every span to `jaeger` under its own service name, quickly."""
    service = f"ditherd-test-{secrets.token_hex(3)}"
    (metrics_port,) = harness.free_ports(1)
    s = module_start_server(OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_endpoint,
                            OTEL_SERVICE_NAME=service, OTEL_BSP_SCHEDULE_DELAY="100",
                            METRICS_ADDRESS=f"127.0.0.1:{metrics_port}")
    s.service = service
    s.metrics_port = metrics_port
    return s


def of(kind: str, uuid: str):
    return lambda e: e["key"] == uuid and e["headers"].get("message_type") == kind


def span_id_of(event: dict) -> str:
    return event["headers"]["traceparent"].split("-")[2]


def complete(t: Trace) -> bool:
    return all(t.has(name) for name in ("POST /api/images", "publish dithers", "mail"))


def test_one_trace_from_the_request_through_the_messages_to_the_mail(traced, jaeger):
    address = "trace-reader@example.com"
    r = traced.upload(imagegen.photo_png(64, 48), "traced.png", email=address)
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    request_id = r.headers["X-Request-Id"]
    traced.wait_for(uuid)
    t = jaeger.wait_for_trace(
        lambda t: complete(t) and
        t.one("upload").tags.get("dither.image") == uuid and len(t.named("process dithers")) == 2,
        service=traced.service, operation="POST /api/images")
    outline = t.outline()

    # The request at the gateway, forwarded in process to the upload service.
    request = t.one("POST /api/images")
    assert request.kind == "server", outline
    assert request.parent_id is None, outline
    assert request.tags["http.route"] == "/api/images"
    assert request.tags["http.request.method"] == "POST"
    assert request.tags["http.response.status_code"] == 201
    assert request.tags["dither.request_id"] == request_id
    forward = t.one("POST /images")
    assert forward.kind == "client" and t.parent(forward) is request, outline
    assert forward.tags["peer.service"] == "upload"
    upload = t.one("upload")
    assert t.parent(upload) is forward, outline
    assert {s.name for s in t.children(upload)} == {"verify", "store", "record"}, outline

    # The message: made under the upload's record stage, consumed by the dithering service.
    published = t.one("publish images")
    assert published.kind == "producer" and t.parent(published).name == "record", outline
    uploaded = traced.wait_events(of("IMAGE_UPLOADED", uuid))[0]
    assert span_id_of(uploaded) == published.id, "the message carries its producer span"
    consumed = t.one("process images")
    assert consumed.kind == "consumer" and t.parent(consumed) is published, outline

    # The dither under the consumer, with its stages; its message under it.
    job = t.one("dither job")
    assert t.parent(job) is consumed, outline
    assert job.tags["dither.image"] == uuid and job.tags["dither.source"] == "auto"
    stages = {s.name: s for s in t.children(job)}
    assert {"read", "decode", "dither", "encode", "store", "publish dithers"} <= set(stages), outline
    for name in ("read", "decode", "dither", "encode", "store"):
        stage = stages[name]
        assert job.start <= stage.start and stage.start + stage.duration <= job.start + \
            job.duration + 1, f"{name} lies outside its dither job\n{outline}"
    dithered = traced.wait_events(of("DITHER_UPLOADED", uuid))[0]
    assert span_id_of(dithered) == stages["publish dithers"].id

    # Both consumers of DITHER_UPLOADED (the upload service, the notification service); the mail.
    mail = t.one("mail")
    assert mail.kind == "client", outline
    assert t.parent(mail).name == "process dithers", outline
    assert t.parent(t.parent(mail)) is stages["publish dithers"], outline
    assert mail.tags["mail.sender"] == "mailbox"
    assert mail.tags["dither.mail.outcome"] == "sent"
    text = json.dumps(t.raw)
    assert "example.com" not in text, "an address (even masked) reached a span"
    assert not any(s.error for s in t.spans), outline


def test_the_callers_trace_is_continued_and_an_unsampled_one_is_not_recorded(traced, jaeger):
    # A caller's sampled trace: its id throughout, the caller's span as the request's parent.
    trace = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    record = traced.upload(imagegen.photo_png(48, 32), "mine.png",
                           headers={"traceparent": f"00-{trace}-{caller_span}-01"})
    assert record.status_code == 201, record.text
    # A caller's trace it chose not to sample (flags 00): nothing recorded, the context carried on.
    quiet = secrets.token_hex(16)
    r = traced.upload(imagegen.photo_png(48, 32), "quiet.png",
                      headers={"traceparent": f"00-{quiet}-{secrets.token_hex(8)}-00"})
    assert r.status_code == 201, r.text
    quiet_uuid = r.json()["uuid"]
    traced.wait_for(record.json()["uuid"])
    traced.wait_for(quiet_uuid)

    t = jaeger.wait_for_trace(lambda t: t.has("publish dithers"), trace_id=trace)
    request = t.one("POST /api/images")
    assert request.parent_id == caller_span, t.outline()

    for kind in ("IMAGE_UPLOADED", "DITHER_UPLOADED"):
        e = traced.wait_events(of(kind, quiet_uuid))[0]
        m = harness.TRACEPARENT_RE.match(e["headers"]["traceparent"])
        assert m and m.group(1) == quiet and m.group(3) == "00", e["headers"]
    # Its spans, had they been recorded, ended before the dither was FINISHED and would be sent
    # within the schedule (100 ms): watch for a while.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert jaeger.trace(quiet) is None, "an unsampled trace was recorded"
        time.sleep(0.2)


def test_the_spans_fate_is_counted(traced, jaeger):
    """dither_trace_spans_total{outcome}: exported, dropped (queue full), failed (collector)."""
    record = traced.upload_ok(imagegen.photo_png(32, 24), "counted.png")
    traced.wait_for(record["uuid"])

    def counts() -> dict:
        r = requests.get(f"http://127.0.0.1:{traced.metrics_port}/metrics", timeout=10)
        assert r.status_code == 200, r.text[:300]
        out = {}
        for line in r.text.splitlines():
            if line.startswith("dither_trace_spans_total{"):
                labels, value = line.rsplit(" ", 1)
                out[labels.split('"')[1]] = float(value)
        return out

    harness.wait_until(lambda: counts().get("exported", 0) >= 10, 30,
                       lambda: f"spans not counted as exported: {counts()}")
    assert counts()["dropped"] == 0 and counts()["failed"] == 0, counts()
