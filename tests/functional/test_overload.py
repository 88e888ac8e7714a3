"""GATEWAY_MAX_IN_FLIGHT: past the bound the gateway answers 503 `overloaded` at once, and a
refused request leaves nothing behind; accepted ones complete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import harness
import imagegen


def test_requests_past_the_in_flight_bound_get_503(start_server):
    s = start_server(GATEWAY_MAX_IN_FLIGHT=1, AUTO_DITHER="off")
    picture = imagegen.photo_png(1200, 900, seed=3)  # decoding it keeps a request in flight
    statuses: list[int] = []
    accepted: list[str] = []
    for _ in range(5):  # a few bursts, until two requests have overlapped
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: s.upload(picture, f"burst-{i}.png"), range(8)))
        for r in answers:
            statuses.append(r.status_code)
            if r.status_code == 201:
                accepted.append(r.json()["uuid"])
            else:
                harness.assert_error(r, 503, {"overloaded"})
        if 503 in statuses:
            break
    assert 503 in statuses, f"no request was refused: {statuses}"
    assert accepted, f"no request was accepted: {statuses}"
    stored = {i["uuid"] for i in s.list_all("/api/images")}
    assert stored == set(accepted), "a refused upload was stored, or an accepted one lost"
    assert 500 not in statuses


def test_one_client_holds_at_most_half_of_the_blocking_places(start_server):
    """BLOCKING_PER_CLIENT: a client's burst past its share of the blocking pool is refused (503
    `overloaded`) or waits behind its own requests, while another client sending at the same
    moment still finds its place."""
    s = start_server(BLOCKING_THREADS="1", BLOCKING_QUEUE="3", BLOCKING_PER_CLIENT="1",
                     AUTO_DITHER="off")
    other = s.as_key(s.create_key("other", owner="other-owner")["key"])
    picture = imagegen.photo_png(1200, 900, seed=5)  # decoding it keeps the place a while
    flood_statuses: list[int] = []
    other_statuses: list[int] = []
    for _ in range(5):  # a few bursts, until the flood has met its share
        with ThreadPoolExecutor(max_workers=9) as pool:
            flood = [pool.submit(s.upload, picture, f"flood-{i}.png") for i in range(8)]
            mine = pool.submit(other.upload, picture, "other.png")
            flood_statuses += [f.result().status_code for f in flood]
            r = mine.result()
            other_statuses.append(r.status_code)
            assert r.status_code == 201, r.text
        for f in flood:
            if f.result().status_code != 201:
                harness.assert_error(f.result(), 503, {"overloaded"})
        if 503 in flood_statuses:
            break
    assert 503 in flood_statuses, f"the flood was never refused: {flood_statuses}"
    assert set(other_statuses) == {201}
