"""Fifty uploads at once from one client, which honours Retry-After as the page does: all
accepted, all dithered exactly once. (One client may hold half of the blocking pool's places,
BLOCKING_PER_CLIENT; the rest of its burst is told to come back.)"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
import imagegen

COUNT = 50


@pytest.mark.slow
def test_fifty_concurrent_uploads(server):
    images = [imagegen.photo_png(256, 256, seed=i) for i in range(COUNT)]
    gate = threading.Barrier(COUNT)

    retried = []

    def upload(i):
        gate.wait()
        for _ in range(60):
            r = server.upload(images[i], f"load-{i:02d}.png", "image/png",
                              timeout=harness.scaled(120))
            if r.status_code != 503 or "Retry-After" not in r.headers:
                return r
            harness.assert_error(r, 503, {"overloaded"})
            retried.append(i)
            time.sleep(float(r.headers["Retry-After"]))
        return r

    with ThreadPoolExecutor(max_workers=COUNT) as pool:
        responses = list(pool.map(upload, range(COUNT)))

    bad = [(i, r.status_code, r.text[:200]) for i, r in enumerate(responses) if r.status_code != 201]
    assert not bad, f"{len(bad)} of {COUNT} uploads not accepted: {bad[:5]}"
    print(f"{len(retried)} uploads were told to retry later")
    records = [r.json() for r in responses]
    uuids = [rec["uuid"] for rec in records]
    assert len(set(uuids)) == COUNT, "duplicate uuids"
    for i, rec in enumerate(records):
        assert rec["filename"] == f"load-{i:02d}.png"

    done = {}

    def all_finished():
        for u in uuids:
            if u in done:
                continue
            rec = server.image(u)
            if rec["status"] == "FAILED":
                pytest.fail(f"{u} FAILED: {rec['error']}")
            if rec["status"] != "FINISHED":
                return False
            done[u] = rec
        return True

    harness.wait_until(all_finished, 180, lambda: f"{COUNT - len(done)} images not FINISHED")

    def check(u):
        rec = done[u]
        r = server.get(rec["url_dither"])
        assert r.status_code == 200, f"{rec['url_dither']}: {r.status_code}"
        imagegen.assert_palette_image(r.content, "PNG", imagegen.CORNERS8, what=rec["url_dither"])
        dithers = server.dithers_of(u)
        assert len(dithers) == 1, f"{u} has {len(dithers)} dithers: {dithers}"
        assert dithers[0].get("source") == "auto", dithers[0]
        assert harness.same_file(dithers[0]["url_dither"], rec["url_dither"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(check, uuids))

    listed = {i["uuid"] for i in server.list_all("/api/images")}
    assert listed == set(uuids)
    events = server.events()
    for kind in ("IMAGE_UPLOADED", "DITHER_UPLOADED"):
        keys = [e["key"] for e in events if e["headers"].get("message_type") == kind]
        assert sorted(keys) == sorted(uuids), f"{kind}: not exactly one per image"
