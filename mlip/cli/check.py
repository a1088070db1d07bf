"""``mlip check MODEL STRUCTURES``: measure a model's rotational equivariance error.

Rotates each structure ``--n-rotations`` times (seeded), reports the energy spread and the
force error over each rotation orbit (:func:`mlip.testing.equivariance.equivariance_error`),
optionally with frame averaging applied, a plot against rotation angle and a JSON report.
For a canonicalized model (``symmetry="canonical"``) it also reports each structure's frame
conditioning and fallback share (:func:`mlip.models.canonical.frame_report`).
With ``--max-force-relative`` it exits 1 when the mean relative force error exceeds it (for CI).
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check",
        help="measure a model's rotational equivariance error on structures",
        description="Rotate each structure by random rotations and report the energy spread "
        "(eV) and the force error (eV/Å and relative) over each rotation orbit.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint written by mlip")
    p.add_argument("structures", metavar="STRUCTURES", help="any file ase.io.read understands")
    p.add_argument("--n-rotations", type=int, default=16, help="rotations per structure "
                   "(default: 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rotations (default: 0)")
    p.add_argument("--reflect", action="store_true", help="include reflections (O(3))")
    p.add_argument("--frame-average", action="store_true",
                   help="wrap the model in FrameAveraged (exact symmetry) before measuring")
    p.add_argument("--max-structures", type=int, default=None, help="use the first N only")
    p.add_argument("--device", default="cpu", help="default: cpu")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="override the checkpoint's dtype")
    p.add_argument("--plot", default=None, help="save the error against rotation angle here")
    p.add_argument("--json", default=None, help="write the full report here")
    p.add_argument("--max-force-relative", type=float, default=None,
                   help="exit 1 when the mean relative force error exceeds this")
    return p


def run(args) -> int:
    import ase.io

    from ..models.registry import load_model
    from ..testing.equivariance import equivariance_error

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    if args.frame_average:
        from ..models.frame_averaging import FrameAveraged

        model = FrameAveraged(model).eval()
    structures = ase.io.read(args.structures, index=":")
    if args.max_structures is not None:
        structures = structures[: args.max_structures]
    if not structures:
        raise ValueError(f"{args.structures} holds no structures")
    names = [f"{a.get_chemical_formula()}#{i}" for i, a in enumerate(structures)]
    report = equivariance_error(model, structures, n_rotations=args.n_rotations, seed=args.seed,
                                reflect=args.reflect, plot=args.plot, names=names)
    frames = _frame_report(model, structures)
    print(f"{'structure':<24} {'atoms':>5} {'dE spread (eV)':>15} {'F rmse (eV/Å)':>14} "
          f"{'F relative':>11}" + (f" {'frame cond':>10} {'fallback':>8}" if frames else ""))
    for i, s in enumerate(report.structures):
        extra = f" {frames[i]['conditioning_min']:>10.2e} {frames[i]['fallback_share']:>8.1%}" \
            if frames else ""
        print(f"{s.name:<24} {s.n_atoms:>5} {s.energy_spread:>15.3e} {s.force_rmse:>14.3e} "
              f"{s.force_relative:>11.3e}" + extra)
    summary = report.summary
    if frames:  # the share of all atoms whose learned frame is not fully used
        n = sum(f["n_atoms"] for f in frames)
        summary["fallback_share"] = sum(f["fallback_share"] * f["n_atoms"] for f in frames) / n
    print(json.dumps({"model": str(args.model), "frame_average": bool(args.frame_average),
                      "n_rotations": args.n_rotations, "seed": args.seed, **summary}))
    if args.json:
        full = report.to_dict()
        if frames:
            full["summary"]["fallback_share"] = summary["fallback_share"]
            for s, f in zip(full["structures"], frames):
                s.update(frame_conditioning_min=f["conditioning_min"],
                         fallback_share=f["fallback_share"])
        with open(args.json, "w") as f:
            json.dump(full, f, indent=1)
    if args.max_force_relative is not None and \
            summary["force_relative_mean"] > args.max_force_relative:
        print(f"mean relative force error {summary['force_relative_mean']:.3e} exceeds "
              f"{args.max_force_relative:.3e}")
        return 1
    return 0


def _frame_report(model, structures) -> list[dict]:
    """The frame report of a canonicalized model (frame-averaged or not); [] for others."""
    inner = getattr(model, "inner", model)
    if getattr(inner, "canonicalizer", None) is None:
        return []
    from ..models.canonical import frame_report

    return frame_report(inner, structures)
