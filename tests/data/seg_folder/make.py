#!/usr/bin/python3
"""Writes this folder: the tiny example of `"dataset": "folder"` (configs/examples/folder_seg.json, tests).

6 RGB images of 24x24 px (not the config's image_size 16: they are resized when loaded) with one square
(class 1) or disc (class 2) each on a noisy background; masks as 8-bit grey class-index PNGs, except
f.png, a VOC-style palette PNG, and e.png, whose object outline is marked 255 (ignored, as VOC's border).
val.txt lists the validation split. Deterministic (numpy seed 0); PIL only.
"""
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def voc_palette():
    pal = []
    for k in range(256):
        r = g = b = 0
        c = k
        for bit in range(7, -1, -1):
            r |= (c & 1) << bit
            g |= ((c >> 1) & 1) << bit
            b |= ((c >> 2) & 1) << bit
            c >>= 3
        pal += [r, g, b]
    return pal


def main():
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(HERE, "images"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "masks"), exist_ok=True)
    yy, xx = np.mgrid[0:24, 0:24]
    for i, name in enumerate("abcdef"):
        cls = 1 + i % 2
        cy, cx, r = rng.integers(8, 16), rng.integers(8, 16), rng.integers(4, 7)
        inside = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r) if cls == 1 else (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img = rng.integers(0, 60, (24, 24, 3))
        img[inside] = [220, 60, 40] if cls == 1 else [40, 90, 230]
        Image.fromarray(img.astype(np.uint8), "RGB").save(os.path.join(HERE, "images", name + ".png"))
        mask = np.where(inside, cls, 0).astype(np.uint8)
        if name == "e":  # VOC marks object borders 255 ("void"): not learned, not scored
            border = inside & ~np.roll(inside, 1, 0) | inside & ~np.roll(inside, 1, 1)
            mask[border] = 255
        out = Image.fromarray(mask, "L")
        if name == "f":
            out = out.convert("P")
            out.putpalette(voc_palette())
        out.save(os.path.join(HERE, "masks", name + ".png"))
    with open(os.path.join(HERE, "val.txt"), "w") as fh:
        fh.write("# the validation split of configs/examples/folder_seg.json\nb\ne.png\n")


if __name__ == "__main__":
    main()
