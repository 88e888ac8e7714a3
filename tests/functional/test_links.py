"""Signed links (issue 12, docs/SECURITY.md "Files are private, links are signed"): the links in
answers and mails are /files/<key>?expires=<unix>&sig=<base64url HMAC-SHA256(link key,
"<key>\\n<expires>")>; a valid one opens the file and its thumbnail with no key and no session; a
tampered, expired, unsigned or foreign-signed one is 403 (JSON, or HTML for a browser); keys
rotate through LINK_SIGNING_KEYS (first signs, all verify)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import re
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import harness
import imagegen
from harness import assert_error

OLD_KEY = "old-link-key-0123456789abcdef0123456789abcdef"
NEW_KEY = "new-link-key-fedcba9876543210fedcba9876543210"
LINK_CODES = {"link_unsigned", "link_invalid", "link_expired"}


def parts(url: str) -> tuple[str, str, int, str]:
    """(base, object key, expires, sig) of a signed /files/ link."""
    split = urlsplit(url)
    assert "/files/" in split.path, url
    base = f"{split.scheme}://{split.netloc}"
    key = split.path.split("/files/", 1)[1]
    query = parse_qs(split.query, keep_blank_values=True)
    assert set(query) == {"expires", "sig"}, f"link {url!r}: query {query}"
    return base, key, int(query["expires"][0]), query["sig"][0]


def sign(link_key: str, object_key: str, expires: int) -> str:
    mac = hmac.new(link_key.encode(), f"{object_key}\n{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def link(base: str, object_key: str, expires, sig, kind: str = "files") -> str:
    return f"{base}/{kind}/{object_key}?expires={expires}&sig={sig}"


def fetch(url: str, **kw) -> requests.Response:
    """As a person with the link: no key, no cookie."""
    kw.setdefault("timeout", harness.scaled(10))
    return requests.get(url, **kw)


def refused(r: requests.Response, codes, what: str) -> None:
    assert_error(r, 403, set(codes) if not isinstance(codes, str) else {codes}, what)


@pytest.fixture(scope="module")
def signed(module_start_server):
    """A server whose link key the test knows, with a finished image."""
    s = module_start_server(LINK_SIGNING_KEYS=OLD_KEY)
    rec = s.upload_ok(imagegen.photo_png(600, 400, seed=1), "linked.png")
    done = s.wait_for(rec["uuid"])
    return s, done


def test_answer_links_are_signed_and_open_without_a_key(signed):
    s, done = signed
    data_url = done["url"]
    pattern = re.compile(r"^" + re.escape(s.base_url) +
                         r"/files/[A-Za-z0-9/._-]+\?expires=\d+&sig=[A-Za-z0-9_-]{43}$")
    for url in (done["url"], done["url_dither"], done["dithers"][0]["url_dither"]):
        assert pattern.match(url), f"not a signed link: {url!r}"
        _, _, expires, _ = parts(url)
        now = time.time()
        # LINK_TTL_SECONDS (default 3600): between one and two TTLs from now.
        assert now + 3600 - 120 <= expires <= now + 7200 + 120, (url, now)
        r = fetch(url)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
        cache = r.headers.get("Cache-Control", "")
        assert cache.startswith("private"), f"Cache-Control {cache!r}"
        age = re.search(r"max-age=(\d+)", cache)
        assert age and 0 < int(age.group(1)) <= expires - now + 5, (cache, expires - now)
    assert fetch(data_url).content == s.get(data_url).content
    # Lists and dithers sign their links too.
    for item in s.list_all("/api/images"):
        assert pattern.match(item["url"]), item
    for item in s.dithers_of(done["uuid"]):
        assert pattern.match(item["url_dither"]), item
        assert fetch(item["url_dither"]).status_code == 200


def test_the_signature_opens_the_thumbnail_too(signed):
    s, done = signed
    base, key, expires, sig = parts(done["url"])
    r = fetch(link(base, key, expires, sig, "thumbnails"))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "image/webp"
    assert r.headers.get("Cache-Control", "").startswith("private"), r.headers
    refused(fetch(f"{base}/thumbnails/{key}"), "link_unsigned", "unsigned thumbnail")
    refused(fetch(link(base, key, expires + 1, sig, "thumbnails")), "link_invalid",
            "thumbnail with another expiry")


def test_the_signature_is_the_documented_hmac(signed):
    """sig = base64url(HMAC-SHA256(first LINK_SIGNING_KEYS entry, "<key>\\n<expires>"))."""
    s, done = signed
    for url in (done["url"], done["url_dither"]):
        base, key, expires, sig = parts(url)
        assert sig == sign(OLD_KEY, key, expires), f"{url}: not HMAC(key, '<key>\\n<expires>')"
    # So a link the operator signs by hand, for any time, works too.
    base, key, _, _ = parts(done["url"])
    later = int(time.time()) + 600
    assert fetch(link(base, key, later, sign(OLD_KEY, key, later))).status_code == 200


def test_tampered_links_are_refused(signed):
    s, done = signed
    base, key, expires, sig = parts(done["url"])
    _, dither_key, dither_expires, dither_sig = parts(done["url_dither"])
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    cases = {
        "another file's path": (link(base, dither_key, expires, sig), {"link_invalid"}),
        "a path with one character more": (link(base, key + "x", expires, sig),
                                           {"link_invalid"}),
        "a later expiry": (link(base, key, expires + 1, sig), {"link_invalid"}),
        "an earlier expiry": (link(base, key, expires - 1, sig), {"link_invalid"}),
        "a far expiry": (link(base, key, expires + 10 ** 8, sig), {"link_invalid"}),
        "a flipped signature": (link(base, key, expires, flipped), {"link_invalid"}),
        "a truncated signature": (link(base, key, expires, sig[:-2]), {"link_invalid"}),
        "an empty signature": (link(base, key, expires, ""), {"link_invalid", "link_unsigned"}),
        "the dither's signature": (link(base, key, dither_expires, dither_sig),
                                   {"link_invalid"}),
        "a signature by an unknown key": (link(base, key, expires,
                                               sign(NEW_KEY, key, expires)), {"link_invalid"}),
        "no signature": (f"{base}/files/{key}?expires={expires}",
                         {"link_unsigned", "link_invalid"}),
        "no expiry": (f"{base}/files/{key}?sig={sig}", {"link_unsigned", "link_invalid"}),
        "a non-numeric expiry": (link(base, key, "soon", sig),
                                 {"link_invalid", "link_unsigned"}),
        "unsigned": (f"{base}/files/{key}", {"link_unsigned"}),
    }
    for what, (url, codes) in cases.items():
        refused(fetch(url), codes, what)
        # The owner's key does not stand in for a signature.
        refused(s.get(url), codes, f"{what}, with the owner's key")
    assert fetch(done["url"]).status_code == 200, "the real link still works"


def test_an_expired_link_is_refused(signed):
    s, done = signed
    base, key, _, _ = parts(done["url"])
    past = int(time.time()) - 5
    url = link(base, key, past, sign(OLD_KEY, key, past))
    refused(fetch(url), "link_expired", "a link that expired 5 s ago")


def test_a_person_following_a_bad_link_gets_a_page(signed):
    s, done = signed
    base, key, expires, sig = parts(done["url"])
    past = int(time.time()) - 5
    for url in (f"{base}/files/{key}", link(base, key, expires + 1, sig),
                link(base, key, past, sign(OLD_KEY, key, past))):
        r = fetch(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert r.status_code == 403, (url, r.status_code)
        assert r.headers.get("Content-Type", "").startswith("text/html"), r.headers
        assert "<html" in r.text.lower() or "<!doctype" in r.text.lower(), r.text[:300]


def test_rotation_old_links_work_while_their_key_is_listed(start_server):
    s = start_server(LINK_SIGNING_KEYS=OLD_KEY)
    rec = s.upload_ok(imagegen.photo_png(64, 48, seed=2), "rotate.png")
    done = s.wait_for(rec["uuid"])
    old_links = [done["url"], done["url_dither"]]
    for url in old_links:
        assert fetch(url).status_code == 200

    # The new key first, the old one still listed: old links work, new ones are signed anew.
    s.stop()
    s.start(LINK_SIGNING_KEYS=f"{NEW_KEY},{OLD_KEY}")
    for url in old_links:
        r = fetch(url)
        assert r.status_code == 200, f"old link refused while its key is listed: {r.text[:300]}"
    now = s.image(rec["uuid"])
    new_links = [now["url"], now["url_dither"]]
    for url in new_links:
        base, key, expires, sig = parts(url)
        assert sig == sign(NEW_KEY, key, expires), f"{url} is not signed with the first key"
        assert fetch(url).status_code == 200

    # The old key removed: its links are refused, the new ones still work.
    s.stop()
    s.start(LINK_SIGNING_KEYS=NEW_KEY)
    for url in old_links:
        refused(fetch(url), "link_invalid", "a link signed with a removed key")
    for url in new_links:
        assert fetch(url).status_code == 200


def test_a_short_link_key_is_refused_at_start(tmp_path):
    """LINK_SIGNING_KEYS entries have at least 32 characters: a short one stops the start, and
    the message does not show the value."""
    short = "tooShortLinkKey7"
    s = harness.Ditherd(tmp_path / "short", {"LINK_SIGNING_KEYS": f"{NEW_KEY},{short}"})
    s.port, s.upload_port, s.dither_port, s.notify_port = harness.free_ports(4)
    try:
        r = subprocess.run([str(harness.DITHERD)], env=s.environment({}), cwd=s.workdir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=harness.scaled(20))
    except subprocess.TimeoutExpired:
        pytest.fail("ditherd started with a 16-character link key")
    assert r.returncode != 0, "ditherd accepted a 16-character link key"
    output = r.stdout + r.stderr
    assert "LINK_SIGNING_KEYS" in output, output[-2000:]
    assert short not in output and NEW_KEY not in output, "a link key is in the log"


# ---- the e-mail's link ------------------------------------------------------------------------


def mail_text(path) -> tuple[str, str]:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


MAIL_LINK_RE = re.compile(r"https?://[^\s\"'<>]+/files/[^\s\"'<>?]+\?expires=\d+(?:&|&amp;)"
                          r"sig=[A-Za-z0-9_-]+")


def test_the_mail_link_works_without_a_session_and_then_expires(start_server):
    # Long enough for the mail to be written, found and read, and the link fetched, on a loaded
    # machine (the suite runs on several workers); scaled for the sanitizer build.
    ttl = round(harness.scaled(8))
    s = start_server(MAIL_LINK_TTL_SECONDS=ttl)
    rec = s.upload_ok(imagegen.photo_png(64, 48, seed=3), "mailed.png",
                      email="reader@example.org")
    folder = s.data_dir / "mail"
    found = harness.wait_until(lambda: sorted(folder.glob("*.eml")), 30, "no mail written")
    text, html = mail_text(found[0])
    links = [u.replace("&amp;", "&") for u in MAIL_LINK_RE.findall(text)]
    assert links, f"no signed link in the mail:\n{text[:2000]}"
    done = s.image(rec["uuid"])
    dither_links = [u for u in links if harness.same_file(u, done["url_dither"])]
    assert dither_links, (links, done["url_dither"])
    url = dither_links[0]
    _, _, expires, _ = parts(url)
    now = time.time()
    assert expires <= now + ttl + 2, f"the mail link lives {expires - now:.0f}s, not {ttl}s"
    assert expires > now, f"the mail link expired {now - expires:.1f}s ago when it was read"

    # Anyone with the mail: no key, no cookie.
    r = fetch(url)
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), (r.status_code, r.text[:300])

    # The mail says until when it works.
    assert re.search(r"(valid|works|expires|until)", text, re.I), text[:2000]

    # Past its expiry: refused, with a page for the person who clicked it.
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    refused(fetch(url), "link_expired", "the mail link after MAIL_LINK_TTL_SECONDS")
    r = fetch(url, headers={"Accept": "text/html"})
    assert r.status_code == 403 and r.headers.get("Content-Type", "").startswith("text/html")
    # The answers' links (LINK_TTL_SECONDS) still work.
    assert fetch(s.image(rec["uuid"])["url_dither"]).status_code == 200


def test_the_default_mail_link_lives_seven_days(start_server):
    s = start_server()
    s.upload_ok(imagegen.photo_png(32, 32, seed=4), "week.png", email="week@example.org")
    folder = s.data_dir / "mail"
    found = harness.wait_until(lambda: sorted(folder.glob("*.eml")), 30, "no mail written")
    text, _ = mail_text(found[0])
    links = [u.replace("&amp;", "&") for u in MAIL_LINK_RE.findall(text)]
    assert links, text[:2000]
    for url in links:
        _, _, expires, _ = parts(url)
        left = expires - time.time()
        assert 7 * 86400 - 300 <= left <= 7 * 86400 + 3600, f"{url}: lives {left:.0f}s"
        assert fetch(url).status_code == 200
