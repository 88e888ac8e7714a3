"""Owners and keys in the distributed mode (issue 12, docs/SECURITY.md), on the real stack: a key
made with `dither-keys` against PostgreSQL works through api-gateway and, revoked, is refused
within AUTH_CACHE_SECONDS (5 s; asserted with some slack); the services' own ports refuse
anything without the gateway's service token; another owner gets 404; the files in the S3
bucket open only through signed links; the page's browser session works across the processes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import harness
import imagegen
from harness import API_KEY_RE, assert_error

REVOCATION_BOUND = 5      # docs/SECURITY.md: AUTH_CACHE_SECONDS, default 5 with PostgreSQL
REVOCATION_SLACK = 3      # the poll's own time, a busy machine


def wait_refused(view, started: float, what: str) -> float:
    """Polls GET /api/me with `view` until it is 401; returns the seconds since `started`."""
    deadline = started + REVOCATION_BOUND + REVOCATION_SLACK + 10
    last = None
    while time.monotonic() < deadline:
        last = view.get("/api/me")
        if last.status_code == 401:
            assert_error(last, 401, {"unauthorized"}, what)
            return time.monotonic() - started
        assert last.status_code == 200, f"{what}: {last.status_code} {last.text}"
        time.sleep(0.2)
    pytest.fail(f"{what}: still accepted {deadline - started:.0f}s after revocation "
                f"(last {last.status_code if last is not None else None})")


def test_a_key_made_against_postgres_works_and_its_revocation_holds_within_the_bound(up):
    owner = f"dist-{secrets.token_hex(4)}"
    made = up.create_key("distributed", owner=owner)
    assert API_KEY_RE.match(made["key"]), made
    # The tool used PostgreSQL, not a SQLite file in the stack's data directory.
    listed = json.loads(up.keys_tool("list", "--json").stdout)["items"]
    assert made["id"] in {k["id"] for k in listed}
    assert not list((up.stack_dir / "data").glob("auth.db*")), "dither-keys wrote SQLite"

    view = up.as_key(made["key"])
    me = view.get("/api/me")
    assert me.status_code == 200, me.text
    assert me.json()["owner"] == owner and me.json()["via"] == "key", me.json()
    rec = view.upload_ok(imagegen.photo_png(64, 48, seed=71), "dist-key.png")
    view.wait_for(rec["uuid"], timeout=harness.scaled(60))
    assert [i["uuid"] for i in view.list_all()] == [rec["uuid"]]
    assert_error(up.get(f"/api/images/{rec['uuid']}"), 404, {"not_found"})

    # Used a moment ago, so the gateway holds it; revoked with the tool, refused within 5 s.
    assert view.get("/api/me").status_code == 200
    started = time.monotonic()
    up.revoke_key(made["id"])
    took = wait_refused(view, started, "a key revoked with dither-keys")
    assert took <= REVOCATION_BOUND + REVOCATION_SLACK, f"refused only after {took:.1f}s"
    # Refused for good, on every route.
    for path in ("/api/images", f"/api/images/{rec['uuid']}", "/api/dithers"):
        assert_error(view.get(path), 401, {"unauthorized"})
    # The admin still sees the revoked key's images.
    assert up.as_admin().image(rec["uuid"])["uuid"] == rec["uuid"]


def test_keys_through_the_admin_api_on_postgres(up):
    admin = up.as_admin()
    r = admin.post("/api/keys", json={"name": "api-dist", "owner": f"api-{secrets.token_hex(3)}"})
    assert r.status_code == 201, r.text
    made = r.json()
    view = up.as_key(made["key"])
    assert view.get("/api/me").json()["key_id"] == made["id"]
    cli = {k["id"]: k for k in json.loads(up.keys_tool("list", "--json").stdout)["items"]}
    assert cli[made["id"]]["name"] == "api-dist"
    assert_error(up.get("/api/keys"), 403, {"forbidden"})
    started = time.monotonic()
    r = admin.delete(f"/api/keys/{made['id']}")
    assert r.status_code in (200, 204), r.text
    took = wait_refused(view, started, "a key revoked through the API")
    assert took <= REVOCATION_BOUND + REVOCATION_SLACK, f"refused only after {took:.1f}s"


def test_without_a_key_the_gateway_answers_401(up):
    for method, path in (("GET", "/api/images"), ("POST", "/api/images"), ("GET", "/api/me"),
                         ("GET", "/api/notifications"), ("GET", "/api/keys")):
        r = up.anonymous().request(method, path)
        assert_error(r, 401, {"unauthorized"}, f"{method} {path}")
        assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer")
    r = up.get("/api/images", headers={"Authorization": f"Bearer dk_k{'0' * 11}_{'A' * 43}"})
    assert_error(r, 401, {"unauthorized"})


def _blank(r: requests.Response, uuid: str):
    body = json.loads(r.text.replace(uuid, "<uuid>"))
    body.get("error", {}).pop("request_id", None)
    return r.status_code, body


def test_another_owner_gets_404_across_the_services(up):
    rec = up.upload_ok(imagegen.photo_png(64, 48, seed=72), "mine.png")
    done = up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    dither = up.dithers_of(rec["uuid"])[0]
    other = up.as_key(up.create_key("other", owner=f"other-{secrets.token_hex(4)}")["key"])
    unknown = harness.new_uuid()
    for method, template in (("GET", "/api/images/{}"), ("DELETE", "/api/images/{}"),
                             ("GET", "/api/dithers/{}"), ("POST", "/api/dithers/{}/2"),
                             ("DELETE", "/api/dithers/{}/" + str(dither["id"]))):
        theirs = other.request(method, template.format(rec["uuid"]))
        nobodys = other.request(method, template.format(unknown))
        assert_error(theirs, 404, {"not_found"}, f"{method} {template} of another owner")
        assert _blank(theirs, rec["uuid"]) == _blank(nobodys, unknown), (theirs.text, nobodys.text)
    for path in ("/api/images", "/api/dithers", "/api/notifications"):
        assert rec["uuid"] not in other.get(path).text
    # Nothing changed for the owner.
    again = up.image(rec["uuid"])
    assert again["status"] == "FINISHED"
    assert harness.same_file(again["url_dither"], done["url_dither"])
    assert [d["id"] for d in up.dithers_of(rec["uuid"])] == [dither["id"]]


def test_service_ports_refuse_requests_without_the_token(up):
    rec = up.upload_ok(imagegen.photo_png(48, 32, seed=73), "ports.png")
    uuid = rec["uuid"]
    up.wait_for(uuid, timeout=harness.scaled(60))
    ports = {"upload": up.upload_port, "dither-1": up.dither_port, "dither-2": up.dither_port + 1,
             "notify": up.notify_port}
    paths = {"upload": ["/images", f"/images/{uuid}"],
             "dither-1": ["/images", f"/images/{uuid}"],
             "dither-2": ["/images", f"/images/{uuid}"],
             "notify": ["/notifications"]}
    token = up.secrets["SERVICE_TOKEN"]
    forged = [{}, {"X-Dither-Owner": "tests"}, {"X-Dither-Owner": "system", "X-Dither-Admin": "1"},
              {"X-Service-Token": token[:-1] + ("A" if token[-1] != "A" else "B"),
               "X-Dither-Owner": "tests"},
              {"Authorization": f"Bearer {up.admin_key}", "X-Dither-Admin": "1"}]
    for name, port in ports.items():
        base = f"http://127.0.0.1:{port}"
        for path in paths[name]:
            for headers in forged:
                r = requests.get(base + path, headers=headers, timeout=10)
                assert_error(r, 403, {"forbidden"}, f"{name} {path} with {sorted(headers)}")
                assert uuid not in r.text
        # Writes too: nothing is stored or deleted.
        if name == "upload":
            r = requests.post(base + "/images", data=imagegen.photo_png(32, 32, seed=74),
                              headers={"Content-Type": "image/png",
                                       "X-Dither-Owner": "tests"}, timeout=10)
            assert_error(r, 403, {"forbidden"})
            r = requests.delete(f"{base}/images/{uuid}", headers={"X-Dither-Owner": "tests"},
                                timeout=10)
            assert_error(r, 403, {"forbidden"})
        elif name.startswith("dither"):
            r = requests.post(f"{base}/images/{uuid}/2", headers={"X-Dither-Admin": "1"},
                              timeout=10)
            assert_error(r, 403, {"forbidden"})
        assert requests.get(base + "/health", timeout=10).status_code == 200, name
        # The gateway's credential is what opens them.
        first = paths[name][-1]
        r = requests.get(base + first, headers={"X-Service-Token": token,
                                                "X-Dither-Owner": "tests"}, timeout=10)
        assert r.status_code == 200, f"{name} {first} with the service token: {r.text[:300]}"
    assert up.image(uuid)["status"] == "FINISHED"
    assert [i["uuid"] for i in up.list_all()].count(uuid) == 1


def _parts(url: str):
    split = urlsplit(url)
    query = parse_qs(split.query)
    return (f"{split.scheme}://{split.netloc}", split.path.split("/files/", 1)[1],
            int(query["expires"][0]), query["sig"][0])


def test_files_in_the_bucket_open_only_through_signed_links(up):
    rec = up.upload_ok(imagegen.photo_png(200, 100, seed=75), "s3-link.png")
    done = up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    base, key, expires, sig = _parts(done["url"])
    r = requests.get(done["url"], timeout=10)  # no key, no cookie
    assert r.status_code == 200 and r.headers.get("Cache-Control", "").startswith("private")
    thumb = requests.get(f"{base}/thumbnails/{key}?expires={expires}&sig={sig}", timeout=30)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    assert_error(requests.get(f"{base}/files/{key}", timeout=10), 403, {"link_unsigned"})
    assert_error(requests.get(f"{base}/files/{key}?expires={expires + 1}&sig={sig}", timeout=10),
                 403, {"link_invalid"})
    past = int(time.time()) - 5
    link_key = up.secrets["LINK_SIGNING_KEYS"].split(",")[0]
    mac = hmac.new(link_key.encode(), f"{key}\n{past}".encode(), hashlib.sha256).digest()
    old_sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert_error(requests.get(f"{base}/files/{key}?expires={past}&sig={old_sig}", timeout=10),
                 403, {"link_expired"})
    # Every gateway instance and the services sign with the same key: the signature is the
    # documented HMAC with the stack's LINK_SIGNING_KEYS.
    mac = hmac.new(link_key.encode(), f"{key}\n{expires}".encode(), hashlib.sha256).digest()
    assert sig == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_a_browser_session_works_across_the_processes(up):
    browser = harness.browser_session(up)
    me = browser.get(up.url("/api/me"), timeout=10).json()
    assert me["via"] == "session" and me["owner"].startswith("session:"), me
    r = browser.post(up.url("/api/images"), headers=harness.same_origin(up), timeout=30,
                     files={"file": ("web.png", imagegen.photo_png(48, 32, seed=76), "image/png")})
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    assert [i["uuid"] for i in browser.get(up.url("/api/images"), timeout=10).json()["items"]] \
        == [uuid]
    assert_error(up.get(f"/api/images/{uuid}"), 404, {"not_found"})
    r = browser.post(up.url("/api/images"), timeout=30,
                     headers={"Origin": "http://evil.example"},
                     files={"file": ("x.png", imagegen.photo_png(32, 32, seed=77), "image/png")})
    assert_error(r, 403, {"cross_origin"})
    # Ended with the tool (against PostgreSQL): refused within the same bound as keys.
    started = time.monotonic()
    up.keys_tool("end-sessions", "--owner", me["owner"])
    deadline = started + REVOCATION_BOUND + REVOCATION_SLACK
    while True:
        status = browser.get(up.url("/api/me"), timeout=10).status_code
        if status == 401:
            break
        assert time.monotonic() < deadline, "an ended session still works"
        time.sleep(0.2)


def test_the_gateway_refuses_unknown_hosts(up):
    r = up.get("/api/images", headers={"Host": "evil.example"})
    assert_error(r, 421, {"unknown_host"})
    assert up.get("/health", headers={"Host": "evil.example"}).status_code == 200
