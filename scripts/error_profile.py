"""Where a model's force error sits: how much of it the worst atoms carry, and how it grows
with the reference force.

A force RMSE is a mean of squares, so a few badly fitted atoms (a bond breaking, a hot anion
shedding its extra electron) can dominate it. This reports, on a config's fixed test split
(or on labelled files), the share of the squared force error carried by the worst 0.1%, 1%
and 5% of atoms and the RMSE without them, and the RMSE per bin of the reference force's
magnitude.

    python scripts/error_profile.py xtb-charged-facet-s --config configs/xtb-charged-facet-s.yaml
    python scripts/error_profile.py model.pt --data test.xyz --json profile.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

BINS = (0.0, 1.0, 3.0, 6.0, np.inf)  # |F_ref|, eV/Å
SHARES = (0.001, 0.01, 0.05)


def profile(pairs: np.ndarray) -> dict:
    """``pairs``: (reference, prediction) force components, three consecutive rows per atom
    (as :func:`mlip.evaluate.evaluate` returns them), in eV/Å. Result in meV/Å."""
    ref, pred = pairs[:, 0].reshape(-1, 3), pairs[:, 1].reshape(-1, 3)
    se = ((pred - ref) ** 2).sum(axis=1)  # per atom, over its three components
    magnitude = np.linalg.norm(ref, axis=1)
    order = np.argsort(se)[::-1]
    out = {"n_atoms": len(se), "rmse": 1000 * float(np.sqrt(se.mean() / 3)), "worst": [],
           "by_reference_force": []}
    for share in SHARES:
        k = max(1, int(round(share * len(se))))
        rest = se[order[k:]]
        out["worst"].append({
            "fraction_of_atoms": share,
            "share_of_squared_error": float(se[order[:k]].sum() / se.sum()),
            "rmse_without_them": 1000 * float(np.sqrt(rest.mean() / 3)) if len(rest) else None,
        })
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = (magnitude >= lo) & (magnitude < hi)
        out["by_reference_force"].append({
            "from": lo, "to": None if np.isinf(hi) else hi, "n_atoms": int(m.sum()),
            "rmse": 1000 * float(np.sqrt(se[m].mean() / 3)) if m.any() else None,
        })
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="checkpoint or pretrained name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="training config: its fixed test split")
    src.add_argument("--data", nargs="+", help="labelled structure files")
    p.add_argument("--json", help="also write the profile here")
    args = p.parse_args(argv)

    from mlip._io import atomic_write_text
    from mlip.data.readers import read_frames
    from mlip.evaluate import evaluate
    from mlip.models.registry import load_model
    from mlip.train.config import load_config
    from mlip.train.prepare import split_data

    model = load_model(args.model)
    if args.config:
        frames = split_data(load_config(args.config))[2]
        if frames is None:
            raise SystemExit(f"{args.config} has no test split (data.test or test_fraction)")
    else:
        frames = [f for path in args.data for f in read_frames(path)]
    pairs: dict = {}
    evaluate(model, frames, predictions=pairs)
    if "forces" not in pairs:
        raise SystemExit("the structures carry no reference forces")
    out = profile(pairs["forces"])
    print(f"{out['n_atoms']} atoms, force RMSE {out['rmse']:.1f} meV/Å")
    for row in out["worst"]:
        print(f"worst {100 * row['fraction_of_atoms']:g}% of atoms: "
              f"{100 * row['share_of_squared_error']:.1f}% of the squared error; "
              f"RMSE without them {row['rmse_without_them']:.1f} meV/Å")
    for row in out["by_reference_force"]:
        hi = f"{row['to']:g}" if row["to"] is not None else "inf"
        rmse = f"{row['rmse']:.1f}" if row["rmse"] is not None else "-"
        print(f"|F_ref| {row['from']:g}-{hi} eV/Å: {row['n_atoms']} atoms, RMSE {rmse} meV/Å")
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
