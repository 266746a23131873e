#!/usr/bin/python3
"""Golden op cases for convlab's upsample, max_pool2d and avg_pool2d, from PyTorch 1.13.

usage: /usr/bin/python3 tools/gen_golden_resample.py [--out DIR]

Writes DIR/5NN_<name>.case.json + DIR/5NN_<name>.expected.json (default DIR: tests/golden), numbered
500-599 so they sit beside tools/gen_golden.py's cases without clashing; re-running removes only the
old 5NN_* files. Formats are those of shared/spec/op-case.md and tools/gen_golden.py:
  case      {"op": ..., <fields>, "tensors": {"input": {...}, "grad_output": {...}?}}
  expected  {"output": {"shape", "data"}, "grads": {"input": {"shape", "data"}}}, computed in float64
            from the float32 case values (grad_output all ones when the case has none);
  malformed {"error": true, "why": "..."}: convlab must refuse the case.
Op fields map to PyTorch as follows:
  upsample    F.interpolate(input, size, scale_factor, mode, align_corners)
  max_pool2d  F.max_pool2d(input, kernel_size, stride (default kernel_size), padding, dilation, ceil_mode)
  avg_pool2d  F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad)

Checks done on every run (the script fails if one does not hold):
  - no valid nearest case uses an inexact scale factor that lands on out == in or out == 2*in (there
    PyTorch's backward is not the gradient of its forward, and convlab's is; see docs/ops/upsample.md);
  - each valid case gives the same output and input gradient in float32 as in float64 (within float32
    rounding), so the golden does not depend on which precision PyTorch picked indices in (nearest and
    bilinear source indices are computed from a float32 ratio, max pooling compares values);
  - each malformed case that PyTorch can judge is refused by PyTorch too.
Case values are multiples of 1/64 (exact in float32). Max-pool inputs are distinct values unless the
case name says "ties", so every argmax is unambiguous. Each case draws from its own generator seeded by
its name, so adding or removing a case does not change the others.
"""
import argparse
import json
import os
import random
import re
import zlib

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST = 500
FIELDS = {
    "upsample": ("mode", "size", "scale_factor", "align_corners"),
    "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
}


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def values(name, n, distinct=False):
    """n multiples of 1/64 in [-1, 1] (distinct ones, spread wider, when asked)."""
    rng = random.Random(zlib.crc32(name.encode()))
    if distinct:
        return [v / 64.0 for v in rng.sample(range(-8 * 64, 8 * 64 + 1), n)]
    return [rng.randint(-64, 64) / 64.0 for _ in range(n)]


def run(case, dtype):
    """Forward + backward of a case in PyTorch; returns (output, grad_input) tensors."""
    t = case["tensors"]
    x = torch.tensor(t["input"]["data"], dtype=dtype).reshape(t["input"]["shape"]).requires_grad_(True)
    f = {k: case[k] for k in FIELDS[case["op"]] if k in case}
    if case["op"] == "upsample":
        out = F.interpolate(x, size=f.get("size"), scale_factor=f.get("scale_factor"),
                            mode=f.get("mode", "nearest"), align_corners=f.get("align_corners"))
    elif case["op"] == "max_pool2d":
        out = F.max_pool2d(x, f["kernel_size"], f.get("stride"), f.get("padding", 0), f.get("dilation", 1),
                           f.get("ceil_mode", False))
    elif case["op"] == "avg_pool2d":
        out = F.avg_pool2d(x, f["kernel_size"], f.get("stride"), f.get("padding", 0), f.get("ceil_mode", False),
                           f.get("count_include_pad", True))
    else:
        raise ValueError(case["op"])
    if "grad_output" in t:
        g = torch.tensor(t["grad_output"]["data"], dtype=dtype).reshape(t["grad_output"]["shape"])
    else:
        g = torch.ones_like(out)
    if g.shape != out.shape:  # refuse rather than broadcast
        raise ValueError("grad_output %s vs output %s" % (list(g.shape), list(out.shape)))
    (out * g).sum().backward()
    return out.detach(), x.grad


def nearest_edge(case):
    """An inexact scale factor landing on out == in or out == 2*in: PyTorch 1.13's nearest backward then is not
    the adjoint of its forward (see core/upsample.cpp), and convlab deliberately differs there."""
    if case["op"] != "upsample" or case.get("mode", "nearest") != "nearest" or "scale_factor" not in case:
        return False
    sf = case["scale_factor"] if isinstance(case["scale_factor"], list) else [case["scale_factor"]] * 2
    ins = case["tensors"]["input"]["shape"][2:]
    return any(int(n * s) in (n, 2 * n) and float(s) not in (1.0, 2.0) for n, s in zip(ins, sf))


def evaluate(case):
    assert not nearest_edge(case), "nearest with an inexact scale on out == in or 2*in: PyTorch's grads disagree"
    out, gx = run(case, torch.float64)
    out32, gx32 = run(case, torch.float32)
    for a, b, what in ((out, out32, "output"), (gx, gx32, "grad input")):
        assert a.shape == b.shape, (what, a.shape, b.shape)
        err = (a - b.double()).abs().max().item() if a.numel() else 0.0
        assert err <= 1e-5 * (1 + a.abs().max().item()), ("float32 and float64 differ", what, err)
    tj = lambda t: {"shape": list(t.shape), "data": t.flatten().tolist()}
    return {"output": tj(out), "grads": {"input": tj(gx)}}


def torch_refuses(case):
    try:
        run(case, torch.float64)
        return False
    except (RuntimeError, ValueError, TypeError, NotImplementedError, KeyError, IndexError):
        return True


def case_text(case):
    """One field per line, one tensor per line (the layout of tools/gen_golden.py's cases)."""
    lines = ["{"]
    for k, v in case.items():
        if k != "tensors":
            lines.append("  %s: %s," % (json.dumps(k), json.dumps(v)))
    lines.append('  "tensors": {')
    body = []
    for n, t in case["tensors"].items():
        data = ", ".join(repr(float(v)) for v in t["data"])
        body.append('    %s: {"shape": %s, "data": [%s]}' % (json.dumps(n), json.dumps(t["shape"]), data))
    lines.append(",\n".join(body))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


class Golden:
    def __init__(self):
        self.items = []  # (name, text, expected)

    def add(self, name, case):
        assert all(name != n for n, _, _ in self.items), name
        self.items.append((name, case_text(case), evaluate(case)))

    def bad(self, name, case, why, torch_check=True):
        assert name.startswith("bad-"), name
        if torch_check:
            assert torch_refuses(case), "%s: PyTorch runs this case" % name
        self.items.append((name, case_text(case), {"error": True, "why": why}))

    def write(self, out):
        assert len(self.items) <= 100, "numbers 500-599 only"
        os.makedirs(out, exist_ok=True)
        for f in os.listdir(out):
            if re.match(r"5\d\d_.*\.(case|expected)\.json$", f):
                os.remove(os.path.join(out, f))
        for i, (name, text, exp) in enumerate(self.items):
            stem = os.path.join(out, "%03d_%s" % (FIRST + i, name))
            with open(stem + ".case.json", "w") as fh:
                fh.write(text)
            with open(stem + ".expected.json", "w") as fh:
                fh.write(json.dumps(exp, separators=(",", ":")) + "\n")


def make(name, op, shape, out_shape=None, distinct=False, **fields):
    """A case on a random input; with out_shape, a random grad_output of that shape too."""
    case = {"op": op}
    case.update(fields)
    case["tensors"] = {"input": {"shape": list(shape), "data": values(name, numel(shape), distinct)}}
    if out_shape is not None:
        case["tensors"]["grad_output"] = {"shape": list(out_shape),
                                          "data": values(name + "/grad", numel(out_shape))}
    return case


def add_upsample(G):
    u = lambda name, shape, out, **kw: G.add(name, make(name, "upsample", shape, out, **kw))
    u("upsample-nearest-x2", [1, 2, 3, 3], [1, 2, 6, 6], scale_factor=2)
    u("upsample-nearest-size-5x7", [1, 1, 3, 4], [1, 1, 5, 7], size=[5, 7])
    u("upsample-nearest-scale-pair-1.5-0.5", [1, 1, 4, 6], [1, 1, 6, 3], mode="nearest", scale_factor=[1.5, 0.5])
    u("upsample-nearest-size-down-2x3", [1, 2, 5, 7], [1, 2, 2, 3], size=[2, 3])
    u("upsample-nearest-x3-batch2-no-grad-output", [2, 1, 2, 3], None, scale_factor=3.0)
    u("upsample-bilinear-x2", [1, 2, 3, 3], [1, 2, 6, 6], mode="bilinear", scale_factor=2)
    u("upsample-bilinear-x2-align-corners", [1, 2, 3, 3], [1, 2, 6, 6], mode="bilinear", scale_factor=2,
      align_corners=True)
    u("upsample-bilinear-size-7x5", [1, 1, 3, 4], [1, 1, 7, 5], mode="bilinear", size=[7, 5], align_corners=False)
    u("upsample-bilinear-size-7x5-align-corners", [1, 1, 3, 4], [1, 1, 7, 5], mode="bilinear", size=[7, 5],
      align_corners=True)
    u("upsample-bilinear-scale-1.7", [1, 2, 3, 5], [1, 2, 5, 8], mode="bilinear", scale_factor=1.7)
    u("upsample-bilinear-scale-pair-0.6-1.25-down", [1, 1, 5, 4], [1, 1, 3, 5], mode="bilinear",
      scale_factor=[0.6, 1.25])
    u("upsample-bilinear-size-1x4-align-corners", [1, 1, 3, 3], [1, 1, 1, 4], mode="bilinear", size=[1, 4],
      align_corners=True)
    u("upsample-bilinear-scale-1.1-same-size", [1, 1, 4, 4], [1, 1, 4, 4], mode="bilinear", scale_factor=1.1)


def add_pool(G):
    m = lambda name, shape, out, **kw: G.add(name, make(name, "max_pool2d", shape, out, distinct=True, **kw))
    m("maxpool-k2", [1, 2, 4, 4], [1, 2, 2, 2], kernel_size=2)
    m("maxpool-k3-s2-p1", [1, 1, 5, 6], [1, 1, 3, 3], kernel_size=3, stride=2, padding=1)
    m("maxpool-k3-s2-ceil", [1, 1, 6, 6], [1, 1, 3, 3], kernel_size=3, stride=2, ceil_mode=True)
    m("maxpool-k3-d2-p1", [1, 2, 6, 5], [1, 2, 4, 3], kernel_size=3, stride=1, padding=1, dilation=2)
    m("maxpool-pairs-ceil", [2, 1, 5, 7], [2, 1, 6, 4], kernel_size=[2, 3], stride=[1, 2], padding=[1, 1],
      ceil_mode=True)
    ties = make("maxpool-ties-first-wins", "max_pool2d", [1, 1, 4, 4], [1, 1, 3, 3], kernel_size=2, stride=1)
    ties["tensors"]["input"]["data"] = [0.5, 0.5, 0.0, 1.0, 0.5, 0.25, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0,
                                        -1.0, 0.0, 0.0, -0.5]
    G.add("maxpool-ties-first-wins", ties)
    a = lambda name, shape, out, **kw: G.add(name, make(name, "avg_pool2d", shape, out, **kw))
    a("avgpool-k2", [1, 2, 4, 4], [1, 2, 2, 2], kernel_size=2)
    a("avgpool-k3-s2-p1", [1, 1, 5, 6], [1, 1, 3, 3], kernel_size=3, stride=2, padding=1)
    a("avgpool-k3-s2-p1-exclude-pad", [1, 1, 5, 6], [1, 1, 3, 3], kernel_size=3, stride=2, padding=1,
      count_include_pad=False)
    a("avgpool-k3-s2-p1-ceil", [1, 1, 6, 6], [1, 1, 4, 4], kernel_size=3, stride=2, padding=1, ceil_mode=True)
    a("avgpool-pairs-ceil-exclude-pad", [2, 1, 5, 7], [2, 1, 6, 4], kernel_size=[2, 3], stride=[1, 2],
      padding=[1, 1], ceil_mode=True, count_include_pad=False)
    a("avgpool-k2x3-s1-p-pair-1-0-no-grad-output", [1, 2, 3, 4], None, kernel_size=[2, 3], stride=1,
      padding=[1, 0])


def add_malformed(G):
    up = make("bad-base-upsample", "upsample", [1, 1, 4, 4], None, mode="bilinear", scale_factor=2)
    mp = make("bad-base-maxpool", "max_pool2d", [1, 1, 4, 4], None, distinct=True, kernel_size=2)
    ap = make("bad-base-avgpool", "avg_pool2d", [1, 1, 4, 4], None, kernel_size=2)

    def mut(base, tensors=None, drop=(), **fields):
        c = json.loads(json.dumps(base))
        for k in drop:
            c.pop(k)
        t = c.pop("tensors")
        c.update(fields)
        t.update(tensors or {})
        c["tensors"] = t
        return c

    B = G.bad
    B("bad-upsample-size-and-scale", mut(up, size=[8, 8]), "give exactly one of size and scale_factor")
    B("bad-upsample-neither-size-nor-scale", mut(up, drop=["scale_factor"]),
      "give exactly one of size and scale_factor")
    B("bad-upsample-unknown-mode", mut(up, mode="cubic"), "unknown mode 'cubic'")
    B("bad-upsample-mode-not-string", mut(up, mode=1), "mode must be a string", torch_check=False)
    B("bad-upsample-align-corners-with-nearest", mut(up, mode="nearest", align_corners=False),
      "align_corners can only be set with mode bilinear")
    B("bad-upsample-align-corners-not-bool", mut(up, align_corners="yes"), "align_corners must be true or false",
      torch_check=False)
    B("bad-upsample-scale-gives-empty-output", mut(up, scale_factor=0.2), "output sizes must be >= 1")
    B("bad-upsample-scale-negative", mut(up, scale_factor=[2, -1]), "scale_factor must be > 0")
    B("bad-upsample-size-zero", mut(up, drop=["scale_factor"], size=[0, 4]), "size must be >= 1")
    B("bad-upsample-input-3d", mut(up, tensors={"input": {"shape": [1, 4, 4], "data": [0.0] * 16}}),
      "input must be 4-D")
    B("bad-upsample-unknown-tensor-weight",
      mut(up, tensors={"weight": {"shape": [1], "data": [1.0]}}), "unknown tensor 'weight'", torch_check=False)
    B("bad-upsample-grad-output-shape",
      mut(up, tensors={"grad_output": {"shape": [1, 1, 4, 4], "data": [0.0] * 16}}),
      "grad_output [1,1,4,4] must match the output [1,1,8,8]")
    B("bad-maxpool-missing-kernel-size", mut(mp, drop=["kernel_size"]), "missing field 'kernel_size'")
    B("bad-maxpool-padding-over-half-kernel", mut(mp, kernel_size=3, padding=2), "at most half of kernel_size")
    B("bad-maxpool-output-too-small", mut(mp, kernel_size=5), "is too small")
    B("bad-maxpool-stride-0", mut(mp, stride=[1, 0]), "stride must be >= 1")
    B("bad-maxpool-dilation-0", mut(mp, dilation=0), "dilation must be >= 1")
    B("bad-maxpool-ceil-mode-not-bool", mut(mp, ceil_mode=1), "ceil_mode must be true or false",
      torch_check=False)
    B("bad-maxpool-count-include-pad-field", mut(mp, count_include_pad=True), "unknown field 'count_include_pad'",
      torch_check=False)
    B("bad-avgpool-dilation-field", mut(ap, dilation=2), "unknown field 'dilation'", torch_check=False)
    B("bad-avgpool-padding-over-half-kernel", mut(ap, padding=[0, 2]), "at most half of kernel_size")
    B("bad-avgpool-negative-padding", mut(ap, padding=-1), "padding must be >= 0")
    B("bad-avgpool-kernel-pair-wrong-length", mut(ap, kernel_size=[2, 2, 2]), "a pair [h, w]")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "golden"), metavar="DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)
    G = Golden()
    add_upsample(G)
    add_pool(G)
    add_malformed(G)
    G.write(args.out)
    bad = sum(1 for _, _, e in G.items if e.get("error"))
    print("gen_golden_resample: %d cases (%d malformed) in %s as %03d-%03d" % (
        len(G.items), bad, os.path.relpath(args.out), FIRST, FIRST + len(G.items) - 1))


if __name__ == "__main__":
    main()
