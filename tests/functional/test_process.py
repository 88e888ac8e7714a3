"""What the process holds: libvips' optional modules (its ImageMagick, PDF, HEIF, JPEG XL and
OpenSlide loaders, blocked anyway) are never loaded, unless the operator sets VIPSHOME
(imaging::leave_out_vips_modules, docs/IMAGING.md)."""

from __future__ import annotations

import glob
import io
from pathlib import Path

from PIL import Image

import imagegen


def progressive_jpeg() -> bytes:
    # Progressive, so that the upload is decoded on two threads (docs/IMAGING.md) on its way.
    buf = io.BytesIO()
    imagegen.photo(320, 240, seed=3).save(buf, format="JPEG", quality=90, progressive=True)
    return buf.getvalue()


def mapped(server) -> str:
    return Path(f"/proc/{server.proc.pid}/maps").read_text()


def dither_one(server) -> None:
    rec = server.upload_ok(progressive_jpeg())
    server.wait_for(rec["uuid"])


def test_optional_vips_modules_stay_out(server):
    dither_one(server)
    maps = mapped(server)
    assert "libvips" in maps  # the check looks where it should
    assert "vips-modules" not in maps
    assert "MagickCore" not in maps and "libpoppler" not in maps


def test_a_vipshome_set_by_the_operator_is_left_alone(start_server, tmp_path):
    modules = sorted(glob.glob("/usr/lib/*/vips-modules-*"))
    assert modules, "libvips' modules are installed with it (libvips42)"
    # libvips looks under $VIPSHOME/lib, or, as Debian builds it, $VIPSHOME/<multiarch triple>.
    real = Path(modules[-1])
    home = tmp_path / "vipshome"
    for sub in {"lib", real.parent.name}:
        (home / sub).mkdir(parents=True)
        (home / sub / real.name).symlink_to(real)
    server = start_server(VIPSHOME=str(home))
    dither_one(server)
    assert "vips-modules" in mapped(server)
