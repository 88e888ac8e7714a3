#!/usr/bin/env python3
"""Perceptual quality of our Floyd-Steinberg against Pillow's, and linear light on vs off.

The figure: PSNR between the original and the dithered image after both are converted to
linear light and blurred with a Gaussian (sigma --sigma px) that stands in for the eye averaging
the dither pattern. Higher is better. numpy only (separable convolution, reflected edges).

Two experiments:
  1. the photo, each --palette: ours (sRGB and linear-light Floyd-Steinberg, raster order) vs
     Pillow's quantize(palette=..., dither=FLOYDSTEINBERG) on the same palette;
  2. a generated 1024x256 grey ramp, levels:2: ours with linear light off and on (Pillow too,
     for reference), plus the average tone error and how 50% grey (sRGB 128) comes out.

Our images come from `bench_dither_file` (the engine called directly on raw RGB). With --cli, the
sRGB photo results come from the `dither` command-line tool instead, when it runs, and whether
its output is identical to the engine's is reported; with --strict a CLI that fails (or gives
an image of another size) is an error instead of a note (scripts/bench.sh --smoke).

  quality.py --rgb photo.rgb --width W --height H --ditherer build/release/bench/bench_dither_file
             --palette levels:2=pal8.txt --palette ega=ega.txt --workdir DIR --out quality.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def srgb_to_linear_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


LUT = srgb_to_linear_lut()


def linear_to_srgb8(v: float) -> float:
    v = min(max(v, 0.0), 1.0)
    s = v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    return s * 255.0


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def blur_axis(a: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """Convolves along axis 0 (rows) or 1 (columns) with edges reflected."""
    r = len(k) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    p = np.pad(a, pad, mode="reflect")
    out = np.zeros_like(a)
    n = a.shape[axis]
    for i, w in enumerate(k):
        out += w * (p[i:i + n] if axis == 0 else p[:, i:i + n])
    return out


def blurred_linear(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 HxWx3 sRGB -> float32 linear light, Gaussian-blurred, per channel."""
    k = gaussian_kernel(sigma)
    lin = LUT[pixels]
    return blur_axis(blur_axis(lin, k, 0), k, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def run_ours(ditherer: str, src: Path, width: int, height: int, dst: Path, spec: str,
             linear: bool) -> np.ndarray:
    argv = [ditherer, str(src), str(width), str(height), str(dst), "--algorithm",
            "floyd-steinberg", "--palette", spec]
    if linear:
        argv.append("--linear")
    subprocess.run(argv, check=True)
    return common.read_raw_rgb(dst, width, height)


def run_cli(cli: str, png_in: Path, png_out: Path, spec: str) -> np.ndarray | None:
    argv = [cli, str(png_in), str(png_out), "--palette", spec, "--algorithm", "floyd-steinberg",
            "--linear-light", "false", "--serpentine", "false"]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"quality: the CLI failed ({' '.join(argv)}): {r.stderr.strip()}", file=sys.stderr)
        return None
    return np.asarray(Image.open(png_out).convert("RGB"))


def save_crop(pixels: np.ndarray, path: Path, size: int = 512) -> None:
    h, w = pixels.shape[:2]
    y0, x0 = max(0, h // 2 - size // 2), max(0, w // 2 - size // 2)
    Image.fromarray(pixels[y0:y0 + size, x0:x0 + size]).save(path)


def grey_ramp(width: int = 1024, height: int = 256) -> np.ndarray:
    row = np.round(np.arange(width) * 255.0 / (width - 1)).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)


def tone_figures(original: np.ndarray, dithered: np.ndarray) -> tuple[float, float]:
    """Mean |error| of column-averaged linear light (percent of full scale), and the sRGB value
    that the columns whose input is sRGB 128 average to."""
    orig_cols = LUT[original[:, :, 1]].mean(axis=0)
    lum = (0.2126 * LUT[dithered[:, :, 0]] + 0.7152 * LUT[dithered[:, :, 1]]
           + 0.0722 * LUT[dithered[:, :, 2]])
    cols = lum.mean(axis=0)
    mean_err = float(np.mean(np.abs(cols - orig_cols))) * 100.0
    mid = original[0, :, 1] == 128
    return mean_err, linear_to_srgb8(float(cols[mid].mean()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rgb", required=True, help="the photo, raw 8-bit RGB")
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--ditherer", required=True, help="path to bench_dither_file")
    ap.add_argument("--cli", help="path to the dither CLI (optional)")
    ap.add_argument("--palette", action="append", required=True, metavar="SPEC=FILE",
                    help="our palette spec and its colours (hex, one a line); repeatable")
    ap.add_argument("--sigma", type=float, default=1.5)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True, help="Markdown output")
    ap.add_argument("--json", help="JSON output (optional)")
    ap.add_argument("--strict", action="store_true",
                    help="fail when the --cli run fails instead of falling back to the engine")
    args = ap.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    w, h = args.width, args.height
    original = common.read_raw_rgb(args.rgb, w, h)
    original_img = Image.fromarray(original)
    ref = blurred_linear(original, args.sigma)
    results = {"sigma": args.sigma, "photo": [], "ramp": []}

    cli_png = None
    if args.strict and args.cli and not Path(args.cli).exists():
        sys.exit(f"quality: no CLI at {args.cli}")
    if args.cli and Path(args.cli).exists():
        cli_png = work / "photo.png"
        if not cli_png.exists() or cli_png.stat().st_mtime < Path(args.rgb).stat().st_mtime:
            original_img.save(cli_png, compress_level=1)

    save_crop(original, work / "crop-original.png")
    for item in args.palette:
        spec, _, path = item.partition("=")
        colours = common.read_hex_palette(path)
        tag = spec.replace(":", "")
        rows = {}
        ours_srgb = run_ours(args.ditherer, Path(args.rgb), w, h, work / f"ours-{tag}.rgb", spec,
                             False)
        source = "engine"
        if cli_png is not None:
            cli_out = run_cli(args.cli, cli_png, work / f"cli-{tag}.png", spec)
            if args.strict and (cli_out is None or cli_out.shape != original.shape):
                sys.exit(f"quality: the CLI ({args.cli}) gave no {w}x{h} RGB image for {spec}"
                         + ("" if cli_out is None else f" (it gave {cli_out.shape})"))
            if cli_out is not None and cli_out.shape == original.shape:
                same = bool(np.array_equal(cli_out, ours_srgb))
                diff = float(np.mean(np.any(cli_out != ours_srgb, axis=2))) * 100.0
                print(f"quality: CLI output for {spec} "
                      f"{'identical to' if same else f'differs ({diff:.3f}% of pixels) from'} "
                      "the engine's", file=sys.stderr)
                ours_srgb, source = cli_out, "CLI" + ("" if same else f" ({diff:.3f}% px differ)")
        rows["ours, sRGB"] = ours_srgb
        rows["ours, linear light"] = run_ours(args.ditherer, Path(args.rgb), w, h,
                                              work / f"ours-{tag}-linear.rgb", spec, True)
        rows["Pillow"] = np.asarray(common.pillow_fs(original_img, colours))
        entry = {"palette": spec, "colours": len(colours), "source_srgb": source, "psnr": {}}
        for name, px in rows.items():
            entry["psnr"][name] = psnr(blurred_linear(px, args.sigma), ref)
            save_crop(px, work / f"crop-{tag}-{name.replace(', ', '-').replace(' ', '-')}.png")
        results["photo"].append(entry)
        print(f"quality: {spec}: " + ", ".join(f"{k} {v:.2f} dB" for k, v in entry["psnr"].items()),
              file=sys.stderr)

    ramp = grey_ramp()
    rh, rw = ramp.shape[:2]
    ramp_path = work / "ramp.rgb"
    common.write_raw_rgb(ramp_path, ramp)
    ramp_ref = blurred_linear(ramp, args.sigma)
    pal8 = [(r, g, b) for r in (0, 255) for g in (0, 255) for b in (0, 255)]
    ramp_rows = {
        "ours, linear light off (sRGB)": run_ours(args.ditherer, ramp_path, rw, rh,
                                                  work / "ramp-srgb.rgb", "levels:2", False),
        "ours, linear light on": run_ours(args.ditherer, ramp_path, rw, rh,
                                          work / "ramp-linear.rgb", "levels:2", True),
        "Pillow (sRGB)": np.asarray(common.pillow_fs(Image.fromarray(ramp), pal8)),
    }
    for name, px in ramp_rows.items():
        err, mid = tone_figures(ramp, px)
        results["ramp"].append({"name": name, "psnr": psnr(blurred_linear(px, args.sigma), ramp_ref),
                                "tone_error_pct": err, "mid_grey_as_srgb": mid})
        Image.fromarray(px).save(work / f"ramp-{name.split(',')[-1].strip().replace(' ', '-')}.png")

    md = format_markdown(results, w, h)
    Path(args.out).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(md)
    return 0


def format_markdown(r: dict, w: int, h: int) -> str:
    s = r["sigma"]
    out = [f"Blurred PSNR: linear light, Gaussian sigma {s:g} px, original vs dithered; "
           "higher is better. Floyd-Steinberg, raster order.", "",
           f"Photo ({w}x{h}):", "",
           "| Palette | Ours, sRGB | Ours, linear light | Pillow | Ours (sRGB) vs Pillow "
           "| Ours (linear) vs Pillow | Verdict |",
           "|---|---|---|---|---|---|---|"]
    for e in r["photo"]:
        p = e["psnr"]
        d_srgb = p["ours, sRGB"] - p["Pillow"]
        d_lin = p["ours, linear light"] - p["Pillow"]
        verdict = "met" if max(d_srgb, d_lin) >= 0 else "NOT met"
        if d_srgb < 0 <= d_lin:
            verdict = "met with linear light only"
        out.append(f"| {e['palette']} ({e['colours']} colours) | {p['ours, sRGB']:.2f} dB "
                   f"| {p['ours, linear light']:.2f} dB | {p['Pillow']:.2f} dB "
                   f"| {d_srgb:+.2f} dB | {d_lin:+.2f} dB | {verdict} |")
    out += ["", "Grey ramp (1024x256, 0..255 left to right), levels:2:", "",
            "| Run | Blurred PSNR | Mean tone error | sRGB 128 comes out as |", "|---|---|---|---|"]
    for e in r["ramp"]:
        out.append(f"| {e['name']} | {e['psnr']:.2f} dB | {e['tone_error_pct']:.2f}% "
                   f"| {e['mid_grey_as_srgb']:.0f} |")
    out += ["", "Tone error: mean absolute difference between each column's average linear "
            "light in and out, in percent of white."]
    if any(e["source_srgb"] != "engine" for e in r["photo"]):
        out += ["", "Ours, sRGB, on the photo: " + "; ".join(
            f"{e['palette']} from the {e['source_srgb']}" for e in r["photo"]) + "."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
