#!/usr/bin/python3
"""Golden values for losses, batch norm and optimizers from PyTorch 1.13 (Debian python3-torch).

usage: /usr/bin/python3 tools/gen_golden_train.py     # writes tests/golden/train_ops.json

Run by a developer, never by CI. Inputs are multiples of 1/64 so the JSON holds them exactly; outputs are
computed in float32 like convlab (the tests allow ~1e-5 relative).
"""
import json
import os

import torch

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "train_ops.json")


def q(shape, lo=-1.0, hi=1.0):
    """Random values on a 1/64 grid in [lo, hi)."""
    n = int(torch.tensor(shape).prod())
    steps = int((hi - lo) * 64)
    return (torch.randint(0, steps, (n,)).float() / 64.0 + lo).reshape(shape)


def t(x):
    return {"shape": list(x.shape), "data": [float(v) for v in x.detach().reshape(-1)]}


cases = {}

# cross entropy: weights and ignore_index
logits = q((2, 4, 3, 3), -2, 2).requires_grad_()
target = torch.randint(0, 4, (2, 3, 3))
target[0, 0, 0] = -100
target[1, 2, 1] = -100
w = torch.tensor([0.5, 1.0, 2.0, 1.5])
loss = torch.nn.functional.cross_entropy(logits, target, weight=w, ignore_index=-100)
loss.backward()
cases["cross_entropy"] = {"logits": t(logits), "target": target.reshape(-1).tolist(), "weight": w.tolist(),
                          "loss": loss.item(), "grad": t(logits.grad)}

x = q((3, 5), -3, 3).requires_grad_()
y = (q((3, 5), 0, 1) > 0.5).float()
loss = torch.nn.functional.binary_cross_entropy_with_logits(x, y)
loss.backward()
cases["bce_with_logits"] = {"logits": t(x), "target": t(y), "loss": loss.item(), "grad": t(x.grad)}

a = q((2, 3)).requires_grad_()
b = q((2, 3))
loss = torch.nn.functional.mse_loss(a, b)
loss.backward()
cases["mse"] = {"input": t(a), "target": t(b), "loss": loss.item(), "grad": t(a.grad)}

# batch norm, training mode: output, grads, running stats
bn = torch.nn.BatchNorm2d(3)
with torch.no_grad():
    bn.weight.copy_(q((3,), 0.5, 1.5))
    bn.bias.copy_(q((3,)))
xb = q((2, 3, 4, 4), -2, 2).requires_grad_()
gy = q((2, 3, 4, 4))
yb = bn(xb)
yb.backward(gy)
cases["batch_norm2d"] = {"input": t(xb), "weight": t(bn.weight), "bias": t(bn.bias), "grad_output": t(gy),
                         "output": t(yb), "grad_input": t(xb.grad), "grad_weight": t(bn.weight.grad),
                         "grad_bias": t(bn.bias.grad), "running_mean": t(bn.running_mean),
                         "running_var": t(bn.running_var)}

# optimizers: 5 steps on f(p) = sum(c * p^2) + sum(d * p)


def trajectory(make_opt):
    p = torch.nn.Parameter(q((6,)))
    c, d = q((6,), 0.25, 1.0), q((6,))
    opt = make_opt([p])
    start = p.detach().clone()
    for _ in range(5):
        opt.zero_grad()
        (c * p * p + d * p).sum().backward()
        opt.step()
    return {"start": t(start), "c": t(c), "d": t(d), "end": t(p)}


cases["sgd"] = dict(trajectory(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
                    options={"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True})
cases["adam"] = dict(trajectory(lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.5, 0.999), weight_decay=0.01)),
                     options={"lr": 0.05, "beta1": 0.5, "beta2": 0.999, "weight_decay": 0.01})
cases["adamw"] = dict(trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.1)),
                      options={"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.1})

with open(OUT, "w") as f:
    json.dump(cases, f, indent=None)
print("wrote", OUT)
