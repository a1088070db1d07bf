"""Inference time (energy, forces and stress) of mlip models beside mace-torch's MACE.

Both run in this process, on the same prebuilt neighbour graphs of fcc Cu supercells, with a
5 Å cutoff. MACE needs e3nn 0.4.4, so this runs in a separate environment:

    python3 -m venv .venv-bench && . .venv-bench/bin/activate
    pip install torch==2.13.0 && pip install mace-torch "e3nn==0.4.4"
    pip install -e . --no-deps && pip install vesin pymatgen torch-geometric ijson ase-db-backends
    pip uninstall -y torchvision   # if anything pulled it in: it breaks beside CPU torch
    python scripts/bench_inference.py --sizes 108 256 864 --dtype float32

Prints a markdown table; the time is the median of ``--repeats`` calls after a warm-up.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
from ase.build import bulk

try:  # mace first: it lets e3nn 0.4.4 load its constants under torch's weights_only default
    import mace  # noqa: F401
except ImportError:
    mace = None

import mlip  # noqa: E402
from mlip.data import from_ase  # noqa: E402

CUTOFF = 5.0


def cu_supercell(n_atoms: int, seed=0):
    reps = {108: (3, 3, 3), 256: (4, 4, 4), 500: (5, 5, 5), 864: (6, 6, 6)}[n_atoms]
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * reps
    atoms.rattle(0.02, seed=seed)
    return atoms


def timed(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def mlip_runner(name: str, atoms, dtype: str, device: str = "cpu", **hp):
    from mlip.data.graph import to

    torch.manual_seed(0)
    model = mlip.build_model(name, elements=[29], cutoff=CUTOFF, dtype=dtype, **hp).eval()
    model = model.to(device)
    graph = to(from_ase(atoms, CUTOFF), device)

    def run():
        out = model(graph, compute_forces=True, compute_stress=True)
        return out["energy"].item()

    return run, sum(p.numel() for p in model.parameters())


def mace_runner(atoms, dtype: str, device: str = "cpu", channels: int = 128, lmax: int = 1):
    from e3nn import o3
    from mace import data, modules, tools
    from mace.tools import torch_geometric

    torch.manual_seed(0)
    z_table = tools.AtomicNumberTable([29])
    model = modules.MACE(
        r_max=CUTOFF, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=1,
        hidden_irreps=o3.Irreps("+".join(f"{channels}x{l}{'eo'[l % 2]}" for l in range(lmax + 1))),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(1), avg_num_neighbors=40.0,
        atomic_numbers=[29], correlation=3, gate=torch.nn.functional.silu,
    ).to(getattr(torch, dtype)).to(device).eval()
    config = data.config_from_atoms(atoms)
    batch = torch_geometric.Batch.from_data_list(
        [data.AtomicData.from_config(config, z_table=z_table, cutoff=CUTOFF)]
    ).to_dict()
    batch = {k: (v.to(device, getattr(torch, dtype) if v.is_floating_point() else v.dtype)
                 if torch.is_tensor(v) else v) for k, v in batch.items()}

    def run():
        out = model(batch, training=False, compute_force=True, compute_stress=True)
        return out["energy"].item()

    return run, sum(p.numel() for p in model.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[108, 256, 864])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="+",
                        default=["facet-s", "nequip-like", "gaunt", "transformer-s", "mace"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    # ``.item()`` on the energy waits for the GPU, so the times are complete on cuda too.
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, {args.device}, {args.dtype}, cutoff {CUTOFF} Å\n")
    header = "| model | params | " + " | ".join(f"{n} atoms (ms)" for n in args.sizes) + " |"
    print(header)
    print("|" + "---|" * (len(args.sizes) + 2))
    results = {}
    for name in args.models:
        row, params = [], 0
        for n in args.sizes:
            atoms = cu_supercell(n)
            try:
                if name == "mace":
                    run, params = mace_runner(atoms, args.dtype, args.device)
                else:
                    run, params = mlip_runner(name, atoms, args.dtype, args.device)
            except (ValueError, ImportError) as err:
                row.append(f"n/a ({err.__class__.__name__})")
                continue
            t = timed(run, args.repeats)
            results[(name, n)] = t
            row.append(f"{1000 * t:.1f}")
        label = "MACE (128x0e+128x1o, L=3 SH, corr 3)" if name == "mace" else name
        print(f"| {label} | {params:,} | " + " | ".join(row) + " |")
    if any(k[0] == "mace" for k in results):
        print()
        for name in args.models:
            if name == "mace":
                continue
            ratios = [f"{n}: {results[(name, n)] / results[('mace', n)]:.2f}"
                      for n in args.sizes if (name, n) in results and ("mace", n) in results]
            print(f"- {name} / MACE time ratio: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
