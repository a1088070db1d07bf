"""Probe a potential for spurious sharp features around the frames of a trajectory.

A learned potential can fit its test set well and still hide a narrow ridge a few hundredths
of an ångström from the geometries MD visits: a wall of eV over 0.05 Å that no test error
sees, but that a 0.5 fs step cannot integrate, so MD heats up and stops. This script moves
chosen atoms of each frame by ``--step`` Å along random unit directions and measures what is
left of the energy change after its first-order part, the forces:

    r = |E(x + h u) - E(x) + h F(x) . u|        (eV)

A smooth surface gives r ~ k h^2 / 2 with bond force constants k of 30-60 eV/Å^2, a few meV
at 0.03 Å; r above ``--threshold`` (0.1 eV by default: a curvature above 200 eV/Å^2) marks a
feature no chemical bond has. Several models are probed on the same frames, atoms and
directions, so their numbers compare directly; each frame and its displaced copies are one
batched forward (``mlip.testing.evaluate``):

    python scripts/pes_probe.py acac-facet-s old.pt --trajectory nvt600.traj --atoms 11 \\
        --every 2 --json probe.json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def probe(model: str, frames, atoms, directions: np.ndarray, step: float, dtype: str) -> dict:
    """Residuals of ``model`` at every (frame, atom), each the largest over ``directions``;
    a frame and all its displaced copies go through the model in one batch."""
    from mlip import load_model
    from mlip.testing import evaluate

    potential = load_model(model, dtype=dtype)
    shifts = step * directions
    worst = np.zeros((len(frames), len(atoms)))
    for k, frame in enumerate(frames):
        moved = []
        for i in atoms:
            for shift in shifts:
                copy = frame.copy()
                copy.positions[i] += shift
                moved.append(copy)
        out = evaluate(potential, [frame, *moved], stress=False)
        e0, f0 = float(out[0]["energy"]), out[0]["forces"]
        energies = np.array([float(r["energy"]) for r in out[1:]]).reshape(len(atoms), -1)
        linear = shifts @ f0[list(atoms)].T  # (directions, atoms): h F_i . u
        worst[k] = np.abs(energies - e0 + linear.T).max(axis=1)
    top = np.unravel_index(worst.argmax(), worst.shape)
    return {"model": model, "n_probes": int(worst.size * len(directions)),
            "median_ev": float(np.median(worst)), "p99_ev": float(np.percentile(worst, 99)),
            "max_ev": float(worst.max()), "worst_frame": int(top[0]),
            "worst_atom": int(list(atoms)[top[1]]), "residuals": worst.ravel()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", help="pretrained names or checkpoint paths")
    p.add_argument("--trajectory", required=True, help="frames to probe around (any ASE file)")
    p.add_argument("--every", type=int, default=1, help="probe every n-th frame")
    p.add_argument("--atoms", type=int, nargs="*", help="atom indices to move (default all)")
    p.add_argument("--step", type=float, default=0.03, help="displacement in Å (0.03)")
    p.add_argument("--directions", type=int, default=12, help="random directions per atom")
    p.add_argument("--threshold", type=float, default=0.1, help="eV (0.1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--json", help="also write the report here")
    args = p.parse_args(argv)

    import ase.io

    frames = ase.io.read(args.trajectory, index=f"::{args.every}")
    atoms = args.atoms if args.atoms else range(len(frames[0]))
    for i in atoms:
        if not 0 <= i < len(frames[0]):
            p.error(f"atom index {i} is outside {args.trajectory}'s {len(frames[0])} atoms")
    rng = np.random.default_rng(args.seed)
    dirs = rng.normal(size=(args.directions, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    reports = []
    for model in args.models:
        rep = probe(model, frames, list(atoms), dirs, args.step, args.dtype)
        r = rep.pop("residuals")
        rep["worst_frame"] *= args.every  # the trajectory's frame index
        rep["above_threshold"] = int((r > args.threshold).sum())
        rep["of"] = int(len(r))
        reports.append(rep)
        print(f"{model}: residual at {args.step} Å over {rep['n_probes']} probes: median "
              f"{1000 * rep['median_ev']:.1f} meV, p99 {1000 * rep['p99_ev']:.1f} meV, max "
              f"{1000 * rep['max_ev']:.0f} meV (frame {rep['worst_frame']}, atom "
              f"{rep['worst_atom']}); {rep['above_threshold']} of {rep['of']} (frame, atom) "
              f"pairs above {1000 * args.threshold:.0f} meV")
    if args.json:
        from mlip._io import atomic_write_text

        settings = {k: getattr(args, k) for k in ("trajectory", "every", "atoms", "step",
                                                  "directions", "threshold", "seed", "dtype")}
        atomic_write_text(args.json, json.dumps({"settings": settings, "models": reports},
                                                indent=2))
    return 1 if any(r["above_threshold"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
