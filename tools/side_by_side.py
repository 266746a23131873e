#!/usr/bin/python3
"""Side-by-side wall clock of convlab and PyTorch on the benchmark shapes, interleaved, as ratios.

usage: /usr/bin/python3 tools/side_by_side.py [--convlab build/convlab] [--shapes all|NAME,NAME]
           [--threads 2] [--rounds 2] [--repeat 10] [--json FILE]

For every round and every shape in turn: `convlab op ../shared/bench/cases/SHAPE.case.json --stats --repeat R`
with OMP_NUM_THREADS=T (its median forward + median backward ms), then tools/torch_bench.py --shapes SHAPE
--threads T --repeat R (the same, in a fresh process). The two sides of a shape run seconds apart, so both see
the same machine; each side's fastest round is compared, and the ratio is PyTorch's ms / convlab's ms (> 1:
convlab faster). The load average before and after is printed: on a shared machine PyTorch's spinning OpenMP
threads collapse whenever a core is taken, so read a loaded run as indicative only.
"""
import argparse, json, os, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "bench")


def convlab_ms(binary, case, threads, repeat):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "op", case, "--stats", "--repeat", str(repeat)], env=env, check=True,
                         capture_output=True, text=True).stdout
    t = json.loads(out)["timing"]
    return t["forward_ms"] + t["backward_ms"]


def torch_ms(shape, threads, repeat):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), "--shapes", shape, "--threads",
                        str(threads), "--repeat", str(repeat), "--json", f.name], check=True,
                       capture_output=True, text=True)
        s = json.load(open(f.name))["shapes"][0]
    return s["forward_ms"] + s["backward_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convlab", default=os.path.join(HERE, "..", "build", "convlab"))
    ap.add_argument("--shapes", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    names = [s["name"] for s in json.load(open(os.path.join(SHARED, "shapes.json")))["shapes"]]
    if a.shapes != "all":
        names = a.shapes.split(",")
    load0 = os.getloadavg()
    rows = {n: {"convlab": [], "torch": []} for n in names}
    for r in range(a.rounds):
        for n in names:
            case = os.path.join(SHARED, "cases", n + ".case.json")
            rows[n]["convlab"].append(convlab_ms(a.convlab, case, a.threads, a.repeat))
            rows[n]["torch"].append(torch_ms(n, a.threads, a.repeat))
            print(f"round {r + 1} {n}: convlab {rows[n]['convlab'][-1]:.2f} ms, PyTorch {rows[n]['torch'][-1]:.2f} ms",
                  file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    print(f"T={a.threads}, {a.rounds} rounds, --repeat {a.repeat}; load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} after")
    print("| shape | convlab ms (rounds) | PyTorch ms (rounds) | PyTorch / convlab (min / min) |")
    print("|---|---:|---:|---:|")
    for n in names:
        c, t = rows[n]["convlab"], rows[n]["torch"]
        rows[n]["ratio"] = min(t) / min(c)
        print(f"| {n} | {', '.join(f'{v:.2f}' for v in c)} | {', '.join(f'{v:.2f}' for v in t)} | "
              f"{rows[n]['ratio']:.2f}x |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "rounds": a.rounds, "repeat": a.repeat, "load": [load0, load1],
                       "shapes": rows}, f, indent=1)


if __name__ == "__main__":
    main()
