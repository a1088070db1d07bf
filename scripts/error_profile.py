"""Where a model's force and energy errors sit: how much of the force error the worst atoms
carry, how it grows with the reference force, and how much of the energy error is an offset
per molecule and charge state.

A force RMSE is a mean of squares, so a few badly fitted atoms (a bond breaking, a hot anion
shedding its extra electron) can dominate it. This reports, on a config's fixed test (or
validation) split or on labelled files, the share of the squared force error carried by the
worst 0.1%, 1% and 5% of atoms and the RMSE without them, and the RMSE per bin of the
reference force's magnitude. Per structure: the share of the squared force error that the
worst structures carry, the RMSE without them, and the force RMSE and energy MAE per (charge,
multiplicity).

With ``--config`` it also splits the energy error: each group of structures with the same
composition, charge and multiplicity (one molecule in one state, for molecular data) gets the
mean energy error of its training-split structures subtracted. What remains is the error that
no per-group constant explains, the part that follows the forces' errors along the geometry;
a stage of energy fitting (or longer training) can remove the rest. The training split's own
energy MAE and force RMSE are printed beside, to tell underfitting from overfitting.

    python scripts/error_profile.py xtb-charged-facet-s --config configs/xtb-charged-facet-s.yaml
    python scripts/error_profile.py xtb-charged-facet-s --config configs/xtb-charged-facet-s.yaml \
        --split valid
    python scripts/error_profile.py model.pt --data test.xyz --json profile.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

BINS = (0.0, 1.0, 3.0, 6.0, np.inf)  # |F_ref|, eV/Å
SHARES = (0.001, 0.01, 0.05)
WORST_STRUCTURES = (1, 5, 10, 20)


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


def by_structure(pairs: dict, frames) -> dict:
    """The force and energy errors per structure of an evaluation of ``frames`` (in their
    order): how much of the squared force error the worst structures carry, which they are,
    and the errors per (charge, multiplicity) state. meV/Å and meV/atom."""
    from mlip.data import keys as K

    f = pairs["forces"]
    sizes = np.array([3 * len(frame[K.ATOMIC_NUMBERS]) for frame in frames])
    if sizes.sum() != len(f):
        raise SystemExit("every structure needs reference forces for the per-structure profile")
    ends = np.cumsum(sizes)
    se = np.array([((b[:, 1] - b[:, 0]) ** 2).sum() for b in np.split(f, ends[:-1])])
    order = np.argsort(se)[::-1]
    keys = [group_key(frame) for frame in frames]
    energy = pairs.get("energy")
    out: dict = {"n_structures": len(frames), "worst_share": [], "worst": [], "by_state": []}
    for k in WORST_STRUCTURES:
        if k < len(frames):
            rest = order[k:]
            out["worst_share"].append({
                "structures": k, "share_of_squared_error": float(se[order[:k]].sum() / se.sum()),
                "rmse_without_them": 1000 * float(np.sqrt(se[rest].sum() / sizes[rest].sum()))})
    for i in order[:10]:
        block = f[ends[i] - sizes[i]:ends[i]]
        out["worst"].append({
            "name": str(frames[i].get("name", i)), "charge": keys[i][0], "spin": keys[i][1],
            "share_of_squared_error": float(se[i] / se.sum()),
            "force_rmse": 1000 * float(np.sqrt(se[i] / sizes[i])),
            "max_reference_force": float(np.abs(block[:, 0]).max()),
            "energy_error": None if energy is None else 1000 * float(energy[i, 1] - energy[i, 0])})
    for state in sorted({k[:2] for k in keys}):
        m = np.array([k[:2] == state for k in keys])
        row = {"charge": state[0], "spin": state[1], "n_structures": int(m.sum()),
               "force_rmse": 1000 * float(np.sqrt(se[m].sum() / sizes[m].sum()))}
        if energy is not None:
            row["energy_mae"] = 1000 * float(np.abs(energy[m, 1] - energy[m, 0]).mean())
        out["by_state"].append(row)
    return out


def _print_structures(out: dict) -> None:
    for row in out["worst_share"]:
        print(f"worst {row['structures']} of {out['n_structures']} structures: "
              f"{100 * row['share_of_squared_error']:.1f}% of the squared force error; RMSE "
              f"without them {row['rmse_without_them']:.1f} meV/Å")
    for row in out["worst"][:5]:
        print(f"  {row['name']} ({row['charge']:+g}/{row['spin']:g}): force RMSE "
              f"{row['force_rmse']:.0f} meV/Å, max |F_ref| {row['max_reference_force']:.1f} eV/Å")
    for row in out["by_state"]:
        e = f", energy MAE {row['energy_mae']:.1f} meV/atom" if "energy_mae" in row else ""
        print(f"state {row['charge']:+g}/{row['spin']:g}: {row['n_structures']} structures, "
              f"force RMSE {row['force_rmse']:.1f} meV/Å{e}")


def group_key(frame) -> tuple:
    """(charge, multiplicity, composition) of a frame; a missing charge or spin takes the
    default state that the models use (DESIGN §3: charge 0, then the lowest multiplicity)."""
    from mlip.data import keys as K
    from mlip.data.validate import lowest_multiplicity

    def scalar(key):
        v = frame.get(key)
        return None if v is None or not np.isfinite(float(np.asarray(v))) else float(np.asarray(v))

    numbers = np.asarray(frame[K.ATOMIC_NUMBERS])
    z, counts = np.unique(numbers, return_counts=True)
    charge = scalar(K.CHARGE)
    charge = 0.0 if charge is None else charge
    spin = scalar(K.SPIN)
    if spin is None:
        spin = float(lowest_multiplicity(int(numbers.sum()) - round(charge)))
    return charge, spin, tuple(zip(z.tolist(), counts.tolist()))


def energy_offsets(train_pairs, train_keys, test_pairs, test_keys) -> dict:
    """``*_pairs``: (reference, prediction) energy per atom of each structure, in eV, in the
    order of ``*_keys`` (their :func:`group_key`). Result in meV/atom."""
    err = train_pairs[:, 1] - train_pairs[:, 0]
    sums: dict = {}
    for key, e in zip(train_keys, err):
        total, n = sums.get(key, (0.0, 0))
        sums[key] = (total + e, n + 1)
    test_err = test_pairs[:, 1] - test_pairs[:, 0]
    seen = np.array([key in sums for key in test_keys])
    offset = np.array([sums[k][0] / sums[k][1] if k in sums else 0.0 for k in test_keys])
    return {
        "n_groups": len(sums), "n_structures": len(test_keys),
        "n_structures_in_trained_groups": int(seen.sum()),
        "energy_mae": 1000 * float(np.abs(test_err).mean()),
        "energy_mae_without_group_offsets": 1000 * float(np.abs(test_err - offset).mean()),
        "energy_mae_without_element_shifts": 1000 * float(np.abs(
            test_err - _element_shifts(err, train_keys, test_keys)).mean()),
    }


def _element_shifts(err, train_keys, test_keys) -> np.ndarray:
    """Per test structure, the shift per atom that a least-squares energy per element and
    (charge, multiplicity), fitted to the training errors, gives it: what an additive
    reference energy per charge state could remove."""
    elements = sorted({z for k in (*train_keys, *test_keys) for z, _ in k[2]})

    def fractions(keys):  # composition per atom, as the errors are per atom
        rows = np.zeros((len(keys), len(elements)))
        for i, (_, _, comp) in enumerate(keys):
            for z, n in comp:
                rows[i, elements.index(z)] = n
        return rows / rows.sum(1, keepdims=True)

    train_x, test_x = fractions(train_keys), fractions(test_keys)
    shift = np.zeros(len(test_keys))
    states = [k[:2] for k in train_keys]
    for state in set(states):
        m = np.array([s == state for s in states])
        t = np.array([k[:2] == state for k in test_keys])
        if t.any():
            w, *_ = np.linalg.lstsq(train_x[m], err[m], rcond=None)
            shift[t] = test_x[t] @ w
    return shift


def _energies(pairs, frames):
    """The energy pairs of an evaluation of ``frames``, one row per frame in their order."""
    if "energy" not in pairs or len(pairs["energy"]) != len(frames):
        raise SystemExit("every structure needs a reference energy for the energy split")
    return pairs["energy"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="checkpoint or pretrained name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="training config: its fixed test split, or --split valid")
    src.add_argument("--data", nargs="+", help="labelled structure files")
    p.add_argument("--split", choices=("test", "valid"), default="test",
                   help="with --config: the held-out split to profile (default test)")
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
        train, valid, test = split_data(load_config(args.config))
        frames = valid if args.split == "valid" else test
        if frames is None:
            raise SystemExit(f"{args.config} has no {args.split} split")
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
    out["structures"] = by_structure(pairs, frames)
    _print_structures(out["structures"])
    if args.config:
        train_pairs: dict = {}
        fit = evaluate(model, train, predictions=train_pairs)
        # The training split's own errors tell underfitting (both high) from overfitting.
        out["train"] = {"n_structures": len(train), "energy_mae": 1000 * fit["energy_mae"],
                        "forces_rmse": 1000 * fit["forces_rmse"]}
        print(f"training split: energy MAE {out['train']['energy_mae']:.1f} meV/atom, "
              f"force RMSE {out['train']['forces_rmse']:.1f} meV/Å")
        out["energy"] = energy_offsets(
            _energies(train_pairs, train), [group_key(f) for f in train],
            _energies(pairs, frames), [group_key(f) for f in frames])
        e = out["energy"]
        print(f"energy MAE {e['energy_mae']:.1f} meV/atom; without the mean error of each "
              f"(composition, charge, multiplicity) group on the training split "
              f"({e['n_groups']} groups): {e['energy_mae_without_group_offsets']:.1f}; without a "
              f"fitted energy per element and state: {e['energy_mae_without_element_shifts']:.1f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
