#!/usr/bin/env python3
"""Quality of every algorithm, and of adaptive palettes, against the peers, on the same inputs.

Two tables, each for four photos (Debian's mate-backgrounds, scaled to --width px wide) and, for
the first, a generated grey ramp:

  1. --algorithms: each of our algorithms (the list comes from `dither --list-options json`, so a
     new one is measured without editing this script) on fixed palettes, next to Pillow,
     ImageMagick and GEGL doing what they can of the same job (GEGL's gegl:dither takes levels
     per channel only, so it appears for levels palettes only).
  2. --palettes: our adaptive:N against pngquant (libimagequant) at N colours, quality and speed
     (wall time of the whole process, file in, file out, median of --repeat runs).

Metrics (higher is better except ΔE):
  - PSNR, linear: both images in linear light, Gaussian-blurred (sigma --sigma px, standing in for
    the eye's averaging of the pattern), PSNR over the three channels (as scripts/bench/quality.py).
  - PSNR, sRGB: the same blur on the 8-bit sRGB values scaled to 0..1.
  - SSIM: structural similarity of the blurred linear-light luma (Y = 0.2126 R + 0.7152 G +
    0.0722 B), 11-tap Gaussian window of sigma 1.5, C1 = 0.01^2, C2 = 0.03^2: sees structure
    (edges, textures lost or invented), where PSNR sees only the error's energy.
  - ΔE00: the mean CIEDE2000 difference between the blurred images in CIELAB (D65).

numpy and Pillow only. Writes JSON, Markdown and centre crops (PNG) into --workdir.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (blur, linear-light table and PSNR shared with the Floyd-Steinberg figure)

PHOTOS = ["nature/LadyBird.jpg", "nature/Storm.jpg", "nature/TwoWings.jpg", "abstract/Elephants.jpg"]
# Palettes of the algorithm table: 8 colours (levels:2, which GEGL can do too) and EGA's 16.
TABLE_PALETTES = ["levels:2", "ega"]
SKIP = {"custom-kernel", "custom-matrix"}  # need a kernel or matrix of the caller's


# ---- metrics ----------------------------------------------------------------------------------

def blurred_srgb(pixels: np.ndarray, sigma: float) -> np.ndarray:
    k = quality.gaussian_kernel(sigma)
    v = pixels.astype(np.float32) / 255.0
    return quality.blur_axis(quality.blur_axis(v, k, 0), k, 1)


def luma(lin: np.ndarray) -> np.ndarray:
    return 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two single-channel float images in 0..1 (Wang et al. 2004's constants)."""
    k = quality.gaussian_kernel(1.5)
    k = k[len(k) // 2 - 5: len(k) // 2 + 6] if len(k) > 11 else k
    k = k / k.sum()

    def win(x):
        return quality.blur_axis(quality.blur_axis(x[..., None], k, 0), k, 1)[..., 0]

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = win(a64), win(b64)
    var_a = win(a64 * a64) - mu_a * mu_a
    var_b = win(b64 * b64) - mu_b * mu_b
    cov = win(a64 * b64) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """Linear-light sRGB (D65) to CIELAB (D65 white)."""
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin.astype(np.float64) @ m.T
    white = m.sum(axis=1)
    t = xyz / white
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(t > eps, np.cbrt(t), (kappa * t + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 per pixel (Sharma, Wu and Dalal 2005), kL = kC = kH = 1."""
    l1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    l2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dlp, dcp = l2 - l1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dhp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbp, cbp = (l1 + l2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    hbp = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, hsum + 360, hsum - 360), hsum) / 2
    hbp = np.where(c1p * c2p == 0, hsum, hbp)
    t = (1 - 0.17 * np.cos(np.radians(hbp - 30)) + 0.24 * np.cos(np.radians(2 * hbp))
         + 0.32 * np.cos(np.radians(3 * hbp + 6)) - 0.20 * np.cos(np.radians(4 * hbp - 63)))
    d_theta = 30 * np.exp(-(((hbp - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cbp ** 7 / (cbp ** 7 + 25.0 ** 7))
    sl = 1 + 0.015 * (lbp - 50) ** 2 / np.sqrt(20 + (lbp - 50) ** 2)
    sc, sh = 1 + 0.045 * cbp, 1 + 0.015 * cbp * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    return np.sqrt((dlp / sl) ** 2 + (dcp / sc) ** 2 + (dhp / sh) ** 2
                   + rt * (dcp / sc) * (dhp / sh))


def check_ciede2000() -> None:
    """Three of Sharma et al.'s published test pairs: a wrong formula stops the run."""
    pairs = [((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
             ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
             ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082)]
    for p, q, want in pairs:
        got = float(ciede2000(np.array(p), np.array(q)))
        if abs(got - want) > 1e-4:
            sys.exit(f"quality_table: CIEDE2000 self-check failed: {p} {q} gave {got}, not {want}")


def metrics(original: np.ndarray, dithered: np.ndarray, sigma: float) -> dict:
    lo, ld = quality.blurred_linear(original, sigma), quality.blurred_linear(dithered, sigma)
    so, sd = blurred_srgb(original, sigma), blurred_srgb(dithered, sigma)
    de = ciede2000(linear_to_lab(np.clip(lo, 0, 1)), linear_to_lab(np.clip(ld, 0, 1)))
    return {"psnr_linear": quality.psnr(ld, lo), "psnr_srgb": quality.psnr(sd, so),
            "ssim": ssim(luma(lo), luma(ld)), "de2000": float(de.mean())}


# ---- the runs ---------------------------------------------------------------------------------

def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()[:400]}")
    return time.perf_counter() - t0


def read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def palette_colours(cli: str, spec: str, work: Path) -> list[tuple[int, int, int]]:
    """The palette's colours, read back from our own output of a tiny all-colours image."""
    out = work / f"palette-{spec.replace(':', '')}.txt"
    if spec.startswith("levels:"):
        n = int(spec.split(":")[1])
        steps = [round(i * 255 / (n - 1)) for i in range(n)]
        cols = [(a, b, c) for a in steps for b in steps for c in steps]
    else:
        cube = np.stack(np.meshgrid(*[np.arange(0, 256, 8)] * 3, indexing="ij"), -1)
        src = work / "cube.png"
        Image.fromarray(cube.reshape(128, 256, 3).astype(np.uint8)).save(src)
        dst = work / f"cube-{spec}.png"
        timed([cli, str(src), str(dst), "--palette", spec, "--algorithm", "threshold"])
        cols = sorted({tuple(int(v) for v in px) for px in read_rgb(dst).reshape(-1, 3)})
    out.write_text("\n".join("%02x%02x%02x" % c for c in cols) + "\n")
    return cols


def peers(src: Path, spec: str, colours: list, work: Path, tag: str) -> dict[str, Path]:
    """Pillow, ImageMagick and (levels only) GEGL outputs for the palette."""
    outs: dict[str, Path] = {}
    img = Image.open(src).convert("RGB")
    pal_img = Image.new("P", (1, 1))
    flat = [v for c in colours for v in c]
    pal_img.putpalette(flat + flat[:3] * (256 - len(colours)))
    for name, mode in (("Pillow FS", Image.Dither.FLOYDSTEINBERG), ("Pillow none", Image.Dither.NONE)):
        p = work / f"{tag}-{name.replace(' ', '-')}.png"
        img.quantize(palette=pal_img, dither=mode).convert("RGB").save(p)
        outs[name] = p
    pal_png = work / f"pal-{tag}.png"
    Image.fromarray(np.array([colours], dtype=np.uint8)).save(pal_png)
    # ImageMagick in linear light too: the image and the palette (16 bits, so that EGA's middle
    # values survive) converted to linear RGB, remapped, and back to sRGB.
    pal_lin = work / f"pal-{tag}-linear.png"
    timed(["convert", str(pal_png), "-colorspace", "RGB", "-depth", "16", str(pal_lin)])
    for method in ("FloydSteinberg", "Riemersma"):
        for linear in (False, True):
            name = f"ImageMagick {'FS' if method == 'FloydSteinberg' else method}" + (
                ", linear" if linear else "")
            p = work / f"{tag}-{name.replace(' ', '-').replace(',', '')}.png"
            lin_in = ["-colorspace", "RGB"] if linear else []
            lin_out = ["-colorspace", "sRGB"] if linear else []
            timed(["convert", str(src)] + lin_in + ["-dither", method, "-remap",
                                                    str(pal_lin if linear else pal_png)]
                  + lin_out + [f"png24:{p}"])
            outs[name] = p
    if spec.startswith("levels:"):
        n = spec.split(":")[1]
        p = work / f"{tag}-ImageMagick-o8x8.png"
        timed(["convert", str(src), "-ordered-dither", f"o8x8,{n}", f"png24:{p}"])
        outs["ImageMagick o8x8"] = p
        for method in ("floyd-steinberg", "blue-noise", "bayer", "arithmetic-add"):
            p = work / f"{tag}-GEGL-{method}.png"
            timed(["gegl", str(src), "-o", str(p), "--", "gegl:dither", f"red-levels={n}",
                   f"green-levels={n}", f"blue-levels={n}", "alpha-levels=256",
                   f"dither-method={method}"])
            outs[f"GEGL {method}"] = p
    return outs


def algorithm_names(cli: str) -> list[str]:
    r = subprocess.run([cli, "--list-options", "json"], capture_output=True, text=True, check=True)
    data = json.loads(r.stdout)
    rows = data["options"] if isinstance(data, dict) else data
    for row in rows:
        if row.get("name") == "algorithm":
            return [c["value"] for c in row["choices"] if c["value"] not in SKIP]
    sys.exit("quality_table: no algorithm option in --list-options json")


def crop(pixels: np.ndarray, path: Path, size: int = 160) -> None:
    h, w = pixels.shape[:2]
    y0, x0 = max(0, h // 2 - size // 2), max(0, w // 2 - size // 2)
    Image.fromarray(pixels[y0:y0 + size, x0:x0 + size]).resize((size * 2, size * 2),
                                                                 Image.NEAREST).save(path)


MOSAIC = ["ours floyd-steinberg", "ours ostromoukhov", "ours zhou-fang", "ours dbs", "ours blue-noise",
          "ours pattern", "ours dot-diffusion", "Pillow FS", "ImageMagick FS", "ImageMagick FS, linear",
          "GEGL blue-noise"]


def mosaic(work: Path, spec: str, out: Path, size: int = 160) -> None:
    """One picture of the LadyBird crops of MOSAIC's tools for `spec`, labelled, 5 a row."""
    from PIL import ImageDraw
    tiles = [(t, work / "crops" / f"{spec.replace(':', '')}-{t.replace(' ', '-')}.png")
             for t in ["original"] + MOSAIC]
    tiles = [(t, p) for t, p in tiles if p.exists()]
    cols, cell = 4, size * 2
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tool, p) in enumerate(tiles):
        x, y = (i % cols) * cell, (i // cols) * (cell + 16)
        sheet.paste(Image.open(p).convert("RGB"), (x, y + 16))
        draw.text((x + 4, y + 2), tool, fill="black")
    indexed(sheet, size * 2 + 16).save(out, optimize=True)


def indexed(sheet: Image.Image, top: int) -> Image.Image:
    """The sheet with at most 256 colours, for a smaller file: every colour outside the first
    tile (the original photo, `top` px high) kept exactly, the photo's reduced to the rest."""
    rgb = np.asarray(sheet).astype(np.int32)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    first = (slice(0, top), slice(0, sheet.width // 4))
    others = np.ones(keys.shape, bool)
    others[first] = False
    kept = np.unique(keys[others])
    if len(kept) > 240:
        return sheet  # not a few colours: left as it is
    photo = sheet.crop((0, 0, sheet.width // 4, top)).quantize(
        colors=256 - len(kept), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    index = np.searchsorted(kept, keys)
    index[first] = np.asarray(photo) + len(kept)
    palette = [int(v) for k in kept for v in ((k >> 16) & 255, (k >> 8) & 255, k & 255)]
    out = Image.fromarray(index.astype(np.uint8), "P")
    out.putpalette(palette + photo.getpalette()[: 3 * (256 - len(kept))])
    return out


def algorithm_table(args, inputs: dict[str, Path], work: Path) -> list[dict]:
    rows = []
    names = algorithm_names(args.cli)
    for spec in TABLE_PALETTES:
        colours = palette_colours(args.cli, spec, work)
        for label, src in inputs.items():
            if label == "ramp" and spec != "levels:2":
                continue  # the ramp is grey: one palette is enough
            original = read_rgb(src)
            if label == "LadyBird":
                crop(original, work / "crops" / f"{spec.replace(':', '')}-original.png")
            tag = f"{label}-{spec.replace(':', '')}"
            outs = {}
            for name in names:
                p = work / f"{tag}-ours-{name}.png"
                timed([args.cli, str(src), str(p), "--palette", spec, "--algorithm", name])
                outs[f"ours {name}"] = p
            # Our default is linear light; the peers' defaults are sRGB: both, for a fair view.
            p = work / f"{tag}-ours-fs-srgb.png"
            timed([args.cli, str(src), str(p), "--palette", spec, "--linear-light", "false"])
            outs["ours floyd-steinberg, sRGB"] = p
            outs.update(peers(src, spec, colours, work, tag))
            for tool, p in outs.items():
                px = read_rgb(p)
                m = metrics(original, px, args.sigma)
                rows.append({"palette": spec, "image": label, "tool": tool, **m})
                if label == "LadyBird":
                    crop(px, work / "crops" / f"{spec.replace(':', '')}-{tool.replace(' ', '-')}.png")
            print(f"quality_table: {spec} {label}: {len(outs)} results", file=sys.stderr)
    return rows


def palette_table(args, inputs: dict[str, Path], work: Path) -> list[dict]:
    rows = []
    for n in (16, 256):
        for label, src in inputs.items():
            if label == "ramp":
                continue
            original = read_rgb(src)
            ours = [args.cli, str(src)]
            runs = {  # ours in linear light (the default) and in sRGB, as pngquant works
                "ours": lambda out: ours + [out, "--palette", f"adaptive:{n}"],
                "ours, sRGB": lambda out: ours + [out, "--palette", f"adaptive:{n}",
                                                  "--linear-light", "false"],
                "pngquant": lambda out: ["pngquant", "--force", "--output", out, str(n), str(src)],
            }
            times = {tool: [] for tool in runs}
            outs = {tool: work / f"{label}-{n}-{tool.replace(', ', '-')}.png" for tool in runs}
            for _ in range(args.repeat):  # alternated, so that a noisy moment hurts each
                for tool, argv in runs.items():
                    times[tool].append(timed(argv(str(outs[tool]))))
            for tool in runs:
                m = metrics(original, read_rgb(outs[tool]), args.sigma)
                rows.append({"colours": n, "image": label, "tool": tool,
                             "seconds": statistics.median(times[tool]), **m})
            print(f"quality_table: adaptive:{n} {label} done", file=sys.stderr)
    return rows


# ---- the report -------------------------------------------------------------------------------

def markdown(algos: list[dict], palettes: list[dict], args) -> str:
    out = []
    if algos:
        images = list(dict.fromkeys(r["image"] for r in algos))
        out.append(f"Blurred PSNR in linear light (dB) / SSIM of the blurred luma, sigma "
                   f"{args.sigma} px; images {args.width} px wide. Higher is better.\n")
        for spec in dict.fromkeys(r["palette"] for r in algos):
            out.append(f"**{spec}**\n")
            out.append("| | " + " | ".join(images) + " |")
            out.append("|---|" + "---|" * len(images))
            sel = [r for r in algos if r["palette"] == spec]
            for tool in dict.fromkeys(r["tool"] for r in sel):
                cells = []
                for im in images:
                    r = next((x for x in sel if x["tool"] == tool and x["image"] == im), None)
                    cells.append("" if r is None else f"{r['psnr_linear']:.2f} / {r['ssim']:.3f}")
                out.append(f"| {tool} | " + " | ".join(cells) + " |")
            out.append("")
    if palettes:
        out.append("Adaptive palettes against pngquant (its defaults: speed 4, dithered): blurred "
                   "PSNR linear / sRGB (dB), mean ΔE00 of the blurred images, whole-process "
                   f"seconds (median of {args.repeat}).\n")
        tools = list(dict.fromkeys(r["tool"] for r in palettes))
        out.append("| colours | image | " + " | ".join(tools) + " |")
        out.append("|---|---|" + "---|" * len(tools))
        for n in dict.fromkeys(r["colours"] for r in palettes):
            for im in dict.fromkeys(r["image"] for r in palettes):
                cells = []
                for tool in tools:
                    r = next(x for x in palettes if x["colours"] == n and x["image"] == im
                             and x["tool"] == tool)
                    cells.append(f"{r['psnr_linear']:.2f} / {r['psnr_srgb']:.2f}, "
                                 f"{r['de2000']:.2f}, {r['seconds']:.2f}")
                out.append(f"| {n} | {im} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def prepare_inputs(photos_dir: Path, width: int, work: Path) -> dict[str, Path]:
    inputs = {}
    for rel in PHOTOS:
        src = photos_dir / rel
        img = Image.open(src).convert("RGB")
        h = round(img.height * width / img.width)
        p = work / f"in-{Path(rel).stem}.png"
        img.resize((width, h), Image.LANCZOS).save(p, compress_level=1)
        inputs[Path(rel).stem] = p
    ramp = work / "in-ramp.png"
    Image.fromarray(quality.grey_ramp(width, max(64, width // 4))).save(ramp)
    inputs["ramp"] = ramp
    return inputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", required=True, help="the dither command-line program")
    ap.add_argument("--photos", required=True, help="mate-backgrounds' backgrounds/mate folder")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--sigma", type=float, default=1.5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--algorithms", action="store_true")
    ap.add_argument("--palettes", action="store_true")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True, help="Markdown output")
    args = ap.parse_args()
    check_ciede2000()
    work = Path(args.workdir)
    (work / "crops").mkdir(parents=True, exist_ok=True)
    inputs = prepare_inputs(Path(args.photos), args.width, work)
    algos = algorithm_table(args, inputs, work) if args.algorithms else []
    pals = palette_table(args, inputs, work) if args.palettes else []
    for spec in TABLE_PALETTES if algos else []:
        mosaic(work, spec, work / f"mosaic-{spec.replace(':', '')}.png")
    (work / "quality-table.json").write_text(json.dumps({"algorithms": algos, "palettes": pals},
                                                        indent=1))
    Path(args.out).write_text(markdown(algos, pals, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
