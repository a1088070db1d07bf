"""Shipped checkpoints predict exactly what they predicted when their golden values were saved:
a refactor that changes any prediction of a shipped model fails here (issue #26).

The values are float64 evaluations of fixed structures; regenerate them only for an intended
change of behaviour, and say so in CHANGELOG.md:  MLIP_UPDATE_GOLDEN=1 pytest tests/pretrained
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

import mlip
from mlip.pretrained import model_card, pretrained_models
from mlip.testing.contract import evaluate

GOLDEN = Path(__file__).with_name("golden.json")


def structure(name: str) -> Atoms:
    """A fixed, rattled structure of the model's own elements (periodic for a crystal model)."""
    elements = model_card(name)["elements"]
    if "Ti" in elements and "Al" in elements:
        atoms = bulk("Ti", "fcc", a=4.0, cubic=True)
        atoms.symbols[1::2] = "Al"
    elif "O" in elements and "Ti" in elements and "H" not in elements:
        atoms = bulk("Ti", "fcc", a=4.6, cubic=True) * (1, 1, 1)
        atoms += Atoms(
            "O8",
            scaled_positions=np.full((8, 3), 0.25)
            + np.array([[i, j, k] for i in (0, 0.5) for j in (0, 0.5) for k in (0, 0.5)]),
            cell=atoms.cell,
        )
    elif "Hf" in elements:
        atoms = bulk("Hf", "fcc", a=5.1, cubic=True)
        atoms += Atoms(
            "O8",
            scaled_positions=np.full((8, 3), 0.25)
            + np.array([[i, j, k] for i in (0, 0.5) for j in (0, 0.5) for k in (0, 0.5)]),
            cell=atoms.cell,
        )
    else:
        atoms = molecule("CH3CH2OH")
        atoms.info.update(charge=1, spin=2)
    atoms.rattle(0.03, seed=7)
    return atoms


def predict(name: str) -> dict:
    model = mlip.load_pretrained(name, dtype="float64")
    atoms = structure(name)
    if not model.uses_charge_spin:  # a model without conditioning would warn that it ignores them
        atoms.info.pop("charge", None)
        atoms.info.pop("spin", None)
    out = evaluate(model, atoms, stress=bool(atoms.pbc.all()))[0]
    return {
        k: np.asarray(v).tolist() for k, v in out.items() if k in ("energy", "forces", "stress")
    }


@pytest.mark.parametrize("name", pretrained_models())
def test_shipped_predictions_are_unchanged(name):
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    got = predict(name)
    if os.environ.get("MLIP_UPDATE_GOLDEN") == "1":
        golden[name] = got
        GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
        return
    assert name in golden, f"no golden values for {name}: MLIP_UPDATE_GOLDEN=1 pytest {__file__}"
    for key, value in golden[name].items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-10, err_msg=key)
