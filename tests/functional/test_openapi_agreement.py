"""The OpenAPI document (src/gateway/openapi.json) and the server agree: what Schemathesis found
(scripts/schemathesis.sh, docs/API-TESTING.md), each pinned by a test. Where the document states
an exact rule (a pattern), the server is asked about spellings on both sides of it and must accept
exactly what the pattern matches."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urljoin

import pytest

import harness
import imagegen
from harness import assert_error

with open(harness.REPO_ROOT / "src/gateway/openapi.json", encoding="utf-8") as _f:
    DOC = json.load(_f)
PARAMETERS = DOC["components"]["parameters"]
SCHEMAS = DOC["components"]["schemas"]


def matches(schema: dict, text: str) -> bool:
    """Whether a string satisfies the string keywords used in the document (pattern, enum,
    maxLength, anyOf/allOf of those)."""
    if "pattern" in schema and not re.search(schema["pattern"], text):
        return False
    if "enum" in schema and text not in schema["enum"]:
        return False
    if "maxLength" in schema and len(text) > schema["maxLength"]:
        return False
    if "minLength" in schema and len(text) < schema["minLength"]:
        return False
    if "allOf" in schema and not all(matches(s, text) for s in schema["allOf"]):
        return False
    if "anyOf" in schema and not any(matches(s, text) for s in schema["anyOf"]):
        return False
    return True


@pytest.fixture(scope="module")
def shared(module_start_server):
    """One server for the module. These tests ask for hundreds of dithers of one image, so the
    per-owner quotas are off (tests/functional/test_quotas.py tests them)."""
    return module_start_server(QUOTA_PENDING_DITHERS=0, QUOTA_DITHERS_PER_IMAGE=0)


@pytest.fixture(scope="module")
def target(shared):
    rec = shared.upload_ok(imagegen.photo_png(16, 12, seed=3), "target.png")
    return shared.wait_for(rec["uuid"])


@pytest.fixture
def s(shared, target):
    return shared


def dithers_of(s, uuid: str) -> list[int]:
    return [d["id"] for d in s.get(f"/api/dithers/{uuid}").json()["items"]]


def image_count(s) -> int:
    return len(s.as_admin().list_all("/api/images"))


def dither_status(s, uuid: str, params=None, json_body=None) -> int:
    r = s.request_dither(uuid, 2, params=params, json_body=json_body)
    assert r.status_code in (202, 400), f"{params} {json_body}: {r.status_code} {r.text[:300]}"
    if r.status_code == 400:
        assert_error(r, 400, {"invalid_argument"})
    return r.status_code


# ---- dither options: JSON values have their JSON type --------------------------------------


@pytest.mark.parametrize("body", [
    {"perceptual": 0}, {"perceptual": 1}, {"serpentine": "true"}, {"linear_light": "off"},
    {"width": "64"}, {"upscale": "2"}, {"strength": "0.5"}, {"algorithm": 5},
    {"palette": 16}, {"format": True}, {"width": 64.5}, {"seed": True}, {"bayer_size": 4.25},
])
def test_json_option_of_another_type_is_400(s, target, body):
    """Schemathesis: `perceptual: 0` was accepted where the document says boolean. A JSON body's
    values have their JSON type; the text spellings are the query string's."""
    before = dithers_of(s, target["uuid"])
    r = s.request_dither(target["uuid"], 2, json_body=body)
    err = assert_error(r, 400, {"invalid_argument"})
    assert next(iter(body)) in err["message"], err
    assert dithers_of(s, target["uuid"]) == before


def test_json_options_of_their_type_are_taken(s, target):
    d = s.request_dither_ok(target["uuid"], 2, json_body={
        "perceptual": True, "serpentine": False, "linear_light": False, "width": 8.0,
        "strength": 1, "algorithm": "random", "seed": 9007199254740992, "format": "gif"})
    o = d["options"]
    # perceptual, the old spelling of distance=luma, still reads as a JSON boolean.
    assert (o["distance"], o["serpentine"], o["linear_light"]) == ("luma", "false", "false"), o
    assert o["width"] == "8" and o["seed"] == "9007199254740992" and d["format"] == "gif", o
    # One past the document's maximum of seed.
    assert dither_status(s, target["uuid"], json_body={"seed": 9007199254740993}) == 400


BOOLEAN_SPELLINGS = ["true", "True", "TRUE", "yes", "Yes", "on", "ON", "1",
                     "false", "False", "no", "NO", "off", "Off", "0",
                     "", "2", "01", "maybe", "t", "f", "y", "n", "truee", " true", "true ", "-1"]


@pytest.mark.parametrize("option", ["serpentine", "linear_light"])
def test_query_booleans_are_the_documented_spellings(s, target, option):
    """Query values are text: the document's pattern lists every spelling the server takes."""
    schema = PARAMETERS[f"opt_{option}"]["schema"]
    seen = set()
    for text in BOOLEAN_SPELLINGS:
        status = dither_status(s, target["uuid"], params={option: text})
        assert (status == 202) == matches(schema, text), f"{option}={text!r}: {status}"
        seen.add(status)
    assert seen == {202, 400}
    d = s.request_dither_ok(target["uuid"], 2, params={option: "On"})
    assert d["options"][option] == "true", d["options"]
    d = s.request_dither_ok(target["uuid"], 2, params={option: "0"})
    assert d["options"][option] == "false", d["options"]


PALETTES = ["levels:2", "LEVELS:004", "levels:256", "levels:257", "levels:1", "levels:", "levels",
            "grey:16", "gray:2", "Grey:300", "adaptive:8", "adaptive:1", "channels:3", "ega", "EGA",
            "Pico-8", "pico8", "gb", "mono", "websafe", "web", "grey4", "gray4", "rainbow",
            "#ff0000", "#f00", "#ff00", "#ff0000,#00ff00", "ff0000,00ff00", "ff0000", "#fff,",
            "#fff,,#000", ",#fff", "#fff, #000 ", " #fff", "#fff ", "custom:#fff", "custom:",
            "custom:fff,000", "#GGG", "levels:4,5", "\u00dc", "", ":", "#" + "f" * 6 * 2]


def test_palettes_are_the_documented_spellings(s, target):
    """Schemathesis: any string was documented, only the palette grammar is accepted. The
    pattern now states the grammar exactly (letter case, aliases, spaces, a trailing comma)."""
    schema = PARAMETERS["opt_palette"]["schema"]
    assert SCHEMAS["DitherOptions"]["properties"]["palette"]["pattern"] == schema["pattern"]
    colours_256 = ",".join(f"#{i:06x}" for i in range(256))
    seen = set()
    for text in PALETTES + [colours_256, colours_256 + ",#000"]:
        status = dither_status(s, target["uuid"], params={"palette": text})
        assert (status == 202) == matches(schema, text), f"palette={text[:60]!r}: {status}"
        seen.add(status)
    assert seen == {202, 400}


ALGORITHMS = ["floyd-steinberg", "Floyd_Steinberg", "FLOYD STEINBERG", "floyd--steinberg", "fs",
              "FS", "floydsteinberg", "false_fs", "jjn", "jarvis", "sierra3", "sierra2",
              "ordered", "clustered-dot", "bluenoise", "blue_noise", "noise", "none", "hilbert",
              "yliluoma", "two-row-sierra", "magic", "", "bayer ", " bayer", "fs2"]


def test_algorithms_and_formats_are_the_documented_spellings(s, target):
    schema = PARAMETERS["opt_algorithm"]["schema"]
    assert 0 < sum(matches(schema, text) for text in ALGORITHMS) < len(ALGORITHMS)
    for text in ALGORITHMS:
        status = dither_status(s, target["uuid"], params={"algorithm": text})
        assert (status == 202) == matches(schema, text), f"algorithm={text!r}: {status}"
    schema = PARAMETERS["opt_format"]["schema"]
    for text in ["png", "PNG", "Gif", "webp", "WEBP", "jpeg", "", "png "]:
        status = dither_status(s, target["uuid"], params={"format": text})
        assert (status == 202) == matches(schema, text), f"format={text!r}: {status}"


# ---- lists: the cursor ---------------------------------------------------------------------


CURSORS = ["", "1", "42", "999999999999999999", "0", "007", "+7", "-7", " 7", "7 ", "1.0",
           "1e3", "1000000000000000000", "9223372036854775807", "99999999999999999999", "abc",
           "\u0661"]


@pytest.mark.parametrize("path", ["/api/images", "/api/dithers", "/api/notifications"])
def test_cursors_are_the_documented_spellings(s, path):
    """Schemathesis: `cursor=` (empty) was accepted where the pattern said a positive integer.
    Empty is the first page (documented now); leading zeros and 19 digits are refused."""
    schema = PARAMETERS["Cursor"]["schema"]
    assert sum(matches(schema, text) for text in CURSORS) == 4
    for text in CURSORS:
        r = s.get(path, params={"cursor": text})
        assert r.status_code in (200, 400), f"{path}?cursor={text!r}: {r.status_code}"
        if r.status_code == 400:
            assert_error(r, 400, {"invalid_argument"})
        assert (r.status_code == 200) == matches(schema, text), f"cursor={text!r}: {r.status_code}"
    # The same page (compared by uuid: other tests' dithers may finish in between).
    first = [item["uuid"] for item in s.get(path).json()["items"]]
    assert [item["uuid"] for item in s.get(path, params={"cursor": ""}).json()["items"]] == first


# ---- uploads: e-mail addresses, Location ---------------------------------------------------


def notifications_of(s, uuid: str) -> list[dict]:
    return [n for n in s.list_all("/api/notifications") if n["uuid"] == uuid]


def test_empty_email_is_no_email(s):
    """Schemathesis: an empty `email` part was accepted where the document said e-mail format.
    It is what an HTML form sends for an empty field: the same as none, as documented now."""
    schema = DOC["paths"]["/api/images"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]["email"]
    assert matches(schema, "")
    png = imagegen.photo_png(8, 8, seed=4)
    uploads = [s.upload(png, "a.png", "image/png", email=""),
               s.post("/api/images", params={"email": ""}, data=png,
                      headers={"Content-Type": "image/png"})]
    for r in uploads:
        assert r.status_code == 201, r.text
        s.wait_for(r.json()["uuid"])
    time.sleep(0.5)  # a notification would be recorded when the dither finishes
    for r in uploads:
        assert notifications_of(s, r.json()["uuid"]) == []


EMAILS = ["someone@example.org", "a.b+c@mail.example.org", "x@[127.0.0.1]", "a@b", "a@.org",
          "a..b@example.org", ".a@example.org", "a b@example.org", "a@exa_mple.org",
          "a@-example.org", "\"q\"@example.org", "a@example.org.", "@example.org",
          "a" * 64 + "@example.org", "a" * 65 + "@example.org",
          "a@" + ".".join(["b" * 62] * 3) + ".org", "a@" + "b" * 64 + ".org",
          "a@" + ".".join(["b" * 63] * 3) + ".org" + "x" * 60]


def test_email_addresses_are_the_documented_ones(s):
    """The document's address pattern is the server's rule; a raw upload's ?email= and the form's
    field follow it alike."""
    schema = DOC["paths"]["/api/images"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]["email"]
    png = imagegen.photo_png(8, 8, seed=5)
    assert 0 < sum(matches(schema, address) for address in EMAILS) < len(EMAILS)
    for address in EMAILS:
        r = s.upload(png, "e.png", "image/png", email=address)
        assert r.status_code in (201, 400), f"{address!r}: {r.status_code} {r.text[:200]}"
        assert (r.status_code == 201) == matches(schema, address), f"{address!r}: {r.status_code}"


def test_query_email_is_checked_with_a_multipart_body(s):
    """Schemathesis: an invalid ?email= was accepted because a multipart upload ignored it. Both
    places count now; the form's field wins, and every address given must be valid."""
    before = image_count(s)
    png = imagegen.photo_png(8, 8, seed=6)
    r = s.post("/api/images", params={"email": "not an address"},
               files={"file": ("q.png", png, "image/png")}, data={"email": "ok@example.org"})
    assert_error(r, 400, {"invalid_argument"})
    r = s.post("/api/images", params={"email": "ok@example.org"},
               files={"file": ("q.png", png, "image/png")}, data={"email": "a@b"})
    assert_error(r, 400, {"invalid_argument"})
    assert image_count(s) == before

    r = s.post("/api/images", params={"email": "query@example.org"},
               files={"file": ("q.png", png, "image/png")}, data={"email": "form@example.net"})
    assert r.status_code == 201, r.text
    r2 = s.post("/api/images", params={"email": "query@example.org"},
                files={"file": ("q.png", png, "image/png")})
    assert r2.status_code == 201, r2.text
    masked = {}
    for rec, name in ((r.json(), "form"), (r2.json(), "query")):
        harness.wait_until(lambda: notifications_of(s, rec["uuid"]), 30,
                           f"a notification for the {name} address")
        masked[name] = notifications_of(s, rec["uuid"])[0]["to"]
    assert masked == {"form": "f***@example.net", "query": "q***@example.org"}, masked


def test_location_names_the_new_record(s):
    """The 201's Location was the upload service's own path (/images/<uuid>), which the gateway
    does not serve. It is a reference relative to the request's URL now."""
    r = s.upload(imagegen.photo_png(8, 8, seed=7), "l.png", "image/png")
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    schema = DOC["paths"]["/api/images"]["post"]["responses"]["201"]["headers"]["Location"]
    assert matches(schema["schema"], location), location
    followed = s.get(urljoin(r.url, location))
    assert followed.status_code == 200, (location, followed.text[:300])
    assert followed.json()["uuid"] == r.json()["uuid"]
    raw = s.post("/api/images?filename=l.png", data=imagegen.photo_png(8, 8, seed=8),
                 headers={"Content-Type": "image/png"})
    assert raw.status_code == 201, raw.text
    assert s.get(urljoin(raw.url, raw.headers["Location"])).json()["uuid"] == raw.json()["uuid"]


def test_multipart_names_with_a_backslash(s):
    """Schemathesis: a form field named `x\\` made the whole upload a 400 (malformed
    Content-Disposition). The WHATWG form encoding escapes only `"`, CR and LF (as %22, %0D,
    %0A); a backslash is itself."""
    png = imagegen.photo_png(8, 8, seed=9)
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="x\\"\r\n\r\nvalue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="back\\slash.png"\r\nContent-Type: image/png\r\n\r\n').encode() + png + \
        f"\r\n--{boundary}--\r\n".encode()
    r = s.post("/api/images", data=body,
               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 201, r.text
    # The name arrives whole; the stored name is its last path segment, "/" or "\\" (browsers
    # on Windows used to send the whole path).
    assert r.json()["filename"] == "slash.png", r.json()


# ---- keys ----------------------------------------------------------------------------------


def key_names(s) -> list[str]:
    return [k["name"] for k in s.as_admin().get("/api/keys").json()["items"]]


@pytest.mark.parametrize("body", [None, "", "{}", '{"owner": "carol"}', '{"name": ""}',
                                  '{"name": "x", "owner": ""}', '{"name": "tab\\there"}',
                                  '{"name": "del\\u007f"}', json.dumps({"name": "\u00e9" * 101})])
def test_key_request_without_a_proper_name_is_400(s, body):
    """Schemathesis: a POST /api/keys without a body made a key named "" (the document requires
    the body and its name); an empty owner made a key of its own (the pattern says 1-64)."""
    names = key_names(s)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    r = s.as_admin().post("/api/keys", data=body, headers=headers)
    assert_error(r, 400, {"invalid_argument"})
    assert key_names(s) == names


def test_key_names_count_characters(s):
    """Schemathesis: a 100-character name of non-ASCII letters was refused (the server counted
    bytes; the document's maxLength counts characters)."""
    schema = SCHEMAS["NewApiKey"]["properties"]["name"]
    name = "\u00e9" * 99 + "\U0001F511"
    assert matches(schema, name)
    r = s.as_admin().post("/api/keys", json={"name": name})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name


# ---- presets -------------------------------------------------------------------------------


def test_the_documented_builtin_presets_are_the_servers(s):
    """The document lists the built-in presets (`preset`'s enum; the names a preset of one's own
    may not take); GET /api/presets is the server's list."""
    served = [p["name"] for p in s.get("/api/presets").json()["items"] if p["builtin"]]
    assert SCHEMAS["DitherOptions"]["properties"]["preset"]["enum"] == served
    assert PARAMETERS["opt_preset"]["schema"]["enum"] == served
    assert SCHEMAS["PresetRequest"]["properties"]["name"]["not"]["enum"] == served


PRESET_NAMES = ["a", "0", "night", "n1ght.v2_b-c", "a" * 64, "a" * 65, "", "Night", "-a", ".a",
                "_a", "a b", "a/b", "\u00e9t\u00e9", "a\n", "mac", "gameboy", "Mac", "mac2"]


def test_preset_names_are_the_documented_ones(s):
    """The name's pattern (and the built-in names it may not take) is exactly what the server
    takes."""
    schema = SCHEMAS["PresetRequest"]["properties"]["name"]
    # The document's `$` is ECMA-262's, the very end: Python's also matches before a final "\n".
    pattern = re.sub(r"\$$", r"\\Z", schema["pattern"])
    for name in PRESET_NAMES:
        r = s.post("/api/presets", json={"name": name, "options": {}})
        valid = bool(re.search(pattern, name)) and name not in schema["not"]["enum"]
        assert r.status_code in ((200, 201) if valid else (400,)), f"{name!r}: {r.status_code}"
        if valid:
            assert s.delete(f"/api/presets/{name}").status_code == 200, name


def test_preset_descriptions_count_characters(s):
    """As with key names: a 200-character description of non-ASCII letters is within the
    document's maxLength, and one more character is not."""
    schema = SCHEMAS["PresetRequest"]["properties"]["description"]
    description = "\u00e9" * 200
    assert matches(schema, description) and not matches(schema, description + "e")
    r = s.post("/api/presets", json={"name": "accents", "description": description,
                                     "options": {}})
    assert r.status_code in (200, 201), r.text
    r = s.post("/api/presets", json={"name": "accents", "description": description + "\u00e9",
                                     "options": {}})
    assert_error(r, 400, {"invalid_argument"}, "a 201-character description")


# ---- responses -----------------------------------------------------------------------------


def test_notification_statuses_are_documented(start_server):
    """Schemathesis: a SUPPRESSED notification (MAIL_MAX_PER_HOUR) was not in the document's
    enum of statuses."""
    s = start_server(MAIL_MAX_PER_HOUR=1)
    png = imagegen.photo_png(8, 8, seed=10)
    for _ in range(2):
        s.wait_for(s.upload_ok(png, "n.png", email="capped@example.org")["uuid"])
    harness.wait_until(lambda: len(s.list_all("/api/notifications")) == 2, 30,
                       "two notifications")
    statuses = {n["status"] for n in s.list_all("/api/notifications")}
    assert "SUPPRESSED" in statuses, statuses
    assert statuses <= set(SCHEMAS["Notification"]["properties"]["status"]["enum"]), statuses


@pytest.mark.parametrize("path,params", [
    ("/api/images", {"cursor": b"\xff\xfe"}),
    ("/api/dithers", {"limit": b"\xc3("}),
    ("/api/notifications", {"cursor": b"1\xed\xa0\x80"}),
])
def test_errors_about_invalid_utf8_are_json(s, path, params):
    """The earlier finding, kept fixed: a refused value with invalid UTF-8 bytes is named in a
    message that is still valid UTF-8, so the body is JSON."""
    r = s.get(path, params=params)
    assert r.status_code == 400
    json.loads(r.content.decode("utf-8"))  # strict: raises on invalid UTF-8


def test_errors_about_invalid_utf8_options_are_json(s, target):
    for params in ({"palette": b"\xff"}, {"algorithm": b"\xc0\xaf"}, {b"\xfe": "1"},
                   {"format": b"\xf4\x90\x80\x80"}):
        r = s.request_dither(target["uuid"], 2, params=params)
        assert r.status_code == 400, params
        json.loads(r.content.decode("utf-8"))
