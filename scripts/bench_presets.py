"""E+F cost of every preset on one batch of acac molecules, interleaved in one process.

    OMP_NUM_THREADS=1 python scripts/bench_presets.py [--molecules 20] [--repeats 4]

Prints ms per atom and the ratio to facet-s (the best of the repeats after the first); the
ratios are what docs/presets.md reports, since other processes on the machine change the
absolute numbers far more than they change the ratios.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from ase.io import read

import mlip
from mlip.data.graph import atoms_to_frame, batch_graphs, frame_to_graph, input_frame

PRESETS = ["nequip-like", "facet-s", "facet-acc", "gaunt", "transformer-s", "transformer-m"]
ACAC = Path(__file__).resolve().parents[1] / "datasets" / "acac" / "test_MD_300K.xyz"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--molecules", type=int, default=20)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    structures = read(ACAC, f":{args.molecules}")
    graph = batch_graphs([frame_to_graph(input_frame(atoms_to_frame(a)), 5.0)
                          for a in structures])
    models = {}
    for name in PRESETS:
        torch.manual_seed(0)
        models[name] = mlip.build_model(name, elements=["H", "C", "O"], dtype=args.dtype).eval()
    times = {name: [] for name in PRESETS}
    for _ in range(args.repeats):
        for name in PRESETS:  # interleaved: a load change hits every preset alike
            start = time.perf_counter()
            models[name](graph, compute_forces=True)
            times[name].append(time.perf_counter() - start)
    n_atoms = graph["positions"].shape[0]
    base = min(times["facet-s"][1:])
    print(f"| preset | parameters | ms/atom | x facet-s |  ({n_atoms} atoms, {args.dtype})")
    print("|---|---|---|---|")
    for name in PRESETS:
        best = min(times[name][1:])
        params = sum(p.numel() for p in models[name].parameters())
        print(f"| {name} | {params:,} | {1e3 * best / n_atoms:.3f} | {best / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
