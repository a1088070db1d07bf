"""Ship a trained model inside the package: ``mlip/pretrained/<name>.pt`` and its card.

The checkpoint is the run's model without its optimizer state; the card is the given YAML
(data, licence, level of theory, command, domain, limitations) with the elements, the model and
the test errors filled in by evaluating the model on the test split of the training config, the
same split that ``tests/pretrained`` re-evaluates to check the recorded numbers.

    python scripts/ship_model.py runs/xtb-charged-facet-s/best.pt xtb-charged-facet-s \\
        --config configs/xtb-charged-facet-s.yaml --card cards/xtb-charged-facet-s.yaml
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

PRETRAINED = Path(__file__).resolve().parents[1] / "mlip" / "pretrained"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("name")
    p.add_argument("--config", required=True, help="training config (gives the test split)")
    p.add_argument("--card", required=True, help="YAML with the card's hand-written fields")
    args = p.parse_args(argv)

    from ase.data import chemical_symbols

    from mlip._io import atomic_write_text
    from mlip.models.registry import load_model
    from mlip.pretrained import CARD_KEYS, evaluate_on_split

    model = load_model(args.checkpoint)
    card = yaml.safe_load(Path(args.card).read_text())
    metrics = evaluate_on_split(model, args.config)
    card.update(
        name=args.name,
        model=f"{model.model_name} (preset {model.preset})" if model.preset else model.model_name,
        elements=[chemical_symbols[z] for z in model.elements.tolist()],
        charge_spin=bool(model.uses_charge_spin),
        dtype=model.dtype_name,
    )
    card["test"] = {**card.get("test", {}), "config": args.config, "split": "test",
                    "metrics": metrics}
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise SystemExit(f"{args.card}: the card lacks {missing}")
    summary = dict(getattr(model, "training_summary", {}) or {})
    summary.pop("config", None)
    model.save(PRETRAINED / f"{args.name}.pt", training=summary)
    os.chmod(PRETRAINED / f"{args.name}.pt", 0o644)
    atomic_write_text(PRETRAINED / f"{args.name}.yaml",
                      yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=100))
    print(f"shipped {args.name}: forces RMSE {1000 * metrics['forces_rmse']:.1f} meV/Å, "
          f"energy MAE {1000 * metrics['energy_mae']:.2f} meV/atom on {metrics['n_structures']}"
          " test structures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
