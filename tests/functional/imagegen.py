"""Test images made on the fly with Pillow (no image files are kept in the repository), and
checks of dithered results.

    data = photo_png(256, 192, seed=3)      # photo-like: gradients, shapes, noise
    assert colours(result) <= CORNERS8      # every pixel one of the 8 colours of channels=2
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib

from PIL import Image, ImageChops, ImageDraw, ImageFilter

# channels=2: each channel 0 or 255, 2^3 colours.
CORNERS8 = {(r, g, b) for r in (0, 255) for g in (0, 255) for b in (0, 255)}
BW = {(0, 0, 0), (255, 255, 255)}
EGA16 = {
    tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
    for h in ("000000 0000aa 00aa00 00aaaa aa0000 aa00aa aa5500 aaaaaa "
              "555555 5555ff 55ff55 55ffff ff5555 ff55ff ffff55 ffffff").split()
}


def levels(n: int) -> set[int]:
    """Channel values of levels:n, allowing either rounding of a .5 (e.g. 127/128 for n=3)."""
    out = set()
    for i in range(n):
        v = i * 255 / (n - 1)
        out.update({int(v), int(v + 0.5)})
    return out


def photo(width: int = 256, height: int = 192, seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: smooth gradients, a few soft shapes and grain. Different seeds
    give different pictures."""
    rnd = random.Random(seed)
    vertical = Image.linear_gradient("L").resize((width, height))
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    radial = ImageChops.invert(Image.radial_gradient("L").resize((width, height)))
    img = Image.merge("RGB", (horizontal, vertical, radial))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        x1, y1 = x0 + rnd.randrange(8, max(9, width // 2)), y0 + rnd.randrange(8, max(9, height // 2))
        draw.ellipse((x0, y0, x1, y1), fill=tuple(rnd.randrange(256) for _ in range(3)))
    img = img.filter(ImageFilter.GaussianBlur(2))
    grain = Image.effect_noise((width, height), 24 + rnd.randrange(8))
    img = Image.blend(img, Image.merge("RGB", (grain, grain, grain)), 0.15)
    # A few exact pixels from the seed so that two pictures are never byte-identical.
    for i in range(8):
        img.putpixel((rnd.randrange(width), rnd.randrange(height)),
                     (seed * 37 % 256, i * 31 % 256, rnd.randrange(256)))
    return img


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def photo_png(width: int = 256, height: int = 192, seed: int = 0) -> bytes:
    return encode(photo(width, height, seed), "PNG")


def photo_jpeg(width: int = 256, height: int = 192, seed: int = 0, quality: int = 90) -> bytes:
    return encode(photo(width, height, seed), "JPEG", quality=quality)


def noise_png(width: int, height: int) -> bytes:
    """Incompressible: about 3*width*height bytes."""
    return encode(Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)), "PNG")


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (RGB, 8 bit): signature, IHDR with a correct
    CRC, an IDAT holding the first two rows, IEND. A decoder that trusts the header before
    checking the pixel limit would try to allocate width*height*3 bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = (b"\x00" + b"\x80" * (3 * width)) * 2
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b""))


def open_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def colours(data: bytes) -> set[tuple[int, int, int]]:
    """The set of RGB colours of an encoded image."""
    rgb = open_image(data).convert("RGB")
    return {c for _count, c in rgb.getcolors(maxcolors=1 << 24)}


def assert_palette_image(data: bytes, fmt: str, allowed: set, what: str = "dither") -> Image.Image:
    """`data` is a valid `fmt` image ("PNG", "GIF", "WEBP") whose pixels all lie in `allowed`."""
    img = open_image(data)
    assert img.format == fmt, f"{what}: expected {fmt}, got {img.format}"
    found = colours(data)
    stray = sorted(found - allowed)
    assert not stray, f"{what}: {len(stray)} colour(s) outside the palette, e.g. {stray[:5]}"
    return img
