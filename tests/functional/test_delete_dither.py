"""Deleting one dither of an image: DELETE /api/dithers/{uuid}/{dither_id} (the dithering service's
DELETE /images/{uuid}/{dither_id}), what the image then shows, its file, DITHER_DELETED with
dither_id, and the requests that delete nothing."""

from __future__ import annotations

import pytest

import harness
import imagegen
from harness import TRACEPARENT_RE, UUID_RE, assert_error, new_uuid


def is_deleted(uuid: str, dither_id: int):
    """Matches the DITHER_DELETED message of dither `dither_id` of `uuid`."""
    return lambda e: (e["key"] == uuid and e["headers"].get("message_type") == "DITHER_DELETED"
                      and e["body"].get("dither_id") == dither_id)


def deleted_events(server, uuid: str, dither_id=None) -> list[dict]:
    """The DITHER_DELETED messages of `uuid` (only those naming dither_id, when given)."""
    return [e for e in server.events()
            if e["key"] == uuid and e["headers"].get("message_type") == "DITHER_DELETED"
            and (dither_id is None or e["body"].get("dither_id") == dither_id)]


def finished_image(server, seed: int, **upload) -> tuple[dict, dict]:
    """An uploaded image whose automatic dither is finished and consumed: (image, its dither)."""
    rec = server.upload_ok(imagegen.photo_png(64, 48, seed=seed), f"p{seed}.png", **upload)
    done = server.wait_for(rec["uuid"])
    items = server.dithers_of(rec["uuid"])
    assert len(items) == 1, items
    assert harness.same_file(done["url_dither"], items[0]["url_dither"])
    return done, items[0]


def summary_ids(image: dict) -> list[int]:
    return [d["dither_id"] for d in image["dithers"]]


def test_delete_one_dither_then_the_last(server):
    s = server
    image, older = finished_image(s, 1, email="owner@example.org")
    uuid = image["uuid"]
    newer = s.request_dither_ok(uuid, 4, params={"algorithm": "atkinson", "format": "gif"})
    newer = s.wait_dither(uuid, newer["id"])
    assert newer["id"] > older["id"]
    harness.wait_until(lambda: harness.same_file(s.image(uuid)["url_dither"],
                                                 newer["url_dither"]), 30,
                       "the image does not show the newer dither")
    assert s.get(newer["url_dither"]).status_code == 200
    mails = lambda: len(s.list_all("/api/notifications"))  # noqa: E731
    harness.wait_until(lambda: mails() == 2, 30, "one notification per finished dither")

    # The newer one goes: the image shows the older one again.
    r = s.delete(f"/api/dithers/{uuid}/{newer['id']}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"uuid": uuid, "dither_id": newer["id"], "deleted": True}
    assert s.get(newer["url_dither"]).status_code == 404, "the file goes before the answer"
    assert [d["id"] for d in s.dithers_of(uuid)] == [older["id"]]

    def shows_older():
        now = s.image(uuid)
        return now if summary_ids(now) == [older["id"]] else None

    after = harness.wait_until(shows_older, 30, "the deleted dither's summary stays")
    assert after["status"] == "FINISHED"
    assert harness.same_file(after["url_dither"], older["url_dither"])
    assert after["error"] is None
    assert s.get(older["url_dither"]).status_code == 200
    assert s.get(image["url"]).status_code == 200, "the original stays"

    # Gone: a second delete is a 404.
    assert_error(s.delete(f"/api/dithers/{uuid}/{newer['id']}"), 404, {"not_found"})

    # The last one goes: no dither left.
    r = s.delete(f"/api/dithers/{uuid}/{older['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == {"uuid": uuid, "dither_id": older["id"], "deleted": True}
    last = s.wait_for(uuid, {"DITHER_DELETED"})
    assert last["url_dither"] == ""
    assert last["dithers"] == []
    assert s.get(older["url_dither"]).status_code == 404
    assert s.dithers_of(uuid) == [], "the original is still known: 200 with no items"
    assert s.get(image["url"]).status_code == 200
    assert not any(f.startswith(f"files/dithers/{uuid}/") for f in s.files()), sorted(s.files())

    # DITHER_DELETED names each dither; the prototype's field is there too.
    for dither in (newer, older):
        found = s.wait_events(is_deleted(uuid, dither["id"]))
        assert len(found) == 1, found
        e = found[0]
        assert e["topic"] == "dithers"
        body = {k: v for k, v in e["body"].items() if k != "owner"}
        assert body == {"uuid": uuid, "dither_id": dither["id"]}, e["body"]
        assert harness.MESSAGE_VERSION_RE.match(e["headers"]["version"]), e["headers"]
        assert UUID_RE.match(e["headers"]["message_id"])
        assert TRACEPARENT_RE.match(e["headers"]["traceparent"])
    kinds = [(e["headers"]["message_type"], e["body"].get("dither_id")) for e in s.events()
             if e["key"] == uuid and e["topic"] == "dithers"]
    assert kinds.index(("DITHER_UPLOADED", newer["id"])) < \
        kinds.index(("DITHER_DELETED", newer["id"])) < kinds.index(("DITHER_DELETED", older["id"]))
    assert ("DITHER_DELETED", None) not in kinds, "no message about every dither"

    # The notification service ignores DITHER_DELETED: no mail about a deletion.
    assert mails() == 2


def test_delete_keeps_the_other_dithers_and_images(server):
    s = server
    image, auto = finished_image(s, 2)
    other, others = finished_image(s, 3)
    uuid = image["uuid"]
    made = []
    for channels in (3, 5):
        d = s.request_dither_ok(uuid, channels)
        made.append(s.wait_dither(uuid, d["id"]))
    newest = made[-1]
    harness.wait_until(lambda: harness.same_file(s.image(uuid)["url_dither"],
                                                 newest["url_dither"]), 30,
                       "the image does not show its newest dither")

    # The middle one goes: the image still shows the newest.
    middle = made[0]
    assert s.delete(f"/api/dithers/{uuid}/{middle['id']}").status_code == 200
    harness.wait_until(lambda: middle["id"] not in summary_ids(s.image(uuid)), 30,
                       "the middle dither's summary stays")
    now = s.image(uuid)
    assert now["status"] == "FINISHED"
    assert harness.same_file(now["url_dither"], newest["url_dither"])
    assert summary_ids(now) == [newest["id"], auto["id"]]
    assert [d["id"] for d in s.dithers_of(uuid)] == [newest["id"], auto["id"]]
    for url in (newest["url_dither"], auto["url_dither"], others["url_dither"]):
        assert s.get(url).status_code == 200, url
    assert s.get(middle["url_dither"]).status_code == 404

    # The other image is untouched.
    assert harness.same_file(s.image(other["uuid"])["url_dither"], others["url_dither"])
    assert [d["id"] for d in s.dithers_of(other["uuid"])] == [others["id"]]


def test_deleting_a_dither_being_made_leaves_no_file(start_server):
    s = start_server(AUTO_DITHER="off", DITHER_WORKERS=1)
    rec = s.upload_ok(imagegen.photo_png(1200, 900, seed=4), "big.png")
    uuid = rec["uuid"]
    harness.wait_until(lambda: s.get(f"/api/dithers/{uuid}").status_code == 200, 30,
                       "the dithering service never learned of the upload")
    d = s.request_dither_ok(uuid, 2, params={"algorithm": "jarvis-judice-ninke"})
    r = s.delete(f"/api/dithers/{uuid}/{d['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == {"uuid": uuid, "dither_id": d["id"], "deleted": True}
    # Whether the worker had not started, was dithering, or had just finished, the image ends
    # with no dither.
    s.wait_events(is_deleted(uuid, d["id"]))
    after = s.wait_for(uuid, {"DITHER_DELETED"})
    assert after["url_dither"] == "" and after["dithers"] == []
    assert s.dithers_of(uuid) == []

    # The one worker does dithers one after another: once the next one is finished, whatever it
    # did with the deleted one is over. Only the next one's file is there.
    later = s.request_dither_ok(uuid, 3)
    later = s.wait_dither(uuid, later["id"])
    ext = harness.unsigned(later["url_dither"]).rsplit(".", 1)[1]
    dither_files = sorted(f for f in s.files() if f.startswith(f"files/dithers/{uuid}/"))
    assert dither_files == [f"files/dithers/{uuid}/{later['id']}.{ext}"], dither_files
    assert [x["id"] for x in s.dithers_of(uuid)] == [later["id"]]
    done = s.wait_for(uuid, {"FINISHED"})
    assert harness.same_file(done["url_dither"], later["url_dither"])
    assert summary_ids(done) == [later["id"]]


# ---- requests that delete nothing ---------------------------------------------------------


@pytest.fixture(scope="module")
def pair(module_server):
    """Two finished images: (image, its dither) each."""
    return finished_image(module_server, 10), finished_image(module_server, 11)


@pytest.fixture
def s(module_server, pair):
    """The shared server, checked after the test: nothing changed since before it."""
    before = module_server.snapshot()
    yield module_server
    module_server.assert_unchanged(before)


@pytest.mark.parametrize("bad", ["0", "-1", "+1", "abc", "1.5", "1e3", "0x10", "%20",
                                 "99999999999999999999", "9223372036854775808"])
def test_bad_dither_id_is_400(s, pair, bad):
    (image, _), _ = pair
    err = assert_error(s.delete(f"/api/dithers/{image['uuid']}/{bad}"), 400, {"invalid_argument"})
    assert "dither id" in err["message"], err


@pytest.mark.parametrize("bad", ["not-a-uuid", "12345678-1234-1234-1234-12345678901z", "0" * 40])
def test_bad_uuid_is_400(s, pair, bad):
    (_, dither), _ = pair
    assert_error(s.delete(f"/api/dithers/{bad}/{dither['id']}"), 400, {"invalid_uuid"})
    assert_error(s.delete(f"/api/dithers/{bad}/0"), 400, {"invalid_uuid"})


def test_unknown_image_or_dither_is_404(s, pair):
    (image, dither), _ = pair
    assert_error(s.delete(f"/api/dithers/{new_uuid()}/{dither['id']}"), 404, {"not_found"})
    assert_error(s.delete(f"/api/dithers/{image['uuid']}/{dither['id'] + 100000}"), 404,
                 {"not_found"})
    assert_error(s.delete(f"/api/dithers/{image['uuid']}/9223372036854775807"), 404,
                 {"not_found"})


def test_another_images_dither_is_404_and_nothing_is_deleted(s, pair):
    (a, a_dither), (b, b_dither) = pair
    assert_error(s.delete(f"/api/dithers/{a['uuid']}/{b_dither['id']}"), 404, {"not_found"})
    assert_error(s.delete(f"/api/dithers/{b['uuid']}/{a_dither['id']}"), 404, {"not_found"})
    for image, dither in ((a, a_dither), (b, b_dither)):
        assert [d["id"] for d in s.dithers_of(image["uuid"])] == [dither["id"]]
        assert s.get(dither["url_dither"]).status_code == 200
        now = s.image(image["uuid"])
        assert now["status"] == "FINISHED"
        assert harness.same_file(now["url_dither"], dither["url_dither"])
    assert not deleted_events(s, a["uuid"]) and not deleted_events(s, b["uuid"])
