"""Quotas per owner and the dither queue's bound (issue 13, docs/SECURITY.md "Limits"): images
and stored bytes per owner (403 quota_exceeded, checked before anything is stored), pending
dithers per owner (429 too_many_pending, Retry-After), dithers per image (403) and the queue's
bound (503 queue_full, Retry-After: a dither request is refused, and so is an upload that would
be dithered automatically, before it is stored). Admins are exempt from the quotas."""

from __future__ import annotations

import harness
import imagegen

# A dither that takes a while on any machine: a large upscale with the slowest algorithm, so
# that the dithers requested right after it are still PENDING when the next request comes.
SLOW = {"algorithm": "yliluoma", "width": "2400", "palette": "pico8"}


def assert_refused(r, status: int, code: str, what: str, retry_after: int | None = None) -> dict:
    err = harness.assert_error(r, status, {code}, what)
    if retry_after is None:
        assert "Retry-After" not in r.headers, f"{what}: Retry-After {r.headers['Retry-After']!r}"
    else:
        assert r.headers.get("Retry-After") == str(retry_after), (
            f"{what}: Retry-After {r.headers.get('Retry-After')!r}, expected {retry_after}")
    return err


def known_to_the_dithering_service(s, uuid: str) -> None:
    harness.wait_until(lambda: s.get(f"/api/dithers/{uuid}").status_code == 200, 10,
                       "the dithering service never learnt of the upload")


def assert_nothing_new(s, before: dict) -> None:
    """No image, dither or stored original since `before` (a dither being made meanwhile may
    still write its own result and events)."""
    after = s.snapshot()
    assert after["images"] == before["images"], f"images: {before['images']} -> {after['images']}"
    assert after["dithers"] == before["dithers"], (
        f"dithers: {before['dithers']} -> {after['dithers']}")
    originals = {f for f in after["files"] - before["files"] if "originals" in f}
    assert not originals, f"originals stored: {sorted(originals)}"


def settle(s, uuid: str) -> None:
    """Waits until no dither of `uuid` is PENDING (so that the server stops quickly)."""
    harness.wait_until(
        lambda: all(d["status"] != "PENDING" for d in s.as_admin().dithers_of(uuid)),
        harness.scaled(120), f"the dithers of {uuid} never finished")


def test_the_image_quota_refuses_uploads_and_stores_nothing(start_server):
    s = start_server(QUOTA_IMAGES="2", AUTO_DITHER="off")
    picture = imagegen.photo_png(16, 16)
    first = s.upload_ok(picture, "one.png")
    s.upload_ok(picture, "two.png")
    # The outbox publishes IMAGE_UPLOADED after the answer: both are in before the snapshot.
    s.wait_events(lambda e: e["headers"]["message_type"] == "IMAGE_UPLOADED", count=2)
    before = s.snapshot()
    err = assert_refused(s.upload(picture, "three.png"), 403, "quota_exceeded", "a third image")
    assert "you store 2 images, the limit is 2" in err["message"], err
    # Refused before decoding: bytes that are no image at all get the same answer.
    assert_refused(s.upload(b"not an image", "x.png"), 403, "quota_exceeded", "junk past quota")
    s.assert_unchanged(before)
    # Another owner has a quota of its own; admins have none.
    other = s.as_key(s.create_key("other")["key"])
    assert other.upload(picture, "theirs.png").status_code == 201
    for i in range(3):
        assert s.as_admin().upload(picture, f"admin-{i}.png").status_code == 201
    # Deleting an image makes room for one more.
    assert s.delete(f"/api/images/{first['uuid']}").status_code == 200
    s.upload_ok(picture, "three.png")
    assert_refused(s.upload(picture, "four.png"), 403, "quota_exceeded", "past quota again")


def test_the_byte_quota_counts_the_stored_originals_and_the_upload(start_server):
    picture = imagegen.photo_png(32, 32)
    tiny = imagegen.photo_png(2, 2)
    assert len(tiny) < len(picture)
    s = start_server(QUOTA_BYTES=str(2 * len(picture) + len(tiny)), AUTO_DITHER="off")
    s.upload_ok(picture, "one.png")
    s.upload_ok(picture, "two.png")
    s.wait_events(lambda e: e["headers"]["message_type"] == "IMAGE_UPLOADED", count=2)
    before = s.snapshot()
    err = assert_refused(s.upload(picture, "three.png"), 403, "quota_exceeded", "past the bytes")
    assert f"you store {2 * len(picture)} bytes" in err["message"], err
    assert "QUOTA_BYTES" in err["message"], err
    s.assert_unchanged(before)
    # A file that fits exactly is taken.
    s.upload_ok(tiny, "tiny.png")
    assert_refused(s.upload(tiny, "more.png"), 403, "quota_exceeded", "a byte past the quota")
    assert s.as_admin().upload(picture, "admin.png").status_code == 201


def test_dithers_per_image_are_limited(start_server):
    # The automatic dither counts: one more may be asked for.
    s = start_server(QUOTA_DITHERS_PER_IMAGE="2")
    record = s.upload_ok(imagegen.photo_png(16, 16), "d.png")
    known_to_the_dithering_service(s, record["uuid"])
    harness.wait_until(lambda: len(s.dithers_of(record["uuid"])) == 1, 10, "no automatic dither")
    s.request_dither_ok(record["uuid"], 3)
    settle(s, record["uuid"])
    # Both dithers' messages in the event log too (they come after the dithers' rows).
    s.wait_events(lambda e: e["key"] == record["uuid"] and e["headers"].get("message_type")
                  in ("DITHER_UPLOADED", "DITHER_FAILED"), count=2)
    before = s.snapshot()
    err = assert_refused(s.request_dither(record["uuid"], 4), 403, "quota_exceeded",
                         "a third dither of one image")
    assert "it has 2 dithers, the limit is 2" in err["message"], err
    s.assert_unchanged(before)
    # An admin is exempt; deleting a dither makes room for the owner.
    s.as_admin().request_dither_ok(record["uuid"], 5)
    dithers = s.dithers_of(record["uuid"])
    for d in dithers[:2]:
        s.wait_dither(record["uuid"], d["id"], ("FINISHED", "FAILED"))
        assert s.delete(f"/api/dithers/{record['uuid']}/{d['id']}").status_code == 200
    s.request_dither_ok(record["uuid"], 6)
    settle(s, record["uuid"])


def test_pending_dithers_per_owner_are_limited(start_server):
    # Over HTTP to the services, as across machines: Retry-After crosses the gateway too.
    s = start_server(QUOTA_PENDING_DITHERS="2", AUTO_DITHER="off", GATEWAY_UPSTREAM="http")
    record = s.upload_ok(imagegen.photo_png(64, 48), "p.png")
    uuid = record["uuid"]
    known_to_the_dithering_service(s, uuid)
    s.request_dither_ok(uuid, 8, SLOW)
    s.request_dither_ok(uuid, 9, SLOW)
    before = s.snapshot()
    err = assert_refused(s.request_dither(uuid, 10, SLOW), 429, "too_many_pending",
                         "a third pending dither", retry_after=5)
    assert "you have 2 dithers pending, the limit is 2" in err["message"], err
    assert_nothing_new(s, before)
    # Admins are exempt.
    s.as_admin().request_dither_ok(uuid, 11)
    settle(s, uuid)
    # Once they are made, the owner may ask again.
    s.request_dither_ok(uuid, 12)
    settle(s, uuid)


def test_a_full_queue_refuses_dither_requests_and_uploads_before_storing(start_server):
    s = start_server(MAX_PENDING_DITHERS="1", AUTO_DITHER="off")
    record = s.upload_ok(imagegen.photo_png(64, 48), "q.png")
    uuid = record["uuid"]
    known_to_the_dithering_service(s, uuid)
    s.request_dither_ok(uuid, 8, SLOW)
    before = s.snapshot()
    r = s.request_dither(uuid, 9)
    err = assert_refused(r, 503, "queue_full", "a dither past the queue's bound", retry_after=10)
    # The bound is everyone's, admins' too.
    assert_refused(s.as_admin().request_dither(uuid, 9), 503, "queue_full", "an admin's dither",
                   retry_after=10)
    assert_nothing_new(s, before)
    assert err["message"]
    settle(s, uuid)
    s.request_dither_ok(uuid, 9)
    settle(s, uuid)


def test_an_upload_past_the_queues_bound_is_refused_before_it_is_stored(start_server):
    # With automatic dithers, every upload adds one: past the bound it is refused, not queued.
    s = start_server(MAX_PENDING_DITHERS="1", AUTO_DITHER_OPTIONS="&".join(
        f"{k}={v}" for k, v in SLOW.items()) + "&channels=8")
    first = s.upload_ok(imagegen.photo_png(64, 48), "first.png")
    harness.wait_until(lambda: s.get(f"/api/dithers/{first['uuid']}").status_code == 200
                       and len(s.dithers_of(first["uuid"])) == 1, 10, "no automatic dither")
    before = s.snapshot()
    r = s.upload(imagegen.photo_png(16, 16), "second.png")
    assert_refused(r, 503, "queue_full", "an upload past the queue's bound", retry_after=10)
    assert_nothing_new(s, before)
    # Nothing accepted is lost: the first upload's dither is made.
    s.wait_for(first["uuid"], ("FINISHED",), timeout=harness.scaled(120))
    s.upload_ok(imagegen.photo_png(16, 16), "second.png")
