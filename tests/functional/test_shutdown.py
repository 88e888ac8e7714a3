"""Clean exits on SIGTERM and SIGINT, and the data survives a restart."""

from __future__ import annotations

import signal
import time

import pytest

import harness
import imagegen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_within_seconds(start_server, sig):
    s = start_server()
    rec = s.upload_ok(imagegen.photo_png(64, 64, seed=1))
    s.wait_for(rec["uuid"])
    started = time.monotonic()
    code = s.stop(sig, timeout=10)
    elapsed = time.monotonic() - started
    assert code == 0, f"exit code {code} after {signal.Signals(sig).name}; " \
                      f"stderr:\n{s.stderr_tail()}"
    assert elapsed < harness.scaled(5), f"took {elapsed:.1f}s to exit"


def test_sigterm_while_idle_right_after_start(start_server):
    s = start_server()
    assert s.stop(signal.SIGTERM, timeout=10) == 0


def test_restart_keeps_images_dithers_and_files(start_server):
    s = start_server()
    data = imagegen.photo_png(80, 60, seed=2)
    rec = s.upload_ok(data, "kept.png")
    done = s.wait_for(rec["uuid"])
    d = s.request_dither_ok(rec["uuid"], 3)
    d = s.wait_dither(rec["uuid"], d["id"])
    assert s.stop(signal.SIGTERM) == 0

    s.start()
    again = s.image(rec["uuid"])
    assert again["status"] == "FINISHED"
    assert again["filename"] == "kept.png"
    assert s.get(again["url"]).content == data
    assert s.get(done["url_dither"]).status_code == 200
    ids = sorted(x["id"] for x in s.dithers_of(rec["uuid"]))
    assert d["id"] in ids and len(ids) == 2, ids

    # It keeps working after the restart, with fresh ids.
    rec2 = s.upload_ok(imagegen.photo_png(80, 60, seed=3))
    s.wait_for(rec2["uuid"])
    assert rec2["id"] != rec["id"]
    new_ids = [x["id"] for x in s.dithers_of(rec2["uuid"])]
    assert not set(new_ids) & set(ids), "dither ids reused after restart"
