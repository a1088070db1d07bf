"""scripts/error_profile.py: the worst atoms' share of the squared force error, per-bin RMSE."""

import numpy as np

from tests.helpers import load_script


def test_one_bad_atom_in_a_thousand_is_found_and_binned():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 0.3, (1000, 3))  # all |F| < 3 eV/Å
    ref[7] = [8.0, 0.0, 0.0]  # one atom in the 6-inf bin
    pred = ref + 0.01  # 10 meV/Å on every component
    pred[7] += [1.0, 0.0, 0.0]  # and 1 eV/Å more on the one atom
    pairs = np.stack([ref.reshape(-1), pred.reshape(-1)], axis=1)
    out = load_script("error_profile").profile(pairs)
    se_bad, se_good = (1.01**2 + 2e-4), 3e-4
    assert np.isclose(out["rmse"], 1000 * np.sqrt((se_bad + 999 * se_good) / 3000))
    worst = out["worst"][0]  # 0.1%: the one atom
    assert np.isclose(worst["share_of_squared_error"], se_bad / (se_bad + 999 * se_good))
    assert np.isclose(worst["rmse_without_them"], 10.0)
    bins = {row["from"]: row for row in out["by_reference_force"]}
    assert bins[6.0]["n_atoms"] == 1 and np.isclose(bins[6.0]["rmse"], 1000 * np.sqrt(se_bad / 3))
    assert bins[3.0]["n_atoms"] == 0 and bins[3.0]["rmse"] is None
