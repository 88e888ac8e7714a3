"""Owners and keys (issue 12, docs/SECURITY.md), against the real ditherd: every /api/ route needs
a caller; another owner's items answer exactly like unknown ones and are never listed; an admin
reaches everything; keys made by `dither-keys` and by the admin API routes; browser sessions
handed out by the page (GET /) and ended by DELETE /api/session or `dither-keys end-sessions`."""

from __future__ import annotations

import json
import re
import secrets

import pytest
import requests

import harness
import imagegen
from harness import API_KEY_RE, UUID_RE, assert_error, new_uuid

SESSION_OWNER_RE = re.compile(r"^session:[0-9a-f]{16}$")


def random_key() -> str:
    """A well-formed key that nobody created."""
    return f"dk_k{secrets.token_hex(6)[:11]}_{secrets.token_urlsafe(32)}"


def assert_unauthorized(r: requests.Response, what: str = "", about_keys: bool = True) -> None:
    err = assert_error(r, 401, {"unauthorized"}, what)
    challenge = r.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), f"{what}: WWW-Authenticate {challenge!r}"
    assert "set-cookie" not in {k.lower() for k in r.headers}, (
        f"{what}: an /api/ route handed out a cookie: {r.headers.get('Set-Cookie')!r}")
    if about_keys:
        assert "key" in err["message"].lower(), f"{what}: the message should say how to get a " \
                                                f"key: {err['message']!r}"


def assert_me(me: dict, expected: dict) -> None:
    """GET /api/me's fields (docs/SECURITY.md) have these values."""
    assert {k: me.get(k, "<missing>") for k in expected} == expected, me


def normalized(r: requests.Response, *uuids: str):
    """An answer's status and body with the uuids named in it (and a request id) blanked, to
    compare another owner's item with an unknown one."""
    text = r.text
    for u in uuids:
        text = text.replace(u, "<uuid>")
    try:
        body = json.loads(text)
    except ValueError:
        return r.status_code, text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body["error"].pop("request_id", None)
    return r.status_code, body


# ---- the shared installation -----------------------------------------------------------------


@pytest.fixture(scope="module")
def world(module_server):
    """Owner "tests" (server.key) with a finished image that has two dithers and a mail; owner
    "alice" (a key made with dither-keys) with an image of her own."""
    s = module_server
    rec = s.upload_ok(imagegen.photo_png(64, 48, seed=1), "tests.png", email="tests@example.org")
    s.wait_for(rec["uuid"])
    extra = s.request_dither_ok(rec["uuid"], 3)
    extra = s.wait_dither(rec["uuid"], extra["id"])
    image = s.image(rec["uuid"])
    # SENT, not only listed: each mail's file is written before its notification is marked sent,
    # and the tests check that nothing appears under the data directory while they run (on a
    # loaded machine the second mail came after the first test had begun).
    harness.wait_until(
        lambda: [n["status"] for n in s.list_all("/api/notifications")] == ["SENT", "SENT"],
        harness.scaled(30), "the owner's two dithers made no two sent notifications")
    alice_key = s.create_key("alice", owner="alice")
    alice = s.as_key(alice_key["key"])
    alice_rec = alice.upload_ok(imagegen.photo_png(48, 48, seed=2), "alice.png",
                                email="alice@example.org")
    alice.wait_for(alice_rec["uuid"])
    harness.wait_until(
        lambda: [n["status"] for n in alice.list_all("/api/notifications")] == ["SENT"],
        harness.scaled(30), "alice's upload made no sent notification")
    return {"server": s, "image": image, "dither": extra, "alice": alice,
            "alice_key": alice_key, "alice_image": alice.image(alice_rec["uuid"])}


@pytest.fixture
def s(world):
    """The shared server, checked after the test: nothing changed since before it."""
    server = world["server"]
    before = server.snapshot()
    yield server
    server.assert_unchanged(before)


def routes(uuid: str, dither_id: int) -> list[tuple[str, str, dict]]:
    """Every route of the public API that a caller needs, with a request that would do something
    if it were let through."""
    png = imagegen.photo_png(32, 32, seed=3)
    return [
        ("GET", "/api/images", {}),
        ("POST", "/api/images", {"files": {"file": ("x.png", png, "image/png")}}),
        ("GET", f"/api/images/{uuid}", {}),
        ("DELETE", f"/api/images/{uuid}", {}),
        ("GET", "/api/dithers", {}),
        ("GET", f"/api/dithers/{uuid}", {}),
        ("DELETE", f"/api/dithers/{uuid}", {}),
        ("POST", f"/api/dithers/{uuid}/2", {}),
        ("POST", f"/api/dithers/{uuid}/2", {"json": {"palette": "ega"}}),
        ("DELETE", f"/api/dithers/{uuid}/{dither_id}", {}),
        ("GET", "/api/notifications", {}),
        ("GET", "/api/me", {}),
        ("GET", "/api/keys", {}),
        ("POST", "/api/keys", {"json": {"name": "sneaky", "admin": True}}),
        ("DELETE", "/api/keys/k000000000000", {}),
        ("DELETE", "/api/session", {}),
        ("GET", "/api/options", {}),
        ("GET", "/api/presets", {}),
        ("POST", "/api/presets", {"json": {"name": "sneaky", "options": {}}}),
        ("DELETE", "/api/presets/sneaky", {}),
    ]


# ---- 401: no caller ---------------------------------------------------------------------------


def test_every_api_route_without_a_caller_is_401(s, world):
    image, dither = world["image"], world["dither"]
    for method, path, kw in routes(image["uuid"], dither["id"]):
        r = s.anonymous().request(method, path, **kw)
        assert_unauthorized(r, f"{method} {path} without a key")


BAD_AUTHORIZATIONS = {
    "empty bearer": "Bearer",
    "bearer and a space": "Bearer ",
    "basic": "Basic dGVzdHM6dGVzdHM=",
    "not a key": "Bearer not-a-key",
    "short key": "Bearer dk_k0123456789a_short",
    "unknown key": None,  # filled in: random_key()
    "key and one more character": None,
    "key less its last character": None,
    "key with its secret's case swapped": None,
    "another id with the right secret": None,
    "key twice": None,
}


def bad_authorization(name: str, key: str) -> str:
    prefix, key_id, secret = key.split("_", 2)
    return {
        "unknown key": f"Bearer {random_key()}",
        "key and one more character": f"Bearer {key}A",
        "key less its last character": f"Bearer {key[:-1]}",
        "key with its secret's case swapped": f"Bearer {prefix}_{key_id}_{secret.swapcase()}",
        "another id with the right secret": f"Bearer {prefix}_k{secrets.token_hex(6)[:11]}_{secret}",
        "key twice": f"Bearer {key} {key}",
    }.get(name) or BAD_AUTHORIZATIONS[name]


@pytest.mark.parametrize("variant", sorted(BAD_AUTHORIZATIONS))
def test_a_malformed_or_unknown_key_is_401_on_every_route(s, world, variant):
    image, dither = world["image"], world["dither"]
    assert API_KEY_RE.match(s.key), f"server.key {s.key!r} is not dk_<id>_<secret>"
    for method, path, kw in routes(image["uuid"], dither["id"]):
        auth = bad_authorization(variant, s.key)
        r = s.request(method, path, headers={"Authorization": auth}, **kw)
        assert_unauthorized(r, f"{method} {path} with {variant} ({auth[:30]}...)")


def test_a_revoked_key_is_401_at_once(s, world):
    made = s.create_key("short-lived", owner="tests")
    assert API_KEY_RE.match(made["key"]), made
    view = s.as_key(made["key"])
    assert view.get("/api/me").status_code == 200
    assert view.image(world["image"]["uuid"])["uuid"] == world["image"]["uuid"]
    s.revoke_key(made["id"])
    image, dither = world["image"], world["dither"]
    for method, path, kw in routes(image["uuid"], dither["id"]):
        assert_unauthorized(view.request(method, path, **kw), f"{method} {path} revoked key")
    # The other key of the same owner still works.
    assert s.image(image["uuid"])["uuid"] == image["uuid"]


def test_a_bad_key_is_401_even_with_a_valid_session_cookie(s):
    browser = harness.browser_session(s)
    assert browser.get(s.url("/api/me"), timeout=10).status_code == 200
    for auth in (f"Bearer {random_key()}", "Bearer nonsense"):
        r = browser.get(s.url("/api/images"), headers={"Authorization": auth}, timeout=10)
        assert_unauthorized(r, f"cookie and {auth[:20]}")


# ---- another owner: 404, nothing listed, nothing changed ----------------------------------


def test_another_owners_items_answer_like_unknown_ones(s, world):
    alice, image, dither = world["alice"], world["image"], world["dither"]
    uuid = image["uuid"]
    dithers_before = [d["id"] for d in s.dithers_of(uuid)]
    for method, template, kw in [
        ("GET", "/api/images/{}", {}),
        ("DELETE", "/api/images/{}", {}),
        ("GET", "/api/dithers/{}", {}),
        ("DELETE", "/api/dithers/{}", {}),
        ("POST", "/api/dithers/{}/2", {}),
        ("POST", "/api/dithers/{}/4", {"json": {"palette": "ega"}}),
        ("DELETE", "/api/dithers/{}/" + str(dither["id"]), {}),
    ]:
        unknown = new_uuid()
        theirs = alice.request(method, template.format(uuid), **kw)
        nobodys = alice.request(method, template.format(unknown), **kw)
        what = f"{method} {template.format('<uuid>')} by another owner"
        if (method, template) == ("DELETE", "/api/dithers/{}"):
            # An unknown uuid's dithers: 200 {"deleted": 0} or 404 (test_bad_input); the same.
            assert theirs.status_code in (200, 404), f"{what}: {theirs.status_code} {theirs.text}"
        else:
            assert_error(theirs, 404, {"not_found"}, what)
        assert normalized(theirs, uuid) == normalized(nobodys, unknown), (
            f"{what} differs from an unknown uuid's answer:\n{theirs.status_code} {theirs.text}\n"
            f"{nobodys.status_code} {nobodys.text}")
    # A DELETE of the dithers of someone else's image deletes nothing either.
    r = alice.delete(f"/api/dithers/{uuid}")
    if r.status_code == 200:
        assert r.json().get("deleted") == 0, r.text
    # The owner still has everything.
    now = s.image(uuid)
    assert now["status"] == "FINISHED"
    assert [d["id"] for d in s.dithers_of(uuid)] == dithers_before
    assert s.get(dither["url_dither"]).status_code == 200
    assert s.get(image["url"]).status_code == 200


def test_the_owner_of_one_image_cannot_reach_anothers_dither_ids(s, world):
    """alice's image uuid with the other owner's dither id: still 404, nothing deleted."""
    alice, dither = world["alice"], world["dither"]
    theirs = world["alice_image"]
    assert_error(alice.delete(f"/api/dithers/{theirs['uuid']}/{dither['id']}"), 404,
                 {"not_found"})
    assert s.dithers_of(world["image"]["uuid"])[0]["id"] == dither["id"]


def test_lists_show_only_the_callers_own_items(s, world):
    alice, image = world["alice"], world["image"]
    mine = world["alice_image"]["uuid"]
    assert [i["uuid"] for i in alice.list_all("/api/images")] == [mine]
    assert {d["uuid"] for d in alice.list_all("/api/dithers")} == {mine}
    assert {n["uuid"] for n in alice.list_all("/api/notifications")} == {mine}
    # Page by page (cursors) too.
    for path in ("/api/images", "/api/dithers", "/api/notifications"):
        pages = alice.list_pages(path, limit=1)
        uuids = {item["uuid"] for page in pages for item in page["items"]}
        assert uuids == {mine}, f"{path} pages show {uuids}"
    text = json.dumps([alice.get(p).json() for p in
                       ("/api/images", "/api/dithers", "/api/notifications")])
    assert image["uuid"] not in text
    # And the other way round.
    assert mine not in json.dumps([s.get(p).json() for p in
                                   ("/api/images", "/api/dithers", "/api/notifications")])
    assert mine not in {i["uuid"] for i in s.list_all("/api/images")}
    assert_error(s.get(f"/api/images/{mine}"), 404, {"not_found"})


def test_a_fresh_owner_sees_nothing(s):
    nobody = s.as_key(s.create_key("empty", owner=f"empty-{secrets.token_hex(4)}")["key"])
    for path in ("/api/images", "/api/dithers", "/api/notifications"):
        r = nobody.get(path)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == [] and r.json().get("next_cursor") is None, r.json()


def test_a_forged_owner_header_through_the_gateway_changes_nothing(s, world):
    """The gateway passes only an allow-list of the client's headers: a client cannot say who it
    is with X-Dither-Owner / X-Dither-Admin."""
    alice = world["alice"]
    forged = {"X-Dither-Owner": "tests", "X-Dither-Admin": "1", "X-Service-Token": "guess"}
    assert_error(alice.get(f"/api/images/{world['image']['uuid']}", headers=forged), 404,
                 {"not_found"})
    listed = {i["uuid"] for i in alice.get("/api/images", headers=forged).json()["items"]}
    assert listed == {world["alice_image"]["uuid"]}
    me = alice.get("/api/me", headers=forged).json()
    assert me["owner"] == "alice" and me["admin"] is False, me
    r = s.anonymous().get("/api/images", headers=forged)
    assert_unauthorized(r, "anonymous with forged owner headers")


# ---- admin ------------------------------------------------------------------------------------


def test_admin_sees_and_lists_everything(s, world):
    admin = s.as_admin()
    ours, hers = world["image"]["uuid"], world["alice_image"]["uuid"]
    listed = {i["uuid"] for i in admin.list_all("/api/images")}
    assert {ours, hers} <= listed
    assert {ours, hers} <= {d["uuid"] for d in admin.list_all("/api/dithers")}
    assert {ours, hers} <= {n["uuid"] for n in admin.list_all("/api/notifications")}
    for uuid in (ours, hers):
        assert admin.image(uuid)["uuid"] == uuid
        assert admin.dithers_of(uuid)
    r = admin.get(admin.image(hers)["url"])
    assert r.status_code == 200


def test_admin_dithers_and_deletes_someone_elses_items(start_server):
    server = start_server()
    admin = server.as_admin()
    rec = server.upload_ok(imagegen.photo_png(48, 32, seed=5), "owned.png")
    server.wait_for(rec["uuid"])
    d = admin.request_dither_ok(rec["uuid"], 3)
    d = admin.wait_dither(rec["uuid"], d["id"])
    # It is the owner's dither: the owner sees it.
    assert d["id"] in {x["id"] for x in server.dithers_of(rec["uuid"])}
    r = admin.delete(f"/api/dithers/{rec['uuid']}/{d['id']}")
    assert r.status_code == 200, r.text
    r = admin.delete(f"/api/dithers/{rec['uuid']}")
    assert r.status_code == 200 and r.json()["deleted"] == 1, r.text
    r = admin.delete(f"/api/images/{rec['uuid']}")
    assert r.status_code == 200 and r.json() == {"uuid": rec["uuid"], "deleted": True}, r.text
    assert_error(server.get(f"/api/images/{rec['uuid']}"), 404, {"not_found"})


# ---- who am I ---------------------------------------------------------------------------------


def test_me_names_the_caller(s, world):
    me = s.get("/api/me")
    assert me.status_code == 200, me.text
    assert_me(me.json(), {"owner": "tests", "via": "key", "admin": False, "key_id": s.key_id,
                          "key_name": "tests"})
    admin = s.as_admin().get("/api/me").json()
    assert admin["admin"] is True and admin["via"] == "key", admin
    assert admin["key_id"] == s.admin_key_id and admin["key_name"] == "tests-admin", admin
    assert admin["owner"] == f"key:{s.admin_key_id}", admin
    alice = world["alice"].get("/api/me").json()
    assert alice["owner"] == "alice" and alice["key_id"] == world["alice_key"]["id"], alice


# ---- keys with the command-line tool -------------------------------------------------------


def test_key_tool_create_prints_only_the_key(s):
    r = s.keys_tool("create", "--name", "laptop")
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and API_KEY_RE.match(lines[0]), f"stdout {r.stdout!r}"
    key = lines[0]
    assert key not in r.stderr, "the key is printed on stderr too"
    me = s.as_key(key).get("/api/me").json()
    key_id = API_KEY_RE.match(key).group(1)
    assert_me(me, {"owner": f"key:{key_id}", "via": "key", "admin": False, "key_id": key_id,
                   "key_name": "laptop"})
    # A key of its own: it sees none of the other owners' images.
    assert s.as_key(key).get("/api/images").json()["items"] == []


def test_key_tool_json_list_and_revoke(s):
    made = s.create_key("ci", owner="carol")
    assert set(made) >= {"id", "key", "owner", "name", "admin", "created_at"}, made
    assert made["owner"] == "carol" and made["name"] == "ci" and made["admin"] is False, made
    assert API_KEY_RE.match(made["key"]).group(1) == made["id"], made
    admin = s.create_key("ops", admin=True)
    assert admin["admin"] is True and admin["owner"] == f"key:{admin['id']}", admin

    listed = s.keys_tool("list", "--json")
    assert made["key"] not in listed.stdout and admin["key"] not in listed.stdout
    secret = made["key"].split("_", 2)[2]
    assert secret not in listed.stdout, "list shows a secret"
    items = {k["id"]: k for k in json.loads(listed.stdout)["items"]}
    for key in (made, admin):
        item = items[key["id"]]
        assert set(item) >= {"id", "owner", "name", "admin", "created_at", "revoked_at"}, item
        assert "key" not in item, item
        assert item["owner"] == key["owner"] and item["name"] == key["name"], item
        assert item["admin"] is key["admin"] and item["revoked_at"] is None, item
    assert s.key_id in items and s.admin_key_id in items
    plain = s.keys_tool("list")
    assert made["id"] in plain.stdout and secret not in plain.stdout, plain.stdout

    carol = s.as_key(made["key"])
    assert carol.get("/api/me").json()["owner"] == "carol"
    s.revoke_key(made["id"])
    assert_unauthorized(carol.get("/api/me"), "revoked with dither-keys")
    items = {k["id"]: k for k in json.loads(s.keys_tool("list", "--json").stdout)["items"]}
    assert items[made["id"]]["revoked_at"] is not None, items[made["id"]]
    assert items[admin["id"]]["revoked_at"] is None
    # Revoking twice is harmless; an unknown id is an error (1).
    again = s.keys_tool("revoke", made["id"], check=False)
    assert again.returncode in (0, 1), again
    unknown = s.keys_tool("revoke", "k000000000000", check=False)
    assert unknown.returncode == 1, (unknown.returncode, unknown.stdout, unknown.stderr)


@pytest.mark.parametrize("args", [(), ("frobnicate",), ("revoke",), ("create", "--bogus")])
def test_key_tool_bad_usage_exits_2(s, args):
    r = s.keys_tool(*args, check=False)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert not API_KEY_RE.match(r.stdout.strip() or "-")


def test_key_tool_refuses_a_bad_owner_name(s):
    for owner in ("bad owner", "x" * 65, "semi;colon", "slash/owner"):
        r = s.keys_tool("create", "--name", "bad", "--owner", owner, check=False)
        assert r.returncode in (1, 2), (owner, r.returncode, r.stdout)
        assert "dk_" not in r.stdout, (owner, r.stdout)


def test_keys_of_one_owner_see_the_same_images(start_server):
    server = start_server(AUTO_DITHER="off")
    first = server.as_key(server.create_key("phone", owner="dana")["key"])
    second = server.as_key(server.create_key("laptop", owner="dana")["key"])
    rec = first.upload_ok(imagegen.photo_png(32, 32, seed=6), "shared.png")
    assert second.image(rec["uuid"])["uuid"] == rec["uuid"]
    assert [i["uuid"] for i in second.list_all()] == [rec["uuid"]]
    assert_error(server.get(f"/api/images/{rec['uuid']}"), 404, {"not_found"})


def test_keys_are_stored_only_as_hashes(start_server):
    """No key secret in any file of the data directory (the SQLite files and their WAL)."""
    server = start_server()
    made = server.create_key("secret-check", owner="erin")
    view = server.as_key(made["key"])
    assert view.get("/api/me").status_code == 200
    api = server.as_admin().post("/api/keys", json={"name": "api-secret", "owner": "erin"})
    assert api.status_code == 201, api.text
    secrets_ = [k.split("_", 2)[2] for k in (made["key"], api.json()["key"], server.key,
                                             server.admin_key)]
    found = []
    for path in sorted(server.data_dir.rglob("*")):
        if path.is_file():
            raw = path.read_bytes()
            found += [str(path) for secret in secrets_ if secret.encode() in raw]
    assert not found, f"a key's secret is stored in clear in {found}"
    # Nor in the logs.
    log = "".join(run.stdout.read_text(errors="replace") + run.stderr.read_text(errors="replace")
                  for run in server.runs)
    assert not [x for x in secrets_ if x in log], "a key's secret is in the log"


# ---- keys through the API (admin only) -----------------------------------------------------


def test_keys_through_the_admin_api(s, world):
    admin = s.as_admin()
    r = admin.post("/api/keys", json={"name": "api-made", "owner": "bob"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) >= {"id", "key", "owner", "name", "admin", "created_at"}, made
    assert API_KEY_RE.match(made["key"]).group(1) == made["id"], made
    assert made["owner"] == "bob" and made["name"] == "api-made" and made["admin"] is False
    bob = s.as_key(made["key"])
    me = bob.get("/api/me").json()
    assert_me(me, {"owner": "bob", "via": "key", "admin": False, "key_id": made["id"],
                   "key_name": "api-made"})
    assert bob.get("/api/images").json()["items"] == []

    r = admin.post("/api/keys", json={"name": "api-admin", "admin": True})
    assert r.status_code == 201, r.text
    second_admin = s.as_key(r.json()["key"])
    assert second_admin.get("/api/me").json()["admin"] is True
    assert second_admin.get("/api/keys").status_code == 200

    listed = admin.get("/api/keys")
    assert listed.status_code == 200, listed.text
    assert made["key"] not in listed.text and made["key"].split("_", 2)[2] not in listed.text
    ids = {k["id"]: k for k in listed.json()["items"]}
    assert {made["id"], s.key_id, world["alice_key"]["id"]} <= set(ids)
    assert ids[made["id"]]["owner"] == "bob" and ids[made["id"]]["revoked_at"] is None
    # The CLI sees what the API made.
    cli = {k["id"] for k in json.loads(s.keys_tool("list", "--json").stdout)["items"]}
    assert made["id"] in cli

    r = admin.delete(f"/api/keys/{made['id']}")
    assert r.status_code in (200, 204), r.text
    assert_unauthorized(bob.get("/api/me"), "key revoked through the API")
    revoked = {k["id"]: k for k in admin.get("/api/keys").json()["items"]}[made["id"]]
    assert revoked["revoked_at"] is not None, revoked
    assert_error(admin.delete("/api/keys/k000000000000"), 404)


def test_key_routes_are_for_admins_only(s, world):
    for caller in (s, world["alice"]):
        assert_error(caller.get("/api/keys"), 403, {"forbidden"})
        assert_error(caller.post("/api/keys", json={"name": "mine", "admin": True}), 403,
                     {"forbidden"})
        assert_error(caller.delete(f"/api/keys/{s.admin_key_id}"), 403, {"forbidden"})
    browser = harness.browser_session(s)
    r = browser.post(s.url("/api/keys"), json={"name": "web", "admin": True},
                     headers=harness.same_origin(s), timeout=10)
    assert_error(r, 403, {"forbidden"})
    # Nothing happened: the admin key still works, no key was made.
    assert s.as_admin().get("/api/me").json()["admin"] is True
    names = [k["name"] for k in s.as_admin().get("/api/keys").json()["items"]]
    assert "mine" not in names and "web" not in names


def test_admin_api_refuses_a_bad_key_request(s):
    admin = s.as_admin()
    for body in ({"name": "x", "owner": "bad owner"}, {"name": "x", "admin": "yes"}, [1, 2],
                 {"name": "x", "owner": "x" * 65}):
        r = admin.post("/api/keys", json=body)
        assert_error(r, 400, what=f"POST /api/keys {body}")


# ---- browser sessions -------------------------------------------------------------------------


def test_the_page_hands_out_a_session_cookie(s):
    r = requests.get(s.url("/"), timeout=10)
    assert r.status_code == 200
    cookie = r.headers.get("Set-Cookie", "")
    assert cookie.startswith(f"{harness.SESSION_COOKIE}="), cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert re.match(r"^[A-Za-z0-9_-]{43}$", value), f"session id {value!r}"
    attributes = {a.strip().split("=", 1)[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "httponly" in attributes, cookie
    assert attributes.get("samesite", "").lower() == "samesite=lax", cookie
    assert attributes.get("path") == "Path=/", cookie
    assert attributes.get("max-age") == "Max-Age=2592000", cookie
    assert "secure" not in attributes, f"Secure on a plain-http installation: {cookie}"
    # The page with a valid cookie keeps it (it may refresh the same cookie, not replace it).
    again = requests.get(s.url("/"), cookies={harness.SESSION_COOKIE: value}, timeout=10)
    renewed = again.headers.get("Set-Cookie", "")
    if renewed.startswith(f"{harness.SESSION_COOKIE}="):
        assert renewed.split(";", 1)[0] == f"{harness.SESSION_COOKIE}={value}", renewed
    # A session id is stored only as a hash.
    for path in s.data_dir.rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), f"session id in clear in {path}"


def test_api_routes_never_hand_out_sessions(s):
    for path in ("/api/images", "/api/me", "/api/notifications"):
        r = requests.get(s.url(path), timeout=10)
        assert_unauthorized(r, f"GET {path} without anything")


def test_a_session_is_an_owner_of_its_own(world):
    s = world["server"]
    browser = harness.browser_session(s)
    me = browser.get(s.url("/api/me"), timeout=10).json()
    assert SESSION_OWNER_RE.match(me["owner"]), me
    assert me["via"] == "session" and me["admin"] is False, me
    assert me["key_id"] is None and me["key_name"] is None, me
    assert browser.get(s.url("/api/images"), timeout=10).json()["items"] == []

    r = browser.post(s.url("/api/images"), headers=harness.same_origin(s), timeout=30,
                     files={"file": ("web.png", imagegen.photo_png(40, 30, seed=7), "image/png")})
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    # Its automatic dither made before the image is deleted below: a dither still being made then
    # writes its file after the waits for the files to go, and removes it again, during another
    # test's nothing-changed check.
    harness.wait_until(lambda: browser.get(s.url(f"/api/images/{uuid}"), timeout=10)
                       .json().get("status") in ("FINISHED", "FAILED"), harness.scaled(60),
                       "the session's image was never dithered")
    try:
        assert [i["uuid"] for i in browser.get(s.url("/api/images"), timeout=10).json()["items"]] \
            == [uuid]
        # The key's owner, alice and another browser see nothing of it.
        assert_error(s.get(f"/api/images/{uuid}"), 404, {"not_found"})
        assert_error(world["alice"].get(f"/api/images/{uuid}"), 404, {"not_found"})
        other = harness.browser_session(s)
        assert other.get(s.url("/api/me"), timeout=10).json()["owner"] != me["owner"]
        assert_error(other.get(s.url(f"/api/images/{uuid}"), timeout=10), 404, {"not_found"})
        assert other.get(s.url("/api/images"), timeout=10).json()["items"] == []
        # A key wins over the cookie.
        both = browser.get(s.url("/api/me"), headers=s.auth_headers(), timeout=10).json()
        assert both["owner"] == "tests" and both["via"] == "key", both
    finally:
        d = browser.delete(s.url(f"/api/images/{uuid}"), headers=harness.same_origin(s),
                           timeout=10)
        assert d.status_code == 200, d.text
    harness.wait_until(lambda: not any(f.startswith(("files/originals/" + uuid,
                                                     f"files/dithers/{uuid}/"))
                                       for f in s.files()), 30, "the session's files stay")
    harness.wait_until(lambda: uuid not in {d["uuid"] for d in
                                            s.as_admin().list_all("/api/dithers")}, 30,
                       "the session's deleted image still has dithers")
    # Its dither's deletion is announced after the listing shows it gone; the next test checks
    # that no event appears while it runs.
    harness.wait_until(lambda: any(e["headers"].get("message_type") == "DITHER_DELETED"
                                   and e["body"].get("uuid") == uuid for e in s.events()), 30,
                       "no DITHER_DELETED for the session's deleted image")


def test_delete_session_ends_it(s):
    browser = harness.browser_session(s)
    value = browser.cookies.get(harness.SESSION_COOKIE)
    owner = browser.get(s.url("/api/me"), timeout=10).json()["owner"]
    r = browser.delete(s.url("/api/session"), headers=harness.same_origin(s), timeout=10)
    assert r.status_code in (200, 204), r.text
    stale = requests.get(s.url("/api/me"), cookies={harness.SESSION_COOKIE: value}, timeout=10)
    assert_unauthorized(stale, "an ended session", about_keys=False)
    # The page gives a new one, a new owner.
    fresh = requests.get(s.url("/"), cookies={harness.SESSION_COOKIE: value}, timeout=10)
    cookie = fresh.headers.get("Set-Cookie", "")
    assert cookie.startswith(f"{harness.SESSION_COOKIE}="), cookie
    new_value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert new_value != value
    me = requests.get(s.url("/api/me"), cookies={harness.SESSION_COOKIE: new_value},
                      timeout=10).json()
    assert SESSION_OWNER_RE.match(me["owner"]) and me["owner"] != owner, me


def test_key_tool_ends_sessions(s):
    first, second = harness.browser_session(s), harness.browser_session(s)
    owner = first.get(s.url("/api/me"), timeout=10).json()["owner"]
    s.keys_tool("end-sessions", "--owner", owner)
    assert_unauthorized(first.get(s.url("/api/me"), timeout=10), "session ended by the tool",
                        about_keys=False)
    assert second.get(s.url("/api/me"), timeout=10).status_code == 200
    s.keys_tool("end-sessions")
    assert_unauthorized(second.get(s.url("/api/me"), timeout=10), "every session ended",
                        about_keys=False)
    # Keys are not sessions: they still work.
    assert s.get("/api/me").status_code == 200


def test_session_cookie_is_secure_behind_https(start_server):
    server = start_server(PUBLIC_BASE_URL="https://photos.example.test")
    r = requests.get(server.url("/"), timeout=10)
    assert r.status_code == 200
    cookie = r.headers.get("Set-Cookie", "")
    assert "secure" in [a.strip().lower() for a in cookie.split(";")], cookie


# ---- identifiers ------------------------------------------------------------------------------


def test_image_uuids_are_random_version_4(s, world):
    for uuid in (world["image"]["uuid"], world["alice_image"]["uuid"]):
        assert UUID_RE.match(uuid)
        assert uuid[14] == "4" and uuid[19] in "89ab", f"{uuid} is not a version 4 uuid"
