"""kill -9 in the middle of a burst of uploads and dither requests, then a restart on the same
data directory: no accepted upload and no accepted dither is lost, nothing is done twice, and no
event speaks of something that was never committed (SPEC 4 and 7).

Requests in flight when the process dies may or may not have been committed; the test only asks
that whatever was committed is then carried through."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import harness
import imagegen

UPLOADS = 40
DITHERS = 20
BASE_IMAGES = 4
KILL_AFTER_ACCEPTED = 12  # uploads + dithers accepted before the kill


@pytest.mark.slow
def test_kill_9_during_a_burst_loses_nothing_accepted(start_server):
    s = start_server()

    base = []
    for i in range(BASE_IMAGES):
        rec = s.upload_ok(imagegen.photo_png(384, 288, seed=500 + i), f"base-{i}.png")
        base.append(rec["uuid"])
    for u in base:
        s.wait_for(u)

    burst_names = {f"burst-{i:02d}.png" for i in range(UPLOADS)}
    pictures = {f"burst-{i:02d}.png": imagegen.photo_png(192, 144, seed=i) for i in range(UPLOADS)}
    lock = threading.Lock()
    accepted_uploads: dict[str, dict] = {}      # uuid -> record (201)
    refused_uploads: dict[str, int] = {}        # filename -> status (a definite answer, not 201)
    accepted_dithers: dict[int, dict] = {}      # dither id -> record (202)
    requested_dithers: dict[str, int] = {u: 0 for u in base}  # image -> requests sent
    accepted_count = 0
    enough = threading.Event()
    killed = threading.Event()

    def note_accepted():
        nonlocal accepted_count
        accepted_count += 1
        if accepted_count >= KILL_AFTER_ACCEPTED:
            enough.set()

    def do_upload(name):
        if killed.is_set():
            return
        try:
            r = s.upload(pictures[name], name, "image/png", timeout=harness.scaled(30))
        except requests.RequestException:
            return  # no answer: may or may not have been committed
        with lock:
            if r.status_code == 201:
                accepted_uploads[r.json()["uuid"]] = r.json()
                note_accepted()
            else:
                refused_uploads[name] = r.status_code

    def do_dither(i):
        if killed.is_set():
            return
        image = base[i % BASE_IMAGES]
        params = {"algorithm": ["floyd-steinberg", "jarvis-judice-ninke", "riemersma",
                                "bayer"][i % 4], "upscale": 2}
        with lock:
            requested_dithers[image] += 1
        try:
            r = s.request_dither(image, 2 + i % 6, params=params, timeout=harness.scaled(30))
        except requests.RequestException:
            return
        with lock:
            if r.status_code == 202:
                rec = r.json()
                assert rec["id"] not in accepted_dithers, f"dither id {rec['id']} given twice"
                accepted_dithers[rec["id"]] = rec
                note_accepted()

    jobs = [("u", name) for name in sorted(burst_names)]
    for i in range(DITHERS):  # interleave the dither requests with the uploads
        jobs.insert(2 * i + 1, ("d", i))

    pool = ThreadPoolExecutor(max_workers=10)
    futures = [pool.submit(do_upload if kind == "u" else do_dither, arg) for kind, arg in jobs]
    if not enough.wait(harness.scaled(60)):
        pytest.fail(f"only {accepted_count} requests accepted in 60s before the kill")
    s.kill()
    killed.set()
    for f in futures:
        f.result()  # re-raises assertion errors from the workers
    pool.shutdown()
    assert accepted_uploads or accepted_dithers
    print(f"before the kill: {len(accepted_uploads)} uploads and {len(accepted_dithers)} dithers "
          f"accepted, {len(refused_uploads)} uploads refused, "
          f"{sum(requested_dithers.values())} dithers requested")

    s.start()  # same data dir, same ports, same event log

    # Every accepted upload, and every committed one, reaches FINISHED.
    images = s.list_all("/api/images")
    by_uuid = {i["uuid"]: i for i in images}
    missing = sorted(set(accepted_uploads) - set(by_uuid))
    assert not missing, f"accepted uploads lost by the crash: {missing}"
    strangers = [i["filename"] for i in images
                 if i["filename"] not in burst_names and i["uuid"] not in base]
    assert not strangers, f"images nobody uploaded: {strangers}"
    refused_but_there = [i["filename"] for i in images if i["filename"] in refused_uploads]
    assert not refused_but_there, f"refused uploads were stored: {refused_but_there}"
    names = [i["filename"] for i in images if i["filename"] in burst_names]
    assert len(names) == len(set(names)), "one upload stored twice"
    print(f"after the restart: {len(images)} images "
          f"({len(set(by_uuid) - set(accepted_uploads) - set(base))} committed without an answer)")
    for u in by_uuid:
        s.wait_for(u, {"FINISHED"}, timeout=120)

    # Every accepted dither reaches FINISHED.
    for dither_id, rec in accepted_dithers.items():
        s.wait_dither(rec["uuid"], dither_id, {"FINISHED"}, timeout=120)

    # Nothing twice: one automatic dither per image; every dither id once; no more on-demand
    # dithers than were asked for.
    all_dithers = s.list_all("/api/dithers")
    ids = [d["id"] for d in all_dithers]
    assert len(ids) == len(set(ids)), "a dither id is listed twice"
    for u in by_uuid:
        mine = s.dithers_of(u)
        autos = [d for d in mine if d.get("source") == "auto"]
        assert len(autos) == 1, f"{u} has {len(autos)} automatic dithers: {autos}"
        requested = [d for d in mine if d.get("source") == "request"]
        assert len(requested) + len(autos) == len(mine), f"unknown source in {mine}"
        assert len(requested) <= requested_dithers.get(u, 0), (
            f"{u}: {len(requested)} on-demand dithers for {requested_dithers.get(u, 0)} requests")
        for dither_id, rec in accepted_dithers.items():
            if rec["uuid"] == u:
                assert dither_id in {d["id"] for d in requested}, f"dither {dither_id} lost"
        # Dithers committed without an answer (the kill came first) are made too; they may
        # still be on their way (nothing above waited for them).
        for d in mine:
            if d["status"] != "FINISHED":
                s.wait_dither(u, d["id"], {"FINISHED"}, timeout=120)

    # No event about anything that was not committed, and every image has its IMAGE_UPLOADED.
    events = s.events(strict=False)
    keys = {e.get("key") for e in events}
    ghosts = sorted(keys - set(by_uuid))
    assert not ghosts, f"events about images that do not exist: {ghosts}"
    uploaded = {e["key"] for e in events if e["headers"].get("message_type") == "IMAGE_UPLOADED"}
    assert uploaded == set(by_uuid), f"images without IMAGE_UPLOADED: {set(by_uuid) - uploaded}"
    dither_ids = {e["body"].get("dither_id") for e in events
                  if e["headers"].get("message_type") == "DITHER_UPLOADED"}
    assert set(ids) <= dither_ids, f"dithers without DITHER_UPLOADED: {set(ids) - dither_ids}"
    assert dither_ids <= set(ids), f"DITHER_UPLOADED for unknown dithers: {dither_ids - set(ids)}"
