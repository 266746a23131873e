#!/usr/bin/env python3
"""tests/fuzz/tools/make_seeds.py: writes the small generated seeds of tests/fuzz/corpus/ (standard library only).

  image/*.png        every PNG colour type and bit depth stb decodes, all five row filters, Adam7 interlacing,
                     a palette with tRNS
  safetensors/*      valid files in convlab's layout (u64 header length, JSON header padded with spaces to a
                     multiple of 8, little-endian F32 data; num_batches_tracked as I64 [] like PyTorch, and as an
                     old convlab F32 [1]), with and without __metadata__, a 0-d and an empty tensor
safetensors/convlab_* were written by convlab itself (model and optimizer checkpoints of a one-step run of
plain_seg with model.layers=[{"type":"conv2d","out_channels":6,"kernel_size":1}], image_size 16).
The config, set and op_case seeds are copies of shipped
configs, golden cases and hand-written assignments. Usage: tests/fuzz/tools/make_seeds.py (from anywhere).
"""
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(w, h, colour_type, depth, rows, interlace=0, extra=b"", filters=(0,)):
    """rows(x, y) -> tuple of samples for pixel (x, y); packed MSB first for depth < 8."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]

    def scanlines(xs, ys):
        out = b""
        bpp = max(1, channels * depth // 8)
        for i, y in enumerate(ys):
            samples = [s for x in xs for s in rows(x, y)]
            if depth < 8:
                bits, raw = "", bytearray()
                for s in samples:
                    bits += format(s, "0%db" % depth)
                bits += "0" * (-len(bits) % 8)
                raw = bytes(int(bits[k:k + 8], 2) for k in range(0, len(bits), 8))
            elif depth == 8:
                raw = bytes(samples)
            else:
                raw = b"".join(struct.pack(">H", s) for s in samples)
            ftype = filters[i % len(filters)]
            prev = out_prev[0] if out_prev[0] is not None else bytes(len(raw))
            enc = bytearray()
            for k, v in enumerate(raw):
                a = raw[k - bpp] if k >= bpp else 0
                b = prev[k]
                c = prev[k - bpp] if k >= bpp else 0
                if ftype == 0: p = 0
                elif ftype == 1: p = a
                elif ftype == 2: p = b
                elif ftype == 3: p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                enc.append((v - p) & 0xFF)
            out += bytes([ftype]) + bytes(enc)
            out_prev[0] = raw
        return out

    out_prev = [None]
    if interlace:
        data = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            xs, ys = list(range(x0, w, dx)), list(range(y0, h, dy))
            if xs and ys:
                out_prev[0] = None
                data += scanlines(xs, ys)
    else:
        data = scanlines(list(range(w)), list(range(h)))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(data, 9)) +
            chunk(b"IEND", b""))


def write(rel, data):
    path = os.path.join(CORPUS, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def images():
    m8 = lambda x, y: (x * 37 + y * 11) & 0xFF
    write("image/grey8_5x4_filters.png", png(5, 4, 0, 8, lambda x, y: (m8(x, y),), filters=(0, 1, 2, 3, 4)))
    write("image/grey1_9x3.png", png(9, 3, 0, 1, lambda x, y: ((x + y) & 1,)))
    write("image/grey4_5x2.png", png(5, 2, 0, 4, lambda x, y: ((x * 3 + y) & 15,)))
    write("image/grey16_3x3.png", png(3, 3, 0, 16, lambda x, y: (x * 20000 + y * 999,)))
    write("image/rgb8_4x3_paeth.png", png(4, 3, 2, 8, lambda x, y: (m8(x, y), x * 60, y * 80), filters=(4, 3)))
    write("image/rgb16_2x2.png", png(2, 2, 2, 16, lambda x, y: (x * 65535, y * 30000, 12345)))
    pal = chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])) + chunk(b"tRNS", bytes([0, 128]))
    write("image/palette2_6x3_trns.png", png(6, 3, 3, 2, lambda x, y: ((x + y) % 4,), extra=pal))
    write("image/greyalpha8_3x2.png", png(3, 2, 4, 8, lambda x, y: (m8(x, y), 200)))
    write("image/rgba8_3x3_sub.png", png(3, 3, 6, 8, lambda x, y: (x * 80, y * 80, 7, 255 - x), filters=(1,)))
    write("image/rgb8_9x9_adam7.png", png(9, 9, 2, 8, lambda x, y: (m8(x, y), x * 25, y * 25), interlace=1,
                                          filters=(0, 2, 4)))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, shape, values in tensors:
        begin = len(data)
        i64 = name.endswith("num_batches_tracked") and shape == []  # PyTorch's int64 counter
        data += struct.pack("<%d%s" % (len(values), "q" if i64 else "f"), *values)
        header[name] = {"dtype": "I64" if i64 else "F32", "shape": shape, "data_offsets": [begin, len(data)]}
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def checkpoints():
    write("safetensors/one_tensor", safetensors([("weight", [2, 3], [0.5 * i for i in range(6)])]))
    write("safetensors/conv_bn_metadata", safetensors(
        [("0.weight", [2, 1, 2, 2], [0.1 * i for i in range(8)]), ("1.weight", [2], [1, 1]), ("1.bias", [2], [0, 0]),
         ("1.running_mean", [2], [0, 0]), ("1.running_var", [2], [1, 1]), ("1.num_batches_tracked", [], [3])],
        {"format": "pt", "step": "1"}))
    write("safetensors/bn_counter_old_f32", safetensors([("1.num_batches_tracked", [1], [7])]))
    write("safetensors/empty_tensor", safetensors([("a", [0, 4], []), ("b", [1], [2.5])], {}))
    write("safetensors/no_tensors", safetensors([], {"note": "empty"}))


if __name__ == "__main__":
    images()
    checkpoints()
