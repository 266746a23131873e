#!/usr/bin/python3
"""Generate the golden op cases for convlab's C++ tests from PyTorch / torchvision.

usage: /usr/bin/python3 tools/gen_golden.py [--out DIR] [--check-oracle DIR]

Writes DIR/NNN_<name>.case.json + DIR/NNN_<name>.expected.json (default DIR: tests/golden
next to this script's parent), in exactly the format of shared/oracle/cases (see
shared/spec/op-case.md):

  case      {"op": ..., <hyper-parameters>, "tensors": {name: {"shape": [...], "data": [...]}}}
  expected  {"output": {"shape", "data"}, "grads": {name: {"shape", "data"}}}
            grads = d(sum(output * grad_output)) / d(tensor) for every case tensor except
            grad_output (all ones when the case has none); computed in float64 from the
            float32 case values with torch.nn.functional.conv2d / conv_transpose2d and
            torchvision.ops.deform_conv2d (depthwise_separable_conv2d = depthwise conv2d
            with groups=C_in followed by a 1x1 conv2d).
  malformed {"error": true, "why": "..."}: `convlab op` must exit 2 with a message on
            stderr and print nothing on stdout. A few are raw (non-JSON / truncated) text.

All case values are multiples of 1/64 (deform offsets: non-integer multiples of 1/64 of a
few pixels, so no sample lands on a bilinear kink, except in the one zero-offset case),
so the case files hold exactly the float32 values that the expected files were computed
from. Every case draws from its own generator seeded by its name (splitmix64), so the
script is deterministic, and adding or removing a case does not change the others.
Re-running first removes the old NNN_*.case.json / NNN_*.expected.json in DIR for NNN in
001-499 only: that range is this script's; other generators (gen_golden_resample.py: 500-599)
write beside it and their files are left alone.

Checks done on every run (the script fails if one does not hold):
  - the spec's worked example: conv2d gives [[122,148],[126,134]] and conv_transpose2d of
    that gives [[122,636,714,148],[248,1274,1620,578],[492,1448,1480,550],[378,780,528,134]];
  - each malformed case that PyTorch itself can judge is refused by PyTorch too
    (spec-only errors, such as an unknown field, are not run through PyTorch);
  - with --check-oracle DIR (default: ../shared/oracle/cases when it exists), this
    script's evaluator reproduces every valid oracle case's expected file.
"""
import argparse
import json
import os
import re
import zlib

import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "tests", "golden")
DEFAULT_ORACLE = os.path.normpath(os.path.join(ROOT, "..", "shared", "oracle", "cases"))

OPS = ("conv2d", "conv_transpose2d", "deform_conv2d", "depthwise_separable_conv2d")
HYPER = ("stride", "padding", "dilation", "output_padding", "groups")
FIRST, LAST = 1, 499    # the case numbers this script owns in the output folder


# ----------------------------------------------------------------------------- random values
class Rng:
    """splitmix64: small, exact, and the same on every Python version."""

    def __init__(self, name):
        self.s = zlib.crc32(name.encode()) * 0x9E3779B97F4A7C15 & (2 ** 64 - 1)

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2 ** 64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2 ** 64 - 1)
        return z ^ (z >> 31)

    def randint(self, lo, hi):
        """uniform integer in [lo, hi]"""
        return lo + self.next() % (hi - lo + 1)

    def values(self, n, lo=-1.0, hi=1.0):
        """n multiples of 1/64 in [lo, hi]"""
        a, b = int(round(lo * 64)), int(round(hi * 64))
        return [self.randint(a, b) / 64.0 for _ in range(n)]

    def offsets(self, n, lim):
        """n non-integer multiples of 1/64 in (-lim, lim)"""
        out = []
        while len(out) < n:
            k = self.randint(-lim * 64 + 1, lim * 64 - 1)
            if k % 64:
                out.append(k / 64.0)
        return out


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def tensor(shape, data):
    return {"shape": list(shape), "data": list(data)}


# ----------------------------------------------------------------------------- evaluation
def _t(spec):
    return torch.tensor(spec["data"], dtype=torch.float64).reshape(spec["shape"])


def evaluate(case):
    """Runs a valid case in float64 and returns the expected-file object."""
    op = case["op"]
    names = list(case["tensors"])
    ts = {n: _t(case["tensors"][n]) for n in names}
    for n in names:
        if n != "grad_output":
            ts[n].requires_grad_(True)
    hp = {k: case[k] for k in HYPER if k in case}
    stride = pair(hp.get("stride", 1))
    padding = pair(hp.get("padding", 0))
    dilation = pair(hp.get("dilation", 1))
    x = ts["input"]
    if op == "conv2d":
        out = F.conv2d(x, ts["weight"], ts.get("bias"), stride, padding, dilation,
                       hp.get("groups", 1))
    elif op == "conv_transpose2d":
        out = F.conv_transpose2d(x, ts["weight"], ts.get("bias"), stride, padding,
                                 pair(hp.get("output_padding", 0)), hp.get("groups", 1),
                                 dilation)
    elif op == "deform_conv2d":
        w = ts["weight"]
        if "groups" in hp:
            assert hp["groups"] == x.shape[1] // w.shape[1]
        out = deform_conv2d(x, ts["offset"], w, ts.get("bias"), stride, padding, dilation,
                            ts.get("mask"))
    elif op == "depthwise_separable_conv2d":
        mid = F.conv2d(x, ts["depthwise_weight"], ts.get("depthwise_bias"), stride, padding,
                       dilation, x.shape[1])
        out = F.conv2d(mid, ts["pointwise_weight"], ts.get("pointwise_bias"))
    else:
        raise ValueError(op)
    g = ts.get("grad_output")
    if g is None:
        g = torch.ones_like(out)
    assert tuple(g.shape) == tuple(out.shape), (g.shape, out.shape)
    (out * g).sum().backward()
    res = {"output": {"shape": list(out.shape), "data": out.detach().flatten().tolist()},
           "grads": {}}
    for n in names:
        if n != "grad_output":
            gr = ts[n].grad
            if gr is None:
                gr = torch.zeros_like(ts[n])
            res["grads"][n] = {"shape": list(gr.shape), "data": gr.flatten().tolist()}
    return res


def torch_refuses(case):
    """True when PyTorch raises on the case (any exception), False when it runs."""
    try:
        for n, t in case["tensors"].items():
            if not isinstance(t, dict) or len(t.get("data", [])) != numel(t.get("shape", [])):
                return True
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in t["data"]):
                return True
        if case["op"] not in OPS:
            return True
        if case["op"] == "deform_conv2d" and "offset" not in case["tensors"]:
            return True
        evaluate(case)
        return False
    except (RuntimeError, ValueError, KeyError, TypeError, AssertionError, IndexError):
        return True


# ----------------------------------------------------------------------------- writing
def fmt_num(v, style):
    if style == "exp":           # 5e-1 / -2.5E-1 style (exact for multiples of 1/64)
        s = "%.6e" % v
        mant, ex = s.split("e")
        mant = mant.rstrip("0").rstrip(".")
        return "%se%d" % (mant, int(ex))
    if style == "EXP":
        return fmt_num(v, "exp").replace("e", "E")
    if style == "int" and float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def case_text(case, numfmt=None):
    """Oracle layout: one field per line, one tensor per line. numfmt: {tensor: style}."""
    numfmt = numfmt or {}
    lines = ["{"]
    keys = [k for k in case if k != "tensors"]
    for k in keys:
        lines.append("  %s: %s," % (json.dumps(k), json.dumps(case[k])))
    lines.append('  "tensors": {')
    tl = []
    for n, t in case["tensors"].items():
        if isinstance(t, dict) and "data" in t and isinstance(t["data"], list):
            style = numfmt.get(n)
            items = []
            for v in t["data"]:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    items.append(fmt_num(v, style))
                else:
                    items.append(json.dumps(v))
            body = '{"shape": %s, "data": [%s]}' % (json.dumps(t["shape"]), ", ".join(items))
        else:
            body = json.dumps(t)
        tl.append("    %s: %s" % (json.dumps(n), body))
    lines.append(",\n".join(tl))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


class Golden:
    def __init__(self):
        self.items = []   # (name, case_text, expected_obj, kind)
        self.names = set()

    def add(self, name, case, numfmt=None):
        assert name not in self.names, name
        self.names.add(name)
        text = case_text(case, numfmt)
        assert json.loads(text) == case
        self.items.append((name, text, evaluate(case), case["op"]))
        return self.items[-1][2]

    def bad(self, name, case_or_text, why, torch_check=True):
        """torch_check: the error is one PyTorch also raises -> verify that it does."""
        assert name.startswith("bad-") and name not in self.names, name
        self.names.add(name)
        if isinstance(case_or_text, str):
            text = case_or_text
            try:
                json.loads(text)
                raise AssertionError("%s: raw text parses as JSON" % name)
            except ValueError:
                pass
            op = "text"
        else:
            text = case_text(case_or_text)
            op = case_or_text.get("op", "?")
            if torch_check:
                assert torch_refuses(case_or_text), "%s: PyTorch runs this case" % name
        self.items.append((name, text, {"error": True, "why": why}, "malformed:" + op))

    def write(self, out):
        """Owns the numbers FIRST..LAST only: other generators write beside it (e.g.
        gen_golden_resample.py uses 500-599), so only our range is removed before writing."""
        assert len(self.items) <= LAST - FIRST + 1, "numbers %03d-%03d only" % (FIRST, LAST)
        os.makedirs(out, exist_ok=True)
        for f in os.listdir(out):
            m = re.match(r"^(\d{3})_.*\.(case|expected)\.json$", f)
            if m and FIRST <= int(m.group(1)) <= LAST:
                os.remove(os.path.join(out, f))
        for i, (name, text, exp, _) in enumerate(self.items, FIRST):
            stem = "%03d_%s" % (i, name)
            with open(os.path.join(out, stem + ".case.json"), "w") as fh:
                fh.write(text)
            with open(os.path.join(out, stem + ".expected.json"), "w") as fh:
                fh.write(json.dumps(exp, separators=(",", ":")) + "\n")


# ----------------------------------------------------------------------------- case builders
def hyper(case, **kw):
    for k in HYPER:
        if kw.get(k) is not None:
            case[k] = kw[k]


def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_case(name, N, C_in, H, W, C_out, k, stride=None, padding=None, dilation=None,
              groups=None, bias=True, gout=True):
    r = Rng(name)
    kh, kw = pair(k)
    g = groups or 1
    s, p, d = pair(stride or 1), pair(padding or 0), pair(dilation or 1)
    Ho, Wo = out_size(H, kh, s[0], p[0], d[0]), out_size(W, kw, s[1], p[1], d[1])
    case = {"op": "conv2d"}
    hyper(case, stride=stride, padding=padding, dilation=dilation, groups=groups)
    t = {"input": tensor([N, C_in, H, W], r.values(N * C_in * H * W)),
         "weight": tensor([C_out, C_in // g, kh, kw], r.values(C_out * C_in // g * kh * kw))}
    if bias:
        t["bias"] = tensor([C_out], r.values(C_out))
    if gout:
        t["grad_output"] = tensor([N, C_out, Ho, Wo], r.values(N * C_out * Ho * Wo))
    case["tensors"] = t
    return case


def convt_case(name, N, C_in, H, W, C_out, k, stride=None, padding=None, output_padding=None,
               dilation=None, groups=None, bias=True, gout=True):
    r = Rng(name)
    kh, kw = pair(k)
    g = groups or 1
    s, p, d = pair(stride or 1), pair(padding or 0), pair(dilation or 1)
    op = pair(output_padding or 0)
    Ho = (H - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    Wo = (W - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    case = {"op": "conv_transpose2d"}
    hyper(case, stride=stride, padding=padding, output_padding=output_padding,
          dilation=dilation, groups=groups)
    t = {"input": tensor([N, C_in, H, W], r.values(N * C_in * H * W)),
         "weight": tensor([C_in, C_out // g, kh, kw], r.values(C_in * C_out // g * kh * kw))}
    if bias:
        t["bias"] = tensor([C_out], r.values(C_out))
    if gout:
        t["grad_output"] = tensor([N, C_out, Ho, Wo], r.values(N * C_out * Ho * Wo))
    case["tensors"] = t
    return case


def deform_case(name, N, C_in, H, W, C_out, k, stride=None, padding=None, dilation=None,
                groups=1, offset_groups=1, mask=False, mask_range=(0.0, 1.0), off_lim=1,
                zero_offset=False, bias=True, gout=True, groups_field=False):
    r = Rng(name)
    kh, kw = pair(k)
    s, p, d = pair(stride or 1), pair(padding or 0), pair(dilation or 1)
    Ho, Wo = out_size(H, kh, s[0], p[0], d[0]), out_size(W, kw, s[1], p[1], d[1])
    case = {"op": "deform_conv2d"}
    hyper(case, stride=stride, padding=padding, dilation=dilation,
          groups=groups if groups_field else None)
    no = N * 2 * offset_groups * kh * kw * Ho * Wo
    t = {"input": tensor([N, C_in, H, W], r.values(N * C_in * H * W)),
         "offset": tensor([N, 2 * offset_groups * kh * kw, Ho, Wo],
                          [0.0] * no if zero_offset else r.offsets(no, off_lim)),
         "weight": tensor([C_out, C_in // groups, kh, kw],
                          r.values(C_out * C_in // groups * kh * kw))}
    if bias:
        t["bias"] = tensor([C_out], r.values(C_out))
    if mask:
        t["mask"] = tensor([N, offset_groups * kh * kw, Ho, Wo],
                           r.values(N * offset_groups * kh * kw * Ho * Wo, *mask_range))
    if gout:
        t["grad_output"] = tensor([N, C_out, Ho, Wo], r.values(N * C_out * Ho * Wo))
    case["tensors"] = t
    return case


def dws_case(name, N, C_in, H, W, C_out, k, mult=1, stride=None, padding=None, dilation=None,
             dw_bias=True, pw_bias=True, gout=True):
    r = Rng(name)
    kh, kw = pair(k)
    s, p, d = pair(stride or 1), pair(padding or 0), pair(dilation or 1)
    Ho, Wo = out_size(H, kh, s[0], p[0], d[0]), out_size(W, kw, s[1], p[1], d[1])
    M = C_in * mult
    case = {"op": "depthwise_separable_conv2d"}
    hyper(case, stride=stride, padding=padding, dilation=dilation)
    t = {"input": tensor([N, C_in, H, W], r.values(N * C_in * H * W)),
         "depthwise_weight": tensor([M, 1, kh, kw], r.values(M * kh * kw))}
    if dw_bias:
        t["depthwise_bias"] = tensor([M], r.values(M))
    t["pointwise_weight"] = tensor([C_out, M, 1, 1], r.values(C_out * M))
    if pw_bias:
        t["pointwise_bias"] = tensor([C_out], r.values(C_out))
    if gout:
        t["grad_output"] = tensor([N, C_out, Ho, Wo], r.values(N * C_out * Ho * Wo))
    case["tensors"] = t
    return case


# ----------------------------------------------------------------------------- the cases
WORKED_X = [4, 5, 8, 7, 1, 8, 8, 8, 3, 6, 6, 4, 6, 5, 7, 8]
WORKED_K = [1, 4, 1, 1, 4, 3, 3, 3, 1]
WORKED_Y = [122, 148, 126, 134]
WORKED_CTY = [122, 636, 714, 148, 248, 1274, 1620, 578, 492, 1448, 1480, 550, 378, 780, 528, 134]


def add_conv2d(G):
    name = "conv2d-worked-example"
    case = {"op": "conv2d", "stride": [1, 1], "padding": [0, 0], "tensors": {
        "input": tensor([1, 1, 4, 4], WORKED_X),
        "weight": tensor([1, 1, 3, 3], WORKED_K),
        "grad_output": tensor([1, 1, 2, 2], WORKED_Y)}}
    numfmt = {"input": "int", "weight": "int", "grad_output": "int"}
    exp = G.add(name, case, numfmt)
    assert exp["output"]["data"] == WORKED_Y, exp["output"]
    assert exp["grads"]["input"]["data"] == WORKED_CTY, exp["grads"]["input"]

    c = lambda n, *a, **kw: G.add(n, conv_case(n, *a, **kw))
    c("conv2d-defaults-bias", 1, 3, 6, 7, 4, 3)
    c("conv2d-defaults-nobias", 1, 2, 5, 6, 3, 3, bias=False)
    c("conv2d-explicit-defaults-ints", 1, 2, 5, 5, 2, 3, stride=1, padding=0, dilation=1,
      groups=1)
    c("conv2d-explicit-pairs-all", 1, 2, 6, 5, 3, 3, stride=[2, 1], padding=[1, 2],
      dilation=[1, 2], groups=1)
    c("conv2d-s2", 1, 2, 7, 7, 3, 3, stride=2)
    c("conv2d-s2-p1", 1, 2, 6, 6, 2, 3, stride=2, padding=1)
    c("conv2d-s3-uneven", 1, 2, 8, 7, 2, 3, stride=3)
    c("conv2d-s4-p2-k3", 1, 1, 9, 9, 2, 3, stride=4, padding=2)
    c("conv2d-s-pair-2-1", 1, 2, 7, 6, 2, 3, stride=[2, 1])
    c("conv2d-s-pair-1-3-p-pair-1-0", 1, 2, 5, 9, 3, 3, stride=[1, 3], padding=[1, 0])
    c("conv2d-p1", 1, 2, 5, 5, 3, 3, padding=1)
    c("conv2d-p3-k3-wider-output", 1, 1, 4, 5, 2, 3, padding=3)
    c("conv2d-p-pair-0-2", 1, 2, 5, 4, 2, 3, padding=[0, 2])
    c("conv2d-dil2", 1, 2, 7, 7, 2, 3, dilation=2)
    c("conv2d-dil2-p2", 1, 2, 7, 7, 2, 3, padding=2, dilation=2)
    c("conv2d-dil-pair-1-3", 1, 2, 5, 9, 2, 3, dilation=[1, 3])
    c("conv2d-dil-pair-3-1-p-pair-3-1", 1, 2, 7, 5, 2, 3, padding=[3, 1], dilation=[3, 1])
    c("conv2d-dil2-s2-p1", 1, 2, 8, 8, 2, 3, stride=2, padding=1, dilation=2)
    c("conv2d-s-pair-1-2-p-pair-2-1-dil-pair-2-1", 1, 2, 6, 7, 2, 3, stride=[1, 2],
      padding=[2, 1], dilation=[2, 1])
    c("conv2d-groups2", 1, 4, 5, 5, 4, 3, groups=2)
    c("conv2d-groups2-p1-b2", 2, 4, 4, 4, 6, 3, padding=1, groups=2)
    c("conv2d-groups2-dil2-p2-nobias", 1, 4, 6, 6, 2, 3, padding=2, dilation=2, groups=2,
      bias=False)
    c("conv2d-groups4", 1, 4, 5, 5, 8, 3, padding=1, groups=4)
    c("conv2d-groups4-s2-nobias", 1, 8, 5, 5, 4, 3, stride=2, groups=4, bias=False)
    c("conv2d-depthwise-m1", 1, 3, 5, 6, 3, 3, padding=1, groups=3)
    c("conv2d-depthwise-m1-nobias-s2", 1, 4, 6, 5, 4, 3, stride=2, padding=1, groups=4,
      bias=False)
    c("conv2d-depthwise-m2", 1, 3, 5, 5, 6, 3, padding=1, groups=3)
    c("conv2d-depthwise-m2-dil2-p2-b2", 2, 2, 5, 5, 4, 3, padding=2, dilation=2, groups=2)
    c("conv2d-batch3", 3, 2, 4, 5, 2, 3, padding=1)
    c("conv2d-batch2-s2-p1-dil2-nobias", 2, 2, 6, 6, 3, 3, stride=2, padding=1, dilation=2,
      bias=False)
    c("conv2d-k1x3", 1, 2, 4, 6, 3, [1, 3])
    c("conv2d-k3x1-p-pair-1-0", 1, 2, 5, 4, 2, [3, 1], padding=[1, 0])
    c("conv2d-k2x4-input5x9-s2", 1, 2, 5, 9, 2, [2, 4], stride=2)
    c("conv2d-input3x8-k2", 1, 3, 3, 8, 2, 2)
    c("conv2d-1x1", 1, 4, 4, 4, 3, 1)
    c("conv2d-1x1-s2", 1, 3, 5, 5, 2, 1, stride=2)
    c("conv2d-1x1-p1", 1, 2, 3, 4, 3, 1, padding=1)
    c("conv2d-1x1-on-1x1-b2", 2, 5, 1, 1, 4, 1)
    c("conv2d-kernel-eq-input", 1, 2, 4, 5, 3, [4, 5])
    c("conv2d-kernel-eq-padded-input", 1, 2, 3, 3, 2, 5, padding=1)
    c("conv2d-dilated-kernel-eq-padded-input", 1, 2, 3, 5, 2, 3, padding=[1, 0],
      dilation=[2, 2])
    c("conv2d-no-grad-output", 1, 2, 5, 5, 2, 3, padding=1, gout=False)
    c("conv2d-no-grad-output-groups2-s2", 1, 4, 6, 6, 2, 3, stride=2, groups=2, gout=False)

    name = "conv2d-number-formats"
    case = conv_case(name, 1, 2, 4, 4, 2, 3, padding=1)
    G.add(name, case, {"input": "exp", "weight": "EXP", "bias": "exp"})


def add_convt(G):
    name = "conv_transpose2d-worked-example"
    case = {"op": "conv_transpose2d", "stride": 1, "padding": 0, "tensors": {
        "input": tensor([1, 1, 2, 2], WORKED_Y),
        "weight": tensor([1, 1, 3, 3], WORKED_K)}}
    exp = G.add(name, case, {"input": "int", "weight": "int"})
    assert exp["output"]["data"] == WORKED_CTY, exp["output"]

    c = lambda n, *a, **kw: G.add(n, convt_case(n, *a, **kw))
    c("convt-defaults-bias", 1, 2, 3, 4, 3, 3)
    c("convt-s2", 1, 2, 3, 3, 2, 3, stride=2)
    c("convt-s2-p1", 1, 2, 3, 3, 2, 3, stride=2, padding=1)
    c("convt-s2-p1-b2", 2, 2, 3, 3, 3, 3, stride=2, padding=1)
    c("convt-k3-s2-p1-op1-nobias", 1, 3, 3, 4, 2, 3, stride=2, padding=1, output_padding=1,
      bias=False)
    c("convt-s2-op1", 1, 2, 3, 3, 2, 3, stride=2, output_padding=1)
    c("convt-s3-p1-op2", 1, 2, 3, 2, 2, 3, stride=3, padding=1, output_padding=2)
    c("convt-s-pair-2-1-op-pair-1-0", 1, 2, 3, 3, 2, 3, stride=[2, 1], output_padding=[1, 0])
    c("convt-s-pair-1-3-p-pair-0-1-op-pair-0-2", 1, 2, 3, 3, 2, 3, stride=[1, 3],
      padding=[0, 1], output_padding=[0, 2])
    c("convt-dil2", 1, 2, 3, 3, 2, 3, dilation=2)
    c("convt-dil2-s1-op1-lt-dilation", 1, 2, 3, 3, 2, 3, dilation=2, output_padding=1)
    c("convt-dil-pair-2-1-s2-p1", 1, 2, 3, 3, 2, 3, stride=2, padding=1, dilation=[2, 1])
    c("convt-dil3-s2-op2-lt-dilation", 1, 1, 2, 3, 2, 3, stride=2, dilation=3,
      output_padding=2)
    c("convt-groups2", 1, 4, 3, 3, 4, 3, groups=2)
    c("convt-groups2-s2-p1-b2", 2, 4, 3, 3, 2, 3, stride=2, padding=1, groups=2)
    c("convt-groups2-cout6", 1, 2, 3, 3, 6, 2, stride=2, groups=2)
    c("convt-groups4-depthwise", 1, 4, 3, 3, 4, 3, stride=2, padding=1, output_padding=1,
      groups=4)
    c("convt-batch3", 3, 2, 2, 3, 2, 3, padding=1)
    c("convt-k2x3-input3x4", 1, 2, 3, 4, 2, [2, 3])
    c("convt-input2x5-s2-k3x2", 1, 2, 2, 5, 2, [3, 2], stride=2)
    c("convt-nobias-p1", 1, 3, 3, 3, 2, 3, padding=1, bias=False)
    c("convt-p2-k5-shrinks", 1, 2, 3, 3, 2, 5, padding=2)
    c("convt-dcgan-k4-s2-p1", 1, 3, 3, 3, 2, 4, stride=2, padding=1)
    c("convt-dcgan-k4-s2-p1-b2-nobias", 2, 3, 2, 2, 2, 4, stride=2, padding=1, bias=False)
    c("convt-7x7-from-1x1-b2-nobias", 2, 3, 1, 1, 2, 7, bias=False)
    c("convt-1x1-s2", 1, 2, 3, 3, 2, 1, stride=2)
    c("convt-1x1-s2-op1", 1, 2, 2, 3, 3, 1, stride=2, output_padding=1)
    c("convt-explicit-pairs-all", 1, 2, 3, 3, 2, 3, stride=[2, 2], padding=[1, 0],
      output_padding=[1, 1], dilation=[1, 1], groups=1)
    c("convt-no-grad-output-s2", 1, 2, 2, 3, 2, 3, stride=2, gout=False)


def add_deform(G):
    c = lambda n, *a, **kw: G.add(n, deform_case(n, *a, **kw))
    c("deform-zero-offset-p1", 1, 2, 4, 4, 3, 3, padding=1, zero_offset=True)
    c("deform-frac-small-v1", 1, 2, 5, 5, 2, 3)
    c("deform-frac-small-v2-p1", 1, 2, 3, 4, 2, 3, padding=1, mask=True)
    c("deform-large-offsets-v1", 1, 2, 5, 5, 2, 3, off_lim=3)
    c("deform-large-offsets-v2-neg-mask", 1, 2, 5, 5, 2, 3, off_lim=3, mask=True,
      mask_range=(-1.5, 1.5))
    c("deform-far-outside-v1-p1", 1, 1, 4, 4, 2, 3, padding=1, off_lim=5)
    c("deform-offset-groups2-v1", 1, 2, 4, 4, 2, 3, offset_groups=2)
    c("deform-offset-groups2-v2", 1, 4, 4, 4, 2, 3, offset_groups=2, mask=True)
    c("deform-offset-groups4-k2-v2", 1, 4, 3, 4, 2, 2, offset_groups=4, mask=True,
      mask_range=(-1, 1))
    c("deform-groups2-v1", 1, 4, 4, 4, 2, 3, groups=2)
    c("deform-groups2-offset-groups2-v2", 1, 4, 4, 4, 4, 3, groups=2, offset_groups=2,
      mask=True)
    c("deform-groups2-field-agrees", 1, 2, 4, 4, 2, 3, groups=2, groups_field=True,
      mask=True)
    c("deform-stride2-v1", 1, 2, 6, 6, 2, 3, stride=2, off_lim=2)
    c("deform-stride2-p1-v2", 1, 2, 5, 5, 2, 3, stride=2, padding=1, mask=True)
    c("deform-dil2-p2-v2", 1, 2, 3, 4, 2, 3, padding=2, dilation=2, mask=True, off_lim=2)
    c("deform-s-p-dil-pairs-v2", 1, 2, 5, 6, 2, 3, stride=[1, 2], padding=[1, 2],
      dilation=[2, 1], mask=True, mask_range=(-1, 1), off_lim=2)
    c("deform-batch2-v1-p1", 2, 2, 3, 3, 2, 3, padding=[1, 0], off_lim=2)
    c("deform-batch2-offset-groups2-v2", 2, 2, 3, 3, 2, 3, offset_groups=2, padding=[0, 1],
      mask=True, mask_range=(-1, 1))
    c("deform-k2x3-v2", 1, 2, 4, 5, 2, [2, 3], mask=True)
    c("deform-k1x1-v2-resample", 1, 3, 3, 3, 2, 1, mask=True, off_lim=2)
    c("deform-nobias-v2-p1", 1, 2, 3, 4, 2, 3, padding=1, mask=True, bias=False, off_lim=2)
    c("deform-no-grad-output-v2", 1, 2, 4, 4, 2, 3, mask=True, gout=False)
    c("deform-zero-mask-v2", 1, 2, 4, 4, 2, 3, mask=True, mask_range=(0, 0))


def add_dws(G):
    c = lambda n, *a, **kw: G.add(n, dws_case(n, *a, **kw))
    c("dws-m1-biases-p1", 1, 3, 5, 5, 4, 3, padding=1)
    c("dws-m1-nobias", 1, 3, 5, 4, 2, 3)
    c("dws-m2-biases-p1", 1, 2, 4, 5, 3, 3, mult=2, padding=1)
    c("dws-m2-s2-p1-nobias", 1, 3, 6, 6, 2, 3, mult=2, stride=2, padding=1, dw_bias=False,
      pw_bias=False)
    c("dws-m1-dil2-p2-dwbias-only", 1, 2, 5, 5, 3, 3, padding=2, dilation=2, pw_bias=False)
    c("dws-m1-s-pair-pwbias-only", 1, 2, 5, 6, 3, 3, stride=[1, 2], padding=[1, 0],
      dw_bias=False)
    c("dws-m2-b2-k2x3", 2, 2, 4, 4, 2, [2, 3], mult=2, padding=[0, 1])
    c("dws-m3-dil-pair-2-1", 1, 1, 5, 5, 2, 3, mult=3, padding=[2, 1], dilation=[2, 1])
    c("dws-no-grad-output", 1, 2, 4, 4, 3, 3, padding=1, gout=False)


def mutate(case, f):
    c = json.loads(json.dumps(case))
    f(c)
    return c


def add_malformed(G):
    B = G.bad
    base = conv_case("bad-base-conv2d", 1, 2, 5, 5, 3, 3)
    t = lambda c: c["tensors"]

    # --- text level / generic
    whole = case_text(base)
    B("bad-truncated-json", whole[: len(whole) // 2], "JSON text ends in the middle")
    B("bad-not-json", "conv2d stride=1 padding=0\n", "text is not JSON")
    B("bad-trailing-comma-json", whole.replace('"op": "conv2d",', '"op": "conv2d",,'),
      "invalid JSON (two commas)")
    B("bad-unknown-op", mutate(base, lambda c: c.update(op="conv3d")), "unknown op conv3d")
    B("bad-unknown-field", mutate(base, lambda c: c.update(strides=2)),
      "unknown field 'strides'", torch_check=False)
    B("bad-unknown-tensor", mutate(base, lambda c: t(c).update(
        weights=t(c)["weight"])), "unknown tensor 'weights'", torch_check=False)
    B("bad-missing-input", mutate(base, lambda c: t(c).pop("input")), "missing tensor input")
    B("bad-missing-weight", mutate(base, lambda c: t(c).pop("weight")),
      "missing tensor weight")
    B("bad-data-length", mutate(base, lambda c: t(c)["input"]["data"].pop()),
      "input data has 49 values, shape [1,2,5,5] needs 50")
    B("bad-non-number-data", mutate(base, lambda c: t(c)["weight"]["data"].__setitem__(
        4, "0.5")), "weight data[4] is a string")
    B("bad-null-in-data", mutate(base, lambda c: t(c)["input"]["data"].__setitem__(0, None)),
      "input data[0] is null")
    B("bad-zero-dimension", mutate(base, lambda c: t(c)["bias"].update(shape=[0], data=[])),
      "bias shape has a 0 dimension (every dimension must be >= 1)", torch_check=False)

    # --- conv2d shapes / hyper-parameters
    B("bad-weight-channels", mutate(base, lambda c: t(c).update(weight=tensor([3, 3, 3, 3], Rng("w").values(81)))),
      "weight [3,3,3,3]: C_in/groups must be 2")
    B("bad-groups-cin-not-divisible", mutate(
        conv_case("x", 1, 3, 5, 5, 4, 3), lambda c: (c.update(groups=2), t(c).update(
            weight=tensor([4, 1, 3, 3], Rng("g").values(36))))),
      "C_in 3 not divisible by groups 2")
    B("bad-groups-cout-not-divisible", mutate(
        conv_case("y", 1, 4, 5, 5, 3, 3), lambda c: (c.update(groups=2), t(c).update(
            weight=tensor([3, 2, 3, 3], Rng("h").values(54)), bias=tensor([3], [0.5] * 3)))),
      "C_out 3 not divisible by groups 2")
    B("bad-bias-length", mutate(base, lambda c: t(c).update(bias=tensor([2], [0.25, -0.5]))),
      "bias [2], expected [3]")
    B("bad-grad-output-shape", mutate(base, lambda c: t(c).update(
        grad_output=tensor([1, 3, 4, 3], Rng("go").values(36)))),
      "grad_output [1,3,4,3], expected [1,3,3,3]")
    B("bad-stride-0", mutate(base, lambda c: c.update(stride=0)), "stride must be >= 1")
    B("bad-stride-pair-0", mutate(base, lambda c: c.update(stride=[1, 0])),
      "stride [1,0]: must be >= 1")
    B("bad-dilation-0", mutate(base, lambda c: c.update(dilation=[0, 1])),
      "dilation must be >= 1")
    B("bad-padding-neg", mutate(base, lambda c: c.update(padding=-1)),
      "padding must be >= 0")
    B("bad-groups-0", mutate(base, lambda c: c.update(groups=0)), "groups must be >= 1")
    B("bad-kernel-larger-than-padded-input", mutate(
        conv_case("z", 1, 1, 3, 3, 1, 3), lambda c: t(c).update(
            weight=tensor([1, 1, 3, 6], Rng("k").values(18)), grad_output=tensor(
                [1, 1, 1, 1], [1.0]))), "kernel width 6 > padded input width 3")
    B("bad-dilated-kernel-larger", mutate(base, lambda c: (c.update(dilation=3), t(c).pop(
        "grad_output"))), "dilated kernel 7 > padded input 5")
    B("bad-output-padding-on-conv2d", mutate(base, lambda c: c.update(output_padding=0)),
      "conv2d takes no output_padding", torch_check=False)
    B("bad-hyper-wrong-length", mutate(base, lambda c: c.update(padding=[1, 1, 1])),
      "padding must be an integer or a pair", torch_check=False)
    B("bad-weight-rank3", mutate(base, lambda c: t(c).update(
        weight=tensor([3, 2, 9], t(c)["weight"]["data"]))), "weight must be 4-D")

    # --- conv_transpose2d
    bt = convt_case("bad-base-convt", 1, 2, 3, 3, 2, 3, stride=2, padding=1)
    B("bad-convt-output-padding-ge-stride", mutate(bt, lambda c: c.update(output_padding=2)),
      "output_padding 2 >= stride 2 and >= dilation 1")
    B("bad-convt-output-padding-per-axis", mutate(bt, lambda c: c.update(
        stride=[2, 1], output_padding=[1, 1])),
      "output_padding width 1 >= stride 1 and >= dilation 1")
    B("bad-convt-output-padding-ge-stride-and-dilation", mutate(bt, lambda c: c.update(
        dilation=2, output_padding=2)), "output_padding 2 >= stride 2 and >= dilation 2")
    B("bad-convt-weight-channels", mutate(bt, lambda c: t(c).update(
        weight=tensor([3, 2, 3, 3], Rng("cw").values(54)))), "weight [3,...]: C_in is 2")
    B("bad-convt-groups-cin-not-divisible", mutate(
        convt_case("bcg", 1, 3, 3, 3, 2, 3), lambda c: c.update(groups=2)),
      "C_in 3 not divisible by groups 2")
    B("bad-convt-bias-length", mutate(bt, lambda c: t(c).update(bias=tensor([3], [0.5] * 3))),
      "bias [3], expected [2]")
    B("bad-convt-grad-output-shape", mutate(bt, lambda c: t(c).update(
        grad_output=tensor([1, 2, 6, 6], Rng("cg").values(72)))),
      "grad_output [1,2,6,6], expected [1,2,5,5]")
    B("bad-convt-output-size-nonpositive", mutate(
        convt_case("bco", 1, 1, 2, 2, 1, 1), lambda c: (c.update(padding=1), t(c).pop(
            "grad_output"))), "output size 0x0")
    B("bad-convt-stride-0", mutate(bt, lambda c: c.update(stride=[0, 2])),
      "stride must be >= 1")
    B("bad-convt-padding-neg", mutate(bt, lambda c: c.update(padding=[1, -1])),
      "padding must be >= 0")
    B("bad-convt-unknown-tensor-offset", mutate(bt, lambda c: t(c).update(
        offset=tensor([1, 2, 5, 5], [0.25] * 50))), "conv_transpose2d takes no offset",
      torch_check=False)

    # --- deform_conv2d
    bd = deform_case("bad-base-deform", 1, 2, 4, 4, 2, 3, mask=True)
    B("bad-deform-missing-offset", mutate(bd, lambda c: t(c).pop("offset")),
      "missing tensor offset")
    B("bad-deform-offset-channels", mutate(bd, lambda c: t(c).update(
        offset=tensor([1, 20, 2, 2], Rng("oc").offsets(80, 1)))),
      "offset has 20 channels, expected a multiple of 2*3*3")
    B("bad-deform-offset-spatial", mutate(bd, lambda c: t(c).update(
        offset=tensor([1, 18, 3, 2], Rng("os").offsets(108, 1)))),
      "offset [1,18,3,2], expected [1,18,2,2]")
    B("bad-deform-offset-batch", mutate(bd, lambda c: t(c).update(
        offset=tensor([2, 18, 2, 2], Rng("ob").offsets(144, 1)))),
      "offset batch 2, input batch 1")
    B("bad-deform-offset-groups-not-dividing", mutate(bd, lambda c: t(c).update(
        offset=tensor([1, 54, 2, 2], Rng("og").offsets(216, 1)),
        mask=tensor([1, 27, 2, 2], Rng("om").values(108)))),
      "offset_groups 3 does not divide C_in 2")
    B("bad-deform-mask-channels", mutate(bd, lambda c: t(c).update(
        mask=tensor([1, 18, 2, 2], Rng("mc").values(72)))),
      "mask has 18 channels, expected 9")
    B("bad-deform-mask-spatial", mutate(bd, lambda c: t(c).update(
        mask=tensor([1, 9, 2, 3], Rng("ms").values(54)))),
      "mask [1,9,2,3], expected [1,9,2,2]")
    B("bad-deform-groups-field-disagrees", mutate(bd, lambda c: c.update(groups=2)),
      "groups 2 but weight [2,2,3,3] on C_in 2 means groups 1", torch_check=False)
    B("bad-deform-weight-channels", mutate(bd, lambda c: t(c).update(
        weight=tensor([2, 3, 3, 3], Rng("dw").values(54)))),
      "C_in 2 not a multiple of weight.shape[1] 3")
    B("bad-deform-cout-not-divisible", mutate(
        deform_case("bdg", 1, 4, 4, 4, 2, 3, groups=2), lambda c: t(c).update(
            weight=tensor([3, 2, 3, 3], Rng("dg").values(54)),
            bias=tensor([3], [0.5] * 3), grad_output=tensor([1, 3, 2, 2], [0.25] * 12))),
      "C_out 3 not divisible by groups 2")
    B("bad-deform-bias-length", mutate(bd, lambda c: t(c).update(
        bias=tensor([3], [0.5] * 3))), "bias [3], expected [2]")
    B("bad-deform-grad-output-shape", mutate(bd, lambda c: t(c).update(
        grad_output=tensor([1, 2, 4, 4], Rng("dgo").values(32)))),
      "grad_output [1,2,4,4], expected [1,2,2,2]")
    B("bad-deform-stride-0", mutate(bd, lambda c: c.update(stride=0)),
      "stride must be >= 1 (torchvision itself dies of SIGFPE here)", torch_check=False)
    B("bad-deform-dilation-0", mutate(bd, lambda c: c.update(dilation=0)),
      "dilation must be >= 1")
    B("bad-deform-padding-neg", mutate(bd, lambda c: c.update(padding=[-1, 0])),
      "padding must be >= 0")
    B("bad-deform-kernel-larger-than-padded-input", mutate(
        deform_case("bdk", 1, 1, 2, 2, 1, 1), lambda c: t(c).update(
            weight=tensor([1, 1, 3, 3], [0.5] * 9), offset=tensor([1, 18, 1, 1], [0.5] * 18),
            grad_output=tensor([1, 1, 1, 1], [1.0]))), "kernel 3x3 > input 2x2")
    B("bad-deform-output-padding", mutate(bd, lambda c: c.update(output_padding=0)),
      "deform_conv2d takes no output_padding", torch_check=False)

    # --- depthwise_separable_conv2d
    bs = dws_case("bad-base-dws", 1, 2, 4, 4, 3, 3, padding=1)
    B("bad-dws-missing-pointwise-weight", mutate(bs, lambda c: t(c).pop("pointwise_weight")),
      "missing tensor pointwise_weight")
    B("bad-dws-unknown-tensor-weight", mutate(bs, lambda c: t(c).update(
        weight=tensor([3, 2, 1, 1], [0.5] * 6))), "depthwise_separable_conv2d takes no weight",
      torch_check=False)
    B("bad-dws-depthwise-weight-not-depthwise", mutate(bs, lambda c: t(c).update(
        depthwise_weight=tensor([2, 2, 3, 3], Rng("dd").values(36)))),
      "depthwise_weight [2,2,3,3], expected [C_in*multiplier,1,kH,kW]")
    B("bad-dws-depthwise-channels-not-multiple", mutate(bs, lambda c: t(c).update(
        depthwise_weight=tensor([3, 1, 3, 3], Rng("dm").values(27)),
        depthwise_bias=tensor([3], [0.5] * 3))),
      "depthwise_weight has 3 channels, not a multiple of C_in 2")
    B("bad-dws-pointwise-channels", mutate(bs, lambda c: t(c).update(
        pointwise_weight=tensor([3, 4, 1, 1], Rng("pc").values(12)))),
      "pointwise_weight [3,4,1,1], expected [3,2,1,1]")
    B("bad-dws-pointwise-not-1x1", mutate(bs, lambda c: (t(c).update(
        pointwise_weight=tensor([3, 2, 3, 3], Rng("p3").values(54))), t(c).pop(
            "grad_output"))), "pointwise_weight must be 1x1", torch_check=False)
    B("bad-dws-depthwise-bias-length", mutate(bs, lambda c: t(c).update(
        depthwise_bias=tensor([3], [0.5] * 3))), "depthwise_bias [3], expected [2]")
    B("bad-dws-pointwise-bias-length", mutate(bs, lambda c: t(c).update(
        pointwise_bias=tensor([2], [0.5] * 2))), "pointwise_bias [2], expected [3]")
    B("bad-dws-grad-output-shape", mutate(bs, lambda c: t(c).update(
        grad_output=tensor([1, 2, 4, 4], Rng("dsg").values(32)))),
      "grad_output [1,2,4,4], expected [1,3,4,4]")
    B("bad-dws-output-padding", mutate(bs, lambda c: c.update(output_padding=1)),
      "depthwise_separable_conv2d takes no output_padding", torch_check=False)
    B("bad-dws-stride-0", mutate(bs, lambda c: c.update(stride=0)), "stride must be >= 1")


# ----------------------------------------------------------------------------- oracle check
def max_err(a, b):
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def check_oracle(cases_dir):
    n = 0
    for f in sorted(os.listdir(cases_dir)):
        if not f.endswith(".case.json"):
            continue
        stem = f[: -len(".case.json")]
        with open(os.path.join(cases_dir, stem + ".expected.json")) as fh:
            exp = json.load(fh)
        if exp.get("error"):
            continue
        with open(os.path.join(cases_dir, f)) as fh:
            case = json.load(fh)
        got = evaluate(case)
        ref = [("output", exp["output"], got["output"])] + [
            ("grads." + k, v, got["grads"].get(k)) for k, v in exp["grads"].items()]
        for label, r, g in ref:
            assert g is not None and g["shape"] == r["shape"], (stem, label)
            if "data" not in r or exp.get("shapes_only"):
                continue
            e = max_err(g["data"], r["data"])
            scale = max(abs(v) for v in r["data"])
            assert e <= 1e-12 * (1 + scale), (stem, label, e)
        assert set(got["grads"]) == set(exp["grads"]), (stem, set(got["grads"]))
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, metavar="DIR")
    ap.add_argument("--check-oracle", default=DEFAULT_ORACLE, metavar="DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)

    G = Golden()
    add_conv2d(G)
    add_convt(G)
    add_deform(G)
    add_dws(G)
    add_malformed(G)
    G.write(args.out)

    counts = {}
    for _, _, _, kind in G.items:
        k = "malformed" if kind.startswith("malformed") else kind
        counts[k] = counts.get(k, 0) + 1
    size = sum(os.path.getsize(os.path.join(args.out, "%03d_%s.%s.json" % (i, it[0], kind)))
               for i, it in enumerate(G.items, FIRST) for kind in ("case", "expected"))
    print("gen_golden: %d cases in %s (%s), %d bytes" % (
        len(G.items), os.path.relpath(args.out), ", ".join(
            "%s %d" % kv for kv in counts.items()), size))
    if args.check_oracle and os.path.isdir(args.check_oracle):
        n = check_oracle(args.check_oracle)
        print("gen_golden: reproduces all %d valid oracle cases of %s" % (
            n, os.path.relpath(args.check_oracle)))


if __name__ == "__main__":
    main()
