"""Cross-site requests, DNS rebinding, the services' own ports and what errors say (issue 12,
docs/SECURITY.md): a state-changing request authenticated by the session cookie must come from
the page's own origin (403 cross_origin); JSON bodies must be application/json (415
unsupported_media_type); a Host the gateway is not configured for is 421 unknown_host (except
GET /health); the services' ports refuse anything without the service token (403) except
GET /health; a 5xx carries a generic message and a request id, nothing internal."""

from __future__ import annotations


import pytest
import requests

import harness
import imagegen
from harness import assert_error


@pytest.fixture(scope="module")
def target(module_server):
    """A finished image of the browser session below, and that session."""
    s = module_server
    browser = harness.browser_session(s)
    r = browser.post(s.url("/api/images"), headers=harness.same_origin(s), timeout=30,
                     files={"file": ("page.png", imagegen.photo_png(48, 32, seed=1), "image/png")})
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    s.as_admin().wait_for(uuid)
    return browser, uuid


@pytest.fixture
def s(module_server, target):
    before = module_server.snapshot()
    yield module_server
    module_server.assert_unchanged(before)


def png() -> dict:
    return {"file": ("x.png", imagegen.photo_png(32, 32, seed=2), "image/png")}


FOREIGN = {
    "another origin": {"Origin": "http://evil.example"},
    "another port": {"Origin": "http://127.0.0.1:1"},
    "an https origin": {"Origin": "https://127.0.0.1"},
    "a null origin": {"Origin": "null"},
    "cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
    "same-site fetch": {"Sec-Fetch-Site": "same-site"},
    "cross-site fetch with our origin": {"Sec-Fetch-Site": "cross-site", "Origin": None},
    "no origin at all": {},
}


def dithered(s, uuid: str, dither_id: int) -> None:
    """Waits until dither `dither_id` of `uuid` is made and its DITHER_UPLOADED message is in the
    event log (it comes after the dither's row): the module's other tests check that nothing new
    appears while they run, and the next one may start at once."""
    s.as_admin().wait_dither(uuid, dither_id)
    s.wait_events(lambda e: e["key"] == uuid
                  and e["headers"].get("message_type") == "DITHER_UPLOADED"
                  and e["body"].get("dither_id") == dither_id)


@pytest.mark.parametrize("variant", sorted(FOREIGN))
def test_cookie_requests_from_another_origin_are_refused(s, target, variant):
    browser, uuid = target
    headers = dict(FOREIGN[variant])
    if "Origin" in headers and headers["Origin"] is None:
        headers["Origin"] = s.base_url  # a forged Origin does not beat Sec-Fetch-Site
    for method, path, kw in [
        ("POST", "/api/images", {"files": png()}),
        ("POST", f"/api/dithers/{uuid}/2", {}),
        ("POST", f"/api/dithers/{uuid}/2", {"json": {"palette": "ega"}}),
        ("DELETE", f"/api/dithers/{uuid}", {}),
        ("DELETE", f"/api/images/{uuid}", {}),
        ("DELETE", "/api/session", {}),
    ]:
        r = browser.request(method, s.url(path), headers=headers, timeout=30, **kw)
        assert_error(r, 403, {"cross_origin"}, f"{method} {path} with the cookie, {variant}")
    # The session still works (DELETE /api/session was refused too).
    assert browser.get(s.url("/api/me"), timeout=10).status_code == 200
    assert browser.get(s.url(f"/api/images/{uuid}"), timeout=10).status_code == 200


def test_cookie_reads_from_another_origin_are_not_state_changes(s, target):
    browser, uuid = target
    r = browser.get(s.url(f"/api/images/{uuid}"), headers={"Origin": "http://evil.example"},
                    timeout=10)
    assert r.status_code == 200, r.text


def test_cookie_requests_from_the_page_itself_are_accepted(module_server, target):
    s = module_server
    browser, uuid = target
    for headers in ({"Origin": s.base_url}, {"Sec-Fetch-Site": "same-origin"},
                    {"Sec-Fetch-Site": "same-origin", "Origin": s.base_url}):
        r = browser.post(s.url(f"/api/dithers/{uuid}/3"), headers=headers, timeout=30)
        assert r.status_code == 202, (headers, r.status_code, r.text)
        dithered(s, uuid, r.json()["id"])


def test_key_requests_are_not_checked_for_origin(module_server):
    """A key is no ambient credential: a program may send any Origin."""
    s = module_server
    r = s.upload(imagegen.photo_png(32, 32, seed=3), "anywhere.png",
                 headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 201, r.text
    s.wait_for(r.json()["uuid"])


# ---- JSON bodies must say so ------------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain;charset=UTF-8",
                                   "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_json_body_sent_as_another_type_is_415(s, target, ctype):
    _, uuid = target
    for view in (s, s.as_admin()):
        r = view.post(f"/api/dithers/{uuid}/2", data='{"palette": "ega"}',
                      headers={"Content-Type": ctype})
        assert_error(r, 415, {"unsupported_media_type"}, f"dither options as {ctype}")
    r = s.as_admin().post("/api/keys", data='{"name": "plain", "admin": true}',
                          headers={"Content-Type": ctype})
    assert_error(r, 415, {"unsupported_media_type"}, f"POST /api/keys as {ctype}")


def test_a_json_body_as_application_json_with_a_charset_is_fine(module_server, target):
    s = module_server
    _, uuid = target
    r = s.as_admin().post(f"/api/dithers/{uuid}/2", data='{"palette": "ega"}',
                          headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 202, r.text
    dithered(s, uuid, r.json()["id"])


def test_a_cross_site_form_cannot_post_json_with_the_cookie(s, target):
    """What a foreign page can send without a preflight: a text/plain body with the cookie."""
    browser, uuid = target
    r = browser.post(s.url(f"/api/dithers/{uuid}/2"), data='{"palette": "ega"}',
                     headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
                     timeout=10)
    assert r.status_code in (403, 415), r.text
    assert_error(r, r.status_code, {"cross_origin", "unsupported_media_type"})


# ---- Host: DNS rebinding ------------------------------------------------------------------------


def raw_host(server, host: str, method: str = "GET", path: str = "/api/images",
             headers: dict | None = None) -> requests.Response:
    return server.request(method, path, headers={"Host": host, **(headers or {})})


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "rebind.attacker.test",
                                  "127.0.0.1.evil.example", "localhost.evil.example",
                                  "127.0.0.2"])
def test_an_unknown_host_gets_nothing(s, target, host):
    _, uuid = target
    for method, path, kw in [("GET", "/api/images", {}), ("GET", f"/api/images/{uuid}", {}),
                             ("GET", "/", {}), ("GET", "/openapi.json", {}),
                             ("GET", "/static/app.js", {}),
                             ("POST", f"/api/dithers/{uuid}/2", {}),
                             ("DELETE", f"/api/images/{uuid}", {})]:
        r = s.request(method, path, headers={"Host": f"{host}"}, **kw)
        assert_error(r, 421, {"unknown_host"}, f"{method} {path} with Host {host}")
        assert "set-cookie" not in {k.lower() for k in r.headers}, r.headers
    # A signed link too: a rebinding page cannot read files.
    image = s.as_admin().image(uuid)
    path = image["url"][len(s.base_url):]
    assert_error(s.request("GET", path, headers={"Host": host}), 421, {"unknown_host"})
    # Health probes do not know the host name.
    assert s.request("GET", "/health", headers={"Host": host}).status_code == 200


def test_loopback_names_are_hosts_of_a_loopback_gateway(s):
    for host in (f"127.0.0.1:{s.port}", f"localhost:{s.port}", "localhost", "127.0.0.1",
                 f"[::1]:{s.port}"):
        r = s.request("GET", "/api/images", headers={"Host": host})
        assert r.status_code == 200, (host, r.status_code, r.text)


def test_public_base_url_and_allowed_hosts(start_server):
    server = start_server(PUBLIC_BASE_URL="http://photos.example.test:9999",
                          ALLOWED_HOSTS="alias.example.test,other.example.test:8443")
    for host in ("photos.example.test:9999", "alias.example.test", "other.example.test:8443",
                 f"127.0.0.1:{server.port}"):
        r = server.request("GET", "/api/images", headers={"Host": host})
        assert r.status_code == 200, (host, r.status_code, r.text)
    for host in ("other.example.test:8444", "evil.example", "example.test", "photos.example"):
        r = server.request("GET", "/api/images", headers={"Host": host})
        assert_error(r, 421, {"unknown_host"}, f"Host {host}")
    # The page loaded from the public address posts from there.
    # (requests matches cookies to a Host header, not to the URL: the cookie goes by hand.)
    cookie = harness.browser_session(server).cookies.get(harness.SESSION_COOKIE)
    public = {"Host": "photos.example.test:9999",
              "Cookie": f"{harness.SESSION_COOKIE}={cookie}"}
    r = requests.post(server.url("/api/images"), files=png(), timeout=30,
                      headers={**public, "Origin": "http://photos.example.test:9999"})
    assert r.status_code == 201, r.text
    r = requests.post(server.url("/api/images"), files=png(), timeout=30,
                      headers={**public, "Origin": "http://evil.example"})
    assert_error(r, 403, {"cross_origin"})


# ---- the services' own ports ------------------------------------------------------------------


def service_requests(server, uuid: str) -> list[tuple[str, str, dict]]:
    up = f"http://127.0.0.1:{server.upload_port}"
    di = f"http://127.0.0.1:{server.dither_port}"
    no = f"http://127.0.0.1:{server.notify_port}"
    return [
        ("GET", f"{up}/images", {}),
        ("GET", f"{up}/images/{uuid}", {}),
        ("POST", f"{up}/images", {"data": imagegen.photo_png(32, 32, seed=4),
                                  "headers": {"Content-Type": "image/png"}}),
        ("DELETE", f"{up}/images/{uuid}", {}),
        ("GET", f"{di}/images", {}),
        ("GET", f"{di}/images/{uuid}", {}),
        ("POST", f"{di}/images/{uuid}/2", {}),
        ("DELETE", f"{di}/images/{uuid}", {}),
        ("GET", f"{no}/notifications", {}),
    ]


FORGED = {
    "nothing": {},
    "an owner header": {"X-Dither-Owner": "system"},
    "owner and admin headers": {"X-Dither-Owner": "tests", "X-Dither-Admin": "1"},
    "a wrong token": {"X-Service-Token": "not-the-token", "X-Dither-Admin": "1"},
    "an empty token": {"X-Service-Token": "", "X-Dither-Owner": "tests"},
    "the client's key": None,  # Authorization: Bearer <admin key>
}


@pytest.mark.parametrize("variant", sorted(FORGED))
def test_service_ports_refuse_requests_without_the_token(s, target, variant):
    _, uuid = target
    for method, url, kw in service_requests(s, uuid):
        kw = dict(kw)
        headers = dict(kw.pop("headers", {}))
        if FORGED[variant] is None:
            headers["Authorization"] = f"Bearer {s.admin_key}"
            headers["X-Dither-Admin"] = "1"
        else:
            headers.update(FORGED[variant])
        r = requests.request(method, url, headers=headers, timeout=10, **kw)
        assert_error(r, 403, {"forbidden"}, f"{method} {url} with {variant}")
        assert uuid not in r.text
    for port in (s.upload_port, s.dither_port, s.notify_port):
        r = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert r.status_code == 200, (port, r.text)


# ---- errors say nothing internal ---------------------------------------------------------------


def test_a_5xx_carries_a_generic_message_and_a_request_id(start_server):
    """The store breaks under the upload service (its originals directory becomes a file): the
    upload is a 5xx whose message names no path and no errno, with a request id that the log has
    with the details."""
    server = start_server(AUTO_DITHER="off")
    server.upload_ok(imagegen.photo_png(32, 32, seed=5), "before.png")
    originals = server.data_dir / "files" / "originals"
    assert originals.is_dir(), sorted(server.files())
    moved = originals.with_name("originals.moved")
    originals.rename(moved)
    originals.write_text("not a directory\n")
    try:
        r = server.upload(imagegen.photo_png(32, 32, seed=6), "broken.png")
        assert 500 <= r.status_code < 600, f"a broken store answered {r.status_code}: {r.text}"
        err = assert_error(r, r.status_code)
        assert isinstance(err.get("request_id"), str) and err["request_id"], err
        assert str(server.workdir) not in r.text, f"the 5xx answer names a path: {r.text}"
        message = err["message"].lower()
        for detail in ("/files", "originals", "errno", "not a directory", "directory", ".tmp",
                       "sqlite"):
            assert detail not in message, f"the 5xx answer says {detail!r}: {r.text}"
        assert set(err) <= {"code", "message", "request_id"}, err
        harness.wait_until(lambda: err["request_id"] in (server.runs[-1].stdout.read_text(
            errors="replace") + server.runs[-1].stderr.read_text(errors="replace")), 10,
            "the request id is not in the log")
    finally:
        originals.unlink()
        moved.rename(originals)
    server.upload_ok(imagegen.photo_png(32, 32, seed=7), "after.png")
