"""Transparency (docs/TRANSPARENCY.md): the option `alpha` (keep, threshold, dither,
flatten:#rrggbb) through the service and the command line. An RGBA PNG with transparent blocks,
a band of partial alpha and opaque parts is uploaded and dithered to PNG, GIF and WebP; the files
fetched back have the alpha the mode promises (PNG: palette with one transparent tRNS entry; GIF:
its transparent index; WebP: its alpha channel)."""

from __future__ import annotations

import subprocess

import pytest

import harness
import imagegen
from harness import assert_error

DITHER_CLI = harness.DITHERD.parents[1] / "cli" / "dither"
WIDTH, HEIGHT = 60, 45


def rgba_picture():
    """The photo with alpha 0 in a checker of 10x10 blocks, a ramp of alpha 0..255 across the
    bottom third, and alpha 255 elsewhere."""
    img = imagegen.photo(WIDTH, HEIGHT, seed=5).convert("RGBA")
    px = img.load()
    for y in range(HEIGHT):
        for x in range(WIDTH):
            r, g, b, _ = px[x, y]
            if y >= HEIGHT * 2 // 3:
                a = x * 255 // (WIDTH - 1)
            else:
                a = 0 if (x // 10 + y // 10) % 3 == 0 else 255
            px[x, y] = (r, g, b, a)
    return img


PICTURE = rgba_picture()
IN_ALPHA = [p[3] for p in PICTURE.getdata()]
ONE_BIT = [255 if a >= 128 else 0 for a in IN_ALPHA]


@pytest.fixture(scope="module")
def shared(module_start_server):
    return module_start_server(QUOTA_PENDING_DITHERS=0, QUOTA_DITHERS_PER_IMAGE=0)


@pytest.fixture(scope="module")
def target(shared):
    rec = shared.upload_ok(imagegen.encode(PICTURE, "PNG"), "rgba.png")
    return shared.wait_for(rec["uuid"])


def fetch(s, uuid: str, dither: dict) -> bytes:
    done = s.wait_dither(uuid, dither["id"])
    r = s.get(done["url_dither"])
    assert r.status_code == 200, f"GET {done['url_dither']}: {r.status_code}"
    return r.content


def alphas(data: bytes) -> list[int]:
    return [p[3] for p in imagegen.open_image(data).convert("RGBA").getdata()]


def test_the_options_table_lists_alpha(shared):
    r = shared.get("/api/options")
    assert r.status_code == 200, r.text
    o = {o["name"]: o for o in r.json()["options"]}["alpha"]
    assert o["type"] == "string" and o["in"] == "query" and o["default"] == "keep", o
    assert [s["value"] for s in o["suggestions"]] == [
        "keep", "threshold", "dither", "flatten:#ffffff"], o


@pytest.mark.parametrize("fmt", ["png", "gif", "webp"])
def test_threshold_makes_one_bit_alpha_in_every_format(shared, target, fmt):
    d = shared.request_dither_ok(target["uuid"], 2, params={"alpha": "Threshold", "format": fmt})
    assert d["options"]["alpha"] == "threshold", d["options"]
    data = fetch(shared, target["uuid"], d)
    img = imagegen.open_image(data)
    assert img.format == fmt.upper(), img.format
    assert alphas(data) == ONE_BIT
    if fmt == "png":
        assert img.mode == "P", img.mode
        # One transparent palette entry: tRNS holds only it (translucent entries come first).
        assert img.info.get("transparency") in (0, b"\x00"), img.info.get("transparency")
    elif fmt == "gif":
        assert img.info.get("transparency") == 0, img.info
    else:
        assert img.mode == "RGBA", img.mode
    # Visible pixels are palette colours (channels=2: the eight corners).
    rgba = img.convert("RGBA")
    assert {p[:3] for p in rgba.getdata() if p[3] == 255} <= imagegen.CORNERS8


def test_keep_is_the_default_and_gif_cuts_it_at_128(shared, target):
    uuid = target["uuid"]
    png = shared.request_dither_ok(uuid, 2, json_body={"format": "png"})
    assert "alpha" not in png["options"], png["options"]
    assert alphas(fetch(shared, uuid, png)) == IN_ALPHA
    webp = shared.request_dither_ok(uuid, 2, json_body={"format": "webp", "alpha": "keep"})
    assert alphas(fetch(shared, uuid, webp)) == IN_ALPHA
    gif = shared.request_dither_ok(uuid, 2, json_body={"format": "gif"})
    gif_data = fetch(shared, uuid, gif)
    assert alphas(gif_data) == ONE_BIT
    # The same file as asking for threshold.
    cut = shared.request_dither_ok(uuid, 2, json_body={"format": "gif", "alpha": "threshold"})
    assert fetch(shared, uuid, cut) == gif_data


def test_dither_turns_partial_alpha_into_a_pattern(shared, target):
    d = shared.request_dither_ok(target["uuid"], 2, json_body={"alpha": "dither", "format": "png"})
    assert d["options"]["alpha"] == "dither"
    got = alphas(fetch(shared, target["uuid"], d))
    assert set(got) == {0, 255}
    # Fully transparent and opaque pixels stay so; the ramp becomes a mix whose coverage follows
    # the alpha.
    for a_in, a_out in zip(IN_ALPHA, got):
        if a_in in (0, 255):
            assert a_out == a_in
    ramp = [(a_in, a_out) for a_in, a_out in zip(IN_ALPHA, got) if 0 < a_in < 255]
    coverage = sum(a_out for _, a_out in ramp) / 255 / len(ramp)
    wanted = sum(a_in for a_in, _ in ramp) / 255 / len(ramp)
    assert abs(coverage - wanted) < 0.03, (coverage, wanted)
    assert got != ONE_BIT


@pytest.mark.parametrize("fmt", ["png", "gif", "webp"])
def test_flatten_composites_over_the_colour_and_drops_alpha(shared, target, fmt):
    # No dithering: the flattened colours are quantised alone.
    d = shared.request_dither_ok(target["uuid"], 2, params={
        "alpha": "flatten:#FF0000", "format": fmt, "algorithm": "threshold"})
    assert d["options"]["alpha"] == "flatten:#ff0000"
    data = fetch(shared, target["uuid"], d)
    img = imagegen.open_image(data)
    assert "transparency" not in img.info, img.info
    rgba = list(img.convert("RGBA").getdata())
    assert {p[3] for p in rgba} == {255}
    # Red is a colour of channels=2: where the picture was fully transparent, red exactly.
    hidden = [p[:3] for p, a in zip(rgba, IN_ALPHA) if a == 0]
    assert hidden and set(hidden) == {(255, 0, 0)}


def test_bad_values_are_refused(shared, target):
    for value, words in (("bogus", "expected keep, threshold, dither or flatten:#rrggbb"),
                         ("flatten:#12345", "is not a hex colour"),
                         ("flatten:red?", "is not a hex colour"),
                         ("flatten", "flatten needs the colour")):
        r = shared.request_dither(target["uuid"], 2, params={"alpha": value})
        message = assert_error(r, 400, what=f"alpha={value}")["message"]
        assert "alpha" in message and words in message, (value, message)


def test_the_command_line(tmp_path):
    help_text = subprocess.run([str(DITHER_CLI), "--help"], capture_output=True, text=True,
                               timeout=harness.scaled(30))
    assert "--alpha" in help_text.stdout + help_text.stderr
    source = tmp_path / "in.png"
    source.write_bytes(imagegen.encode(PICTURE, "PNG"))
    out = tmp_path / "out.png"
    run = subprocess.run([str(DITHER_CLI), str(source), str(out), "--alpha", "threshold"],
                         capture_output=True, text=True, timeout=harness.scaled(60))
    assert run.returncode == 0, run.stderr
    assert alphas(out.read_bytes()) == ONE_BIT
    bad = subprocess.run([str(DITHER_CLI), str(source), str(tmp_path / "x.png"),
                          "--alpha", "flatten:#12345"],
                         capture_output=True, text=True, timeout=harness.scaled(60))
    assert bad.returncode != 0
    assert "alpha" in bad.stderr and "#12345" in bad.stderr, bad.stderr
