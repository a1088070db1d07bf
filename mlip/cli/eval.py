"""``mlip eval MODEL DATA``: errors of a model on labelled data, with parity plots."""

from __future__ import annotations

import argparse
import json

from ._options import add_device_dtype


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="errors of a model on labelled data (overall, per element) and parity plots",
        description="Compare MODEL's predictions with the reference energies, forces and "
        "stresses in DATA (any format `mlip convert` reads, or an HDF5 cache). Prints MAE and "
        "RMSE of the energy per atom (meV/atom), forces (meV/Å, also per element) and stress "
        "(meV/Å³, periodic structures only), and per (charge, multiplicity) state where the "
        "data gives charges and spins.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt) or pretrained name")
    p.add_argument("data", nargs="+", metavar="DATA", help="labelled structure files")
    p.add_argument("--format", default=None, help="reader for DATA (guessed by default)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON (eV units)")
    p.add_argument(
        "--plots",
        default=None,
        metavar="DIR",
        help="write parity plots (PNG) of energy, forces and stress into DIR",
    )
    p.add_argument("--max-atoms", type=int, default=2048, help="atoms per batch (default 2048)")
    add_device_dtype(p)
    p.add_argument(
        "--frame-average",
        action="store_true",
        help="evaluate the model wrapped in FrameAveraged (exact rotational "
        "symmetry, for models that are not equivariant by construction)",
    )
    return p


def run(args) -> int:
    import torch

    from ..data.readers import read_frames
    from ..evaluate import evaluate, parity_plots
    from ..metrics import UNITS_MEV
    from ..models.registry import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.model, device=device, dtype=args.dtype)
    if args.frame_average:
        from ..models.frame_averaging import FrameAveraged

        model = FrameAveraged(model).eval()
    frames = []
    for path in args.data:
        frames.extend(read_frames(path, format=args.format))
    from ..data import keys as K

    if not any(key in f for f in frames for key in K.TARGETS):
        raise ValueError(f"{', '.join(args.data)}: no reference energy, forces or stress in "
                         f"{len(frames)} structure(s), nothing to compare with (mlip predict "
                         "writes predictions for unlabelled structures)")
    pairs = {} if args.plots else None
    metrics = evaluate(model, frames, max_atoms=args.max_atoms, device=device, predictions=pairs)
    if args.plots:
        metrics["plots"] = [str(p) for p in parity_plots(pairs, args.plots, metrics)]
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(f"{metrics['n_structures']} structures, {metrics['n_atoms']} atoms")
    for term, unit in UNITS_MEV.items():
        if f"{term}_mae" in metrics:
            print(
                f"{term:8s} MAE {1000 * metrics[f'{term}_mae']:10.3f}  "
                f"RMSE {1000 * metrics[f'{term}_rmse']:10.3f}  {unit}"
            )
    for symbol, m in metrics.get("per_element", {}).items():
        print(
            f"forces {symbol:3s} MAE {1000 * m['forces_mae']:10.3f}  "
            f"RMSE {1000 * m['forces_rmse']:10.3f}  meV/Å  ({m['n_atoms']} atoms)"
        )
    for state, m in metrics.get("per_state", {}).items():
        parts = [f"{term} MAE {1000 * m[f'{term}_mae']:.3f} RMSE {1000 * m[f'{term}_rmse']:.3f}"
                 f" {UNITS_MEV[term]}" for term in ("energy", "forces") if f"{term}_mae" in m]
        count = f"  ({m['n_structures']} structures)" if "n_structures" in m else ""
        print(f"charge/spin {state:6s} " + " | ".join(parts) + count)
    for path in metrics.get("plots", []):
        print(f"wrote {path}")
    return 0
