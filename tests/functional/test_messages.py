"""The messages (SPEC 4) as the in-process bus publishes them, seen through DITHER_EVENT_LOG:
topics, keys, headers, bodies, order, and a consumer written for the Python prototype."""

from __future__ import annotations

import pytest

import harness
import imagegen
from harness import TRACEPARENT_RE, UUID_RE

TOPIC_OF = {
    "IMAGE_UPLOADED": "images",
    "IMAGE_DELETED": "images",
    "DITHER_UPLOADED": "dithers",
    "DITHER_DELETED": "dithers",
    "DITHER_FAILED": "dithers",
}


def of(kind: str, uuid: str):
    return lambda e: e["key"] == uuid and e["headers"].get("message_type") == kind


def index_of(events: list, kind: str, uuid: str) -> int:
    for i, e in enumerate(events):
        if of(kind, uuid)(e):
            return i
    pytest.fail(f"no {kind} for {uuid} in {[(e['headers'].get('message_type'), e['key']) for e in events]}")


def check_envelope(e: dict, image_topic: str = "images", dither_topic: str = "dithers") -> None:
    headers = e["headers"]
    kind = headers.get("message_type")
    assert kind in TOPIC_OF, f"unknown message_type {kind!r}: {e}"
    topic = {"images": image_topic, "dithers": dither_topic}[TOPIC_OF[kind]]
    assert e["topic"] == topic, f"{kind} on topic {e['topic']!r}, expected {topic!r}"
    assert harness.MESSAGE_VERSION_RE.match(headers.get("version", "")), headers
    assert UUID_RE.match(headers.get("message_id", "")), f"message_id {headers.get('message_id')!r}"
    m = TRACEPARENT_RE.match(headers.get("traceparent", ""))
    assert m, f"traceparent {headers.get('traceparent')!r} is not W3C 00-<32hex>-<16hex>-<2hex>"
    assert m.group(1) != "0" * 32 and m.group(2) != "0" * 16, headers["traceparent"]
    assert isinstance(e["body"], dict), f"body is not a JSON object: {e['body']!r}"
    assert UUID_RE.match(e["key"]), f"key {e['key']!r} is not the image uuid"
    assert e["body"].get("uuid") == e["key"], f"key {e['key']} but body uuid {e['body'].get('uuid')}"


# A consumer written for the prototype's messages: it reads only message_type and the fields the
# Python prototype sent, and ignores everything else.

def prototype_upload_side(rows: dict, message: dict) -> None:
    kind = message["headers"]["message_type"]
    body = message["body"]
    if kind == "DITHER_UPLOADED":
        rows[body["uuid"]] = {"status": "FINISHED", "url_dither": body["url_dither"]}
    elif kind == "DITHER_DELETED":
        rows[body["uuid"]] = {"status": "DITHER_DELETED", "url_dither": ""}


def prototype_dither_side(jobs: dict, message: dict) -> None:
    kind = message["headers"]["message_type"]
    body = message["body"]
    if kind == "IMAGE_UPLOADED":
        jobs[body["uuid"]] = (body["url"], body["filename"])
    elif kind == "IMAGE_DELETED":
        jobs.pop(body["uuid"], None)


def test_upload_publishes_image_uploaded_then_dither_uploaded(server):
    rec = server.upload_ok(imagegen.photo_png(96, 64, seed=1), "first.png")
    done = server.wait_for(rec["uuid"])
    events = server.events()
    for e in events:
        check_envelope(e)
    up = index_of(events, "IMAGE_UPLOADED", rec["uuid"])
    dith = index_of(events, "DITHER_UPLOADED", rec["uuid"])
    assert up < dith

    body = events[up]["body"]
    assert harness.same_file(body["url"], rec["url"])
    assert body["filename"] == "first.png"
    assert "email" not in body or body["email"] in (None, "")
    assert body.get("owner") == "tests", body  # the uploading key's owner (issue 12)
    assert body.get("frames") == 1, body  # a still image (issue 16)

    body = events[dith]["body"]
    assert harness.same_file(body["url_dither"], done["url_dither"])
    assert body.get("owner") == "tests", body
    auto = server.dithers_of(rec["uuid"])[0]
    assert body["dither_id"] == auto["id"]
    assert int(body["channels"]) == 2
    assert body["algorithm"] == "floyd-steinberg"
    assert [e["headers"]["message_type"] for e in events if e["key"] == rec["uuid"]] == \
        ["IMAGE_UPLOADED", "DITHER_UPLOADED"]


def test_on_demand_dither_publishes_dither_uploaded(server):
    rec = server.upload_ok(imagegen.photo_png(64, 64, seed=2))
    server.wait_for(rec["uuid"])
    d = server.request_dither_ok(rec["uuid"], 3, params={"algorithm": "stucki"})
    done = server.wait_dither(rec["uuid"], d["id"])
    found = server.wait_events(lambda e: of("DITHER_UPLOADED", rec["uuid"])(e)
                               and e["body"].get("dither_id") == d["id"])
    assert len(found) == 1, found
    e = found[0]
    check_envelope(e)
    assert harness.same_file(e["body"]["url_dither"], done["url_dither"])
    assert int(e["body"]["channels"]) == 3
    assert e["body"]["algorithm"] == "stucki"
    assert e["body"].get("owner") == "tests", e["body"]
    harness.wait_until(lambda: harness.same_file(server.image(rec["uuid"])["url_dither"],
                                                 done["url_dither"]), 30,
                       "the image's url_dither does not follow the on-demand dither")


def test_failed_on_demand_dither_publishes_dither_failed(start_server):
    s = start_server(MAX_PIXELS=1000000)
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=3))
    finished = s.wait_for(rec["uuid"])
    before = s.snapshot()
    r = s.request_dither(rec["uuid"], 2, params={"width": 20000, "height": 20000})
    if r.status_code == 422:
        harness.assert_error(r, 422, {"too_many_pixels"})
        s.assert_unchanged(before)
        return
    assert r.status_code == 202, r.text
    d = r.json()
    failed = s.wait_dither(rec["uuid"], d["id"], {"FAILED"})
    assert isinstance(failed["error"], str) and failed["error"], failed
    assert failed["url_dither"] == ""
    e = s.wait_events(lambda e: of("DITHER_FAILED", rec["uuid"])(e)
                      and e["body"].get("dither_id") == d["id"])[0]
    check_envelope(e)
    assert isinstance(e["body"]["error"], str) and e["body"]["error"]
    assert e["body"].get("owner") == "tests", e["body"]

    # A later dither of the same image is processed after the failure (same key, same order);
    # once the image shows it, the failure has been consumed too, and must not have cost the
    # image its FINISHED state.
    ok = s.request_dither_ok(rec["uuid"], 4)
    ok = s.wait_dither(rec["uuid"], ok["id"])
    harness.wait_until(lambda: harness.same_file(s.image(rec["uuid"])["url_dither"],
                                                 ok["url_dither"]), 30,
                       "the image never showed the dither after the failed one")
    image = s.image(rec["uuid"])
    assert image["status"] == "FINISHED", image
    assert finished["status"] == "FINISHED"


def test_failed_auto_dither_marks_the_image_failed(start_server):
    s = start_server(MAX_PIXELS=1000000, AUTO_DITHER_OPTIONS="algorithm=floyd-steinberg&channels=2"
                                                             "&width=20000&height=20000")
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=4))
    failed = s.wait_for(rec["uuid"], {"FAILED"})
    assert isinstance(failed["error"], str) and failed["error"], failed
    assert failed["url_dither"] == ""
    e = s.wait_events(of("DITHER_FAILED", rec["uuid"]))[0]
    check_envelope(e)
    assert isinstance(e["body"]["error"], str) and e["body"]["error"]
    dithers = s.dithers_of(rec["uuid"])
    assert len(dithers) == 1 and dithers[0]["status"] == "FAILED", dithers
    assert e["body"]["dither_id"] == dithers[0]["id"]


def test_delete_publishes_image_deleted_then_dither_deleted(server):
    rec = server.upload_ok(imagegen.photo_png(64, 64, seed=5))
    server.wait_for(rec["uuid"])
    assert server.delete(f"/api/images/{rec['uuid']}").status_code == 200
    server.wait_events(of("DITHER_DELETED", rec["uuid"]))
    events = server.events()
    deleted = index_of(events, "IMAGE_DELETED", rec["uuid"])
    dithers_deleted = index_of(events, "DITHER_DELETED", rec["uuid"])
    assert deleted < dithers_deleted
    for i in (deleted, dithers_deleted):
        check_envelope(events[i])
        assert events[i]["body"]["uuid"] == rec["uuid"]


def test_delete_dithers_publishes_dither_deleted(server):
    rec = server.upload_ok(imagegen.photo_png(64, 64, seed=6))
    server.wait_for(rec["uuid"])
    assert server.delete(f"/api/dithers/{rec['uuid']}").status_code == 200
    e = server.wait_events(of("DITHER_DELETED", rec["uuid"]))[0]
    check_envelope(e)
    assert not any(of("IMAGE_DELETED", rec["uuid"])(x) for x in server.events())


def test_every_message_id_is_unique_and_traceparent_well_formed(server):
    uuids = []
    for i in range(3):
        rec = server.upload_ok(imagegen.photo_png(48, 48, seed=10 + i))
        uuids.append(rec["uuid"])
    for u in uuids:
        server.wait_for(u)
    d = server.request_dither_ok(uuids[0], 5)
    server.wait_dither(uuids[0], d["id"])
    server.delete(f"/api/dithers/{uuids[1]}")
    server.delete(f"/api/images/{uuids[2]}")
    server.wait_events(of("DITHER_DELETED", uuids[1]))
    server.wait_events(of("DITHER_DELETED", uuids[2]))

    events = server.events()
    assert len(events) >= 10, [e["headers"].get("message_type") for e in events]
    for e in events:
        check_envelope(e)
    ids = [e["headers"]["message_id"] for e in events]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"message_id used more than once: {dupes}"


def test_custom_topic_names(start_server):
    s = start_server(KAFKA_IMAGE_TOPIC="pictures-in", KAFKA_DITHER_TOPIC="pictures-out")
    rec = s.upload_ok(imagegen.photo_png(32, 32, seed=20))
    s.wait_for(rec["uuid"])
    events = s.events()
    assert events
    for e in events:
        check_envelope(e, image_topic="pictures-in", dither_topic="pictures-out")


def test_prototype_consumer_understands_the_messages(server):
    a = server.upload_ok(imagegen.photo_png(64, 48, seed=30), "a.png")
    b = server.upload_ok(imagegen.photo_jpeg(64, 48, seed=31), "b.jpg", "image/jpeg")
    c = server.upload_ok(imagegen.photo_png(64, 48, seed=32), "c.png")
    for rec in (a, b, c):
        server.wait_for(rec["uuid"])
    d = server.request_dither_ok(a["uuid"], 4, params={"palette": "pico8"})
    d = server.wait_dither(a["uuid"], d["id"])
    harness.wait_until(lambda: harness.same_file(server.image(a["uuid"])["url_dither"],
                                                 d["url_dither"]), 30,
                       "image a does not show its newest dither")
    assert server.delete(f"/api/dithers/{b['uuid']}").status_code == 200
    server.wait_for(b["uuid"], {"DITHER_DELETED"})
    assert server.delete(f"/api/images/{c['uuid']}").status_code == 200
    server.wait_events(of("DITHER_DELETED", c["uuid"]))

    rows: dict = {}
    jobs: dict = {}
    for message in server.events():
        prototype_upload_side(rows, message)
        prototype_dither_side(jobs, message)

    # The prototype's upload side ends where ours does (messages carry the records' unsigned
    # links; answers sign them).
    for rec in (a, b):
        real = server.image(rec["uuid"])
        row = rows[rec["uuid"]]
        assert row["status"] == real["status"], (row, real)
        assert harness.same_file(row["url_dither"], real["url_dither"]), (row, real)
    # The prototype's dither side got what it needs to find each original.
    assert set(jobs) == {a["uuid"], b["uuid"]}
    for rec, name in ((a, "a.png"), (b, "b.jpg")):
        url, filename = jobs[rec["uuid"]]
        assert filename == name
        assert harness.same_file(url, rec["url"]), (url, rec["url"])


def test_one_trace_from_the_request_to_the_dither(server):
    """The client's W3C traceparent is continued by IMAGE_UPLOADED and by the automatic dither's
    DITHER_UPLOADED, and an on-demand dither's message continues its POST's trace."""
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = server.upload(imagegen.photo_png(64, 48), "traced.png",
                      headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    server.wait_for(uuid)
    uploaded = server.wait_events(of("IMAGE_UPLOADED", uuid))[0]
    dithered = server.wait_events(of("DITHER_UPLOADED", uuid))[0]
    for e in (uploaded, dithered):
        parts = e["headers"]["traceparent"].split("-")
        assert parts[1] == trace, e["headers"]
        assert parts[2] != "00f067aa0ba902b7", "each hop is a new span"

    other = "0af7651916cd43dd8448eb211c80319c"
    r = server.post(f"/api/dithers/{uuid}/3",
                    headers={"traceparent": f"00-{other}-b7ad6b7169203331-01"})
    assert r.status_code == 202, r.text
    dither_id = r.json()["id"]
    server.wait_dither(uuid, dither_id)
    mine = server.wait_events(lambda e: of("DITHER_UPLOADED", uuid)(e)
                              and e["body"].get("dither_id") == dither_id)[0]
    assert mine["headers"]["traceparent"].split("-")[1] == other


def test_messages_carry_the_owner(server):
    """IMAGE_UPLOADED and DITHER_UPLOADED name the image's owner (issue 12): the key's owner, or
    the browser session's; an admin's dither of someone else's image is still the owner's."""
    browser = harness.browser_session(server)
    me = browser.get(server.url("/api/me"), timeout=10).json()
    r = browser.post(server.url("/api/images"), headers=harness.same_origin(server), timeout=30,
                     files={"file": ("web.png", imagegen.photo_png(32, 32, seed=40), "image/png")})
    assert r.status_code == 201, r.text
    web = r.json()["uuid"]
    rec = server.upload_ok(imagegen.photo_png(32, 32, seed=41), "key.png")
    server.wait_for(rec["uuid"])
    admin = server.as_admin()
    admin.wait_for(web)
    d = admin.request_dither_ok(rec["uuid"], 3)
    admin.wait_dither(rec["uuid"], d["id"])
    for uuid, owner in ((web, me["owner"]), (rec["uuid"], "tests")):
        for kind in ("IMAGE_UPLOADED", "DITHER_UPLOADED"):
            for e in server.wait_events(of(kind, uuid)):
                check_envelope(e)
                assert e["body"].get("owner") == owner, (kind, e["body"])
    admins = server.wait_events(lambda e: of("DITHER_UPLOADED", rec["uuid"])(e)
                                and e["body"].get("dither_id") == d["id"])
    assert admins[0]["body"]["owner"] == "tests", admins[0]["body"]
