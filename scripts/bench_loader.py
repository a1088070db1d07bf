"""Graphs per second from an HDF5 cache through the DataLoader, on CPU.

Two sets, written to HDF5 first: 30-atom molecules (pairs of real acac MD geometries 6 Å apart,
rattled; open boundaries) and 100-atom crystals (fcc Cu, 5x5x1 cubic cells, rattled). Graphs are
built with vesin at a 5 Å cutoff in the loader (workers 0, 1, 2), batches up to 600 atoms; the
rate (graphs/s) is the better of two epochs, after the workers have started. ``validate``
is ``frame_to_graph``'s structure check (it includes a short-distance neighbour search).

    python scripts/bench_loader.py [--frames 600]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from mlip.data.hdf5 import convert
from mlip.data.loader import GraphDataset, make_loader

REPO = Path(__file__).resolve().parents[1]


def molecules(n: int) -> list[Atoms]:
    import ase.io

    acac = ase.io.read(REPO / "datasets/acac/train_300K.xyz", index=":40")
    out = []
    rng = np.random.default_rng(0)
    for i in range(n):
        a, b = acac[i % 40].copy(), acac[(i + 7) % 40].copy()
        b.positions += [6.0, 0, 0]
        m = a + b  # 30 atoms
        m.positions += rng.normal(0, 0.02, m.positions.shape)
        m.info["energy"] = -1.0
        out.append(m)
    return out


def crystals(n: int) -> list[Atoms]:
    base = bulk("Cu", "fcc", a=3.61, cubic=True) * (5, 5, 1)
    out = []
    for i in range(n):
        a = base.copy()
        a.rattle(0.05, seed=i)
        a.info["energy"] = -1.0
        out.append(a)
    return out


def to_h5(structures: list[Atoms], folder: Path, name: str) -> Path:
    import ase.io

    xyz = folder / f"{name}.xyz"
    ase.io.write(xyz, structures, format="extxyz")
    out = folder / f"{name}.h5"
    convert([str(xyz)], str(out))
    return out


def bench(path: Path, workers: int, max_atoms: int, validate: bool, repeats: int = 2) -> float:
    ds = GraphDataset(path, cutoff=5.0, validate=validate)
    loader = make_loader(ds, max_atoms=max_atoms, seed=0, num_workers=workers)
    next(iter(loader))  # start the workers outside the timing
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = sum(len(batch["num_atoms"]) for batch in loader)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sets = {
            "30-atom molecules (open)": to_h5(molecules(args.frames), tmp, "mol"),
            "100-atom Cu crystals (periodic)": to_h5(crystals(args.frames), tmp, "cryst"),
        }
        print("| structures | edges/atom | validate | 0 workers | 1 worker | 2 workers |")
        print("|---|---|---|---|---|---|")
        for label, path in sets.items():
            ds = GraphDataset(path, 5.0)
            epa = ds.num_edges()[:50].sum() / ds.num_atoms[:50].sum()
            for validate in (True, False):
                rates = [bench(path, w, 600, validate) for w in (0, 1, 2)]
                cells = " | ".join(f"{r:.0f}" for r in rates)
                print(f"| {label} | {epa:.1f} | {validate} | {cells} |")


if __name__ == "__main__":
    main()
