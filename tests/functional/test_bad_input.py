"""Bad input (SPEC 7): every rejection is a JSON error with the right status, never a 500, and
leaves nothing behind: no image, no dither, no file under the data dir, no event."""

from __future__ import annotations

import json
import socket
import time

import pytest

import harness
import imagegen
from harness import assert_error, new_uuid

UUID_CODES = {"invalid_uuid", "invalid_argument"}


@pytest.fixture(scope="module")
def target(module_server):
    """One finished image, so that option and channel errors are not mere 404s."""
    rec = module_server.upload_ok(imagegen.photo_png(64, 48, seed=1), "target.png")
    done = module_server.wait_for(rec["uuid"])
    module_server.wait_events(lambda e: e["key"] == rec["uuid"]
                              and e["headers"]["message_type"] == "DITHER_UPLOADED")
    return done


@pytest.fixture
def s(module_server, target):
    """The shared server, checked after the test: nothing changed since before it."""
    before = module_server.snapshot()
    yield module_server
    module_server.assert_unchanged(before)


@pytest.fixture(scope="module")
def small(module_start_server):
    """A server with MAX_UPLOAD_BYTES=100000."""
    return module_start_server(MAX_UPLOAD_BYTES=100000)


@pytest.fixture
def small_s(small):
    before = small.snapshot()
    yield small
    small.assert_unchanged(before)


# ---- uploads ------------------------------------------------------------------------------


def test_text_file_is_unsupported(s):
    r = s.upload(b"just some text, not a picture\n" * 20, "notes.txt", "text/plain")
    assert_error(r, 415, {"unsupported"})


def test_text_sent_as_png_is_unsupported(s):
    r = s.upload(b"this is not a PNG at all\n" * 20, "fake.png", "image/png")
    assert_error(r, 415, {"unsupported"})


def test_text_raw_body_with_image_type_is_unsupported(s):
    r = s.upload_raw(b"hello world\n" * 50, "image/png", "fake.png")
    assert_error(r, 415, {"unsupported"})


def test_raw_body_with_non_image_content_type_is_unsupported(s):
    r = s.post("/api/images", data=json.dumps({"a": 1}),
               headers={"Content-Type": "application/json"})
    assert_error(r, 415, {"unsupported"})


def test_html_sent_as_gif_is_unsupported(s):
    r = s.upload(b"<html><body>GIF89a</body></html>", "page.gif", "image/gif")
    assert_error(r, 415, {"unsupported"})


def test_truncated_jpeg_is_undecodable(s):
    data = imagegen.photo_jpeg(512, 384, seed=2)
    r = s.upload(data[: len(data) // 2], "cut.jpg", "image/jpeg")
    assert_error(r, 422, {"undecodable"})


def test_truncated_png_is_undecodable(s):
    data = imagegen.photo_png(256, 192, seed=3)
    r = s.upload(data[: len(data) // 2], "cut.png", "image/png")
    assert_error(r, 422, {"undecodable"})


def test_empty_file_is_rejected(s):
    r = s.upload(b"", "empty.png", "image/png")
    assert r.status_code in (400, 415, 422), r.text
    assert_error(r, r.status_code)


def test_png_claiming_ten_gigapixels_is_too_many_pixels(s):
    data = imagegen.png_claiming(100000, 100000)
    r = s.upload(data, "bomb.png", "image/png")
    assert_error(r, 422, {"too_many_pixels"})


def test_image_over_max_pixels(start_server):
    server = start_server(MAX_PIXELS=10000)
    before = server.snapshot()
    r = server.upload(imagegen.photo_png(256, 192, seed=4), "big.png", "image/png")
    assert_error(r, 422, {"too_many_pixels"})
    server.assert_unchanged(before)


def test_multipart_without_file_part(s):
    r = s.post("/api/images", files={"email": (None, "a@example.org")})
    assert_error(r, 400)


def test_multipart_without_boundary(s):
    r = s.post("/api/images", data=b"--x\r\n\r\nabc\r\n--x--\r\n",
               headers={"Content-Type": "multipart/form-data"})
    assert_error(r, 400)


def test_multipart_truncated(s):
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + imagegen.photo_png(32, 32, seed=5)[:100])
    r = s.post("/api/images", data=body,
               headers={"Content-Type": "multipart/form-data; boundary=BOUNDARY"})
    assert r.status_code in (400, 422), r.text
    assert_error(r, r.status_code)


def test_lying_content_type_png_as_jpeg_is_sniffed(module_server, target):
    s = module_server
    data = imagegen.photo_png(64, 64, seed=6)
    r = s.upload(data, "really-a-png.jpg", "image/jpeg")
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["content_type"] == "image/png", "content type must come from the bytes"
    assert rec["filename"] == "really-a-png.jpg"
    s.wait_for(rec["uuid"])  # leave the shared server quiet for the next test


# ---- size limits --------------------------------------------------------------------------


def test_oversize_multipart_upload(small_s):
    data = imagegen.noise_png(260, 260)
    assert len(data) > 200_000
    assert_error(small_s.upload(data, "big.png", "image/png"), 413, {"too_large"})


def test_oversize_raw_upload(small_s):
    data = imagegen.noise_png(260, 260)
    assert_error(small_s.upload_raw(data, "image/png", "big.png"), 413, {"too_large"})


def test_upload_just_under_the_limit_is_accepted(small):
    data = imagegen.photo_png(64, 64, seed=7)
    assert len(data) < 90_000
    rec = small.upload_ok(data, "fits.png")
    small.wait_for(rec["uuid"])


@pytest.mark.parametrize("kind", ["raw", "multipart"])
def test_declared_length_over_limit_is_refused_without_reading_the_body(small_s, kind):
    """Content-Length of 50 MB, only 1 KB sent: 413 must come back without waiting for the
    rest of the body."""
    prefix = imagegen.photo_png(64, 64, seed=8)[:1024]
    if kind == "raw":
        ctype, extra, body = "image/png", "X-Filename: big.png\r\n", prefix
    else:
        ctype, extra = "multipart/form-data; boundary=BOUNDARY", ""
        body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; "
                b"filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n" + prefix)
    head = (f"POST /api/images HTTP/1.1\r\nHost: {small_s.host}:{small_s.port}\r\n"
            f"Authorization: Bearer {small_s.key}\r\n"
            f"Content-Type: {ctype}\r\n{extra}Content-Length: 50000000\r\n\r\n").encode()
    limit = harness.scaled(10)
    started = time.monotonic()
    with socket.create_connection((small_s.host, small_s.port), timeout=limit) as sock:
        sock.sendall(head + body)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            header, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        except socket.timeout:
            pytest.fail(f"no answer within {limit:.0f}s: the server waits for the 50 MB body")
        except ConnectionResetError:
            if not data:
                pytest.fail("connection reset without a 413 answer")
    assert time.monotonic() - started < limit
    status_line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    assert status_line.split(" ")[1:2] == ["413"], f"status line {status_line!r}"
    body_json = json.loads(rest[:length] or b"{}")
    assert body_json.get("error", {}).get("code") == "too_large", body_json


# ---- uuids --------------------------------------------------------------------------------

BAD_UUIDS = ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "12345678-1234-1234-1234-12345678901z",
             "%27%20OR%201%3D1%20--", "0" * 200]


@pytest.mark.parametrize("bad", BAD_UUIDS)
@pytest.mark.parametrize("method,template", [
    ("GET", "/api/images/{}"),
    ("DELETE", "/api/images/{}"),
    ("GET", "/api/dithers/{}"),
    ("DELETE", "/api/dithers/{}"),
    ("POST", "/api/dithers/{}/2"),
])
def test_malformed_uuid_is_400(s, method, template, bad):
    r = s.request(method, template.format(bad))
    assert_error(r, 400, UUID_CODES)


@pytest.mark.parametrize("method,template", [
    ("GET", "/api/images/{}"),
    ("DELETE", "/api/images/{}"),
    ("GET", "/api/dithers/{}"),
    ("POST", "/api/dithers/{}/2"),
])
def test_unknown_uuid_is_404(s, method, template):
    r = s.request(method, template.format(new_uuid()))
    assert_error(r, 404, {"not_found"})


def test_delete_dithers_of_unknown_uuid(module_server, target):
    r = module_server.delete(f"/api/dithers/{new_uuid()}")
    assert r.status_code in (200, 404), r.text
    if r.status_code == 200:
        assert r.json()["deleted"] == 0
    else:
        assert_error(r, 404, {"not_found"})


# ---- dither parameters --------------------------------------------------------------------


@pytest.mark.parametrize("channels", ["0", "1", "257", "abc", "-2", "2.5", "99999999999999999999"])
def test_bad_channels_is_400(s, target, channels):
    r = s.request_dither(target["uuid"], channels)
    assert_error(r, 400)


@pytest.mark.parametrize("body", ["{", "[]", '"algorithm"', "null", '{"strength": "x"}',
                                  '{"strength": 2}', '{"serpentine": "maybe"}',
                                  '{"width": -1}', '{"upscale": 100}', '{"algorithm": null}',
                                  '{"palette": ["ega"]}', '{"algorithm": "bayer"} trailing'])
def test_bad_json_options_are_400(s, target, body):
    r = s.post(f"/api/dithers/{target['uuid']}/2", data=body,
               headers={"Content-Type": "application/json"})
    assert_error(r, 400)


@pytest.mark.parametrize("params", [
    {"algorithm": "no-such-algorithm"},
    {"palette": "no-such-palette"},
    {"palette": "levels:1"},
    {"palette": "adaptive:0"},
    {"palette": "#12345g"},
    {"format": "bmp"},
    {"bayer_size": "5"},
    {"halftone": "no-such-matrix"},
    {"strength": "1.5"},
    {"serpentine": "perhaps"},
])
def test_bad_option_values_are_400(s, target, params):
    assert_error(s.request_dither(target["uuid"], 2, params=params), 400)


def test_unknown_option_in_query_is_400(s, target):
    assert_error(s.request_dither(target["uuid"], 2, params={"frobnicate": "1"}), 400)


def test_unknown_option_in_json_is_400(s, target):
    assert_error(s.request_dither(target["uuid"], 2, json_body={"frobnicate": 1}), 400)


def test_unknown_algorithm_in_json_is_400(s, target):
    assert_error(s.request_dither(target["uuid"], 2, json_body={"algorithm": "magic"}), 400)


def test_unknown_palette_in_json_is_400(s, target):
    assert_error(s.request_dither(target["uuid"], 2, json_body={"palette": "rainbow"}), 400)


# ---- lists and files ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/images", "/api/dithers"])
@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5"])
def test_bad_limit_is_400(s, path, limit):
    assert_error(s.get(path, params={"limit": limit}), 400)


@pytest.mark.parametrize("path", ["/api/images", "/api/dithers"])
def test_bad_cursor_is_400(s, path):
    assert_error(s.get(path, params={"cursor": "!!not a cursor!!"}), 400)


@pytest.mark.parametrize("path", ["/files/..%2F..%2F..%2Fetc%2Fpasswd",
                                  "/files/originals/..%2F..%2Fdither.sqlite",
                                  "/files/%2e%2e/%2e%2e/etc/passwd"])
def test_file_path_traversal_is_refused(s, path):
    r = s.get(path)
    assert r.status_code in (400, 403, 404), f"{path}: {r.status_code}"
    assert "root:" not in r.text


def test_unknown_route_is_404_json(s):
    r = s.get("/api/nothing-here")
    assert_error(r, 404)


def test_wrong_method_is_rejected(s):
    r = s.request("PUT", "/api/images")
    assert r.status_code in (404, 405), r.text
    assert_error(r, r.status_code)


def test_dither_request_body_over_its_limit_is_413(s, target):
    """A dither request carries at most a JSON object of options: 64 KiB, checked before the
    body is parsed (the gateway's own limit is the upload limit)."""
    body = json.dumps({"algorithm": "bayer", "padding": "x" * 70000})
    r = s.post(f"/api/dithers/{target['uuid']}/2", data=body,
               headers={"Content-Type": "application/json"})
    assert_error(r, 413, {"too_large"})


@pytest.mark.parametrize("address", [
    "not-an-address", "two@@example.org", "a b@example.org", "@example.org", "a@", "a@.example",
    "x" * 250 + "@example.org", "a@example.org\r\nBcc: b@example.org",
])
def test_an_invalid_email_is_400_and_nothing_is_stored(module_server, address):
    s = module_server
    before = s.snapshot()
    r = s.upload(imagegen.photo_png(32, 32), "mail.png", email=address)
    harness.assert_error(r, 400)
    assert "email" in r.json()["error"]["message"], r.text
    r = s.post("/api/images", data=imagegen.photo_png(32, 32),
               headers={"Content-Type": "image/png"}, params={"email": address})
    harness.assert_error(r, 400)
    s.assert_unchanged(before)
