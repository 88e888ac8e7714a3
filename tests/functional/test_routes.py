"""Every public route of the gateway, with the prototype's field names and the record shapes."""

from __future__ import annotations

import json

import requests

import harness
import imagegen
from harness import TIMESTAMP_RE, UUID_RE

PUBLIC_PATHS = [
    "/api/images",
    "/api/images/{uuid}",
    "/api/dithers",
    "/api/dithers/{uuid}",
    "/api/dithers/{uuid}/{channels}",
    "/health",
]

SUMMARY_FIELDS = {"dither_id", "status", "url_dither", "channels", "algorithm", "palette",
                  "format", "error", "created_at"}


def check_image_record(server, rec: dict, filename: str, content_type: str, data: bytes,
                       width: int, height: int) -> None:
    for field in ("id", "uuid", "filename", "status", "url", "url_dither", "content_type", "size",
                  "width", "height", "frames", "error", "created_at", "updated_at"):
        assert field in rec, f"image record lacks {field!r}: {rec}"
    assert isinstance(rec["id"], int) and not isinstance(rec["id"], bool), rec
    assert UUID_RE.match(rec["uuid"]), f"uuid {rec['uuid']!r}"
    assert rec["filename"] == filename
    assert rec["status"] in harness.IMAGE_STATUSES, rec["status"]
    assert rec["url"].startswith(server.base_url + "/files/"), f"url {rec['url']!r}"
    assert isinstance(rec["url_dither"], str), rec
    assert rec["content_type"] == content_type
    assert rec["size"] == len(data)
    assert (rec["width"], rec["height"]) == (width, height)
    assert rec["frames"] == 1, rec  # a still image (test_animation.py has the animated ones)
    assert rec["error"] is None or isinstance(rec["error"], str)
    assert TIMESTAMP_RE.match(rec["created_at"]), rec["created_at"]
    assert TIMESTAMP_RE.match(rec["updated_at"]), rec["updated_at"]
    assert "email" not in rec, rec


def check_dither_record(rec: dict, image_uuid: str) -> None:
    for field in ("id", "uuid", "channels", "algorithm", "palette", "format", "options", "status",
                  "url_dither", "error", "created_at", "updated_at"):
        assert field in rec, f"dither record lacks {field!r}: {rec}"
    assert isinstance(rec["id"], int) and not isinstance(rec["id"], bool), rec
    assert rec["uuid"] == image_uuid, f"dither uuid {rec['uuid']!r} is not the original's"
    assert isinstance(rec["channels"], int), rec
    assert isinstance(rec["options"], dict), rec
    assert rec["status"] in harness.DITHER_STATUSES, rec
    assert isinstance(rec["url_dither"], str), rec
    assert TIMESTAMP_RE.match(rec["created_at"]), rec["created_at"]
    assert TIMESTAMP_RE.match(rec["updated_at"]), rec["updated_at"]


def option(rec: dict, name: str) -> str:
    """An option's canonical value as lower-case text (records may use strings or JSON types)."""
    value = rec["options"].get(name)
    return json.dumps(value).strip('"').lower() if not isinstance(value, str) else value.lower()


# ---- gateway's own routes -----------------------------------------------------------------


def test_health_is_aggregated(module_server):
    r = module_server.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok", body
    services = body["services"]
    for name in ("upload", "dither", "notify"):
        assert services[name]["status"] == "ok", body


def test_web_page_and_its_files(module_server):
    r = module_server.get("/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html"), r.headers["Content-Type"]
    assert "<html" in r.text.lower()
    # Only its own files: a policy that forbids anything else, and no absolute URL in the page.
    policy = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy, policy
    assert "connect-src 'self'" in policy, policy
    assert r.headers["X-Frame-Options"] == "DENY"
    for ref in ("static/app.js", "static/app.css", "static/icon.svg"):
        assert ref in r.text, ref
    assert "http://" not in r.text and "https://" not in r.text
    types = {"app.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml"}
    for name, ctype in types.items():
        f = module_server.get(f"/static/{name}")
        assert f.status_code == 200, name
        assert f.headers["Content-Type"].startswith(ctype), (name, f.headers["Content-Type"])
        assert f.headers["Cache-Control"] == "no-cache"
        assert "http://" not in f.text.replace("http://www.w3.org/2000/svg", ""), name
        # Revalidation: the same validator gives a 304 without a body.
        again = module_server.get(f"/static/{name}", headers={"If-None-Match": f.headers["ETag"]})
        assert again.status_code == 304, name
        assert again.content == b""
    assert module_server.get("/static/nope.js").status_code == 404


def test_openapi_document_is_served_verbatim(module_server):
    r = module_server.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json"), r.headers["Content-Type"]
    doc = r.json()
    assert str(doc["openapi"]).startswith("3."), doc.get("openapi")
    for path in PUBLIC_PATHS:
        assert path in doc["paths"], f"{path} missing from the OpenAPI paths"
    with open(harness.REPO_ROOT / "src/gateway/openapi.json", encoding="utf-8") as f:
        assert doc == json.load(f), "served document differs from src/gateway/openapi.json"


# ---- uploads ------------------------------------------------------------------------------


def test_multipart_upload_record_and_files(module_server):
    s = module_server
    data = imagegen.photo_png(256, 192, seed=1)
    r = s.upload(data, "holiday.png", "image/png")
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    rec = r.json()
    check_image_record(s, rec, "holiday.png", "image/png", data, 256, 192)
    assert rec["status"] in ("PENDING", "FINISHED")

    done = s.wait_for(rec["uuid"], {"FINISHED"})
    check_image_record(s, done, "holiday.png", "image/png", data, 256, 192)
    assert harness.same_file(done["url"], rec["url"])
    assert done["url_dither"].startswith(s.base_url + "/files/"), done["url_dither"]
    assert done["error"] is None

    original = s.get(done["url"])
    assert original.status_code == 200
    assert original.content == data, "stored original differs from the uploaded bytes"

    dither = s.get(done["url_dither"])
    assert dither.status_code == 200
    img = imagegen.assert_palette_image(dither.content, "PNG", imagegen.CORNERS8)
    assert img.size == (256, 192)


def test_jpeg_upload_keeps_the_original_bytes(module_server):
    s = module_server
    data = imagegen.photo_jpeg(200, 150, seed=2)
    rec = s.upload_ok(data, "photo.jpg", "image/jpeg")
    check_image_record(s, rec, "photo.jpg", "image/jpeg", data, 200, 150)
    done = s.wait_for(rec["uuid"])
    assert s.get(done["url"]).content == data
    imagegen.assert_palette_image(s.get(done["url_dither"]).content, "PNG", imagegen.CORNERS8)


def test_thumbnails_of_stored_files(module_server):
    import io

    from PIL import Image

    rec = module_server.upload_ok(imagegen.encode(imagegen.photo(1000, 600, seed=41), "JPEG"),
                                  "wide.jpg", content_type="image/jpeg")
    done = module_server.wait_for(rec["uuid"])
    for url, size in ((done["url"], (400, 240)), (done["url_dither"], (400, 240))):
        key = url.split("/files/", 1)[1]  # with the link's signature: it covers the thumbnail
        r = module_server.get(f"/thumbnails/{key}")
        assert r.status_code == 200, (key, r.text)
        assert r.headers["Content-Type"] == "image/webp"
        assert r.headers["Cache-Control"].startswith("private"), r.headers["Cache-Control"]
        with Image.open(io.BytesIO(r.content)) as img:
            assert img.format == "WEBP" and img.size == size, (img.format, img.size)
    small = module_server.upload_ok(imagegen.photo_png(120, 80, seed=42), "small.png")
    r = module_server.get("/thumbnails/" + small["url"].split("/files/", 1)[1])
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (120, 80)  # never enlarged
    # Unsigned: refused whether or not there is such a file (docs/SECURITY.md).
    harness.assert_error(module_server.get("/thumbnails/originals/nope.png"), 403,
                         {"link_unsigned"})
    assert module_server.get("/thumbnails/.hidden").status_code in (403, 404)
    r = module_server.get("/thumbnails/originals/%2e%2e/%2e%2e/etc/passwd")
    assert r.status_code in (400, 403, 404) and "root:" not in r.text


def test_every_answer_carries_its_security_headers(module_server):
    """The gateway adds them in one place, by the kind of answer: nosniff everywhere; the page's
    policy on the page; a sandbox on stored files and previews, refusals included."""
    s = module_server
    rec = s.upload_ok(imagegen.photo_png(64, 48, seed=43), "h.png")
    done = s.wait_for(rec["uuid"])
    key = done["url"].split("/files/", 1)[1]
    answers = {
        "api": s.get(f"/api/images/{rec['uuid']}"),
        "api refusal": requests.get(s.base_url + "/api/images", timeout=10),
        "api not found": s.get("/api/images/00000000-0000-4000-8000-000000000000"),
        "openapi": s.get("/openapi.json"),
        "health": s.get("/health"),
        "page": s.get("/"),
        "script": s.get("/static/app.js"),
        "file": s.get(done["url"]),
        "file refusal": s.get("/files/originals/nope.png"),
        "preview": s.get(f"/thumbnails/{key}"),
        "preview refusal": s.get("/thumbnails/originals/nope.png"),
    }
    for name, r in answers.items():
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (name, r.headers)
        policy = r.headers.get("Content-Security-Policy", "")
        if name == "page":
            assert "script-src 'self'" in policy and r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["Referrer-Policy"] == "no-referrer"
        elif name.startswith(("file", "preview")):
            assert policy == "default-src 'none'; sandbox", (name, policy)
        else:
            assert policy == "", (name, policy)
        # Once each, never twice.
        assert "," not in r.headers["X-Content-Type-Options"], (name, r.headers)
    assert answers["api"].status_code == 200 and answers["api refusal"].status_code == 401
    assert answers["file"].status_code == 200 and answers["preview"].status_code == 200
    assert answers["file refusal"].status_code == 403


def test_multipart_file_under_any_field_name(module_server):
    data = imagegen.photo_png(64, 48, seed=3)
    rec = module_server.upload_ok(data, "any-name.png", "image/png", field="picture")
    assert rec["filename"] == "any-name.png"
    module_server.wait_for(rec["uuid"])


def test_raw_body_upload_with_x_filename(module_server):
    s = module_server
    data = imagegen.photo_jpeg(120, 90, seed=4)
    r = s.upload_raw(data, "image/jpeg", "raw.jpg", via="header")
    assert r.status_code == 201, r.text
    rec = r.json()
    check_image_record(s, rec, "raw.jpg", "image/jpeg", data, 120, 90)
    done = s.wait_for(rec["uuid"])
    assert s.get(done["url"]).content == data


def test_raw_body_upload_with_filename_query(module_server):
    s = module_server
    data = imagegen.photo_png(90, 120, seed=5)
    r = s.upload_raw(data, "image/png", "query-name.png", via="query")
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "query-name.png"
    s.wait_for(r.json()["uuid"])


def test_email_is_accepted_but_never_shown(module_server):
    s = module_server
    email = "someone.secret@example.org"
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=6), "mail.png", "image/png", email=email)
    s.wait_for(rec["uuid"])
    for path in (f"/api/images/{rec['uuid']}", "/api/images", f"/api/dithers/{rec['uuid']}",
                 "/api/dithers"):
        r = s.get(path)
        assert r.status_code == 200
        assert email not in r.text, f"{path} shows the e-mail address"
        assert '"email"' not in r.text, f"{path} has an email field"


def test_public_base_url_prefixes_file_urls(start_server):
    s = start_server(PUBLIC_BASE_URL="http://photos.example.test:9999")
    rec = s.upload_ok(imagegen.photo_png(32, 32, seed=7))
    assert rec["url"].startswith("http://photos.example.test:9999/files/"), rec["url"]
    done = s.wait_for(rec["uuid"])
    assert done["url_dither"].startswith("http://photos.example.test:9999/files/")
    # The same file through the real address.
    path = rec["url"][len("http://photos.example.test:9999"):]
    assert s.get(path).status_code == 200


# ---- one image and its dithers ------------------------------------------------------------


def test_get_image_lists_its_dithers(module_server):
    s = module_server
    rec = s.upload_ok(imagegen.photo_png(80, 60, seed=8))
    done = s.wait_for(rec["uuid"])
    dithers = done["dithers"]
    assert isinstance(dithers, list) and len(dithers) == 1, done
    summary = dithers[0]
    assert SUMMARY_FIELDS <= set(summary), f"summary lacks {SUMMARY_FIELDS - set(summary)}"
    assert summary["status"] == "FINISHED"
    assert harness.same_file(summary["url_dither"], done["url_dither"])
    assert summary["channels"] == 2
    assert summary["algorithm"] == "floyd-steinberg"
    assert summary["format"] == "png"
    assert summary["error"] is None

    items = s.dithers_of(rec["uuid"])
    assert len(items) == 1
    check_dither_record(items[0], rec["uuid"])
    assert items[0]["id"] == summary["dither_id"]
    assert items[0]["source"] == "auto", items[0]


def test_on_demand_dither_with_query_options_gif(module_server):
    s = module_server
    rec = s.upload_ok(imagegen.photo_png(160, 120, seed=9))
    s.wait_for(rec["uuid"])
    d = s.request_dither_ok(rec["uuid"], 4,
                            params={"algorithm": "bayer", "palette": "ega", "format": "gif"})
    check_dither_record(d, rec["uuid"])
    assert d["status"] == "PENDING"
    assert d["channels"] == 4
    assert d["algorithm"] == "bayer"
    assert d["palette"] == "ega"
    assert d["format"] == "gif"
    assert d.get("source") == "request", d
    assert option(d, "algorithm") == "bayer"

    done = s.wait_dither(rec["uuid"], d["id"])
    assert done["url_dither"].startswith(s.base_url + "/files/"), done
    r = s.get(done["url_dither"])
    assert r.status_code == 200
    img = imagegen.assert_palette_image(r.content, "GIF", imagegen.EGA16)
    assert img.size == (160, 120)


def test_on_demand_dither_with_json_body(module_server):
    s = module_server
    rec = s.upload_ok(imagegen.photo_png(256, 192, seed=10))
    s.wait_for(rec["uuid"])
    body = {"algorithm": "atkinson", "palette": "bw", "serpentine": True, "strength": 0.8,
            "width": 64, "linear_light": False}
    d = s.request_dither_ok(rec["uuid"], 2, json_body=body)
    assert d["algorithm"] == "atkinson" and d["palette"] == "bw", d
    assert option(d, "serpentine") == "true"
    assert option(d, "linear_light") == "false"
    assert float(d["options"]["strength"]) == 0.8
    done = s.wait_dither(rec["uuid"], d["id"])
    img = imagegen.assert_palette_image(s.get(done["url_dither"]).content, "PNG", imagegen.BW)
    assert img.size == (64, 48), "width=64 keeps the aspect ratio"


def test_on_demand_dither_channels_mean_levels(module_server):
    s = module_server
    rec = s.upload_ok(imagegen.photo_png(96, 64, seed=11))
    s.wait_for(rec["uuid"])
    d = s.request_dither_ok(rec["uuid"], 3)
    assert d["channels"] == 3
    assert d["palette"] == "levels:3", d
    done = s.wait_dither(rec["uuid"], d["id"])
    found = imagegen.colours(s.get(done["url_dither"]).content)
    allowed = imagegen.levels(3)
    assert all(set(c) <= allowed for c in found), sorted(found)[:10]

    d256 = s.request_dither_ok(rec["uuid"], 256, params={"format": "webp"})
    done = s.wait_dither(rec["uuid"], d256["id"])
    assert imagegen.open_image(s.get(done["url_dither"]).content).format == "WEBP"

    # The image's url_dither follows the latest finished dither.
    s_rec = s.image(rec["uuid"])
    assert s_rec["status"] == "FINISHED"
    harness.wait_until(lambda: harness.same_file(s.image(rec["uuid"])["url_dither"],
                                                 done["url_dither"]), 30,
                       "image url_dither does not follow the latest finished dither")
    assert len(s.image(rec["uuid"])["dithers"]) == 3


def test_dither_list_pagination_newest_first(start_server):
    s = start_server()
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=12))
    s.wait_for(rec["uuid"])
    ids = [s.dithers_of(rec["uuid"])[0]["id"]]
    for channels in (2, 3):
        ids.append(s.request_dither_ok(rec["uuid"], channels)["id"])
    for dither_id in ids:
        s.wait_dither(rec["uuid"], dither_id)

    pages = s.list_pages("/api/dithers", limit=2)
    assert [len(p["items"]) for p in pages] == [2, 1], pages
    listed = [d["id"] for p in pages for d in p["items"]]
    assert listed == list(reversed(ids)), f"not newest first: {listed} (created {ids})"
    for p in pages:
        for d in p["items"]:
            check_dither_record(d, rec["uuid"])
            assert d["status"] == "FINISHED"
    whole = s.get("/api/dithers").json()
    assert [d["id"] for d in whole["items"]] == listed and whole["next_cursor"] is None


def test_image_list_pagination_newest_first(start_server):
    s = start_server(AUTO_DITHER="off")
    uploaded = []
    for i in range(5):
        uploaded.append(s.upload_ok(imagegen.photo_png(32, 32, seed=100 + i), f"p{i}.png")["uuid"])

    pages = s.list_pages("/api/images", limit=2)
    assert [len(p["items"]) for p in pages] == [2, 2, 1], [len(p["items"]) for p in pages]
    assert pages[-1]["next_cursor"] is None
    listed = [i["uuid"] for p in pages for i in p["items"]]
    assert listed == list(reversed(uploaded)), "GET /api/images is not newest first"
    for p in pages:
        for item in p["items"]:
            for field in ("id", "uuid", "filename", "status", "url", "url_dither"):
                assert field in item, f"list item lacks {field}"
            assert item["status"] == "PENDING", "AUTO_DITHER=off leaves images PENDING"
            assert item["url_dither"] == ""

    default = s.get("/api/images").json()
    assert [i["uuid"] for i in default["items"]] == listed and default["next_cursor"] is None
    assert len(s.get("/api/images", params={"limit": 1000}).json()["items"]) == 5
    one = s.get("/api/images", params={"limit": 1}).json()
    assert [i["uuid"] for i in one["items"]] == listed[:1] and one["next_cursor"]


# ---- deleting -----------------------------------------------------------------------------


def test_delete_dithers(start_server):
    s = start_server()
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=13))
    done = s.wait_for(rec["uuid"])
    extra = s.request_dither_ok(rec["uuid"], 4)
    extra = s.wait_dither(rec["uuid"], extra["id"])

    r = s.delete(f"/api/dithers/{rec['uuid']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["uuid"] == rec["uuid"]
    assert body["deleted"] == 2, body

    after = s.wait_for(rec["uuid"], {"DITHER_DELETED"})
    assert after["url_dither"] == ""
    r = s.get(f"/api/dithers/{rec['uuid']}")
    assert r.status_code in (200, 404), r.text
    if r.status_code == 200:
        assert r.json()["items"] == []
    for url in (done["url_dither"], extra["url_dither"]):
        harness.wait_until(lambda: s.get(url).status_code == 404, 30,
                           f"{url} still served after DELETE /api/dithers")
    # The original is untouched.
    assert s.get(rec["url"]).status_code == 200


def test_delete_image_removes_files_and_dithers(start_server):
    s = start_server()
    keep = s.upload_ok(imagegen.photo_png(64, 64, seed=15))
    keep = s.wait_for(keep["uuid"])
    files_before = s.files()
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=14))
    done = s.wait_for(rec["uuid"])
    extra = s.request_dither_ok(rec["uuid"], 3, params={"format": "gif"})
    extra = s.wait_dither(rec["uuid"], extra["id"])
    assert s.files() != files_before, "the upload stored no file under the data dir"

    r = s.delete(f"/api/images/{rec['uuid']}")
    assert r.status_code == 200, r.text
    assert r.json() == {"uuid": rec["uuid"], "deleted": True}
    harness.assert_error(s.get(f"/api/images/{rec['uuid']}"), 404, {"not_found"})
    assert rec["uuid"] not in [i["uuid"] for i in s.list_all("/api/images")]

    for url in (rec["url"], done["url_dither"], extra["url_dither"]):
        harness.wait_until(lambda: s.get(url).status_code == 404, 30,
                           f"{url} still served after DELETE /api/images")

    def dithers_gone():
        r = s.get(f"/api/dithers/{rec['uuid']}")
        return r.status_code == 404 or (r.status_code == 200 and r.json()["items"] == [])

    harness.wait_until(dithers_gone, 30, "the deleted image's dithers are still listed")
    listed = {d["uuid"] for d in s.list_all("/api/dithers")}
    assert rec["uuid"] not in listed and keep["uuid"] in listed

    # Every file the deleted image brought is gone; the other image's files stay.
    harness.wait_until(lambda: s.files() == files_before, 30,
                       lambda: f"files differ from before the upload: added "
                               f"{sorted(s.files() - files_before)}, removed "
                               f"{sorted(files_before - s.files())}")
    assert s.get(keep["url"]).status_code == 200
    assert s.get(keep["url_dither"]).status_code == 200


def test_files_route_unsigned_unknown_key_is_403(module_server):
    """Without a signature nothing is served, and nothing says whether the file exists (a signed
    link to a file that is gone is a 404: see the delete tests)."""
    r = module_server.get("/files/originals/does-not-exist.png")
    harness.assert_error(r, 403, {"link_unsigned"})


def test_requests_session_keep_alive(module_server):
    """Several requests on one connection (clients keep connections open)."""
    with requests.Session() as session:
        session.headers.update(module_server.auth_headers())
        for _ in range(5):
            r = session.get(module_server.url("/api/images"), params={"limit": 1},
                            timeout=harness.scaled(10))
            assert r.status_code == 200
