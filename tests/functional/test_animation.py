"""Animations through the service (issue 16, docs/API.md "Animations"): an animated GIF or WebP
upload counts its frames (the record's `frames`, IMAGE_UPLOADED's `frames`); a dither that names
no format is an animation of the original's format, every frame dithered, the delays and loop
count kept; `format=webp` gives an animated WebP and `format=png` the first frame, still; an
animation past MAX_ANIMATION_FRAMES or MAX_ANIMATION_PIXELS is refused at upload and nothing is
stored; a still GIF behaves as before. The animations are made here with Pillow: a photo with a
red square that moves, frames of different durations, played twice."""

from __future__ import annotations

import functools
import io

import pytest
from PIL import Image

import harness
import imagegen

WIDTH, HEIGHT = 64, 48
DURATIONS = [100, 200, 60, 300, 120]
LOOP = 2


def scene(frame: int) -> Image.Image:
    """The photo with a 12x12 red square 8 px further right in each frame."""
    img = imagegen.photo(WIDTH, HEIGHT, seed=21).convert("RGB")
    x = 4 + 8 * frame
    img.paste((230, 30, 40), (x, 20, x + 12, 32))
    return img


@functools.cache
def animation(fmt: str, frames: int = len(DURATIONS)) -> bytes:
    """An animated GIF or WebP of `frames` frames (a still one for 1). Made once per module: the
    photo's grain differs from one call to the next."""
    images = [scene(i) for i in range(frames)]
    durations = (DURATIONS * (frames // len(DURATIONS) + 1))[:frames]
    out = io.BytesIO()
    if fmt == "GIF":
        # One palette for all frames: the still background keeps its colours from frame to frame.
        ref = images[0].quantize(colors=255)
        images = [im.quantize(palette=ref, dither=Image.Dither.NONE) for im in images]
        if frames == 1:
            images[0].save(out, "GIF")
        else:
            images[0].save(out, "GIF", save_all=True, append_images=images[1:],
                           duration=durations, loop=LOOP)
    elif frames == 1:
        images[0].save(out, "WEBP", lossless=True)
    else:
        images[0].save(out, "WEBP", save_all=True, append_images=images[1:], duration=durations,
                       loop=LOOP, lossless=True)
    return out.getvalue()


def played(data: bytes) -> tuple[str, list[Image.Image], list[int], int]:
    """What a viewer plays of `data`: its format, every frame as RGB, their durations (ms) and
    the loop count."""
    with Image.open(io.BytesIO(data)) as img:
        frames, durations = [], []
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            frames.append(img.convert("RGB"))
            durations.append(img.info.get("duration", 0))
        return img.format, frames, durations, img.info.get("loop", -1)


def colours_of(frames: list[Image.Image]) -> set:
    out = set()
    for f in frames:
        out |= {c for _, c in f.getcolors(f.width * f.height)}
    return out


def fetch(server, url: str) -> bytes:
    r = server.get(url)
    assert r.status_code == 200, f"GET {url}: {r.status_code}"
    return r.content


@pytest.fixture(scope="module")
def shared(module_start_server):
    return module_start_server(QUOTA_PENDING_DITHERS=0, QUOTA_DITHERS_PER_IMAGE=0)


@pytest.fixture(scope="module")
def moving(shared):
    """An animated GIF, uploaded, its automatic dither finished."""
    rec = shared.upload_ok(animation("GIF"), "moving.gif", "image/gif")
    return rec, shared.wait_for(rec["uuid"], timeout=120)


def test_an_animated_gif_counts_its_frames_and_becomes_an_animated_gif(shared, moving):
    rec, done = moving
    assert rec["content_type"] == "image/gif"
    assert (rec["width"], rec["height"], rec["frames"]) == (WIDTH, HEIGHT, len(DURATIONS))
    assert done["frames"] == len(DURATIONS)
    listed = [i for i in shared.list_all() if i["uuid"] == rec["uuid"]]
    assert listed and listed[0]["frames"] == len(DURATIONS), listed
    # The automatic dither names no format: it is made as the original's, and says so.
    auto = shared.dithers_of(rec["uuid"])[-1]
    assert auto["format"] == "gif" and auto["options"]["format"] == "gif", auto
    assert done["dithers"][0]["format"] == "gif"
    assert done["url_dither"].split("?")[0].endswith(".gif")
    fmt, frames, durations, loop = played(fetch(shared, done["url_dither"]))
    assert fmt == "GIF"
    assert len(frames) == len(DURATIONS), "the dither is not an animation of every frame"
    assert durations == DURATIONS
    assert loop == LOOP
    assert all(f.size == (WIDTH, HEIGHT) for f in frames)
    assert colours_of(frames) <= imagegen.CORNERS8  # channels=2, the automatic dither's palette
    # The frames differ where the square moves: not one frame repeated.
    assert len({f.tobytes() for f in frames}) == len(DURATIONS)
    # IMAGE_UPLOADED carries the frames (the dithering service decides the format from them).
    uploaded = shared.wait_events(
        lambda e: e["headers"]["message_type"] == "IMAGE_UPLOADED" and e["key"] == rec["uuid"])
    assert uploaded[0]["body"]["frames"] == len(DURATIONS), uploaded[0]["body"]


def test_requests_without_a_format_keep_the_animation_and_a_named_one_wins(shared, moving):
    rec, _ = moving
    uuid = rec["uuid"]
    asked = {
        "gif": shared.request_dither_ok(uuid, 2, {"algorithm": "bayer", "palette": "ega"}),
        "webp": shared.request_dither_ok(uuid, 2, {"palette": "ega", "format": "WebP"}),
        "png": shared.request_dither_ok(uuid, 2, json_body={"palette": "ega", "format": "png"}),
        "fresh": shared.request_dither_ok(uuid, 2, json_body={"palette": "ega",
                                                               "temporal": "fresh"}),
    }
    assert asked["gif"]["format"] == "gif" and asked["gif"]["options"]["format"] == "gif"
    assert asked["webp"]["format"] == "webp"
    assert asked["png"]["format"] == "png"
    assert asked["fresh"]["format"] == "gif"
    assert asked["fresh"]["options"]["temporal"] == "fresh", asked["fresh"]["options"]
    assert "temporal" not in asked["gif"]["options"]  # stable, the default, is left out
    done = {k: shared.wait_dither(uuid, d["id"], timeout=120) for k, d in asked.items()}

    for kind, fmt in (("gif", "GIF"), ("webp", "WEBP"), ("fresh", "GIF")):
        got, frames, durations, loop = played(fetch(shared, done[kind]["url_dither"]))
        assert got == fmt, kind
        assert len(frames) == len(DURATIONS), f"{kind}: {len(frames)} frames"
        assert durations == DURATIONS, kind
        # Played as often as the source, LOOP + 1 times: a GIF's NETSCAPE count is the repeats
        # after the first play (Pillow's loop=2), a WebP's loop count the plays.
        assert loop == (LOOP if fmt == "GIF" else LOOP + 1), f"{kind}: loop {loop}"
        assert colours_of(frames) <= imagegen.EGA16, kind

    # PNG: the first frame, a still picture, the same as a dither of that frame alone.
    png = fetch(shared, done["png"]["url_dither"])
    img = imagegen.assert_palette_image(png, "PNG", imagegen.EGA16, "format=png")
    assert getattr(img, "n_frames", 1) == 1 and img.size == (WIDTH, HEIGHT)
    first_frame = played(animation("GIF"))[1][0]
    first = shared.upload_ok(imagegen.encode(first_frame, "PNG"), "first.png")
    shared.wait_for(first["uuid"], timeout=120)
    alone = shared.request_dither_ok(first["uuid"], 2, {"palette": "ega"})
    alone = shared.wait_dither(first["uuid"], alone["id"], timeout=120)
    expected = imagegen.open_image(fetch(shared, alone["url_dither"])).convert("RGB")
    assert img.convert("RGB").tobytes() == expected.tobytes()

    # The image's summaries name each dither's format.
    formats = {d["dither_id"]: d["format"] for d in shared.image(uuid)["dithers"]}
    assert {formats[d["id"]] for d in asked.values()} == {"gif", "webp", "png"}


def test_an_animated_webp_becomes_an_animated_webp(shared):
    rec = shared.upload_ok(animation("WEBP"), "moving.webp", "image/webp")
    assert rec["content_type"] == "image/webp" and rec["frames"] == len(DURATIONS), rec
    done = shared.wait_for(rec["uuid"], timeout=120)
    assert done["dithers"][0]["format"] == "webp"
    fmt, frames, durations, loop = played(fetch(shared, done["url_dither"]))
    assert fmt == "WEBP"
    assert len(frames) == len(DURATIONS) and durations == DURATIONS and loop == LOOP
    assert colours_of(frames) <= imagegen.CORNERS8
    # A GIF of the same animation, asked for by name.
    d = shared.request_dither_ok(rec["uuid"], 2, {"format": "gif"})
    d = shared.wait_dither(rec["uuid"], d["id"], timeout=120)
    fmt, frames, durations, loop = played(fetch(shared, d["url_dither"]))
    assert fmt == "GIF" and len(frames) == len(DURATIONS) and durations == DURATIONS
    assert loop == LOOP - 1  # played LOOP times: the first, then LOOP - 1 repeats


@pytest.mark.parametrize("fmt,content_type", [("GIF", "image/gif"), ("WEBP", "image/webp")])
def test_a_still_gif_or_webp_behaves_as_before(shared, fmt, content_type):
    rec = shared.upload_ok(animation(fmt, frames=1), "still." + fmt.lower(), content_type)
    assert rec["frames"] == 1
    done = shared.wait_for(rec["uuid"], timeout=60)
    assert done["dithers"][0]["format"] == "png"
    assert shared.dithers_of(rec["uuid"])[0]["options"]["format"] == "png"
    img = imagegen.assert_palette_image(fetch(shared, done["url_dither"]), "PNG",
                                        imagegen.CORNERS8, "still")
    assert getattr(img, "n_frames", 1) == 1
    uploaded = shared.wait_events(
        lambda e: e["headers"]["message_type"] == "IMAGE_UPLOADED" and e["key"] == rec["uuid"])
    assert uploaded[0]["body"]["frames"] == 1


def test_a_bad_temporal_is_refused(shared, moving):
    rec, _ = moving
    for params in ({"temporal": "sometimes"}, {"temporal": ""}):
        err = harness.assert_error(shared.request_dither(rec["uuid"], 2, params), 400,
                                   {"invalid_argument"})
        assert "temporal" in err["message"], err


@pytest.mark.parametrize("env", [{"MAX_ANIMATION_FRAMES": 3},
                                 {"MAX_ANIMATION_PIXELS": WIDTH * HEIGHT * 3}])
def test_an_animation_past_the_limits_is_refused_at_upload(start_server, env):
    server = start_server(**env)
    before = server.snapshot()
    for fmt, content_type in (("GIF", "image/gif"), ("WEBP", "image/webp")):
        r = server.upload(animation(fmt), "long." + fmt.lower(), content_type)
        err = harness.assert_error(r, 422, {"too_many_pixels"}, f"a {fmt} of 5 frames")
        limit = "frame" if "MAX_ANIMATION_FRAMES" in env else "pixel"
        assert limit in err["message"].lower(), err
    server.assert_unchanged(before)
    # Three frames are within either limit.
    rec = server.upload_ok(animation("GIF", frames=3), "short.gif", "image/gif")
    assert rec["frames"] == 3
    done = server.wait_for(rec["uuid"], timeout=120)
    _, frames, durations, _ = played(fetch(server, done["url_dither"]))
    assert len(frames) == 3 and durations == DURATIONS[:3]
