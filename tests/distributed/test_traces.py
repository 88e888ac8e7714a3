"""One trace across the distributed stack (issue 17, item 5; docs/TRACING.md): every process sends
its spans over OTLP/HTTP to the stack's Jaeger (scripts/stack.sh with DITHER_STACK_JAEGER=1), and
Jaeger's query API returns one trace that runs api-gateway -> upload-service -> Kafka ->
dithering-service -> Kafka -> notification-service, down to the mail handed to the SMTP server, with
the messages on the wire (read with kcat) naming the spans that produced them."""

from __future__ import annotations

import json
import uuid as uuidlib

import harness
import imagegen
from jaeger import Jaeger, Trace
from stack import headers_of

SERVICES = {"api-gateway", "upload-service", "dithering-service", "notification-service"}


def on_the_wire(stack, topic: str, uuid: str, kind: str) -> dict:
    def find():
        for m in stack.read_topic(topic):
            if m.get("key") == uuid and dict(headers_of(m)).get("message_type") == kind:
                return m
        return None

    return harness.wait_until(find, 30, f"no {kind} of {uuid} on {topic}")


def test_one_trace_spans_gateway_upload_kafka_dithering_notification(up):
    jaeger = Jaeger(up.stack_dir / "infra", otlp_port=up.jaeger_otlp_port,
                    query_port=up.jaeger_query_port)
    address = f"traced+{uuidlib.uuid4().hex[:8]}@example.org"
    r = up.upload(imagegen.photo_png(64, 48, seed=17), "traced.png", email=address)
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    up.wait_for(uuid, timeout=60)

    def complete(t: Trace) -> bool:
        return (any(s.tags.get("dither.image") == uuid for s in t.named("upload"))
                and t.has("mail", "notification-service")
                and t.has("process dithers", "upload-service")
                and t.has("POST /images", "upload-service"))

    t = jaeger.wait_for_trace(complete, service="api-gateway", operation="POST /api/images",
                              timeout=90)
    outline = t.outline()
    assert {s.service for s in t.spans} == SERVICES, outline

    # api-gateway: the request, and its call to the upload service.
    request = t.one("POST /api/images", "api-gateway")
    assert request.kind == "server" and request.parent_id is None, outline
    forward = t.one("POST /images", "api-gateway")
    assert forward.kind == "client" and t.parent(forward) is request, outline
    # upload-service: its own server span continues the gateway's client span.
    served = t.one("POST /images", "upload-service")
    assert served.kind == "server" and t.parent(served) is forward, outline
    assert served.tags["http.route"] == "/images"
    upload = t.one("upload", "upload-service")
    assert t.parent(upload) is served, outline
    published = t.one("publish images", "upload-service")
    assert published.kind == "producer", outline

    # Kafka: the message on the wire names its producer span.
    image_message = on_the_wire(up, "images", uuid, "IMAGE_UPLOADED")
    traceparent = dict(headers_of(image_message))["traceparent"]
    assert traceparent == f"00-{t.id}-{published.id}-01", (traceparent, outline)

    # dithering-service: consumes it, makes the dither with its stages, publishes the result.
    consumed = t.one("process images", "dithering-service")
    assert consumed.kind == "consumer" and t.parent(consumed) is published, outline
    job = t.one("dither job", "dithering-service")
    assert t.parent(job) is consumed, outline
    stages = {s.name for s in t.children(job)}
    assert {"read", "decode", "dither", "encode", "store", "publish dithers"} <= stages, outline
    finished = t.one("publish dithers", "dithering-service")
    dither_message = on_the_wire(up, "dithers", uuid, "DITHER_UPLOADED")
    assert dict(headers_of(dither_message))["traceparent"] == f"00-{t.id}-{finished.id}-01"

    # notification-service: consumes the result and hands the mail to the SMTP server. The upload
    # service consumes it too (the image's status). Kafka delivers at least once (a consumer
    # group's first rebalance may deliver a message again): each delivery is a consumer span of
    # the same producer, and one mail is sent.
    mail = t.one("mail", "notification-service")
    notified = t.parent(mail)
    assert mail.kind == "client" and notified.service == "notification-service", outline
    assert notified.name == "process dithers" and notified.kind == "consumer", outline
    assert mail.tags["mail.sender"] == "smtp" and mail.tags["dither.mail.outcome"] == "sent"
    assert t.named("process dithers", "upload-service"), outline
    assert all(t.parent(s) is finished for s in t.named("process dithers")), outline

    text = json.dumps(t.raw)
    assert address not in text and "example.org" not in text, "an address reached a span"
    assert not any(s.error for s in t.spans), outline
