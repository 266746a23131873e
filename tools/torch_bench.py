#!/usr/bin/python3
"""Time PyTorch (CPU) on the benchmark shapes, for side-by-side comparison with convlab.

usage: /usr/bin/python3 tools/torch_bench.py [--shapes NAME,NAME|all|none] [--threads 1,2]
           [--repeat 20] [--warmup 3] [--rounds 1] [--steps hdc_step,dcgan_step|all|none]
           [--step-iters 30] [--shapes-file FILE] [--json FILE]

Shapes come from shared/bench/shapes.json (default: ../shared/bench/shapes.json beside the
project root). Settings are those of shared/bench/README.md: torch.set_num_threads(T) for each T
of --threads, OPENBLAS_NUM_THREADS=1, OPENBLAS_CORETYPE unset, and glibc malloc told to keep
freed memory (GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
glibc.malloc.trim_threshold=4294967296). When the environment is not like that, the script
re-executes itself with it fixed (these must be set before the libraries load).

Per shape and thread count (each round and thread count in a fresh process; with --rounds R the
figure is the median of the R per-round medians):
  forward   median wall ms of --repeat forward calls (under torch.no_grad), after --warmup;
  backward  median wall ms of torch.autograd.grad(out, inputs, grad_out) (the gradient of
            (out * grad_out).sum()) w.r.t. input, weight(s), bias(es) and, for deform_conv2d,
            offset and mask; the forward that builds each graph is not timed;
  GFLOP/s   flops_fwd / flops_bwd of shapes.json divided by those times.
Tensors are uniform in [-1, 1); deform offsets uniform in the shape's offset_range, mask =
sigmoid(randn).

Training steps (--steps; each (step, T) in a fresh process so peak RSS is its own):
  hdc_step    stem Conv 3->32 + six 3x3 32->32 convs (dilation = padding = 1,2,5,1,2,5), each
              followed by BN + ReLU, then 1x1 conv -> 11 classes; batch 16 x 3x64x64 random,
              per-pixel cross-entropy against random labels, Adam lr 1e-3.
  dcgan_step  G: z100 -> ConvT(100,128,7)+BN+ReLU -> ConvT(128,64,4,2,1)+BN+ReLU
              -> ConvT(64,1,4,2,1)+tanh; D: Conv(1,64,4,2,1)+LeakyReLU(0.2)
              -> Conv(64,128,4,2,1)+BN+LeakyReLU(0.2) -> Conv(128,1,7) logits (all bias=False);
              batch 64; one D step (real random images in [-1,1] + fake) then one G step,
              BCEWithLogits, Adam lr 2e-4 betas (0.5, 0.999).
  Reported: median ms per step over --step-iters steps after 5 warm-up steps, throughput,
  peak RSS of the process (getrusage ru_maxrss) and the RSS right after importing torch.

Prints markdown tables; --json FILE writes all results. Imports no project code.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SHAPES = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench", "shapes.json"))
MALLOC = {"glibc.malloc.mmap_threshold": "33554432", "glibc.malloc.trim_threshold": "4294967296"}
STEPS = ("hdc_step", "dcgan_step")


# ----------------------------------------------------------------------------- environment
def wanted_env(env):
    """The environment the README prescribes, built from `env`; None when env already is it."""
    new = dict(env)
    new["OPENBLAS_NUM_THREADS"] = "1"
    new.pop("OPENBLAS_CORETYPE", None)
    tun = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    tun = [t for t in tun if t.split("=", 1)[0] not in MALLOC]
    tun += ["%s=%s" % kv for kv in MALLOC.items()]
    cur = dict(t.split("=", 1) for t in env.get("GLIBC_TUNABLES", "").split(":") if "=" in t)
    ok = (env.get("OPENBLAS_NUM_THREADS") == "1" and "OPENBLAS_CORETYPE" not in env
          and all(cur.get(k) == v for k, v in MALLOC.items()))
    if ok:
        return None
    new["GLIBC_TUNABLES"] = ":".join(tun)
    return new


def ensure_env():
    new = wanted_env(os.environ)
    if new is None:
        return
    if os.environ.get("_TORCH_BENCH_REEXEC"):
        sys.exit("torch_bench: cannot set the environment (re-exec loop)")
    new["_TORCH_BENCH_REEXEC"] = "1"
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], new)


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def median_ms(fn, repeat, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


# ----------------------------------------------------------------------------- per-shape worker
def build_shape(torch, sh):
    """Returns (forward(inputs) -> out, inputs list, input names)."""
    import torch.nn.functional as F

    def uni(*s):
        return torch.rand(*s) * 2 - 1

    N, Ci, Co, H, W = sh["N"], sh["C_in"], sh["C_out"], sh["H"], sh["W"]
    kh, kw = sh["kernel"]
    st, pd, dl = tuple(sh["stride"]), tuple(sh["padding"]), tuple(sh["dilation"])
    g = sh.get("groups", 1)
    op = sh["op"]
    x = uni(N, Ci, H, W)
    if op == "conv2d":
        ins = [x, uni(Co, Ci // g, kh, kw)] + ([uni(Co)] if sh["bias"] else [])
        names = ["input", "weight", "bias"][: len(ins)]

        def fwd(t):
            return F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, st, pd, dl, g)
    elif op == "conv_transpose2d":
        op_ = tuple(sh.get("output_padding", [0, 0]))
        ins = [x, uni(Ci, Co // g, kh, kw)] + ([uni(Co)] if sh["bias"] else [])
        names = ["input", "weight", "bias"][: len(ins)]

        def fwd(t):
            return F.conv_transpose2d(t[0], t[1], t[2] if len(t) > 2 else None, st, pd, op_, g,
                                      dl)
    elif op == "depthwise_separable_conv2d":
        M = Ci * sh.get("multiplier", 1)
        ins = [x, uni(M, 1, kh, kw), uni(M), uni(Co, M, 1, 1), uni(Co)]
        names = ["input", "depthwise_weight", "depthwise_bias", "pointwise_weight",
                 "pointwise_bias"]
        if not sh["bias"]:
            ins, names = [ins[0], ins[1], ins[3]], [names[0], names[1], names[3]]

        def fwd(t):
            if len(t) == 5:
                mid = F.conv2d(t[0], t[1], t[2], st, pd, dl, Ci)
                return F.conv2d(mid, t[3], t[4])
            return F.conv2d(F.conv2d(t[0], t[1], None, st, pd, dl, Ci), t[2])
    elif op == "deform_conv2d":
        from torchvision.ops import deform_conv2d
        lo, hi = sh.get("offset_range", [-1.0, 1.0])
        off = torch.rand(*sh["offset_shape"]) * (hi - lo) + lo
        ins = [x, uni(Co, Ci // g, kh, kw), off]
        names = ["input", "weight", "offset"]
        if sh["bias"]:
            ins.append(uni(Co))
            names.append("bias")
        if sh.get("mask"):
            ins.append(torch.sigmoid(torch.randn(*sh["mask_shape"])))
            names.append("mask")

        def fwd(t):
            d = dict(zip(names, t))
            return deform_conv2d(d["input"], d["offset"], d["weight"], d.get("bias"), st, pd,
                                 dl, d.get("mask"))
    else:
        raise SystemExit("torch_bench: unknown op %r in shapes file" % op)
    return fwd, ins, names


def worker_shapes(args):
    import torch
    torch.set_num_threads(args.threads_one)
    torch.manual_seed(0)
    shapes = load_shapes(args)
    res = []
    for sh in shapes:
        fwd, ins, names = build_shape(torch, sh)
        for t in ins:
            t.requires_grad_(True)
        with torch.no_grad():
            out = fwd(ins)
        assert list(out.shape) == sh["out_shape"], (sh["name"], out.shape)
        gout = torch.rand(out.shape) * 2 - 1

        def f_fwd():
            with torch.no_grad():
                fwd(ins)

        bwd_times = []

        def f_bwd():
            o = fwd(ins)
            t0 = time.perf_counter()
            torch.autograd.grad(o, ins, gout)
            bwd_times.append((time.perf_counter() - t0) * 1e3)

        fms = median_ms(f_fwd, args.repeat, args.warmup)
        for _ in range(args.warmup):
            f_bwd()
        bwd_times.clear()
        for _ in range(args.repeat):
            f_bwd()
        res.append({"name": sh["name"], "op": sh["op"], "threads": args.threads_one,
                    "forward_ms": fms, "backward_ms": statistics.median(bwd_times),
                    "grads": names})
    print(json.dumps(res))


# ----------------------------------------------------------------------------- step workers
def hdc_model(nn):
    layers = [nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True)]
    for d in (1, 2, 5, 1, 2, 5):
        layers += [nn.Conv2d(32, 32, 3, padding=d, dilation=d), nn.BatchNorm2d(32),
                   nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(32, 11, 1))
    return nn.Sequential(*layers)


def dcgan_nets(nn):
    """The dcgan_step networks (configs/dcgan_mnist.json): G z100 -> 7 -> 14 -> 28, D its mirror."""
    G = nn.Sequential(
        nn.ConvTranspose2d(100, 128, 7, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(128, 1, 7, bias=False))
    return G, D


def dcgan_iteration(G, D, optG, optD, bce, real, z, ones, zeros):
    """One D step (real and detached fake, one backward of the sum) and one non-saturating G step, as
    PyTorch's dcgan example; returns (lossD, lossG)."""
    fake = G(z)
    optD.zero_grad(set_to_none=True)
    lossD = bce(D(real).view(-1), ones) + bce(D(fake.detach()).view(-1), zeros)
    lossD.backward()
    optD.step()
    optG.zero_grad(set_to_none=True)
    lossG = bce(D(fake).view(-1), ones)
    lossG.backward()
    optG.step()
    return lossD, lossG


def worker_step(args):
    import torch
    import torch.nn as nn
    rss_import = rss_mib()
    torch.set_num_threads(args.threads_one)
    torch.manual_seed(0)
    name = args.step_worker
    if name == "hdc_step":
        batch = 16
        model = hdc_model(nn)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = torch.rand(batch, 3, 64, 64) * 2 - 1
        y = torch.randint(0, 11, (batch, 64, 64))
        ce = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = ce(model(x), y)
            loss.backward()
            opt.step()
    elif name == "dcgan_step":
        batch = 64
        G, D = dcgan_nets(nn)
        optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        bce = nn.BCEWithLogitsLoss()
        real = torch.rand(batch, 1, 28, 28) * 2 - 1
        ones, zeros = torch.ones(batch), torch.zeros(batch)

        def step():
            dcgan_iteration(G, D, optG, optD, bce, real, torch.randn(batch, 100, 1, 1), ones, zeros)
    else:
        raise SystemExit("torch_bench: unknown step %r" % name)
    ms = median_ms(step, args.step_iters, 5)
    print(json.dumps({"step": name, "threads": args.threads_one, "batch": batch,
                      "step_ms": ms, "throughput_per_s": batch / (ms / 1e3),
                      "peak_rss_mib": rss_mib(), "rss_after_import_mib": rss_import}))


# ----------------------------------------------------------------------------- driver
def load_shapes(args):
    with open(args.shapes_file) as fh:
        all_shapes = json.load(fh)["shapes"]
    if args.shapes in ("all", ""):
        return all_shapes
    if args.shapes == "none":
        return []
    want = [s.strip() for s in args.shapes.split(",") if s.strip()]
    by = {s["name"]: s for s in all_shapes}
    bad = [w for w in want if w not in by]
    if bad:
        raise SystemExit("torch_bench: unknown shape(s) %s; known: %s" % (
            ", ".join(bad), ", ".join(by)))
    return [by[w] for w in want]


def run_worker(args, extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--shapes", args.shapes, "--shapes-file",
           args.shapes_file, "--repeat", str(args.repeat), "--warmup", str(args.warmup),
           "--step-iters", str(args.step_iters)] + extra
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit("torch_bench: worker %s failed (exit %d)" % (" ".join(extra),
                                                                      p.returncode))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description="Time PyTorch CPU on shared/bench/shapes.json.")
    ap.add_argument("--shapes", default="all", help="comma list of shape names, all or none")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts (1,2)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="fresh-process rounds per shape set")
    ap.add_argument("--steps", default="none", help="hdc_step,dcgan_step, all or none")
    ap.add_argument("--step-iters", type=int, default=30)
    ap.add_argument("--shapes-file", default=DEFAULT_SHAPES)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--threads-one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--shape-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--step-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    ensure_env()

    if args.shape_worker:
        return worker_shapes(args)
    if args.step_worker:
        return worker_step(args)

    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    shapes = load_shapes(args)
    steps = list(STEPS) if args.steps == "all" else (
        [] if args.steps in ("none", "") else [s.strip() for s in args.steps.split(",")])
    for s in steps:
        if s not in STEPS:
            raise SystemExit("torch_bench: unknown step %r (known: %s)" % (s, ", ".join(STEPS)))

    import torch
    import torchvision
    info = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                                                   "GLIBC_TUNABLES")},
            "repeat": args.repeat, "warmup": args.warmup, "rounds": args.rounds}
    print("torch %s, torchvision %s, mkldnn %s, repeat %d, rounds %d" % (
        info["torch"], info["torchvision"], info["mkldnn"], args.repeat, args.rounds),
        flush=True)

    shape_rows = []
    if shapes:
        for T in threads:
            per_round = [run_worker(args, ["--shape-worker", "--threads-one", str(T)])
                         for _ in range(args.rounds)]
            for i, sh in enumerate(shapes):
                rs = [r[i] for r in per_round]
                f = statistics.median(r["forward_ms"] for r in rs)
                b = statistics.median(r["backward_ms"] for r in rs)
                row = {"name": sh["name"], "op": sh["op"], "threads": T, "forward_ms": f,
                       "backward_ms": b, "gflops_fwd": sh["flops_fwd"] / (f * 1e6),
                       "gflops_bwd": sh["flops_bwd"] / (b * 1e6), "grads": rs[0]["grads"]}
                if args.rounds > 1:
                    row["rounds_forward_ms"] = [r["forward_ms"] for r in rs]
                    row["rounds_backward_ms"] = [r["backward_ms"] for r in rs]
                shape_rows.append(row)
        print()
        print("| shape | T | fwd ms | bwd ms | GFLOP/s fwd | GFLOP/s bwd |")
        print("|---|---|---|---|---|---|")
        for sh in shapes:
            for r in shape_rows:
                if r["name"] == sh["name"]:
                    print("| %s | %d | %.2f | %.2f | %.0f | %.0f |" % (
                        r["name"], r["threads"], r["forward_ms"], r["backward_ms"],
                        r["gflops_fwd"], r["gflops_bwd"]))

    step_rows = []
    if steps:
        for s in steps:
            for T in threads:
                step_rows.append(run_worker(args, ["--step-worker", s, "--threads-one", str(T)]))
        print()
        print("| step | T | ms/step | throughput /s | peak RSS MiB | RSS after import MiB |")
        print("|---|---|---|---|---|---|")
        for r in step_rows:
            print("| %s | %d | %.1f | %.0f | %.0f | %.0f |" % (
                r["step"], r["threads"], r["step_ms"], r["throughput_per_s"],
                r["peak_rss_mib"], r["rss_after_import_mib"]))

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "shapes": shape_rows, "steps": step_rows}, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
