"""Channelwise tensor products on CPU: ours (CG, Gaunt grid, Gaunt Fourier) beside e3nn's.

Same inputs and outputs for all: node-like features x1 ``(E, (L+1)^2, C)`` times edge
harmonics ``(E, (L+1)^2)`` -> ``(E, (L+1)^2, C)``, float32, parity (-1)^l so every product has
the even paths only. Per-edge weights as each form takes them: per path and channel for CG and
e3nn "uvu"; per degree of the harmonics and channel for the Gaunt products; e3nn's fully
connected ("uvw") product has shared internal weights (per-edge C x C weights would not fit).
e3nn runs on its own flat layout (no layout conversion timed). Milliseconds per call, the best
of ``--repeats`` after one warm-up; "fwd" under no_grad, "fwd+bwd" with a backward to the
inputs and weights. Gaunt-Fourier runs in edge chunks of ``--fourier-chunk`` (its padded
complex FFT buffers are (E, 4L+1, 4L+1, C); all 10,000 edges at once would take gigabytes).

    python scripts/bench_tensor_products.py [--lmax 1 2 3 4 5 6] [--channels 64 128]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from e3nn import o3

from mlip.nn.spherical import spherical_harmonics
from mlip.nn.tensor_product import CGTensorProduct, GauntFourierProduct, GauntGridProduct


def timed(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def irreps(mul, lmax):
    return o3.Irreps([(mul, (l, (-1) ** l)) for l in range(lmax + 1)])


def cases(lmax, c, edges, chunk):
    """name -> (callable building the output, tensors that need gradients)."""
    gen = torch.Generator().manual_seed(0)
    k = (lmax + 1) ** 2
    x1 = torch.randn(edges, k, c, generator=gen)
    sh = spherical_harmonics(lmax, torch.randn(edges, 3, generator=gen))[..., None]
    cg = CGTensorProduct(lmax, lmax, lmax, paths="even").float()
    w_paths = torch.randn(edges, cg.num_paths, c, generator=gen)
    w_deg = torch.randn(edges, lmax + 1, c, generator=gen)
    grid = GauntGridProduct(lmax, lmax, lmax, dtype=torch.float32)
    fourier = GauntFourierProduct(lmax, lmax, lmax, dtype=torch.float32)
    ir1, ir2 = irreps(c, lmax), irreps(1, lmax)
    uvu = o3.TensorProduct(ir1, ir2, ir1, [(*p, "uvu", True) for p in cg.paths],
                           shared_weights=False, internal_weights=False)
    fc = o3.FullyConnectedTensorProduct(ir1, ir2, ir1)
    flat1 = torch.cat([x1[:, l * l : (l + 1) ** 2].transpose(1, 2).flatten(1)
                       for l in range(lmax + 1)], 1)
    flat_sh, flat_w = sh[..., 0], w_paths.flatten(1)

    def chunked(a, b, w):
        return torch.cat([fourier(a[i : i + chunk], b[i : i + chunk], weights2=w[i : i + chunk])
                          for i in range(0, edges, chunk)])

    return {
        "CG (ours)": (lambda: cg(x1, sh, w_paths), [x1, w_paths]),
        "Gaunt grid (ours)": (lambda: grid(x1, sh, weights2=w_deg), [x1, w_deg]),
        "Gaunt Fourier (ours)": (lambda: chunked(x1, sh, w_deg), [x1, w_deg]),
        "e3nn uvu": (lambda: uvu(flat1, flat_sh, flat_w), [flat1, flat_w]),
        "e3nn fully connected": (lambda: fc(flat1, flat_sh), [flat1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmax", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--channels", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--edges", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fourier-chunk", type=int, default=1000)
    parser.add_argument("--only", nargs="+", default=None,
                        help="case names to run (substring match), e.g. grid uvu")
    args = parser.parse_args(argv)
    print(f"`python scripts/bench_tensor_products.py {' '.join(sys.argv[1:])}`".replace(" `", "`"))
    print(f"torch {torch.__version__}, e3nn {__import__('e3nn').__version__}, "
          f"{torch.get_num_threads()} threads, {args.edges} edges, float32, ms per call\n")
    names = None
    rows = []
    for c in args.channels:
        for lmax in args.lmax:
            row = {}
            for name, (fn, inputs) in cases(lmax, c, args.edges, args.fourier_chunk).items():
                if args.only and not any(k.lower() in name.lower() for k in args.only):
                    continue
                with torch.no_grad():
                    fwd = timed(fn, args.repeats)
                for t in inputs:
                    t.requires_grad_(True)

                def step(fn=fn, inputs=inputs):
                    out = fn()
                    torch.autograd.grad(out, inputs, torch.ones_like(out))

                row[name] = (fwd, timed(step, args.repeats))
                for t in inputs:
                    t.requires_grad_(False)
            names = list(row)
            rows.append((lmax, c, row))
            print(f"lmax {lmax} C {c}: " + ", ".join(f"{n} {f:.0f}/{b:.0f}"
                                                  for n, (f, b) in row.items()),
                  file=sys.stderr, flush=True)
    grid = "Gaunt grid (ours)"
    anchors = [n for n in ("e3nn uvu", "e3nn fully connected") if n in names and grid in names]
    print("| lmax | C | " + " | ".join(names + [f"{a} / grid" for a in anchors]) + " |")
    print("|---" * (len(names) + len(anchors) + 2) + "|")
    for lmax, c, row in rows:
        cells = [f"{f:.1f} / {b:.1f}" for f, b in row.values()]
        cells += [f"{row[a][0] / row[grid][0]:.1f}x / {row[a][1] / row[grid][1]:.1f}x"
                  for a in anchors]
        print(f"| {lmax} | {c} | " + " | ".join(cells) + " |")
    print("\nCells: fwd / fwd+bwd in ms; ratio columns: the e3nn product's time over the Gaunt "
          "grid product's time.")


if __name__ == "__main__":
    main()
