#!/usr/bin/python3
"""The torch.nn model of a convlab config, and convlab checkpoints both ways (PyTorch 1.13, torchvision 0.14).

usage:
  /usr/bin/python3 tools/torch_model.py show CONFIG [--set P=V ...]
      prints the torch.nn model built from CONFIG and its parameter count
  /usr/bin/python3 tools/torch_model.py export CONFIG -o model.safetensors [--plain] [--seed S]
      writes the torch model's freshly initialised weights as a checkpoint convlab loads (with the config in
      its metadata, or with --plain none: a bare state dict, for `convlab eval|predict|erf|deform-viz --config`)
  /usr/bin/python3 tools/torch_model.py check CHECKPOINT IMAGE.png [--config CONFIG] [--convlab build/convlab]
      loads a convlab checkpoint into the torch model, runs IMAGE through it (eval mode) and through
      `convlab predict --probabilities`, and prints the largest difference of the class probabilities
  /usr/bin/python3 tools/torch_model.py fixture --out tests/data/torch_tiny
      the small committed test fixture: a config using every layer type of the registry, a plain PyTorch
      state dict (no metadata), an input PNG and PyTorch's logits for it (tests/test_torch_interop.cpp)

The model mirrors convlab's module tree, so state_dict names are convlab's: a Sequential numbered from 0,
residual blocks hold "body", separable_conv2d "depthwise" / "pointwise", resize_conv2d "conv",
deform_conv2d "weight", "bias", "offset" (and "mask" for v2) where offset / mask are convs with the layer's
kernel, stride, padding and dilation (torchvision.ops.deform_conv2d does the sampling; mask = sigmoid(conv)).
Checkpoints: safetensors, F32, num_batches_tracked as I64 shape [] (older convlab files hold it as F32 [1]:
read both). Only the Python standard library, numpy, PIL, torch and torchvision are used (no safetensors
package: the format is 8 bytes of header length, a JSON header and the raw bytes).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.ops

# ------------------------------------------------------------------------------------------ configs


def merge(base, over):
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if k in out else v
    return out


def load_config(path, sets=()):
    """A config with "extends" resolved (relative to the file; objects merge, lists are replaced) and --set."""
    with open(path) as fh:
        cfg = json.load(fh)
    if "extends" in cfg:
        parent = load_config(os.path.join(os.path.dirname(path), cfg.pop("extends")))
        cfg = merge(parent, cfg)
    for s in sets:
        apply_set(cfg, s)
    return cfg


def apply_set(cfg, assignment):
    import re
    path, text = assignment.split("=", 1)
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = cfg
    for p in parts[:-1]:
        node = node[int(p[1:-1])] if p.startswith("[") else node.setdefault(p, {})
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ------------------------------------------------------------------------------------------ modules


class Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class SeparableConv2d(nn.Module):
    def __init__(self, cin, e):
        super().__init__()
        mult, bias = e.get("multiplier", 1), e.get("bias", True)
        self.depthwise = nn.Conv2d(cin, cin * mult, pair(e["kernel_size"]), pair(e.get("stride", 1)),
                                   pair(e.get("padding", 0)), pair(e.get("dilation", 1)), groups=cin, bias=bias)
        self.pointwise = nn.Conv2d(cin * mult, e["out_channels"], 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class DeformConv2d(nn.Module):
    """convlab's deform_conv2d layer: offsets (and the v2 mask) predicted by convs initialised to zero."""

    def __init__(self, cin, e):
        super().__init__()
        k = pair(e["kernel_size"])
        self.stride, self.padding = pair(e.get("stride", 1)), pair(e.get("padding", 0))
        self.dilation = pair(e.get("dilation", 1))
        groups, og = e.get("groups", 1), e.get("offset_groups", 1)
        cout = e["out_channels"]
        ref = nn.Conv2d(cin, cout, k, groups=groups, bias=e.get("bias", True))  # PyTorch's default init
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.bias = nn.Parameter(ref.bias.detach().clone()) if ref.bias is not None else None
        taps = k[0] * k[1] * og

        def predictor(channels):
            c = nn.Conv2d(cin, channels, k, self.stride, self.padding, self.dilation)
            nn.init.zeros_(c.weight)
            nn.init.zeros_(c.bias)
            return c

        self.offset = predictor(2 * taps)
        self.mask = predictor(taps) if e.get("modulated", False) else None

    def forward(self, x):
        mask = torch.sigmoid(self.mask(x)) if self.mask is not None else None
        return torchvision.ops.deform_conv2d(x, self.offset(x), self.weight, self.bias, self.stride, self.padding,
                                             self.dilation, mask)


class Upsample(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.size = pair(e["size"]) if "size" in e else None
        self.scale = e.get("scale_factor") if self.size is None else None
        self.mode, self.align = e.get("mode", "nearest"), e.get("align_corners", False)

    def forward(self, x):
        return F.interpolate(x, size=self.size, scale_factor=self.scale, mode=self.mode,
                             align_corners=self.align if self.mode == "bilinear" else None)


class ResizeConv2d(nn.Module):
    def __init__(self, cin, e):
        super().__init__()
        up = dict(e) if ("size" in e or "scale_factor" in e) else dict(e, scale_factor=2.0)
        self.up = Upsample(up)
        self.conv = conv2d(cin, e)

    def forward(self, x):
        return self.conv(self.up(x))


def conv2d(cin, e):
    k, d = pair(e["kernel_size"]), pair(e.get("dilation", 1))
    p = e.get("padding", 0)
    if p == "valid":
        p = 0
    elif p == "same":
        p = tuple(d[a] * (k[a] - 1) // 2 for a in range(2))
    return nn.Conv2d(cin, e["out_channels"], k, pair(e.get("stride", 1)), pair(p), d, e.get("groups", 1),
                     e.get("bias", True))


def make_layer(e, shape):
    """One config entry -> module, given the input shape [N, C, ...]."""
    t, cin = e["type"], shape[1]
    if t == "conv2d":
        return conv2d(cin, e)
    if t == "conv_transpose2d":
        return nn.ConvTranspose2d(cin, e["out_channels"], pair(e["kernel_size"]), pair(e.get("stride", 1)),
                                  pair(e.get("padding", 0)), pair(e.get("output_padding", 0)), e.get("groups", 1),
                                  e.get("bias", True), pair(e.get("dilation", 1)))
    if t == "separable_conv2d":
        return SeparableConv2d(cin, e)
    if t == "deform_conv2d":
        return DeformConv2d(cin, e)
    if t == "resize_conv2d":
        return ResizeConv2d(cin, e)
    if t == "upsample":
        return Upsample(e)
    if t == "max_pool2d":
        return nn.MaxPool2d(pair(e["kernel_size"]), pair(e["stride"]) if "stride" in e else None,
                            pair(e.get("padding", 0)), pair(e.get("dilation", 1)), ceil_mode=e.get("ceil_mode", False))
    if t == "avg_pool2d":
        return nn.AvgPool2d(pair(e["kernel_size"]), pair(e["stride"]) if "stride" in e else None,
                            pair(e.get("padding", 0)), e.get("ceil_mode", False), e.get("count_include_pad", True))
    if t == "batch_norm2d":
        return nn.BatchNorm2d(e.get("num_features", cin), e.get("eps", 1e-5), e.get("momentum", 0.1),
                              e.get("affine", True), e.get("track_running_stats", True))
    if t == "relu":
        return nn.ReLU()
    if t == "leaky_relu":
        return nn.LeakyReLU(e.get("negative_slope", 0.01))
    if t == "tanh":
        return nn.Tanh()
    if t == "sigmoid":
        return nn.Sigmoid()
    if t == "identity":
        return nn.Identity()
    if t == "flatten":
        return nn.Flatten()
    if t == "linear":
        return nn.Linear(shape[1], e["out_features"], e.get("bias", True))
    if t == "dropout":
        return nn.Dropout(e.get("p", 0.5))
    raise SystemExit("torch_model.py: layer type '%s' has no torch equivalent here (add it to make_layer)" % t)


def build_sequential(layers, shape):
    """nn.Sequential of the config's layers (repeat expanded, sequential / residual nested); returns the
    model and its output shape (found by running zeros through each layer, as convlab's shape-only pass)."""
    seq = nn.Sequential()
    for e in layers:
        for _ in range(e.get("repeat", 1)):
            if e["type"] in ("sequential", "residual"):
                body, out = build_sequential(e["layers"], shape)
                m = body if e["type"] == "sequential" else Residual(body)
            else:
                m = make_layer(e, shape)
            seq.add_module(str(len(seq)), m)
            with torch.no_grad():
                was = m.training
                m.eval()
                shape = list(m(torch.zeros(shape)).shape)
                m.train(was)
    return seq, shape


def input_shape(cfg):
    """What convlab feeds the network: RGB image_size (or crop) squares; MNIST digits for a classifier."""
    if cfg.get("task") == "classification":
        return [1, 1, 28, 28]
    if cfg.get("task") == "gan":
        raise SystemExit("torch_model.py: GAN configs are built by tools/torch_bench.py (dcgan_nets)")
    s = cfg.get("data", {}).get("crop") or cfg.get("data", {}).get("image_size", 64)
    return [1, 3, s, s]


def build_model(cfg, seed=0):
    torch.manual_seed(seed)
    model, _ = build_sequential(cfg["model"]["layers"], input_shape(cfg))
    return model


# ------------------------------------------------------------------------------------------ checkpoints


def read_safetensors(path):
    """(tensors by name, metadata) of a safetensors file: F32 and I64 tensors."""
    with open(path, "rb") as fh:
        raw = fh.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, h in header.items():
        dtype = {"F32": np.float32, "I64": np.int64}[h["dtype"]]
        b, e = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=dtype).reshape(h["shape"]).copy())
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """convlab's layout: F32, num_batches_tracked as I64 [] (as torch's state_dict holds it)."""
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        if k.endswith("num_batches_tracked"):
            a, dtype = v.detach().cpu().numpy().astype("<i8").reshape(()), "I64"
        else:
            a, dtype = v.detach().cpu().numpy().astype("<f4"), "F32"
        b = a.tobytes()
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def load_convlab(model, path):
    """Loads a convlab checkpoint into the torch model (strict: every name, every shape)."""
    tensors, meta = read_safetensors(path)
    for k in list(tensors):
        if k.endswith("num_batches_tracked"):
            tensors[k] = tensors[k].reshape(()).to(torch.int64)  # old convlab files: F32 [1]
    model.load_state_dict(tensors, strict=True)
    return meta


def save_convlab(model, path, cfg=None):
    meta = {"format": "convlab-segmentation", "config": json.dumps(cfg)} if cfg is not None else None
    write_safetensors(path, model.state_dict(), meta)


def read_image(path):
    from PIL import Image
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0  # as convlab: RGB in [0, 1]
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


# ------------------------------------------------------------------------------------------ commands


def cmd_show(a):
    cfg = load_config(a.config, a.set)
    m = build_model(cfg)
    print(m)
    print("parameters:", sum(p.numel() for p in m.parameters()))


def cmd_export(a):
    cfg = load_config(a.config, a.set)
    m = build_model(cfg, a.seed)
    save_convlab(m, a.output, None if a.plain else cfg)
    print("wrote", a.output)


def cmd_check(a):
    if a.config:
        cfg = load_config(a.config, a.set)
    else:
        _, meta = read_safetensors(a.checkpoint)
        if "config" not in meta:
            raise SystemExit("torch_model.py: %s holds no config: give --config" % a.checkpoint)
        cfg = json.loads(meta["config"])
    m = build_model(cfg)
    load_convlab(m, a.checkpoint)
    m.eval()
    with torch.no_grad():
        want = torch.softmax(m(read_image(a.image)), dim=1)[0]
    with tempfile.TemporaryDirectory() as d:
        mask, probs = os.path.join(d, "m.png"), os.path.join(d, "m_probabilities.safetensors")
        cmd = [a.convlab, "predict", "--checkpoint", a.checkpoint, a.image, "-o", mask, "--probabilities"]
        if a.config:
            cmd += ["--config", a.config] + [x for s in a.set for x in ("--set", s)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        got, _ = read_safetensors(probs)
    got = got["probabilities"]
    diff = (got - want).abs().max().item()
    agree = (got.argmax(0) == want.argmax(0)).float().mean().item()
    print("max |p_convlab - p_torch| = %.3g over %s; argmax agrees on %.2f%% of pixels" %
          (diff, list(got.shape), 100 * agree))
    return 0 if diff <= a.tol else 1


# Every layer type of layers/registry.cpp that maps an image to an image, in one small segmentation net
# (flatten / linear / dropout are classifier layers: checked by hand with `show`, not in this fixture).
FIXTURE_CONFIG = {
    "name": "torch_tiny",
    "description": "tests/data/torch_tiny: every image layer type, for the PyTorch interop test",
    "task": "segmentation",
    "seed": 0,
    "data": {"dataset": "shapes", "image_size": 16, "val_size": 2, "train_size": 4},
    "train": {"steps": 1, "batch_size": 2},
    "model": {"layers": [
        {"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 2, "dilation": 2, "bias": False},
        {"type": "batch_norm2d"},
        {"type": "leaky_relu", "negative_slope": 0.1},
        {"type": "deform_conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1, "modulated": True},
        {"type": "relu"},
        {"type": "residual", "layers": [
            {"type": "separable_conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1, "multiplier": 2},
            {"type": "tanh"}]},
        {"type": "max_pool2d", "kernel_size": 2},
        {"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 2},
        {"type": "avg_pool2d", "kernel_size": 2},
        {"type": "conv_transpose2d", "out_channels": 6, "kernel_size": 4, "stride": 2, "padding": 1},
        {"type": "sigmoid"},
        {"type": "resize_conv2d", "out_channels": 5, "kernel_size": 3, "padding": 1},
        {"type": "upsample", "size": [16, 16], "mode": "bilinear"},
        {"type": "sequential", "layers": [{"type": "identity"}, {"type": "conv2d", "out_channels": 4, "kernel_size": 1}]},
    ]},
}


def cmd_fixture(a):
    os.makedirs(a.out, exist_ok=True)
    cfg = FIXTURE_CONFIG
    m = build_model(cfg, seed=3)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for mod in m.modules():  # non-zero offsets and masks, so the deformable path is exercised
            if isinstance(mod, DeformConv2d):
                mod.offset.weight.copy_(0.3 * torch.randn(mod.offset.weight.shape, generator=g))
                mod.mask.weight.copy_(0.3 * torch.randn(mod.mask.weight.shape, generator=g))
        m.train()
        for _ in range(3):  # BatchNorm statistics and num_batches_tracked that are not the defaults
            m(torch.rand(2, 3, 16, 16, generator=g))
    m.eval()
    img = (torch.rand(16, 16, 3, generator=g) * 255).round().to(torch.uint8)
    from PIL import Image
    Image.fromarray(img.numpy(), "RGB").save(os.path.join(a.out, "input.png"))
    with torch.no_grad():
        logits = m(read_image(os.path.join(a.out, "input.png")))
    with open(os.path.join(a.out, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=1)
        fh.write("\n")
    write_safetensors(os.path.join(a.out, "model.safetensors"), m.state_dict())  # plain: no metadata
    write_safetensors(os.path.join(a.out, "expected_logits.safetensors"), {"logits": logits})
    print("wrote", a.out, "(config.json, model.safetensors, input.png, expected_logits.safetensors)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("show")
    s.add_argument("config")
    s.add_argument("--set", action="append", default=[])
    s.set_defaults(fn=cmd_show)
    s = sub.add_parser("export")
    s.add_argument("config")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--plain", action="store_true", help="no metadata: a bare PyTorch state dict")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--set", action="append", default=[])
    s.set_defaults(fn=cmd_export)
    s = sub.add_parser("check")
    s.add_argument("checkpoint")
    s.add_argument("image")
    s.add_argument("--config")
    s.add_argument("--set", action="append", default=[])
    s.add_argument("--convlab", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "convlab"))
    s.add_argument("--tol", type=float, default=1e-4)
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("fixture")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_fixture)
    a = p.parse_args()
    sys.exit(a.fn(a) or 0)


if __name__ == "__main__":
    main()
