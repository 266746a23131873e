#!/usr/bin/python3
"""CPU-time comparison of convlab and PyTorch on the benchmark op cases, one thread, for shared machines.

usage: /usr/bin/python3 tools/cpu_time_compare.py BUILD/convlab [--shapes seg_d1,pw] [--repeat 10]

Wall-clock timings are meaningless when other work loads the cores; CPU time of a single-threaded run
is much less affected. For each shape of ../shared/bench/cases/, convlab's CPU time per forward+backward is
(CPU of `convlab op CASE --repeat R`) - (CPU of `convlab op CASE`), divided by R (parsing, the first run and
printing cancel out); PyTorch's is time.process_time() around R forward+backward passes of the same layer
(F.conv2d / conv_transpose2d / torchvision deform_conv2d / depthwise-separable), torch.set_num_threads(1).
Prints ms per forward+backward and the ratio torch / convlab (> 1: convlab faster). Minimum over 3 rounds.
"""
import argparse, json, os, resource, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "..", "..", "shared", "bench", "cases")


def child_cpu(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def convlab_ms(binary, case, repeat):
    base = child_cpu([binary, "op", case, "--stats"])
    full = child_cpu([binary, "op", case, "--stats", "--repeat", str(repeat)])
    return 1000.0 * (full - base) / (repeat + 1)  # --repeat R runs R timed passes plus one warm-up


def torch_ms(case, repeat):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    c = json.load(open(case))
    t = {k: (torch.rand(v["shape"]) * 2 - 1).requires_grad_(k != "grad_output") for k, v in c["tensors"].items()}
    op = c["op"]
    kw = {k: c[k] for k in ("stride", "padding", "dilation", "groups", "output_padding") if k in c}

    def run():
        if op == "conv2d":
            return F.conv2d(t["input"], t["weight"], t.get("bias"), **kw)
        if op == "conv_transpose2d":
            return F.conv_transpose2d(t["input"], t["weight"], t.get("bias"), **kw)
        if op == "deform_conv2d":
            import torchvision
            return torchvision.ops.deform_conv2d(t["input"], t["offset"], t["weight"], t.get("bias"),
                                                 stride=kw.get("stride", 1), padding=kw.get("padding", 0),
                                                 dilation=kw.get("dilation", 1), mask=t.get("mask"))
        if op == "depthwise_separable_conv2d":
            x = F.conv2d(t["input"], t["depthwise_weight"], t.get("depthwise_bias"), stride=kw.get("stride", 1),
                         padding=kw.get("padding", 0), dilation=kw.get("dilation", 1), groups=t["input"].shape[1])
            return F.conv2d(x, t["pointwise_weight"], t.get("pointwise_bias"))
        raise SystemExit("unknown op " + op)

    go = t.get("grad_output")
    inputs = [v for k, v in t.items() if k != "grad_output"]
    run()
    c0 = time.process_time()
    for _ in range(repeat):
        y = run()
        torch.autograd.grad(y, inputs, go if go is not None else torch.ones_like(y))
    return 1000.0 * (time.process_time() - c0) / repeat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--shapes", default="seg_d1,seg_d2,seg_d5,seg_wide,stem,classifier,dw,pw,sep,dcgan_g1,dcgan_g2,dcgan_g3,deform_v1,deform_v2")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    print("| shape | convlab ms (fwd+bwd, 1 thread CPU) | PyTorch ms | PyTorch / convlab |")
    print("|---|---|---|---|")
    for s in a.shapes.split(","):
        case = os.path.join(CASES, s + ".case.json")
        ours = min(convlab_ms(a.binary, case, a.repeat) for _ in range(a.rounds))
        theirs = min(torch_ms(case, a.repeat) for _ in range(a.rounds))
        print("| %s | %.2f | %.2f | %.2fx |" % (s, ours, theirs, theirs / ours), flush=True)


if __name__ == "__main__":
    main()
