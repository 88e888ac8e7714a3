"""Shared helpers for the benchmark scripts (scripts/bench.sh): palettes, timing, image I/O."""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image


def read_hex_palette(path: str | Path) -> list[tuple[int, int, int]]:
    """Colours, one `#rrggbb` a line, as `bench_dither_file --print-palette SPEC` prints them."""
    colours = []
    for line in Path(path).read_text().split():
        h = line.strip().lstrip("#")
        colours.append((int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)))
    if not colours:
        raise ValueError(f"{path}: no colours")
    return colours


def pillow_palette_image(colours: list[tuple[int, int, int]]) -> Image.Image:
    """A "P" image carrying exactly these colours, for Image.quantize(palette=...)."""
    pal = Image.new("P", (1, 1))
    pal.putpalette([c for rgb in colours for c in rgb])
    return pal


def write_palette_png(colours: list[tuple[int, int, int]], path: str | Path) -> None:
    """An N x 1 RGB PNG with one pixel per colour, for ImageMagick's -remap."""
    img = Image.new("RGB", (len(colours), 1))
    img.putdata(colours)
    img.save(path)


def pillow_fs(image: Image.Image, colours: list[tuple[int, int, int]]) -> Image.Image:
    """Pillow's Floyd-Steinberg to a fixed palette, as an RGB image."""
    q = image.quantize(palette=pillow_palette_image(colours), dither=Image.Dither.FLOYDSTEINBERG)
    return q.convert("RGB")


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_call(fn, repeat: int, warmup: int = 1, children: bool = False
              ) -> tuple[list[float], list[float]]:
    """Seconds of `fn()` over `repeat` runs after `warmup` untimed ones: wall-clock, and CPU time
    (this process's, or with `children` that of the child processes `fn` ran and waited for).
    CPU time is less disturbed by other work on a shared machine; it only means "speed" for
    single-threaded work."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        c0 = children_cpu_seconds() if children else time.process_time()
        t0 = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append((children_cpu_seconds() if children else time.process_time()) - c0)
    return wall, cpu


def time_command(argv: list[str], env: dict, repeat: int, warmup: int = 1
                 ) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of a whole command (process start to exit)."""

    def run():
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)

    return time_call(run, repeat, warmup, children=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def read_raw_rgb(path: str | Path, width: int, height: int) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    if data.size != width * height * 3:
        raise ValueError(f"{path}: {data.size} bytes, expected {width}x{height}x3")
    return data.reshape(height, width, 3)


def write_raw_rgb(path: str | Path, pixels: np.ndarray) -> None:
    np.ascontiguousarray(pixels, dtype=np.uint8).tofile(path)
