"""Equivariance error of GridMixing (the Facet self-connection) against the grid resolution.

For each lmax, a GridMixing(lmax, 16, 16) at its seeded initialisation (float64) is applied to
64 nodes of unit-variance coefficients; the error is the largest, over 3 random rotations, of
``|f(D x) - D f(x)| / |f(x)|`` (Frobenius norms, D from e3nn's Wigner D in our layout). The
resolution is the degree the grid integrates exactly. Prints a markdown table and the smallest
resolution under 1e-4 and 1e-5 per lmax, and saves docs/img/grid_mixing_error.png.

``--compare LMAX`` instead compares Gauss grids with Lebedev rules for one lmax: points and
error per grid, at initialisation and with the MLP's weights scaled up (trained weights alias
far more than initial ones; scaling them is a cheap stand-in that ranks grids the same way).

    python scripts/grid_mixing_error.py [--lmax 6]
    python scripts/grid_mixing_error.py --compare 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import torch
from e3nn import o3

from mlip.nn.mixing import GridMixing, default_grid_resolution
from mlip.nn.spherical import S2Grid, lebedev_degrees, wigner_D

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = 1e-4


def error(lmax: int, resolution: int, rotations, channels: int = 16, kind: str = "gauss",
          scale: float = 1.0) -> float:
    gen = torch.Generator().manual_seed(lmax)
    x = torch.randn(64, (lmax + 1) ** 2, channels, dtype=torch.float64, generator=gen)
    torch.manual_seed(0)
    mixing = GridMixing(lmax, channels, channels, grid_resolution=resolution,
                        grid_kind=kind).double()
    with torch.no_grad():
        for p in mixing.mlp.parameters():
            p.mul_(scale)
    y = mixing(x)
    errs = []
    for r in rotations:
        d = wigner_D(lmax, r)
        errs.append(((mixing(d @ x) - d @ y).norm() / y.norm()).item())
    return max(errs)


def compare(lmax: int, rotations, scales=(1.0, 4.0, 8.0)) -> None:
    grids = [("gauss", d) for d in range(max(2 * lmax, 12), 8 * lmax + 17, 4)]
    grids += [("lebedev", d) for d in lebedev_degrees() if 2 * lmax <= d <= 8 * lmax + 16]
    print("| grid | degree | points | " + " | ".join(f"error, weights x{s:g}" for s in scales)
          + " |")
    print("|---" * (3 + len(scales)) + "|")
    for kind, degree in sorted(grids, key=lambda g: len(S2Grid(g[1], g[0]))):
        cells = [f"{error(lmax, degree, rotations, kind=kind, scale=s):.1e}" for s in scales]
        print(f"| {kind} | {degree} | {len(S2Grid(degree, kind))} | " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmax", type=int, default=6)
    parser.add_argument("--compare", type=int, metavar="LMAX",
                        help="compare Gauss and Lebedev grids for this lmax")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rotations = [o3.rand_matrix(dtype=torch.float64) for _ in range(3)]
    print(f"`python scripts/grid_mixing_error.py {' '.join(sys.argv[1:])}`".replace(" `", "`"))
    print(f"torch {torch.__version__}, float64, hidden 16, 64 nodes, max over 3 rotations\n")
    if args.compare is not None:
        compare(args.compare, rotations)
        return
    results = {}
    for lmax in range(1, args.lmax + 1):
        results[lmax] = [(res, error(lmax, res, rotations))
                         for res in range(2 * lmax, 8 * lmax + 9, 2)]
    resolutions = sorted({res for rows in results.values() for res, _ in rows})
    print("| lmax | " + " | ".join(str(r) for r in resolutions) + " | < 1e-4 | < 1e-5 | default |")
    print("|---" * (len(resolutions) + 4) + "|")
    for lmax, rows in results.items():
        by_res = dict(rows)
        cells = [f"{by_res[r]:.1e}" if r in by_res else "" for r in resolutions]
        ok4 = [res for res, e in rows if e < THRESHOLD] + ["-"]
        ok5 = [res for res, e in rows if e < THRESHOLD / 10] + ["-"]
        print(f"| {lmax} | " + " | ".join(cells)
              + f" | {ok4[0]} | {ok5[0]} | {default_grid_resolution(lmax)} |")

    fig, ax = plt.subplots(figsize=(6, 4))
    for lmax, rows in results.items():
        ax.semilogy(*zip(*rows), marker="o", label=f"lmax {lmax}")
    ax.axhline(THRESHOLD, color="k", ls="--", lw=0.8)
    ax.set(xlabel="grid resolution (exact degree)", ylabel="relative equivariance error",
           title="GridMixing: equivariance error vs grid")
    ax.legend()
    out = REPO / "docs" / "img" / "grid_mixing_error.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"\nplot: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
