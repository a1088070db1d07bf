"""Does torch.compile speed up the torch reference of the Gaunt-grid convolution on CPU?

Triton does not compile for CPU, so the reference is the CPU path; this measures it eager and
under torch.compile (inductor), forward and forward+backward, and prints a markdown table.

    python scripts/bench_cpu_compile.py --nodes 256 --edges 20000 --grid 28 --channels 64
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from mlip.kernels.gaunt_conv import reference


def make_inputs(n, e, g, c, lmax, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, g, c, generator=gen, dtype=dtype)
    d = torch.nn.functional.normalize(torch.randn(e, 3, generator=gen, dtype=dtype), dim=-1)
    radial = torch.randn(e, lmax + 1, c, generator=gen, dtype=dtype)
    grid = torch.nn.functional.normalize(torch.randn(g, 3, generator=gen, dtype=dtype), dim=-1)
    receiver = torch.sort(torch.randint(0, n, (e,), generator=gen)).values
    sender = torch.randint(0, n, (e,), generator=gen)
    return x, d, radial, grid, sender, receiver


def timed(fn, repeats):
    fn()  # warm-up (and compilation)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(args):
    dtype = getattr(torch, args.dtype)
    x, d, radial, grid, s, r = make_inputs(args.nodes, args.edges, args.grid, args.channels,
                                           args.lmax, dtype)
    leaves = [t.requires_grad_() for t in (x, d, radial)]
    eager = reference.gaunt_grid_conv
    compiled = torch.compile(reference.gaunt_grid_conv)
    rows = []
    for name, fn in (("eager", eager), ("torch.compile", compiled)):
        def fwd(fn=fn):
            with torch.no_grad():
                fn(x, d, radial, grid, s, r)

        def fwd_bwd(fn=fn):
            out = fn(x, d, radial, grid, s, r)
            torch.autograd.grad(out.sum(), leaves)

        t0 = time.perf_counter()
        fwd_bwd()
        first = time.perf_counter() - t0
        rows.append((name, timed(fwd, args.repeats), timed(fwd_bwd, args.repeats), first))
    print(f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads;"
          f" torch {torch.__version__}; N={args.nodes} E={args.edges} G={args.grid} "
          f"C={args.channels} L={args.lmax} {args.dtype}\n")
    print("| path | forward (ms) | forward+backward (ms) | first call (s) |")
    print("|---|---|---|---|")
    for name, f, fb, first in rows:
        print(f"| {name} | {f * 1e3:.1f} | {fb * 1e3:.1f} | {first:.1f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=256)
    p.add_argument("--edges", type=int, default=20000)
    p.add_argument("--grid", type=int, default=28)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--lmax", type=int, default=3)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=5)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
