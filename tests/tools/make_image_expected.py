#!/usr/bin/python3
"""Dev script: regenerate tests/data/images/ (small test inputs and the
expected outputs made by Debian's python3-pil + numpy, an independent tool).

Run from the repository root with Debian's python:  /usr/bin/python3 tests/tools/make_image_expected.py

PNG inputs are written by a tiny encoder here (zlib + struct) so every colour
type / bit depth / interlace combination can be produced; JPEG inputs by PIL
(and ImageMagick `convert` for an Adobe YCCK file). Expected
decodes are Image.open(f) -> ImageOps.exif_transpose -> convert('RGB'), stored
as uint8 (H,W,3) .npy. Expected resizes are Image.resize((w,h), BILINEAR) of
the sample photos; large outputs are stored subsampled (every `stride`-th row
and column), listed in resize_cases.txt.
"""
import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "images")
SAMPLES = os.path.join(ROOT, "data", "samples")


def chunk(tag, data):
    c = tag + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


def pack_row(vals, bitdepth):
    """vals: 1-D array of samples (already interleaved)."""
    if bitdepth == 16:
        return np.asarray(vals, dtype=">u2").tobytes()
    if bitdepth == 8:
        return np.asarray(vals, dtype=np.uint8).tobytes()
    per = 8 // bitdepth
    out = bytearray()
    for i in range(0, len(vals), per):
        b = 0
        for j in range(per):
            v = int(vals[i + j]) if i + j < len(vals) else 0
            b |= v << (8 - bitdepth * (j + 1))
        out.append(b)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, bitdepth, palette=None, trns=None, interlace=False):
    """samples: (H, W, C) integer array of raw sample values."""
    h, w, c = samples.shape
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw.append(0)  # filter type None (libpng handles the others)
            raw += pack_row(row.reshape(-1), bitdepth)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bitdepth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        png += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    png += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def save_expected(name):
    im = ImageOps.exif_transpose(Image.open(os.path.join(OUT, name)))
    a = np.asarray(im.convert("RGB"), dtype=np.uint8)
    np.save(os.path.join(OUT, os.path.splitext(name)[0] + ".rgb.npy"), a)
    return a


def make_pngs(rng):
    W, H = 13, 9
    decode_list = []

    def add(name, *args, **kw):
        write_png(os.path.join(OUT, name), *args, **kw)
        decode_list.append(name)

    for bd in (1, 2, 4, 8):
        g = rng.randint(0, 1 << bd, size=(H, W, 1))
        add("g%d.png" % bd, g, 0, bd)
        add("p%d.png" % bd, g, 3, bd, palette=rng.randint(0, 256, size=(1 << bd, 3)))
    add("p4_i.png", rng.randint(0, 16, size=(H, W, 1)), 3, 4,
        palette=rng.randint(0, 256, size=(16, 3)), interlace=True)
    add("p8_trns.png", rng.randint(0, 200, size=(H, W, 1)), 3, 8,
        palette=rng.randint(0, 256, size=(200, 3)), trns=bytes(rng.randint(0, 256, size=37).astype(np.uint8)))
    # 16-bit gray: PIL opens it as mode I and convert('RGB') clips to 255,
    # so use values on both sides of 255.
    g16 = rng.randint(0, 600, size=(H, W, 1))
    add("g16.png", g16, 0, 16)
    add("g16_i.png", g16, 0, 16, interlace=True)
    add("g8_trns.png", rng.randint(0, 256, size=(H, W, 1)), 0, 8, trns=struct.pack(">H", 7))
    add("ga8.png", rng.randint(0, 256, size=(H, W, 2)), 4, 8)
    add("ga16.png", rng.randint(0, 65536, size=(H, W, 2)), 4, 16)
    add("rgb8.png", rng.randint(0, 256, size=(H, W, 3)), 2, 8)
    add("rgb8_i.png", rng.randint(0, 256, size=(H, W, 3)), 2, 8, interlace=True)
    add("rgb8_trns.png", rng.randint(0, 256, size=(H, W, 3)), 2, 8, trns=struct.pack(">HHH", 1, 2, 3))
    add("rgb16.png", rng.randint(0, 65536, size=(H, W, 3)), 2, 16)
    add("rgba8.png", rng.randint(0, 256, size=(H, W, 4)), 6, 8)
    add("rgba16.png", rng.randint(0, 65536, size=(H, W, 4)), 6, 16)
    add("rgba16_i.png", rng.randint(0, 65536, size=(H, W, 4)), 6, 16, interlace=True)
    add("ga8_i.png", rng.randint(0, 256, size=(3, 17, 2)), 4, 8, interlace=True)  # empty Adam7 passes
    add("rgb8_1x1_i.png", rng.randint(0, 256, size=(1, 1, 3)), 2, 8, interlace=True)
    for name in decode_list:
        save_expected(name)
    return decode_list


def tiff_orientation(order, value):
    """A minimal TIFF/EXIF block: IFD0 with one Orientation (0x0112) SHORT."""
    e = "<" if order == b"II" else ">"
    t = order + struct.pack(e + "HI", 42, 8)
    t += struct.pack(e + "H", 1)
    t += struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", value, 0)
    t += struct.pack(e + "I", 0)
    return b"Exif\x00\x00" + t


def make_jpegs(rng):
    names = []
    yy, xx = np.mgrid[0:15, 0:21]
    base = np.stack([xx * 12, yy * 17, (xx + yy) * 7], axis=-1) % 256
    base = (base + rng.randint(0, 40, size=base.shape)).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(base, "RGB")
    im.save(os.path.join(OUT, "rgb.jpg"), quality=90)
    im.save(os.path.join(OUT, "rgb444.jpg"), quality=90, subsampling=0)
    im.save(os.path.join(OUT, "rgb_prog.jpg"), quality=85, progressive=True)
    im.convert("L").save(os.path.join(OUT, "gray.jpg"), quality=90)
    cmyk = Image.fromarray(np.concatenate([base, rng.randint(0, 256, size=(15, 21, 1)).astype(np.uint8)], -1), "CMYK")
    cmyk.save(os.path.join(OUT, "cmyk.jpg"), quality=95)  # PIL writes Adobe transform 0 (plain CMYK)
    names += ["rgb.jpg", "rgb444.jpg", "rgb_prog.jpg", "gray.jpg", "cmyk.jpg"]
    # Adobe YCCK (transform 2) via ImageMagick
    tif = os.path.join(OUT, "tmp_cmyk.tif")
    cmyk.save(tif)
    subprocess.run(["convert", tif, "-quality", "95", os.path.join(OUT, "cmyk_ycck.jpg")], check=True)
    os.remove(tif)
    names.append("cmyk_ycck.jpg")
    small = Image.fromarray(base[:7, :12], "RGB")
    for order in (b"II", b"MM"):
        for o in range(1, 9):
            n = "exif_%s_%d.jpg" % (order.decode().lower(), o)
            small.save(os.path.join(OUT, n), quality=95, exif=tiff_orientation(order, o))
            got = Image.open(os.path.join(OUT, n)).getexif().get(0x0112)
            assert got == o, (n, got)
            names.append(n)
    # PNG eXIf chunk (PIL's exif_transpose honours it as well)
    for order, o in ((b"II", 6), (b"MM", 5)):
        n = "exif_png_%s_%d.png" % (order.decode().lower(), o)
        small.save(os.path.join(OUT, n), exif=tiff_orientation(order, o))
        assert Image.open(os.path.join(OUT, n)).getexif().get(0x0112) == o, n
        names.append(n)
    for n in names:
        save_expected(n)
    return names


def load_rgb(path):
    return Image.open(path).convert("RGB")


def make_resize(rng):
    yy, xx = np.mgrid[0:23, 0:37]
    up = np.stack([xx * 7, yy * 11, 255 - xx * 5], axis=-1) + rng.randint(-30, 30, size=(23, 37, 3))
    Image.fromarray(up.clip(0, 255).astype(np.uint8), "RGB").save(os.path.join(OUT, "up37x23.png"))
    cases = [  # source (relative to repo root), w, h, stride
        ("data/samples/chelsea.png", 448, 448, 3),
        ("data/samples/chelsea.png", 224, 224, 1),
        ("data/samples/chelsea.png", 96, 64, 1),
        ("data/samples/chelsea.png", 200, 300, 2),  # horizontal pass only
        ("data/samples/chelsea.png", 451, 150, 2),  # vertical pass only
        ("data/samples/chelsea.png", 300, 451, 3),  # down in x, up in y
        ("data/samples/chelsea.png", 1, 1, 1),  # whole image in one window
        ("data/samples/chelsea.png", 17, 913, 3),  # strong down in x, 3x up in y
        ("data/samples/astronaut.png", 480, 480, 3),
        ("data/samples/astronaut.png", 1000, 333, 4),
        ("tests/data/images/up37x23.png", 96, 80, 1),
        ("tests/data/images/up37x23.png", 5, 3, 1),
    ]
    lines = ["# source out_w out_h stride expected (PIL resize BILINEAR, rows/cols [::stride])"]
    for src, w, h, s in cases:
        out = np.asarray(load_rgb(os.path.join(ROOT, src)).resize((w, h), Image.BILINEAR))
        name = "resize_%s_%dx%d.npy" % (os.path.splitext(os.path.basename(src))[0], w, h)
        np.save(os.path.join(OUT, name), np.ascontiguousarray(out[::s, ::s]))
        lines.append("%s %d %d %d %s" % (src, w, h, s, name))
    with open(os.path.join(OUT, "resize_cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.RandomState(20240)
    names = make_pngs(rng) + make_jpegs(rng)
    with open(os.path.join(OUT, "decode_cases.txt"), "w") as f:
        f.write("# input  (expected: <input stem>.rgb.npy = PIL exif_transpose + convert('RGB'))\n")
        f.write("\n".join(names) + "\n")
    make_resize(rng)
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
