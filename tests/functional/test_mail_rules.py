"""Mail only where it was asked for (issue 12, docs/SECURITY.md): an address gets mail only for
dithers of its own upload asked for by the upload's owner, at most MAIL_MAX_PER_HOUR per hour
(more are SUPPRESSED, never sent); GET /api/notifications lists only the caller's own; deleting an
image erases its address everywhere the installation keeps it (the SQLite files with their WAL,
and the mailbox's .eml files)."""

from __future__ import annotations

import json
import secrets
import time

import harness
import imagegen
from harness import assert_error


def emls(server) -> list:
    return sorted((server.data_dir / "mail").glob("*.eml"))


def notifications_of(view, uuid: str) -> list[dict]:
    return [n for n in view.list_all("/api/notifications") if n["uuid"] == uuid]


def settled(view, uuid: str, count: int):
    """The `count` notifications of `uuid` once none is PENDING."""
    def check():
        items = notifications_of(view, uuid)
        if len(items) == count and all(n["status"] != "PENDING" for n in items):
            return items
        return None

    return harness.wait_until(check, 60, lambda: f"notifications of {uuid}: "
                                                 f"{json.dumps(notifications_of(view, uuid))}")


def test_mail_cap_per_address_suppresses_the_rest(start_server):
    s = start_server(MAIL_MAX_PER_HOUR=2)
    address = f"capped.{secrets.token_hex(4)}@example.org"
    rec = s.upload_ok(imagegen.photo_png(48, 32, seed=1), "capped.png", email=address)
    s.wait_for(rec["uuid"])
    for channels in (3, 4, 5):  # one after another: the order of the notifications is known
        d = s.request_dither_ok(rec["uuid"], channels)
        s.wait_dither(rec["uuid"], d["id"])
    # A second upload to the same address counts against the same cap.
    other = s.upload_ok(imagegen.photo_png(48, 32, seed=2), "capped-2.png", email=address)
    s.wait_for(other["uuid"])
    items = settled(s, rec["uuid"], 4) + settled(s, other["uuid"], 1)
    statuses = [n["status"] for n in sorted(items, key=lambda n: n["id"])]
    assert statuses == ["SENT", "SENT", "SUPPRESSED", "SUPPRESSED", "SUPPRESSED"], (
        json.dumps(items, indent=1))
    for n in items:
        if n["status"] == "SUPPRESSED":
            assert isinstance(n["last_error"], str) and n["last_error"], (
                f"a SUPPRESSED notification gives no reason: {n}")
            assert n.get("attempts", 0) == 0, n
    time.sleep(1)
    assert len(emls(s)) == 2, f"{len(emls(s))} mails written for a cap of 2"
    # Another address has a cap of its own.
    fresh = s.upload_ok(imagegen.photo_png(48, 32, seed=3), "fresh.png",
                        email=f"fresh.{secrets.token_hex(4)}@example.org")
    s.wait_for(fresh["uuid"])
    assert [n["status"] for n in settled(s, fresh["uuid"], 1)] == ["SENT"]
    harness.wait_until(lambda: len(emls(s)) == 3, 30, "no mail to the other address")


def test_an_admins_dither_of_someone_elses_image_sends_no_mail(start_server):
    s = start_server()
    admin = s.as_admin()
    address = f"owner.{secrets.token_hex(4)}@example.org"
    rec = s.upload_ok(imagegen.photo_png(48, 32, seed=4), "watched.png", email=address)
    s.wait_for(rec["uuid"])
    assert [n["status"] for n in settled(s, rec["uuid"], 1)] == ["SENT"]
    harness.wait_until(lambda: len(emls(s)) == 1, 30, "no mail for the automatic dither")

    d = admin.request_dither_ok(rec["uuid"], 3)
    admin.wait_dither(rec["uuid"], d["id"])
    event = s.wait_events(lambda e: e["key"] == rec["uuid"]
                          and e["headers"].get("message_type") == "DITHER_UPLOADED"
                          and e["body"].get("dither_id") == d["id"])[0]
    assert address not in json.dumps(event["body"]), (
        f"the admin's dither carries the owner's address: {event['body']}")
    # The owner's own dither still mails: once its mail is there, the admin's would be too.
    mine = s.request_dither_ok(rec["uuid"], 4)
    s.wait_dither(rec["uuid"], mine["id"])
    harness.wait_until(lambda: len(emls(s)) == 2, 30, "no mail for the owner's own dither")
    time.sleep(1)
    assert len(emls(s)) == 2, "the admin's dither sent a mail"
    items = notifications_of(admin, rec["uuid"])
    assert all(n["dither_id"] != d["id"] or n["status"] not in ("SENT", "PENDING")
               for n in items), items
    assert len([n for n in items if n["status"] == "SENT"]) == 2, items


def test_notifications_are_listed_per_owner(start_server):
    s = start_server()
    alice = s.as_key(s.create_key("alice", owner="alice")["key"])
    ours = s.upload_ok(imagegen.photo_png(32, 32, seed=5), "ours.png", email="ours@example.org")
    hers = alice.upload_ok(imagegen.photo_png(32, 32, seed=6), "hers.png",
                           email="hers@example.org")
    browser = harness.browser_session(s)
    r = browser.post(s.url("/api/images"), headers=harness.same_origin(s), timeout=30,
                     data={"email": "web@example.org"},
                     files={"file": ("web.png", imagegen.photo_png(32, 32, seed=7), "image/png")})
    assert r.status_code == 201, r.text
    web = r.json()
    for view, rec in ((s, ours), (alice, hers)):
        view.wait_for(rec["uuid"])
        settled(view, rec["uuid"], 1)
    harness.wait_until(lambda: len(emls(s)) == 3, 30, "three uploads with addresses, three mails")

    assert {n["uuid"] for n in s.list_all("/api/notifications")} == {ours["uuid"]}
    assert {n["uuid"] for n in alice.list_all("/api/notifications")} == {hers["uuid"]}
    listed = browser.get(s.url("/api/notifications"), timeout=10).json()["items"]
    assert {n["uuid"] for n in listed} == {web["uuid"]}, listed
    everything = {n["uuid"] for n in s.as_admin().list_all("/api/notifications")}
    assert everything == {ours["uuid"], hers["uuid"], web["uuid"]}
    assert_error(s.anonymous().get("/api/notifications"), 401, {"unauthorized"})


def traces(server, needle: bytes) -> list[str]:
    """Files under the data directory (SQLite databases with their -wal/-shm/-journal files,
    mails, secrets, stored files) whose bytes contain `needle`."""
    found = []
    for path in sorted(server.data_dir.rglob("*")):
        try:
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path.relative_to(server.data_dir)))
        except FileNotFoundError:
            pass  # a -wal or -journal file that went away while we looked
    return found


def test_deleting_an_image_erases_its_address(start_server):
    s = start_server()
    address = f"erase.me.{secrets.token_hex(6)}@example.org"
    kept_address = f"keep.me.{secrets.token_hex(6)}@example.org"
    kept = s.upload_ok(imagegen.photo_png(32, 32, seed=8), "kept.png", email=kept_address)
    rec = s.upload_ok(imagegen.photo_png(48, 32, seed=9), "erased.png", email=address)
    s.wait_for(rec["uuid"])
    s.wait_for(kept["uuid"])
    d = s.request_dither_ok(rec["uuid"], 4)
    s.wait_dither(rec["uuid"], d["id"])
    settled(s, rec["uuid"], 2)
    settled(s, kept["uuid"], 1)
    harness.wait_until(lambda: len(emls(s)) == 3, 30, "three mails")
    # The check below can see the address: it is in the stored mails now.
    assert any(f.startswith("mail/") for f in traces(s, address.encode())), traces(
        s, address.encode())

    r = s.delete(f"/api/images/{rec['uuid']}")
    assert r.status_code == 200, r.text

    needle = address.encode()
    harness.wait_until(lambda: not traces(s, needle), 30,
                       lambda: f"the deleted image's address is still in {traces(s, needle)}")
    # The notifications of the image stay (their status) without the address.
    items = notifications_of(s, rec["uuid"])
    masked = address[0] + "***@example.org"
    for n in items:
        assert n["status"] in ("SENT", "FAILED"), n
        assert masked not in json.dumps(n), f"the erased address still shows: {n}"
    # The other image's address and mail stay.
    assert traces(s, kept_address.encode()), "the other image's address went too"
    assert len(emls(s)) == 1, emls(s)
    assert [n["status"] for n in notifications_of(s, kept["uuid"])] == ["SENT"]
    # Not in the log either (masked there).
    log = "".join(run.stdout.read_text(errors="replace") + run.stderr.read_text(errors="replace")
                  for run in s.runs)
    assert address not in log
