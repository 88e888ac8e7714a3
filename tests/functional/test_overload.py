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
