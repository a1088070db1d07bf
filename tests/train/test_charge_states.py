"""Training with charge states: metrics per (charge, multiplicity), E0 from default states,
and the fixed test split taken from the training file."""

import numpy as np
import pytest
import torch

from mlip.data import keys as K
from mlip.data.loader import fit_e0
from mlip.metrics import Metrics, state_label
from mlip.train.config import ConfigError, load_config
from mlip.train.prepare import split_data


def _frame(numbers, energy, charge=None, spin=None):
    f = {K.ATOMIC_NUMBERS: np.array(numbers), K.ENERGY: np.float64(energy),
         K.POSITIONS: np.zeros((len(numbers), 3))}
    if charge is not None:
        f[K.CHARGE] = np.float64(charge)
    if spin is not None:
        f[K.SPIN] = np.float64(spin)
    return f


def test_metrics_per_state():
    graph = {
        K.ENERGY: torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
        K.NUM_ATOMS: torch.tensor([1, 1, 2]),
        K.FORCES: torch.zeros(4, 3, dtype=torch.float64),
        K.ATOMIC_NUMBERS: torch.tensor([1, 8, 6, 6]),
        K.BATCH: torch.tensor([0, 1, 2, 2]),
        K.PBC: torch.zeros(3, 3, dtype=torch.bool),
        K.CHARGE: torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64),
        K.SPIN: torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64),
    }
    pred = {K.ENERGY: graph[K.ENERGY] + torch.tensor([0.1, 0.2, 0.4], dtype=torch.float64),
            K.FORCES: torch.tensor([[0.3, 0, 0], [0, 0.6, 0], [0, 0, 0], [0, 0, 0]],
                                   dtype=torch.float64)}
    m = Metrics(per_element=True)
    m.update(pred, graph)
    states = m.compute()["per_state"]
    assert set(states) == {"0/2", "-1/2", "0/1"}
    assert states["-1/2"]["energy_mae"] == pytest.approx(0.2)
    assert states["0/1"]["energy_mae"] == pytest.approx(0.2)  # 0.4 eV over 2 atoms
    assert states["0/2"]["forces_mae"] == pytest.approx(0.1)
    assert states["-1/2"]["forces_rmse"] == pytest.approx(np.sqrt(0.36 / 3))
    assert states["0/1"]["n_structures"] == 1
    assert state_label(1, 2) == "+1/2" and state_label(0, 1) == "0/1"


def test_fit_e0_uses_default_states_only():
    # E0(H) = -1 and E0(O) = -10 from neutral frames; the ions would pull a fit over all frames.
    frames = [_frame([1, 1], -2.0, 0, 1), _frame([8], -10.0, 0, 1), _frame([1, 8], -11.0, 0, 2),
              _frame([1, 1], 5.0, 1, 2), _frame([8], -13.0, -1, 2)]
    e0 = fit_e0(frames)
    assert e0[1] == pytest.approx(-1.0) and e0[8] == pytest.approx(-10.0)
    plain = [{k: v for k, v in f.items() if k not in (K.CHARGE, K.SPIN)} for f in frames]
    assert fit_e0(plain)[1] != pytest.approx(-1.0)  # without states every frame counts


def test_test_fraction_is_a_fixed_disjoint_split(tmp_path):
    from ase import Atoms
    from ase.io import write

    structures = []
    for i in range(40):
        a = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7 + 0.01 * i]])
        a.info["energy"] = -1.0 - 0.01 * i
        a.info["name"] = f"f{i}"
        structures.append(a)
    path = tmp_path / "d.xyz"
    write(path, structures)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train: {path}\n  test_fraction: 0.2\n  valid_fraction: 0.25\n")
    train, valid, test = split_data(load_config(cfg))
    names = [[f["name"] for f in part] for part in (train, valid, test)]
    assert [len(n) for n in names] == [24, 8, 8]
    assert not set(names[0]) & set(names[2]) and not set(names[1]) & set(names[2])
    again = split_data(load_config(cfg))[2]
    assert [f["name"] for f in again] == names[2]
    cfg.write_text(f"data:\n  train: {path}\n  test: {path}\n  test_fraction: 0.2\n")
    with pytest.raises(ConfigError, match="test_fraction"):
        load_config(cfg)
