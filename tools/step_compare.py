#!/usr/bin/python3
"""Interleaved side-by-side timing of a training step: convlab's tools/bench against PyTorch's same step.

usage: /usr/bin/python3 tools/step_compare.py [--bench build/bench] [--step dcgan_step] [--threads 2]
                                              [--rounds 5] [--json FILE]

Why interleaved: on a shared 2-core machine PyTorch's own figure moved 10-27% between quiet runs minutes
apart, more than the gap being measured. Each round runs convlab's step (Google Benchmark, min_time 2 s, the
mean over its iterations) and then PyTorch's (tools/torch_bench.py, median of its iterations) in fresh
processes back to back, so both see the same load; the verdict is the median of the per-round ratios. The
load average before each round is printed: rounds above ~0.5 x cores of foreign load are suspect.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def convlab_ms(bench, step, threads):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        p = subprocess.run([bench, "--benchmark_filter=^%s/threads:%d/" % (step, threads),
                            "--benchmark_out=" + out.name, "--benchmark_out_format=json"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("step_compare: %s failed:\n%s" % (bench, p.stderr))
        runs = json.load(open(out.name))["benchmarks"]
    if not runs:
        sys.exit("step_compare: %s has no benchmark %s/threads:%d" % (bench, step, threads))
    rss = [l for l in p.stderr.splitlines() if l.startswith("peak RSS")]
    return runs[0]["real_time"], runs[0]["cpu_time"], rss[0].split(":", 1)[1].strip() if rss else "?"


def torch_ms(step, threads):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), "--shapes", "none",
                            "--steps", step, "--threads", str(threads), "--json", out.name],
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("step_compare: torch_bench.py failed:\n%s" % p.stderr)
        row = json.load(open(out.name))["steps"][0]
    return row["step_ms"], row["peak_rss_mib"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "build", "bench"))
    ap.add_argument("--step", default="dcgan_step", choices=["dcgan_step", "hdc_step"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write the rounds and the verdict here")
    a = ap.parse_args()
    rows = []
    print("| round | load avg | convlab ms (cpu ms) | PyTorch ms | convlab / PyTorch |")
    print("|---|---|---|---|---|")
    for r in range(a.rounds):
        load = os.getloadavg()[0]
        c, ccpu, crss = convlab_ms(a.bench, a.step, a.threads)
        t, trss = torch_ms(a.step, a.threads)
        rows.append({"round": r + 1, "load": load, "convlab_ms": c, "convlab_cpu_ms": ccpu, "torch_ms": t,
                     "ratio": c / t, "convlab_peak_rss": crss, "torch_peak_rss_mib": trss})
        print("| %d | %.2f | %.1f (%.1f) | %.1f | %.3f |" % (r + 1, load, c, ccpu, t, c / t), flush=True)
    med = statistics.median(x["ratio"] for x in rows)
    print("\n%s at %d threads: median convlab %.1f ms, PyTorch %.1f ms; median ratio %.3f (min %.3f, max %.3f)"
          % (a.step, a.threads, statistics.median(x["convlab_ms"] for x in rows),
             statistics.median(x["torch_ms"] for x in rows), med, min(x["ratio"] for x in rows),
             max(x["ratio"] for x in rows)))
    print("peak RSS: convlab bench process %s, PyTorch step process %.0f MiB" % (rows[-1]["convlab_peak_rss"],
                                                                                 rows[-1]["torch_peak_rss_mib"]))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"step": a.step, "threads": a.threads, "rounds": rows, "median_ratio": med}, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
