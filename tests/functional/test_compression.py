"""GATEWAY_COMPRESS_MIN_BYTES: text answers go out gzip-compressed to clients that accept it, with
`Vary: Accept-Encoding` and an entity tag of their own; conditional requests match either form;
images are never recompressed."""

from __future__ import annotations

import gzip

import requests

import imagegen


def raw_get(server, path: str, **headers) -> requests.Response:
    """The answer as sent: `requests` would undo the gzip itself."""
    r = requests.get(server.url(path), headers=headers, stream=True, timeout=30)
    r.raw_bytes = r.raw.read(decode_content=False)
    return r


def test_the_page_script_is_gzipped_for_clients_that_accept_it(module_server):
    s = module_server
    plain = raw_get(s, "/static/app.js", **{"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    zipped = raw_get(s, "/static/app.js", **{"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert int(zipped.headers["Content-Length"]) == len(zipped.raw_bytes)
    assert len(zipped.raw_bytes) < len(plain.raw_bytes) / 2, (len(zipped.raw_bytes),
                                                               len(plain.raw_bytes))
    assert gzip.decompress(zipped.raw_bytes) == plain.raw_bytes
    # Each form has its own validator, and either one answers 304.
    tag, zipped_tag = plain.headers["ETag"], zipped.headers["ETag"]
    assert zipped_tag != tag and zipped_tag.endswith('-gzip"'), (tag, zipped_tag)
    for sent in (tag, zipped_tag, f"W/{zipped_tag}"):
        r = raw_get(s, "/static/app.js", **{"Accept-Encoding": "gzip", "If-None-Match": sent})
        assert r.status_code == 304, sent
        assert r.raw_bytes == b""
    refused = raw_get(s, "/static/app.js", **{"Accept-Encoding": "gzip;q=0, br"})
    assert "Content-Encoding" not in refused.headers


def test_json_is_gzipped_and_images_are_not(module_server):
    s = module_server
    r = raw_get(s, "/openapi.json", **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.raw_bytes).startswith(b"{")
    small = raw_get(s, "/health", **{"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers, "below GATEWAY_COMPRESS_MIN_BYTES"
    record = s.upload_ok(imagegen.photo_png(64, 48, seed=4), "zip.png")
    done = s.wait_for(record["uuid"])
    picture = raw_get(s, done["url_dither"], **{"Accept-Encoding": "gzip"})
    assert picture.status_code == 200
    assert "Content-Encoding" not in picture.headers


def test_compression_can_be_turned_off(start_server):
    s = start_server(GATEWAY_COMPRESS_MIN_BYTES="0")
    r = raw_get(s, "/static/app.js", **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert "Content-Encoding" not in r.headers
