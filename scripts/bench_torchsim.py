"""torch-sim's path, timed: one batched model call for many systems, mlip beside MACE.

torch-sim drives every system of a run with one model call a step. This times that call
(energy, forces and stress of all systems; neighbour lists and batching included) for mlip's
``MLIPModel`` and torch-sim's own ``MaceModel``, and, for mlip, the ASE calculator called on
the same systems one by one, the path the batched call replaces. Systems: rattled fcc Cu
cells (``--atoms`` each, 5 Å cutoff), ``--systems`` of them in one state. Models have random
weights: facet-s (or any mlip preset) and MACE 128x0e+128x1o, L=3, correlation 3, two
interactions (MACE-MP "medium" size, as ``scripts/bench_inference.py``). All timings in one
process, interleaved, median over ``--repeats``, ``--threads`` threads.

    python scripts/bench_torchsim.py --systems 1 8 32 --atoms 108
    python scripts/bench_torchsim.py --systems 64 --models facet-s --threads 2

Prints a markdown table; ``--json PATH`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import CUTOFF, build_mace, cu_supercell  # noqa: E402


def systems(n_systems: int, n_atoms: int, seed: int):
    return [cu_supercell(n_atoms, seed=seed * 1000 + i) for i in range(n_systems)]


def runners(models: list[str], dtype: str):
    """name -> (batched call on a list of Atoms, per-structure ASE loop or None)."""
    import torch
    import torch_sim as ts

    import mlip
    from mlip.integrations.torchsim import MLIPModel

    tdtype = getattr(torch, dtype)
    cpu = torch.device("cpu")
    out = {}
    for name in models:
        if name == "mace":
            from torch_sim.models.mace import MaceModel

            default = torch.get_default_dtype()
            model = MaceModel(build_mace(dtype), device=cpu, dtype=tdtype)
            torch.set_default_dtype(default)
            loop = None
        else:
            torch.manual_seed(0)
            potential = mlip.build_model(name, elements=[29], cutoff=CUTOFF, dtype=dtype).eval()
            model = MLIPModel(potential, device=cpu, dtype=tdtype)
            calc = mlip.MLIPCalculator(potential, device="cpu")

            def loop(structures, calc=calc):
                for atoms in structures:
                    atoms = atoms.copy()
                    atoms.calc = calc
                    atoms.get_potential_energy()
                    atoms.get_forces()
                    atoms.get_stress()

        def batched(structures, model=model):
            state = ts.io.atoms_to_state(structures, cpu, tdtype)
            result = model(state)
            return result["energy"].sum().item()

        out[name] = (batched, loop)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--atoms", type=int, default=108, help="atoms per system (a Cu supercell)")
    p.add_argument("--models", nargs="+", default=["facet-s", "mace"])
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    calls = runners(args.models, args.dtype)
    rows = []
    for n in args.systems:
        sets = [systems(n, args.atoms, seed) for seed in range(args.repeats + 1)]
        for batched, loop in calls.values():  # warm-up: first calls allocate
            batched(sets[0])
            if loop is not None:
                loop(sets[0][:1])
        times = {name: {"batched": [], "loop": []} for name in calls}
        for rep in range(args.repeats):
            for name, (batched, loop) in calls.items():
                t0 = time.perf_counter()
                batched(sets[rep + 1])
                times[name]["batched"].append(time.perf_counter() - t0)
                if loop is not None:
                    t0 = time.perf_counter()
                    loop(sets[rep + 1])
                    times[name]["loop"].append(time.perf_counter() - t0)
        for name, t in times.items():
            row = {"model": name, "systems": n, "atoms_per_system": args.atoms,
                   "batched_s": statistics.median(t["batched"])}
            if t["loop"]:
                row["ase_loop_s"] = statistics.median(t["loop"])
            rows.append(row)
    print(f"{args.atoms}-atom fcc Cu cells, E+F+S, {args.dtype}, {args.threads} thread(s); "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    print("| systems | model | torch-sim call (s) | per atom (ms) "
          "| ASE calculator, one by one (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        per_atom = 1e3 * r["batched_s"] / (r["systems"] * r["atoms_per_system"])
        loop = f"{r['ase_loop_s']:.3f}" if "ase_loop_s" in r else "-"
        print(f"| {r['systems']} | {r['model']} | {r['batched_s']:.3f} | {per_atom:.2f} | {loop} |")
    if args.json:
        args.json.write_text(json.dumps({"argv": sys.argv[1:], "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
