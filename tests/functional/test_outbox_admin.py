"""Parked outbox messages (issue 13 item 7) through the gateway: admins only."""

from __future__ import annotations

import harness


def test_parked_messages_are_for_admins_through_the_gateway(module_server):
    s = module_server
    for service in ("upload", "dither"):
        r = s.as_admin().get(f"/api/outbox/{service}")
        assert r.status_code == 200, r.text
        assert r.json() == {"items": []}, "nothing was refused by the in-process bus"
        harness.assert_error(s.get(f"/api/outbox/{service}"), 403, {"forbidden"})
        harness.assert_error(s.anonymous().get(f"/api/outbox/{service}"), 401, {"unauthorized"})
        harness.assert_error(s.as_admin().post(f"/api/outbox/{service}/12345"), 404,
                             {"not_found"})
        harness.assert_error(s.post(f"/api/outbox/{service}/12345"), 403, {"forbidden"})
