"""The user's inference path, timed end to end: an ASE calculator on a fresh structure, energy,
forces and stress, for mlip models beside mace-torch's own MACECalculator.

Rattled fcc Cu supercells, 5 Å cutoff. For each size, one worker process times every model
interleaved (so the ratios are measured in one process, under the same load), through the
calculator (``MLIPCalculator``, then ``get_potential_energy``, ``get_forces``, ``get_stress`` on
a new Atoms object each call: neighbour list and graph included) and, as a second figure, the
model alone on a prebuilt graph. CPU time (``process_time``) is reported beside wall time: on
a machine shared with other jobs it is the steadier figure per atom. Peak memory comes from
one more worker per model and size (``ru_maxrss`` of a fresh process that makes a single
calculator call, and its size before the call). MACE is 128x0e+128x1o (MACE-MP "medium"
size), L=3 harmonics, correlation 3, two interactions, built in the process with random
weights; sizes above ``--mace-max-atoms`` skip it (its memory grows ~3.5 MB per atom).

    python scripts/bench_inference.py --sizes 256 1000 4000 20000 --models facet-s mace

Prints a markdown table and, with ``--json PATH``, writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

CUTOFF = 5.0
# fcc Cu supercells of the cubic 4-atom cell with the requested number of atoms.
REPS = {108: (3, 3, 3), 256: (4, 4, 4), 500: (5, 5, 5), 864: (6, 6, 6), 1000: (5, 5, 10),
        2048: (8, 8, 8), 4000: (10, 10, 10), 10000: (10, 10, 25), 20000: (10, 20, 25),
        40000: (20, 20, 25)}


def cu_supercell(n_atoms: int, seed: int = 0):
    from ase.build import bulk

    if n_atoms not in REPS:
        raise SystemExit(f"no Cu supercell of {n_atoms} atoms; choose from {sorted(REPS)}")
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * REPS[n_atoms]
    atoms.rattle(0.02, seed=seed)
    return atoms


def build_mace(dtype: str):
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(0)
    return modules.MACE(
        r_max=CUTOFF, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=1, hidden_irreps=o3.Irreps("128x0e+128x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(1), avg_num_neighbors=40.0,
        atomic_numbers=[29], correlation=3, gate=torch.nn.functional.silu,
    ).to(getattr(torch, dtype)).eval()


class Runner:
    """One model's calculator and its model-only call on a prebuilt graph."""

    def __init__(self, name: str, dtype: str, atoms, device: str = "cpu"):
        import torch

        self.name = name
        if name == "mace":
            from mace.calculators import MACECalculator
            from mace.data import AtomicData, config_from_atoms
            from mace.tools import AtomicNumberTable, torch_geometric

            model = build_mace(dtype).to(device)
            default = torch.get_default_dtype()
            self.calc = MACECalculator(models=model, device=device, default_dtype=dtype)
            torch.set_default_dtype(default)  # MACECalculator sets the global default
            data = AtomicData.from_config(config_from_atoms(atoms),
                                          z_table=AtomicNumberTable([29]), cutoff=CUTOFF)
            batch = torch_geometric.Batch.from_data_list([data]).to_dict()
            batch = {k: (v.to(device, getattr(torch, dtype) if v.is_floating_point() else v.dtype)
                         if torch.is_tensor(v) else v) for k, v in batch.items()}
            self.model_only = lambda: model(batch, training=False, compute_force=True,
                                            compute_stress=True)["energy"].item()
            self.params = sum(p.numel() for p in model.parameters())
        else:
            import mlip
            from mlip.calculator import MLIPCalculator
            from mlip.data import from_ase
            from mlip.data.graph import to

            torch.manual_seed(0)
            model = mlip.build_model(name, elements=[29], cutoff=CUTOFF, dtype=dtype).eval()
            self.calc = MLIPCalculator(model, device=device)
            graph = to(from_ase(atoms, CUTOFF), device)
            self.model_only = lambda: model(graph, compute_forces=True,
                                            compute_stress=True)["energy"].item()
            self.params = sum(p.numel() for p in model.parameters())

    def calculator_call(self, atoms):
        atoms = atoms.copy()  # a new structure: nothing cached
        atoms.calc = self.calc
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()


def worker_time(args) -> dict:
    """Interleaved timings of every model at one size (median over repeats)."""
    structures = [cu_supercell(args.size, seed=s) for s in range(args.repeats + 1)]
    runners = [Runner(m, args.dtype, structures[0], args.device) for m in args.models]
    for _ in range(args.warmup):  # first calls allocate and build caches
        for r in runners:
            r.calculator_call(structures[0])
            r.model_only()
    calc_t = {r.name: [] for r in runners}
    cpu_t = {r.name: [] for r in runners}
    model_t = {r.name: [] for r in runners}
    for rep in range(args.repeats):
        for r in runners:
            t0, c0 = time.perf_counter(), time.process_time()
            r.calculator_call(structures[rep + 1])
            calc_t[r.name].append(time.perf_counter() - t0)
            cpu_t[r.name].append(time.process_time() - c0)
            t0 = time.perf_counter()
            r.model_only()
            model_t[r.name].append(time.perf_counter() - t0)
    return {r.name: {"params": r.params, "calculator_s": statistics.median(calc_t[r.name]),
                     "model_s": statistics.median(model_t[r.name]),
                     "calculator_cpu_s": statistics.median(cpu_t[r.name]),
                     "calculator_all_s": calc_t[r.name]} for r in runners}


def worker_memory(args) -> dict:
    """Peak resident memory of one calculator call in this fresh process."""
    atoms = cu_supercell(args.size)
    import torch

    runner = Runner(args.models[0], args.dtype, atoms, args.device)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    runner.calculator_call(cu_supercell(args.size, seed=1))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_mb": peak / 1024, "before_mb": before / 1024, "first_call_s": seconds,
           "first_call_cpu_s": cpu}
    if args.device.startswith("cuda"):  # the device's peak; ru_maxrss is the host's
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def spawn(args, mode: str, size: int, models: list[str]) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", mode, "--size", str(size), "--models", *models,
           "--dtype", args.dtype, "--repeats", str(args.repeats), "--threads", str(args.threads),
           "--warmup", str(args.warmup),
           "--device", args.device]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["killed"])[-1]
        print(f"  {mode} {size} {models}: failed ({tail})", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1000, 4000, 20000])
    parser.add_argument("--models", nargs="+", default=["facet-s", "mace"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per model first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--mace-max-atoms", type=int, default=4000,
                        help="skip MACE above this size (it needs ~3.5 MB per atom)")
    parser.add_argument("--no-memory", action="store_true", help="timings only")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--worker", choices=["time", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        import warnings

        warnings.filterwarnings("ignore")
        fn = worker_time if args.worker == "time" else worker_memory
        print(json.dumps(fn(args)))
        return

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, {args.device}, {args.dtype}, cutoff {CUTOFF} Å, "
          f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    results: dict = {}
    for n in args.sizes:
        models = [m for m in args.models if m != "mace" or n <= args.mace_max_atoms]
        timing = spawn(args, "time", n, models) or {}
        for m in models:
            entry = dict(timing.get(m, {}))
            if not args.no_memory:
                entry.update(spawn(args, "memory", n, [m]) or {})
            results[f"{m}@{n}"] = entry
            shown = {k: v for k, v in entry.items() if k != "calculator_all_s"}
            print(f"  {m} {n} atoms: {json.dumps(shown)}", flush=True)
    if args.json:  # written atomically
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as f:
            json.dump({"argv": sys.argv[1:], "results": results}, f, indent=1)
        os.replace(tmp, args.json)

    print("\n| model | " + " | ".join(f"{n} atoms" for n in args.sizes) + " |")
    print("|---" * (len(args.sizes) + 1) + "|")
    for m in args.models:
        cells = []
        for n in args.sizes:
            e = results.get(f"{m}@{n}")
            if not e or "calculator_s" not in e:
                cells.append("skipped" if m == "mace" and n > args.mace_max_atoms else "failed")
                continue
            cell = (f"{e['calculator_s']:.2f} s ({e['model_s']:.2f} s model only), "
                    f"{1e3 * e['calculator_s'] / n:.2f} ms/atom")
            if "peak_mb" in e:
                cell += f", peak {e['peak_mb'] / 1024:.2f} GB ({e['peak_mb'] / n:.2f} MB/atom)"
            cells.append(cell)
        print(f"| {m} | " + " | ".join(cells) + " |")
    if "mace" in args.models:
        for m in args.models:
            if m == "mace":
                continue
            ratios = []
            for n in args.sizes:
                a, b = results.get(f"{m}@{n}", {}), results.get(f"mace@{n}", {})
                if "calculator_s" in a and "calculator_s" in b:
                    ratios.append(f"{n}: {a['calculator_s'] / b['calculator_s']:.2f}")
            print(f"\n{m} / MACE calculator time, same process: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
