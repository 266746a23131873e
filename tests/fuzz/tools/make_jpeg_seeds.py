#!/usr/bin/python3
"""Writes tests/fuzz/corpus/jpeg/ (seeds of the jpeg target) and tests/data/jpeg/ (fixtures of
tests/test_data.cpp's JPEG tests) with PIL (Debian's python3-pil): baseline, progressive, grey, 4:2:0 and CMYK
files, a smooth gradient as PNG and JPEG, and that JPEG cut in half. Deterministic (numpy seed 1)."""
import os

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")


def main():
    rng = np.random.default_rng(1)
    c = os.path.join(ROOT, "tests/fuzz/corpus/jpeg/")
    d = os.path.join(ROOT, "tests/data/jpeg/")
    os.makedirs(c, exist_ok=True)
    os.makedirs(d, exist_ok=True)
    img = Image.fromarray(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8), "RGB")
    img.save(c + "rgb_8x8_baseline.jpg", quality=90)
    img.save(c + "rgb_8x8_progressive.jpg", quality=90, progressive=True)
    img.convert("L").save(c + "grey_8x8.jpg", quality=90)
    Image.fromarray(rng.integers(0, 255, (9, 17, 3)).astype(np.uint8), "RGB").save(c + "rgb_17x9_420.jpg", quality=75,
                                                                                   subsampling=2)
    img.convert("CMYK").save(c + "cmyk_8x8.jpg")
    yy, xx = np.mgrid[0:16, 0:24]
    a = Image.fromarray(np.stack([xx * 10, yy * 15, 255 - xx * 10], -1).astype(np.uint8), "RGB")
    a.save(d + "gradient.png")
    a.save(d + "gradient.jpg", quality=95)
    a.save(d + "gradient_progressive.jpg", quality=95, progressive=True)
    a.convert("L").save(d + "gradient_grey.jpg", quality=95)
    a.convert("CMYK").save(d + "gradient_cmyk.jpg", quality=95)
    with open(d + "gradient.jpg", "rb") as fh:
        b = fh.read()
    with open(d + "gradient_truncated.jpg", "wb") as fh:
        fh.write(b[: len(b) // 2])


if __name__ == "__main__":
    main()
