"""One option model and presets (issue 15, docs/API.md "Options" and "Presets"): GET /api/options
is the option table; every option reads the same through the query string, the JSON body and a
preset, and records keep the canonical form; built-in and per-owner presets, a preset overridden
by explicit options, PRESETS_ONLY, QUOTA_PRESETS and AUTO_DITHER_PRESET."""

from __future__ import annotations

import pytest

import harness
import imagegen
from harness import assert_error

# For every option a request may give: a value that is not its default, and the canonical text a
# record shows for it. Options that apply to one algorithm come with it.
NON_DEFAULT = {
    "algorithm": ({"algorithm": "JJN"}, "jarvis-judice-ninke"),
    "palette": ({"palette": "EGA"}, "ega"),
    "serpentine": ({"serpentine": True}, "true"),
    "linear_light": ({"linear_light": False}, "false"),
    "distance": ({"distance": "OKLab"}, "oklab"),
    "strength": ({"strength": 0.75}, "0.75"),
    "bayer_size": ({"algorithm": "bayer", "bayer_size": 4}, "4"),
    "halftone": ({"algorithm": "halftone", "halftone": "c7x7b"}, "c7x7b"),
    "seed": ({"algorithm": "random", "seed": 42}, "42"),
    "kernel": ({"algorithm": "custom-kernel", "kernel": [[0, 0, 7], [3, 5, 1]]},
               "[[0,0,7],[3,5,1]]"),
    "matrix": ({"algorithm": "custom-matrix", "matrix": [[0, 2], [3, 1]]}, "[[0,2],[3,1]]"),
    "width": ({"width": 12}, "12"),
    "height": ({"height": 9}, "9"),
    "upscale": ({"upscale": 2}, "2"),
    "format": ({"format": "GIF"}, "gif"),
    "alpha": ({"alpha": "Flatten:#FFF"}, "flatten:#ffffff"),
    "temporal": ({"temporal": "fresh"}, "fresh"),
}


def query_of(body: dict) -> dict:
    """The same options as query-string text."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in body.items()}


@pytest.fixture(scope="module")
def shared(module_start_server):
    return module_start_server(QUOTA_PENDING_DITHERS=0, QUOTA_DITHERS_PER_IMAGE=0)


@pytest.fixture(scope="module")
def target(shared):
    rec = shared.upload_ok(imagegen.photo_png(16, 12, seed=5), "target.png")
    return shared.wait_for(rec["uuid"])


def options_table(s) -> list[dict]:
    r = s.get("/api/options")
    assert r.status_code == 200, f"GET /api/options: {r.status_code} {r.text[:300]}"
    return r.json()["options"]


def test_the_options_answer_is_the_table(shared):
    table = options_table(shared)
    names = [o["name"] for o in table]
    assert names == ["algorithm", "palette", "channels", "serpentine", "linear_light",
                     "distance", "strength", "bayer_size", "halftone", "seed", "kernel",
                     "matrix", "width", "height", "upscale", "format", "alpha", "temporal"], names
    by_name = {o["name"]: o for o in table}
    assert by_name["channels"]["in"] == "path"
    assert by_name["strength"] == {**by_name["strength"], "type": "number", "minimum": 0,
                                   "maximum": 1, "default": "1"}
    assert [c["value"] for c in by_name["format"]["choices"]] == ["png", "gif", "webp"]
    assert "floyd-steinberg" in [c["value"] for c in by_name["algorithm"]["choices"]]
    assert "ega" in [c["value"] for c in by_name["palette"]["suggestions"]]
    assert set(NON_DEFAULT) == {o["name"] for o in table if o["in"] == "query"}


@pytest.mark.parametrize("option", sorted(NON_DEFAULT))
def test_every_option_reads_the_same_through_query_body_and_preset(shared, target, option):
    body, canonical = NON_DEFAULT[option]
    uuid = target["uuid"]
    by_query = shared.request_dither_ok(uuid, 2, params=query_of(body))
    by_body = shared.request_dither_ok(uuid, 2, json_body=body)
    name = f"opt-{option.replace('_', '-')}"
    r = shared.post("/api/presets", json={"name": name, "options": body})
    assert r.status_code in (200, 201), f"POST /api/presets: {r.status_code} {r.text[:300]}"
    assert r.json()["options"][option] == canonical, r.json()
    by_preset = shared.request_dither_ok(uuid, 2, params={"preset": name})
    for how, d in (("query", by_query), ("body", by_body), ("preset", by_preset)):
        assert d["options"][option] == canonical, f"{option} by {how}: {d['options']}"
    # The stored form is canonical and complete: the three records say the same.
    assert by_query["options"] == by_body["options"] == by_preset["options"]
    done = shared.wait_dither(uuid, by_preset["id"])
    assert done["options"] == by_preset["options"]


def test_explicit_options_override_a_preset(shared, target):
    d = shared.request_dither_ok(target["uuid"], 4, params={"preset": "mac", "palette": "ega"})
    assert (d["algorithm"], d["palette"]) == ("atkinson", "ega"), d
    assert d["channels"] == 4
    # A preset is complete: its palette, not the path's levels:{channels}.
    d = shared.request_dither_ok(target["uuid"], 4, json_body={"preset": "gameboy"})
    assert (d["algorithm"], d["palette"], d["options"]["bayer_size"]) == ("bayer", "gameboy",
                                                                           "4"), d
    for bad in ({"preset": "no-such-preset"}, {"preset": "mac", "threads": "2"}):
        err = assert_error(shared.request_dither(target["uuid"], 2, params=bad), 400,
                           {"invalid_argument"}, f"dither {bad}")
        assert "preset" in err["message"] or "threads" in err["message"], err
    # As for every option, a later value wins: the body's preset over the query's.
    d = shared.request_dither_ok(target["uuid"], 2, params={"preset": "mac"},
                                 json_body={"preset": "pico8"})
    assert d["palette"] == "pico8", d


def test_presets_belong_to_their_owner(start_server):
    s = start_server()
    alice = s.as_key(s.create_key("alice", owner="alice")["key"])
    bob = s.as_key(s.create_key("bob", owner="bob")["key"])
    r = alice.post("/api/presets", json={"name": "look", "description": "mine",
                                         "options": {"algorithm": "atkinson", "palette": "bw"}})
    assert r.status_code == 201, r.text
    assert r.json()["owner"] == "alice" and r.json()["builtin"] is False
    again = alice.post("/api/presets", json={"name": "look", "options": {"palette": "ega"}})
    assert again.status_code == 200 and again.json()["options"]["palette"] == "ega", again.text

    def names(who) -> list[str]:
        r = who.get("/api/presets")
        assert r.status_code == 200, r.text
        return [p["name"] for p in r.json()["items"] if not p["builtin"]]

    assert names(alice) == ["look"] and names(bob) == []
    assert "look" in names(s.as_admin())
    builtin = [p["name"] for p in bob.get("/api/presets").json()["items"] if p["builtin"]]
    assert {"gameboy", "newspaper", "mac", "pico8", "ega-blue-noise"} <= set(builtin), builtin

    picture = imagegen.photo_png(12, 10)
    mine = alice.wait_for(alice.upload_ok(picture, "a.png")["uuid"])
    d = alice.request_dither_ok(mine["uuid"], 2, params={"preset": "look"})
    assert d["palette"] == "ega", d
    theirs = bob.wait_for(bob.upload_ok(picture, "b.png")["uuid"])
    assert_error(bob.request_dither(theirs["uuid"], 2, params={"preset": "look"}), 400,
                 {"invalid_argument"}, "another owner's preset")
    assert_error(bob.delete("/api/presets/look"), 404, {"not_found"}, "bob deletes alice's")
    assert_error(alice.delete("/api/presets/mac"), 403, {"forbidden"}, "a built-in one")
    assert alice.delete("/api/presets/look").status_code == 200
    assert_error(alice.delete("/api/presets/look"), 404, {"not_found"}, "deleted twice")
    for bad in ({"name": "gameboy", "options": {}}, {"name": "Bad Name", "options": {}},
                {"name": "x", "options": {"channels": 4}}, {"name": "x", "options": {"nope": 1}},
                {"name": "x", "options": {"preset": "mac"}}, {"name": "x"},
                {"name": "x", "options": {}, "colour": "red"}):
        assert_error(alice.post("/api/presets", json=bad), 400, {"invalid_argument"}, str(bad))
    r = alice.post("/api/presets", data="{}", headers={"Content-Type": "text/plain"})
    assert_error(r, 415, {"unsupported_media_type"}, "a preset not sent as JSON")


def test_the_preset_quota(start_server):
    s = start_server(QUOTA_PRESETS="2")
    for name in ("one", "two"):
        assert s.post("/api/presets", json={"name": name, "options": {}}).status_code == 201
    err = assert_error(s.post("/api/presets", json={"name": "three", "options": {}}), 403,
                       {"quota_exceeded"}, "a third preset")
    assert "QUOTA_PRESETS" in err["message"], err
    # Replacing one is not a new one; admins are exempt.
    assert s.post("/api/presets", json={"name": "two", "options": {"upscale": 2}}).status_code == 200
    admin = s.as_admin()
    for name in ("a1", "a2", "a3"):
        assert admin.post("/api/presets", json={"name": name, "options": {}}).status_code == 201


def test_presets_only_accepts_presets_and_nothing_else(start_server):
    s = start_server(PRESETS_ONLY="on")
    uuid = s.wait_for(s.upload_ok(imagegen.photo_png(12, 10), "p.png")["uuid"])["uuid"]
    for params in ({}, {"algorithm": "atkinson"}, {"preset": "mac", "palette": "ega"}):
        err = assert_error(s.request_dither(uuid, 2, params=params), 400, {"invalid_argument"},
                           f"presets only: {params}")
        assert "PRESETS_ONLY" in err["message"], err
    d = s.request_dither_ok(uuid, 2, params={"preset": "newspaper"})
    assert (d["algorithm"], d["palette"]) == ("halftone", "bw"), d
    s.wait_dither(uuid, d["id"])
    assert_error(s.post("/api/presets", json={"name": "mine", "options": {}}), 403,
                 {"forbidden"}, "a user's preset when only presets are made")
    admin = s.as_admin()
    assert admin.post("/api/presets", json={"name": "house", "options": {}}).status_code == 201
    assert admin.request_dither(uuid, 2, params={"preset": "house"}).status_code == 202


def test_the_automatic_dither_uses_auto_dither_preset(start_server):
    s = start_server(AUTO_DITHER_PRESET="mac")
    rec = s.upload_ok(imagegen.photo_png(12, 10), "auto.png")
    done = s.wait_for(rec["uuid"])
    (d,) = s.dithers_of(rec["uuid"])
    assert (d["algorithm"], d["palette"], d["source"]) == ("atkinson", "bw", "auto"), d
    assert d["channels"] == 2, d  # the prototype's, as AUTO_DITHER_OPTIONS does not say
    assert done["status"] == "FINISHED"
    # Options over the preset.
    s2 = start_server(AUTO_DITHER_PRESET="mac", AUTO_DITHER_OPTIONS="palette=gameboy")
    rec = s2.upload_ok(imagegen.photo_png(12, 10), "auto2.png")
    s2.wait_for(rec["uuid"])
    (d,) = s2.dithers_of(rec["uuid"])
    assert (d["algorithm"], d["palette"]) == ("atkinson", "gameboy"), d
