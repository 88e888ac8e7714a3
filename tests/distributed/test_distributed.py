"""The distributed mode end to end, on real servers (scripts/stack.sh): PostgreSQL, Kafka 3.9 in
KRaft mode, versitygw (S3), one process per service and two dithering workers in one consumer
group. Covers the flow, the messages on the wire as a third-party client (kcat) reads them, the
Python prototype's message bodies, the faults of issue 4 (a worker killed mid-burst, the broker
restarted mid-burst, PostgreSQL stopped, the S3 server down, a poison message) and start-up while
a server is down (STARTUP_WAIT_SECONDS)."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

import harness
import imagegen
from stack import BIN_DIR, headers_of

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def messages_for(stack, topic: str, uuid: str, kind: str | None = None) -> list[dict]:
    out = []
    for m in stack.read_topic(topic):
        if m.get("key") != uuid:
            continue
        if kind is not None and dict(headers_of(m)).get("message_type") != kind:
            continue
        out.append(m)
    return out


def wait_message(stack, topic: str, uuid: str, kind: str, timeout: float = 30) -> dict:
    found: list[dict] = []

    def check():
        found[:] = messages_for(stack, topic, uuid, kind)
        return bool(found)

    harness.wait_until(check, timeout, f"no {kind} for {uuid} on topic {topic}")
    return found[0]


def burst(stack, count: int, prefix: str, during=None) -> tuple[dict, int]:
    """`count` concurrent uploads; `during()` runs (in this thread) once a quarter were accepted.
    Returns (uuid -> record for every 201, number of uploads refused with 503)."""
    accepted: dict[str, dict] = {}
    refused = 0
    lock = threading.Lock()
    quarter = threading.Event()
    pictures = [imagegen.photo_png(160, 120, seed=1000 + i) for i in range(count)]

    def upload(i):
        nonlocal refused
        for attempt in range(40):
            try:
                r = stack.upload(pictures[i], f"{prefix}-{i:02d}.png", timeout=harness.scaled(30))
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if r.status_code == 201:
                with lock:
                    accepted[r.json()["uuid"]] = r.json()
                    if len(accepted) >= count // 4:
                        quarter.set()
                return
            assert r.status_code == 503, f"upload {i}: {r.status_code} {r.text[:300]}"
            with lock:
                refused += 1
            time.sleep(0.5)  # a client retries a 503
        pytest.fail(f"upload {i} never accepted")

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(upload, i) for i in range(count)]
        if during is not None:
            assert quarter.wait(harness.scaled(120)), "the burst never got going"
            during()
        for f in futures:
            f.result()
    return accepted, refused


def assert_all_finished_once(stack, records: dict, timeout: float = 240) -> None:
    """Every record reaches FINISHED and has exactly one automatic dither."""
    def all_finished():
        return all(stack.image(u)["status"] == "FINISHED" for u in records)

    harness.wait_until(all_finished, harness.scaled(timeout), lambda: "not FINISHED: " + str(
        [(u, stack.image(u)["status"]) for u in records if stack.image(u)["status"] != "FINISHED"]))
    for u in records:
        dithers = stack.dithers_of(u)
        auto = [d for d in dithers if d.get("source") == "auto"]
        assert len(auto) == 1, f"{u} has {len(auto)} automatic dithers: {dithers}"
        assert auto[0]["status"] == "FINISHED", auto[0]


# ---- flow ------------------------------------------------------------------------------------


def test_health_names_every_service(up):
    r = up.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok", r.json()


def ready_of(port: int, query: str = "") -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/health/ready{query}",
                        timeout=harness.scaled(10))


def test_every_process_is_ready_and_the_gateway_aggregates_them(up):
    # Each process checks its own parts only (docs/OPERATIONS.md "Health").
    expected = {
        up.upload_port: {"upload_database", "bus", "blob_store"},
        up.dither_port: {"dither_database", "bus", "blob_store"},
        up.notify_port: {"notification_database", "bus", "mail"},
    }
    for port, checks in expected.items():
        r = ready_of(port)
        assert r.status_code == 200, r.text
        assert set(r.json()["checks"]) == checks, r.json()
        live = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=harness.scaled(10))
        assert live.status_code == 200, live.text
    r = ready_of(up.port)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["services"] == {"upload": "ok", "dither": "ok", "notify": "ok"}, body
    assert set(body["checks"]) == {"identity_database", "blob_store"}, body
    # ?scope=self: the gateway's own parts only.
    assert "services" not in ready_of(up.port, "?scope=self").json()


def test_upload_dither_serve_delete(up):
    original = imagegen.photo_png(200, 150, seed=7)
    rec = up.upload_ok(original, "flow.png")
    done = up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    # Files come from the S3 bucket through the gateway.
    r = up.get(done["url"])
    assert r.status_code == 200 and r.content == original, (r.status_code, len(r.content))
    r = up.get(done["url_dither"])
    assert r.status_code == 200 and r.content.startswith(PNG_MAGIC), r.status_code
    assert len(imagegen.colours(r.content)) <= 8
    # An on-demand dither with another palette, done by one of the two workers.
    d = up.request_dither_ok(rec["uuid"], 4, {"palette": "gameboy"})
    d = up.wait_dither(rec["uuid"], d["id"], timeout=harness.scaled(60))
    r = up.get(d["url_dither"])
    assert r.status_code == 200
    gameboy = {(0x0F, 0x38, 0x0F), (0x30, 0x62, 0x30), (0x8B, 0xAC, 0x0F), (0x9B, 0xBC, 0x0F)}
    assert imagegen.colours(r.content) <= gameboy, imagegen.colours(r.content)
    # Deleting the image removes its dithers and every stored file.
    r = up.delete(f"/api/images/{rec['uuid']}")
    assert r.status_code == 200, r.text
    assert up.get(f"/api/images/{rec['uuid']}").status_code == 404
    def dithers_gone():
        # One request per check: the original may be forgotten between two (then 404).
        r = up.get(f"/api/dithers/{rec['uuid']}")
        return r.status_code == 404 or (r.status_code == 200 and not r.json()["items"])

    harness.wait_until(dithers_gone, harness.scaled(30), "dithers of a deleted image remain")
    for url in (done["url"], done["url_dither"], d["url_dither"]):
        harness.wait_until(lambda: up.get(url).status_code == 404, harness.scaled(30),
                           f"{url} is still served after the delete")


# ---- the wire, read by a third party ------------------------------------------------------


def test_options_and_presets_through_the_gateway(up):
    """GET /api/options and the presets reach the dithering service; a preset saved through the
    gateway is stored in PostgreSQL and made by a worker process."""
    r = up.get("/api/options")
    assert r.status_code == 200, r.text
    assert "floyd-steinberg" in [c["value"] for c in r.json()["options"][0]["choices"]]
    r = up.post("/api/presets", json={"name": "dist-look", "options": {"palette": "cga4",
                                                                       "algorithm": "atkinson"}})
    assert r.status_code in (200, 201), r.text
    names = [p["name"] for p in up.get("/api/presets").json()["items"]]
    assert "gameboy" in names and "dist-look" in names, names
    rec = up.upload_ok(imagegen.photo_png(40, 30, seed=9), "preset.png")
    up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    d = up.request_dither_ok(rec["uuid"], 2, {"preset": "dist-look"})
    assert (d["algorithm"], d["palette"]) == ("atkinson", "cga4"), d
    d = up.wait_dither(rec["uuid"], d["id"], timeout=harness.scaled(60))
    cga4 = {(0, 0, 0), (0x55, 0xFF, 0xFF), (0xFF, 0x55, 0xFF), (0xFF, 0xFF, 0xFF)}
    assert imagegen.colours(up.get(d["url_dither"]).content) <= cga4
    assert up.delete("/api/presets/dist-look").status_code == 200


def test_messages_on_the_wire_are_spec_section_4(up):
    rec = up.upload_ok(imagegen.photo_png(96, 64, seed=8), "wire.png")
    up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    uuid = rec["uuid"]
    uploaded = wait_message(up, "images", uuid, "IMAGE_UPLOADED")
    finished = wait_message(up, "dithers", uuid, "DITHER_UPLOADED")
    for m in (uploaded, finished):
        assert m["key"] == uuid
        names = [k for k, _ in headers_of(m)]
        assert names == ["message_type", "version", "message_id", "traceparent"], names
        h = dict(headers_of(m))
        assert harness.MESSAGE_VERSION_RE.match(h["version"]), h
        assert UUID_RE.match(h["message_id"]), h
        assert TRACEPARENT_RE.match(h["traceparent"]), h
    # One trace from the upload to the dither.
    trace = TRACEPARENT_RE.match(dict(headers_of(uploaded))["traceparent"]).group(1)
    assert TRACEPARENT_RE.match(dict(headers_of(finished))["traceparent"]).group(1) == trace
    body = json.loads(uploaded["payload"])
    assert body["uuid"] == uuid and body["filename"] == "wire.png"
    assert harness.same_file(body["url"], rec["url"])
    assert body.get("owner") == "tests", body  # issue 12: the owner travels with the image
    assert body.get("frames") == 1, body  # issue 16: a still image's frames
    body = json.loads(finished["payload"])
    assert body["uuid"] == uuid and body["url_dither"]
    assert body["channels"] == 2 and body["algorithm"] and body["dither_id"]
    assert body.get("owner") == "tests", body
    # Both topics have at least two partitions (two workers share the image topic).
    r = harness.subprocess.run(["kcat", "-L", "-b", up.kafka, "-t", "images", "-J"],
                               capture_output=True, text=True, timeout=30)
    meta = json.loads(r.stdout)
    assert len(meta["topics"][0]["partitions"]) >= 2, meta
    # Deleting publishes IMAGE_DELETED then DITHER_DELETED, keyed by the uuid.
    assert up.delete(f"/api/images/{uuid}").status_code == 200
    assert json.loads(wait_message(up, "images", uuid, "IMAGE_DELETED")["payload"]) == {
        "uuid": uuid}
    assert json.loads(wait_message(up, "dithers", uuid, "DITHER_DELETED")["payload"])["uuid"] == uuid


def test_prototype_bodies_are_understood(up):
    """Messages exactly as the Python prototype produced them: only message_type and version
    headers; IMAGE_UPLOADED {uuid, url, filename}; DITHER_UPLOADED {uuid, url_dither}."""
    # An image the upload side knows; the prototype's DITHER_UPLOADED updates it.
    rec = up.upload_ok(imagegen.photo_png(80, 60, seed=9), "proto.png")
    up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    elsewhere = "https://res.cloudinary.com/demo/image/upload/prototype-dither.png"
    body = json.dumps({"uuid": rec["uuid"], "url_dither": elsewhere})
    headers = [("message_type", "DITHER_UPLOADED"), ("version", "1.0.0")]
    up.produce("dithers", rec["uuid"], body, headers)
    up.produce("dithers", rec["uuid"], body, headers)  # twice: applied once
    harness.wait_until(lambda: harness.same_file(up.image(rec["uuid"])["url_dither"], elsewhere),
                       harness.scaled(30), "the prototype's DITHER_UPLOADED was not applied")
    assert up.image(rec["uuid"])["status"] == "FINISHED"

    # The prototype's IMAGE_UPLOADED names the original by URL only (here a signed link): the
    # dithering service fetches it and makes the automatic dither. It has no owner: it belongs
    # to the system owner, which only admins see (docs/SECURITY.md).
    new = str(uuidlib.uuid4())
    body = json.dumps({"uuid": new, "url": rec["url"], "filename": "proto.png"})
    up.produce("images", new, body, [("message_type", "IMAGE_UPLOADED"), ("version", "1.0.0")])
    admin = up.as_admin()

    def dithered():
        r = admin.get(f"/api/dithers/{new}")
        return r.status_code == 200 and any(d["status"] == "FINISHED" for d in r.json()["items"])

    harness.wait_until(dithered, harness.scaled(60), "no dither of the prototype's upload")
    items = admin.dithers_of(new)
    assert len(items) == 1, items
    r = up.get(items[0]["url_dither"])
    assert r.status_code == 200 and r.content.startswith(PNG_MAGIC)
    # Not the key owner's.
    assert up.get(f"/api/dithers/{new}").status_code == 404
    assert new not in {d["uuid"] for d in up.list_all("/api/dithers")}
    assert new in {d["uuid"] for d in admin.list_all("/api/dithers")}


class _CountingServer:
    """An HTTP server on 127.0.0.1 that counts its connections and answers each request with a
    redirect to `location` (or 404 when there is none)."""

    def __init__(self, location: str | None = None):
        self.location = location
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    if self.location:
                        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\n"
                                     "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
                    else:
                        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()


def test_prototype_urls_are_fetched_only_from_allowed_hosts(up):
    """The stack allows 127.0.0.1 only (FETCH_ALLOWED_HOSTS, tests/distributed/stack.py): a URL on
    another name, or a redirect to one, fails the dither with the generic reason, and the server
    behind that name never sees a connection (docs/SECURITY.md, "URL fetcher")."""
    target = _CountingServer()  # must never be reached
    bouncer = _CountingServer(location=f"http://localhost:{target.port}/p.png")
    admin = up.as_admin()
    try:
        cases = {
            "a host not on the list": f"http://localhost:{target.port}/p.png?sig=not-shown",
            "a redirect to a host not on the list": f"http://127.0.0.1:{bouncer.port}/p.png",
        }
        made = {}
        for what, url in cases.items():
            new = str(uuidlib.uuid4())
            body = json.dumps({"uuid": new, "url": url, "filename": "p.png"})
            up.produce("images", new, body,
                       [("message_type", "IMAGE_UPLOADED"), ("version", "1.0.0")])
            made[what] = new
        for what, new in made.items():
            def failed():
                r = admin.get(f"/api/dithers/{new}")
                return r.status_code == 200 and r.json()["items"] and \
                    r.json()["items"][0]["status"] == "FAILED"

            harness.wait_until(failed, harness.scaled(60), f"{what}: the dither did not fail")
            items = admin.dithers_of(new)
            assert items[0]["error"] == "could not fetch the original", (what, items[0])
        assert target.connections == 0, "a host not on the allow-list was reached"
        assert bouncer.connections == 1
    finally:
        target.close()
        bouncer.close()


def test_poison_message_goes_to_the_dead_letter_topic(up):
    poison = str(uuidlib.uuid4())
    up.produce("images", poison, "this is not JSON {",
               [("message_type", "IMAGE_UPLOADED"), ("version", "1.0.0"),
                ("message_id", str(uuidlib.uuid4()))])
    dead = wait_message(up, "images.dlq", poison, "IMAGE_UPLOADED", timeout=harness.scaled(60))
    h = dict(headers_of(dead))
    assert h.get("dead_letter_reason"), h
    assert dead["payload"] == "this is not JSON {"
    # The partition keeps moving: an upload after the poison is dithered.
    rec = up.upload_ok(imagegen.photo_png(64, 48, seed=10), "after-poison.png")
    up.wait_for(rec["uuid"], timeout=harness.scaled(60))


# ---- faults ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_burst(up):
    def kill_worker():
        up.kill("dithering-service-1")

    records, _ = burst(up, 50, "kill9", during=kill_worker)
    assert len(records) == 50
    assert_all_finished_once(up, records)


@pytest.mark.slow
def test_broker_restart_mid_burst(up):
    def restart_broker():
        up.infra("kafka", "stop")
        # Without a broker the services are live but not ready (the bus check fails).
        harness.wait_until(
            lambda: ready_of(up.upload_port).json()["checks"]["bus"] == "unavailable",
            harness.scaled(20), "the upload service stayed ready without a broker")
        assert requests.get(f"http://127.0.0.1:{up.upload_port}/health/live",
                            timeout=harness.scaled(10)).status_code == 200
        up.infra("kafka", "start")

    records, _ = burst(up, 50, "broker", during=restart_broker)
    assert len(records) == 50
    assert_all_finished_once(up, records)
    harness.wait_until(lambda: ready_of(up.upload_port).status_code == 200, harness.scaled(30),
                       "the upload service did not become ready again with the broker back")


@pytest.mark.slow
def test_postgres_stopped_gives_503_then_recovers(up):
    before = up.upload_ok(imagegen.photo_png(64, 48, seed=11), "before-pg.png")
    up.infra("postgres", "stop")
    try:
        r = up.upload(imagegen.photo_png(64, 48, seed=12), "during-pg.png")
        assert r.status_code == 503, r.text
        r = up.get(f"/api/images/{before['uuid']}")
        assert r.status_code == 503, r.text
        # A 5xx says nothing internal (issue 12): a generic message and a request id.
        error = r.json()["error"]
        assert isinstance(error.get("request_id"), str) and error["request_id"], error
        for detail in (str(up.postgres_port), "postgres", "sql", "connection to server",
                       "127.0.0.1"):
            assert detail not in error["message"].lower(), f"the 503 says {detail!r}: {r.text}"
        # Not ready, and the gateway says which service is not; live all the same. (Each
        # service's checks and the gateway's view of them are kept for a second: the gateway may
        # first be unready for another service whose database check ran first.)
        harness.wait_until(lambda: ready_of(up.port).status_code == 503, harness.scaled(10),
                           "the gateway stayed ready without PostgreSQL")
        harness.wait_until(
            lambda: ready_of(up.port).json()["services"]["upload"] == "unavailable",
            harness.scaled(10), "the gateway did not say that the upload service is unready")
        r = ready_of(up.upload_port)
        assert r.status_code == 503 and r.json()["checks"]["upload_database"] == "unavailable"
        assert str(up.postgres_port) not in r.text
        # With the key's check cached or not, a key is not turned away as unknown meanwhile.
        time.sleep(6)
        r = up.get(f"/api/images/{before['uuid']}")
        assert r.status_code == 503, r.text
        time.sleep(1)
    finally:
        up.infra("postgres", "start")
    # The same processes recover (no restart) and nothing accepted is lost.
    harness.wait_until(lambda: up.get("/health").status_code == 200, harness.scaled(60),
                       "services did not recover after PostgreSQL came back")
    up.wait_for(before["uuid"], timeout=harness.scaled(60))
    after = up.upload_ok(imagegen.photo_png(64, 48, seed=13), "after-pg.png")
    up.wait_for(after["uuid"], timeout=harness.scaled(60))
    listed = {i["filename"] for i in up.list_all()}
    assert "during-pg.png" not in listed


@pytest.mark.slow
def test_s3_down_gives_503_and_leaves_nothing(up):
    count_before = len(up.list_all())
    up.infra("s3", "stop")
    try:
        r = up.upload(imagegen.photo_png(64, 48, seed=14), "during-s3.png")
        assert r.status_code == 503, r.text
        harness.wait_until(
            lambda: ready_of(up.upload_port).json()["checks"]["blob_store"] == "unavailable",
            harness.scaled(10), "the upload service stayed ready without its bucket")
        assert len(up.list_all()) == count_before
    finally:
        up.infra("s3", "start")
    rec = up.upload_ok(imagegen.photo_png(64, 48, seed=15), "after-s3.png")
    up.wait_for(rec["uuid"], timeout=harness.scaled(60))
    assert "during-s3.png" not in {i["filename"] for i in up.list_all()}


# ---- start-up ---------------------------------------------------------------------------------


def _service_env(stack, **extra) -> dict:
    """The environment scripts/stack.sh gives its services, plus `extra`."""
    return stack.service_env(**extra)


@pytest.mark.slow
def test_a_service_started_while_postgres_is_down_waits_for_it(up, tmp_path):
    port = up.port + 100  # base + 180: nothing else of the stack's
    up.infra("postgres", "stop")
    log = tmp_path / "late-upload-service.log"
    with open(log, "w") as out:
        proc = harness.subprocess.Popen(
            [str(BIN_DIR / "upload-service")], stdout=out, stderr=harness.subprocess.STDOUT,
            env=_service_env(up, UPLOAD_SERVICE_PORT=port, STARTUP_WAIT_SECONDS=60,
                             KAFKA_GROUP_PREFIX="late-"))
    try:
        time.sleep(3)
        assert proc.poll() is None, log.read_text()[-2000:]
        up.infra("postgres", "start")
        harness.wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            if proc.poll() is None and _listening(port) else proc.poll() is not None,
            harness.scaled(60), lambda: log.read_text()[-2000:])
        assert proc.poll() is None, log.read_text()[-2000:]
        assert "unavailable (attempt" in log.read_text()
    finally:
        up.infra("postgres", "start")
        proc.terminate()
        proc.wait(timeout=30)


def test_a_service_gives_up_after_startup_wait_seconds(up, tmp_path):
    env = _service_env(up, UPLOAD_SERVICE_PORT=up.port + 101, STARTUP_WAIT_SECONDS=2,
                       POSTGRES_PORT=up.port + 102)  # nothing listens there
    started = time.monotonic()
    r = harness.subprocess.run([str(BIN_DIR / "upload-service")], env=env, capture_output=True,
                               text=True, timeout=60)
    assert r.returncode == 1, r.stderr[-2000:]
    assert time.monotonic() - started >= 2
    assert "upload database" in r.stderr + r.stdout, (r.stderr + r.stdout)[-2000:]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---- notifications ---------------------------------------------------------------------------


def _received_mails(stack) -> list:
    import email
    import email.policy
    folder = stack.stack_dir / "infra" / "smtp" / "mail"
    if not folder.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"))]


def test_one_mail_per_dither_even_when_kafka_delivers_twice(up):
    address = f"someone+{uuidlib.uuid4().hex[:8]}@example.org"
    rec = up.upload_ok(imagegen.photo_png(64, 48, seed=16), "mail.png", email=address)
    up.wait_for(rec["uuid"], timeout=harness.scaled(60))

    def mails():
        return [m for m in _received_mails(up) if m["To"] == address]

    harness.wait_until(lambda: mails(), harness.scaled(60), "no mail through the stack's SMTP")
    finished = wait_message(up, "dithers", rec["uuid"], "DITHER_UPLOADED")
    headers = headers_of(finished)
    # The same message again (a redelivery), and republished under a new message id.
    up.produce("dithers", rec["uuid"], finished["payload"], headers)
    republished = [(k, str(uuidlib.uuid4()) if k == "message_id" else v) for k, v in headers]
    up.produce("dithers", rec["uuid"], finished["payload"], republished)
    time.sleep(5)
    assert len(mails()) == 1, [m["Message-ID"] for m in mails()]
    mail = mails()[0]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    done = up.image(rec["uuid"])
    # The mail's links are signed for MAIL_LINK_TTL_SECONDS: the same files as the answer's.
    assert harness.unsigned(done["url_dither"]) + "?" in text, text
    assert harness.unsigned(rec["url"]) + "?" in text, text
    items = [n for n in up.get("/api/notifications").json()["items"] if n["uuid"] == rec["uuid"]]
    assert len(items) == 1 and items[0]["status"] == "SENT", items
    assert address not in json.dumps(items)
