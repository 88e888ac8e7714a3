"""Animations through the command line (docs/ANIMATION.md): an animated GIF or WebP in gives an
animated GIF or WebP out, every frame dithered with one palette, delays and loop count kept; PNG
out is the first frame; positional methods and the stable mode do not flicker where the source
stands still; the frame limit refuses from the header. The animations are made here with Pillow:
a still photo with a square that moves, frames of different durations, played twice."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

import harness
import imagegen

DITHER_CLI = harness.DITHERD.parents[1] / "cli" / "dither"
WIDTH, HEIGHT = 64, 48
DURATIONS = [100, 200, 60, 300, 120]
LOOP = 2
PALETTE = ["000000", "ffffff", "e01e28", "1e8c3c", "2850c8", "f0c81e", "787878", "8c5a32"]
PALETTE_SPEC = ",".join("#" + c for c in PALETTE)
PALETTE_RGB = {tuple(int(c[i:i + 2], 16) for i in (0, 2, 4)) for c in PALETTE}


# The source's own colours: 60 mid-tones no output palette has (so that every pixel is dithered)
# and the square's red. Few enough for a GIF to hold them exactly, so that every reader agrees on
# the source's pixels (Pillow re-quantises a photo's frames on its own).
SOURCE_COLOURS = [(40 + 3 * i, 70 + 2 * i, 210 - 3 * i) for i in range(60)] + [(230, 30, 40)]
SQUARE = len(SOURCE_COLOURS) - 1


def scene(frame: int) -> Image.Image:
    """A textured still background with a 12x12 red square 8 px further right in each frame."""
    img = Image.new("P", (WIDTH, HEIGHT))
    img.putpalette([c for rgb in SOURCE_COLOURS for c in rgb])
    img.putdata([((x * 3 + y * 5) // 4 + (x * y) % 7) % 60 for y in range(HEIGHT) for x in range(WIDTH)])
    x = 4 + 8 * frame
    img.paste(SQUARE, (x, 20, x + 12, 32))
    return img


def animation_bytes(fmt: str, frames: int = len(DURATIONS)) -> bytes:
    """The animation as a GIF written by Pillow, or as a WebP made from that GIF by our own
    command line with the source's colours as its palette (each pixel then keeps its colour:
    Pillow's animated WebP writer changes a few pixels, even lossless)."""
    images = [scene(i) for i in range(frames)]
    durations = (DURATIONS * (frames // len(DURATIONS) + 1))[:frames]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=durations,
                   loop=LOOP, optimize=False)
    if fmt == "GIF":
        return out.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.gif", Path(tmp) / "out.webp"
        src.write_bytes(out.getvalue())
        colours = ",".join("#%02x%02x%02x" % c for c in SOURCE_COLOURS)
        run = run_cli(str(src), str(dst), "--palette", colours, "--algorithm", "bayer",
                      "--strength", "0")
        assert run.returncode == 0, run.stderr
        return dst.read_bytes()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DITHER_CLI), *args], capture_output=True, text=True,
                          timeout=harness.scaled(120))


def frames_of(path: Path) -> tuple[list[Image.Image], list[int], int]:
    """Every frame as RGB, their durations (ms) and the loop count Pillow reads."""
    with Image.open(path) as img:
        frames, durations = [], []
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            frames.append(img.convert("RGB"))
            durations.append(img.info.get("duration", 0))
        return frames, durations, img.info.get("loop", -1)


def source_frames(fmt: str) -> list[Image.Image]:
    """The source's frames as Pillow reads them, checked to be the scenes drawn."""
    with Image.open(io.BytesIO(animation_bytes(fmt))) as img:
        out = []
        for i in range(img.n_frames):
            img.seek(i)
            out.append(img.convert("RGB"))
    drawn = [scene(i).convert("RGB") for i in range(len(DURATIONS))]
    assert [list(f.getdata()) for f in out] == [list(f.getdata()) for f in drawn], \
        "the test's own source does not read back as drawn"
    return out


def flicker(source: list[Image.Image], output: list[Image.Image]) -> float:
    """Share of the pixels unchanged in the source between two frames whose output changed."""
    still = changed = 0
    for a, b, c, d in zip(source, source[1:], output, output[1:]):
        for sa, sb, oc, od in zip(a.getdata(), b.getdata(), c.getdata(), d.getdata()):
            if sa == sb:
                still += 1
                changed += oc != od
    return changed / still if still else 0.0


@pytest.mark.parametrize("fmt_in", ["GIF", "WEBP"])
@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_an_animation_stays_an_animation(tmp_path, fmt_in, ext):
    src = tmp_path / f"in.{fmt_in.lower()}"
    src.write_bytes(animation_bytes(fmt_in))
    out = tmp_path / f"out.{ext}"
    run = run_cli(str(src), str(out), "--palette", PALETTE_SPEC, "--algorithm", "bayer")
    assert run.returncode == 0, run.stderr
    frames, durations, loop = frames_of(out)
    assert len(frames) == len(DURATIONS)
    assert durations == DURATIONS
    # The source plays LOOP + 1 times: a GIF's NETSCAPE count is the repeats after the first
    # play (Pillow's loop=2), a WebP's loop count the plays.
    assert loop == (LOOP if ext == "gif" else LOOP + 1)
    assert all(f.size == (WIDTH, HEIGHT) for f in frames)
    colours = set()
    for f in frames:
        colours |= {c for _, c in f.getcolors(WIDTH * HEIGHT)}
    assert colours <= PALETTE_RGB
    # Bayer is positional: where the source stands still, the output does too.
    assert flicker(source_frames(fmt_in), frames) == 0.0


def test_png_out_is_the_first_frame(tmp_path):
    src = tmp_path / "in.gif"
    src.write_bytes(animation_bytes("GIF"))
    first = tmp_path / "first.png"
    source_frames("GIF")[0].save(first)
    out, expected = tmp_path / "out.png", tmp_path / "expected.png"
    assert run_cli(str(src), str(out), "--palette", "ega").returncode == 0
    assert run_cli(str(first), str(expected), "--palette", "ega").returncode == 0
    frames, _, _ = frames_of(out)
    assert len(frames) == 1
    assert list(frames[0].getdata()) == list(Image.open(expected).convert("RGB").getdata())


def test_error_diffusion_is_stable_unless_asked_to_be_fresh(tmp_path):
    src = tmp_path / "in.gif"
    src.write_bytes(animation_bytes("GIF"))
    source = source_frames("GIF")
    stable, fresh = tmp_path / "stable.gif", tmp_path / "fresh.gif"
    assert run_cli(str(src), str(stable), "--palette", "ega").returncode == 0
    run = run_cli(str(src), str(fresh), "--palette", "ega", "--temporal", "fresh")
    assert run.returncode == 0, run.stderr
    assert flicker(source, frames_of(stable)[0]) == 0.0
    # Floyd-Steinberg carries the moving square's error into the still rows below it.
    assert flicker(source, frames_of(fresh)[0]) > 0.01


def test_one_adaptive_palette_for_all_frames(tmp_path):
    src = tmp_path / "in.gif"
    src.write_bytes(animation_bytes("GIF"))
    out = tmp_path / "out.gif"
    assert run_cli(str(src), str(out), "--palette", "adaptive:8").returncode == 0
    frames, _, _ = frames_of(out)
    colours = set()
    for f in frames:
        colours |= {c for _, c in f.getcolors(WIDTH * HEIGHT)}
    assert len(colours) <= 8
    # The square is red in every frame (the background has no red): the palette has a red for it.
    assert any(r > 150 and g < 110 and b < 110 for r, g, b in colours), colours


def test_resizing_and_upscaling_apply_to_every_frame(tmp_path):
    src = tmp_path / "in.gif"
    src.write_bytes(animation_bytes("GIF"))
    out = tmp_path / "out.gif"
    run = run_cli(str(src), str(out), "--width", "32", "--upscale", "3")
    assert run.returncode == 0, run.stderr
    frames, durations, _ = frames_of(out)
    assert len(frames) == len(DURATIONS) and durations == DURATIONS
    assert all(f.size == (96, 72) for f in frames)


def test_too_many_frames_are_refused(tmp_path):
    images = [Image.new("RGB", (4, 4), (i % 256, 0, 0)) for i in range(301)]
    src = tmp_path / "many.gif"
    images[0].save(src, "GIF", save_all=True, append_images=images[1:], duration=20)
    out = tmp_path / "out.gif"
    run = run_cli(str(src), str(out))
    assert run.returncode != 0
    assert "301 frames" in run.stderr and "300" in run.stderr, run.stderr
    assert not out.exists()


def test_a_still_gif_stays_still(tmp_path):
    src = tmp_path / "still.gif"
    scene(0).save(src, "GIF")
    out = tmp_path / "out.gif"
    assert run_cli(str(src), str(out), "--palette", "cga").returncode == 0
    frames, _, _ = frames_of(out)
    assert len(frames) == 1
