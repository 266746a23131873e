#!/usr/bin/python3
"""PyTorch reference run of configs/dcgan_mnist.json, written as convlab generator checkpoints.

usage: /usr/bin/python3 tools/torch_dcgan_reference.py --out DIR [--steps 6000] [--save-at 2000,4000,6000]
                                                      [--threads 1] [--seed 0] [--mnist data/mnist]

Why: to tell a training difference from a metric difference. The same networks, init (N(0, 0.02), BN gamma
N(1, 0.02)), losses (BCE-with-logits, non-saturating G), Adam (2e-4, betas 0.5 / 0.999), batch 64 and the
same 8,004 train-split digits (index within its class % 5 != 4, as data/mnist.cpp) scaled to [-1, 1], trained
by PyTorch 1.13 as its dcgan example does (one backward of the summed D loss; G sampled in eval mode by
convlab). Each --save-at step writes DIR/torch_generator_<step>.safetensors under PyTorch's state_dict names
(convlab's too) with convlab's generator metadata, so `convlab gan-eval --checkpoint` scores it with the same
classifier. Shuffling and noise come from torch's generator seeded with --seed: not the same batches as
convlab's run, so compare the curves, not single samples. The networks and the iteration are
tools/torch_bench.py's (dcgan_nets, dcgan_iteration), the ones its dcgan_step times.
"""
import argparse
import json
import os
import struct
import time

import torch_bench  # tools/: beside this script

HERE = os.path.dirname(os.path.abspath(__file__))


def load_train_digits(mnist_dir):
    import numpy as np
    xs = []
    for d in range(10):
        with open(os.path.join(mnist_dir, "digits", "%d.json" % d)) as fh:
            a = np.asarray(json.load(fh)["data"], dtype=np.float32).reshape(-1, 28, 28)
        keep = [i for i in range(a.shape[0]) if i % 5 != 4]  # the train split of data/mnist.cpp
        xs.append(a[keep])
    return np.concatenate(xs) * 2.0 - 1.0


def save_generator(path, state, config):
    """Safetensors with convlab's layout: F32 everywhere (num_batches_tracked as [1]), metadata from config."""
    import numpy as np
    header, blobs, off = {}, [], 0
    for k, v in state.items():
        a = v.detach().cpu().numpy().astype(np.float32)
        if k.endswith("num_batches_tracked"):
            a = a.reshape(1)
        b = a.tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "convlab-gan-generator", "step": str(config["_step"]),
                              "config": json.dumps({k: v for k, v in config.items() if k != "_step"}),
                              "weights": "pytorch-reference"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)))
        fh.write(h)
        for b in blobs:
            fh.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--save-at", default="2000,4000,6000")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mnist", default=os.path.join(HERE, "..", "data", "mnist"))
    ap.add_argument("--config", default=os.path.join(HERE, "..", "configs", "dcgan_mnist.json"))
    a = ap.parse_args()
    import torch
    import torch.nn as nn
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    config = json.load(open(a.config))
    save_at = {int(s) for s in a.save_at.split(",") if s}

    G, D = torch_bench.dcgan_nets(nn)  # the same networks tools/torch_bench.py times

    def init(m):  # the dcgan example's weights_init
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    G.apply(init)
    D.apply(init)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    data = torch.from_numpy(load_train_digits(a.mnist)).unsqueeze(1)
    n, B = data.shape[0], 64
    ones, zeros = torch.ones(B), torch.zeros(B)
    perm, pos = torch.randperm(n), 0
    t0 = time.time()
    for step in range(1, a.steps + 1):
        if pos + B > n:
            perm, pos = torch.randperm(n), 0
        real = data[perm[pos:pos + B]]
        pos += B
        lossD, lossG = torch_bench.dcgan_iteration(G, D, optG, optD, bce, real, torch.randn(B, 100, 1, 1), ones,
                                                    zeros)
        if step % 500 == 0:
            print("step %d loss D %.4f G %.4f %.1f s" % (step, lossD.item(), lossG.item(), time.time() - t0),
                  flush=True)
        if step in save_at:
            config["_step"] = step
            save_generator(os.path.join(a.out, "torch_generator_%d.safetensors" % step), G.state_dict(), config)


if __name__ == "__main__":
    main()
