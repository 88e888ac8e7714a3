"""The web page and the deletion of one dither in the distributed mode: `api-gateway` serves the
page and thumbnails of the files in the S3 bucket on its own, and DELETE /api/dithers/{uuid}/{dither_id} travels as DITHER_DELETED with a
dither_id over Kafka from the dithering service (PostgreSQL, S3) to the upload service."""

from __future__ import annotations

import json

import harness
import imagegen
from stack import headers_of


def test_api_gateway_serves_the_web_page(up):
    r = up.get("/")
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    for name in ("app.js", "app.css", "icon.svg"):
        assert up.get(f"/static/{name}").status_code == 200, name
    # Thumbnails of files in the S3 bucket.
    rec = up.upload_ok(imagegen.photo_png(800, 400, seed=62), "thumb.png")
    r = up.get("/thumbnails/" + rec["url"].split("/files/", 1)[1])
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/webp", r.status_code
    assert r.content[:4] == b"RIFF" and r.content[8:12] == b"WEBP"
    assert up.get("/thumbnails/originals/unknown.png").status_code == 403  # unsigned


def test_one_dither_deleted_across_the_services(up):
    rec = up.upload_ok(imagegen.photo_png(120, 90, seed=61), "one-of-two.png")
    first = up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    second = up.request_dither_ok(rec["uuid"], 2, {"palette": "ega"})
    second = up.wait_dither(rec["uuid"], second["id"], timeout=harness.scaled(60))
    harness.wait_until(lambda: harness.same_file(up.image(rec["uuid"])["url_dither"],
                                                 second["url_dither"]),
                       harness.scaled(30), "the image does not point at the newer dither")

    r = up.delete(f"/api/dithers/{rec['uuid']}/{second['id']}")
    assert r.status_code == 200, r.text
    # The upload service hears of it through Kafka: the older dither is the image's again.
    def back_to_first():
        image = up.image(rec["uuid"])
        ids = [d["dither_id"] for d in image["dithers"]]
        return (image["status"] == "FINISHED"
                and harness.same_file(image["url_dither"], first["url_dither"])
                and second["id"] not in ids)

    harness.wait_until(back_to_first, harness.scaled(30), lambda: json.dumps(up.image(rec["uuid"])))
    assert up.get(second["url_dither"]).status_code == 404  # gone from the bucket
    assert up.get(first["url_dither"]).status_code == 200
    items = up.get(f"/api/dithers/{rec['uuid']}").json()["items"]
    assert [d["id"] for d in items] == [up.image(rec["uuid"])["dithers"][0]["dither_id"]]

    # On the wire: DITHER_DELETED keyed by the image, naming the one dither.
    def deleted_messages():
        return [m for m in up.read_topic("dithers")
                if m.get("key") == rec["uuid"]
                and dict(headers_of(m)).get("message_type") == "DITHER_DELETED"]

    harness.wait_until(deleted_messages, harness.scaled(30), "no DITHER_DELETED on the topic")
    body = json.loads(deleted_messages()[0]["payload"])
    assert body["uuid"] == rec["uuid"] and body["dither_id"] == second["id"], body

    # The last one: the image has no dither any more.
    r = up.delete(f"/api/dithers/{rec['uuid']}/{items[0]['id']}")
    assert r.status_code == 200, r.text
    harness.wait_until(lambda: up.image(rec["uuid"])["status"] == "DITHER_DELETED",
                       harness.scaled(30), lambda: json.dumps(up.image(rec["uuid"])))
    assert up.image(rec["uuid"])["url_dither"] == ""
    assert up.delete(f"/api/dithers/{rec['uuid']}/{items[0]['id']}").status_code == 404
