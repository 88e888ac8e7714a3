"""The notification service (issue 5) in the embedded program: one e-mail per finished dither to
the address given at upload, with links to the dithered image and the original; written to
<data>/mail as .eml files by default, sent over SMTP to a real server (aiosmtpd, started by
scripts/infra/smtp.sh) when SMTP_HOST is set; retried while the server is down; visible in
GET /api/notifications with the address masked."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

import harness
import imagegen

ADDRESS = "someone.secret@example.org"
MASKED = "s***@example.org"


class SmtpServer:
    """scripts/infra/smtp.sh on a port and state directory of its own."""

    def __init__(self, workdir: Path, port: int):
        self.run_dir = workdir / "infra"
        self.port = port

    def _script(self, action: str) -> None:
        env = dict(os.environ, DITHER_INFRA_RUN=str(self.run_dir), SMTP_PORT=str(self.port))
        r = subprocess.run([str(harness.REPO_ROOT / "scripts/infra/smtp.sh"), action], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"smtp.sh {action}: {r.stderr[-2000:]}"

    def start(self) -> "SmtpServer":
        self._script("start")
        return self

    def stop(self) -> None:
        self._script("stop")

    def received(self) -> list[email.message.EmailMessage]:
        folder = self.run_dir / "smtp" / "mail"
        if not folder.is_dir():
            return []
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(folder.glob("*.eml"))]

    def envelopes(self) -> list[dict]:
        path = self.run_dir / "smtp" / "received.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def smtp(tmp_path):
    # It also listens on the next port (implicit TLS).
    server = SmtpServer(tmp_path / "smtp", harness.free_ports(2, consecutive=True)[0])
    yield server
    server.stop()


def smtp_env(server: SmtpServer) -> dict:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": server.port, "SMTP_SECURITY": "none",
            "MAIL_FROM": "Dither <dither@example.org>", "NOTIFY_RETRY_SECONDS": 1}


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, message.as_string()[:2000]
    return text.get_content(), html.get_content()


# A signed link in a mail: <base>/files/<key>?expires=<unix>&sig=<base64url>.
LINK_RE = re.compile(r"https?://[^\s\"'<>]+/files/[^\s\"'<>?]+\?expires=\d+(?:&|&amp;)sig=[A-Za-z0-9_-]+")


def mail_links(body: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in LINK_RE.findall(body)]


def mail_link_to(body: str, url: str) -> str:
    """The mail's signed link to the file of `url` (an answer's link, signed differently)."""
    found = [link for link in mail_links(body) if harness.same_file(link, url)]
    assert found, f"no signed link to {harness.unsigned(url)} in:\n{body[:2000]}"
    return found[0]


def check_mail(server, message, record: dict, done: dict) -> None:
    assert message["To"] == ADDRESS, message["To"]
    assert "ready" in message["Subject"].lower(), message["Subject"]
    text, html = parts(message)
    for body in (text, html):
        mail_link_to(body, done["url_dither"])
        mail_link_to(body, record["url"])
    assert "floyd-steinberg" in text, text
    # The link works, for anyone who has the mail (no key, no session).
    r = requests.get(mail_link_to(text, done["url_dither"]), timeout=harness.scaled(10))
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.status_code


def notifications(server) -> list[dict]:
    r = server.get("/api/notifications")
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_without_smtp_each_mail_is_an_eml_file(start_server):
    s = start_server()
    record = s.upload_ok(imagegen.photo_png(64, 48), "mailbox.png", email=ADDRESS)
    done = s.wait_for(record["uuid"])
    folder = s.data_dir / "mail"
    harness.wait_until(lambda: list(folder.glob("*.eml")), harness.scaled(30),
                       f"no .eml in {folder}")
    files = list(folder.glob("*.eml"))
    assert len(files) == 1, files
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    check_mail(s, message, record, done)
    items = notifications(s)
    assert len(items) == 1 and items[0]["status"] == "SENT", items
    assert items[0]["to"] == MASKED, items[0]
    assert ADDRESS not in json.dumps(items)
    # The address is never logged in full.
    log = (s.workdir / "ditherd-1.stdout.log").read_text() + (
        s.workdir / "ditherd-1.stderr.log").read_text()
    assert ADDRESS not in log
    assert MASKED in log


def test_no_address_no_mail(start_server):
    s = start_server()
    record = s.upload_ok(imagegen.photo_png(64, 48), "nobody.png")
    s.wait_for(record["uuid"])
    assert notifications(s) == []
    assert not list((s.data_dir / "mail").glob("*.eml"))


def test_smtp_delivery_to_a_real_server(start_server, smtp):
    smtp.start()
    s = start_server(**smtp_env(smtp))
    record = s.upload_ok(imagegen.photo_png(64, 48), "smtp.png", email=ADDRESS)
    done = s.wait_for(record["uuid"])
    harness.wait_until(lambda: smtp.received(), harness.scaled(30), "no mail received")
    # An on-demand dither is a second finished dither: a second mail.
    d = s.request_dither_ok(record["uuid"], 4, {"palette": "gameboy"})
    s.wait_dither(record["uuid"], d["id"])
    harness.wait_until(lambda: len(smtp.received()) == 2, harness.scaled(30), "no second mail")
    first = smtp.received()[0]
    check_mail(s, first, record, done)
    assert [e["rcpt_tos"] for e in smtp.envelopes()] == [[ADDRESS], [ADDRESS]]
    assert {n["status"] for n in notifications(s)} == {"SENT"}


def test_smtp_down_then_up_delivers_once(start_server, smtp):
    s = start_server(**smtp_env(smtp))  # nothing listens on the SMTP port yet
    record = s.upload_ok(imagegen.photo_png(64, 48), "later.png", email=ADDRESS)
    s.wait_for(record["uuid"])

    def retried():
        items = notifications(s)
        return items and items[0]["attempts"] >= 1 and items[0]["status"] == "PENDING"

    harness.wait_until(retried, harness.scaled(30), lambda: f"no failed attempt: {notifications(s)}")
    assert notifications(s)[0]["last_error"], notifications(s)
    smtp.start()
    harness.wait_until(lambda: notifications(s)[0]["status"] == "SENT", harness.scaled(60),
                       lambda: f"never sent: {notifications(s)}")
    assert len(smtp.received()) == 1


def test_a_refused_recipient_is_recorded_as_failed(start_server, smtp):
    smtp.start()
    s = start_server(**smtp_env(smtp))
    record = s.upload_ok(imagegen.photo_png(64, 48), "refused.png", email="nobody@reject.invalid")
    s.wait_for(record["uuid"])
    harness.wait_until(lambda: notifications(s) and notifications(s)[0]["status"] == "FAILED",
                       harness.scaled(30), lambda: f"not FAILED: {notifications(s)}")
    # The reason is ours, not the server's reply (its address and words stay in the log).
    last_error = notifications(s)[0]["last_error"]
    assert last_error == "the mail server refused the message", notifications(s)
    assert str(smtp.port) not in last_error and "reject.invalid" not in last_error
    assert smtp.received() == []
