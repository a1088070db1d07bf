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


def test_an_offset_per_group_is_removed_and_the_rest_is_kept():
    from mlip.data import keys as K

    script = load_script("error_profile")
    water = {K.ATOMIC_NUMBERS: np.array([8, 1, 1]), K.CHARGE: 0.0, K.SPIN: 1.0}
    cation = {**water, K.CHARGE: 1.0, K.SPIN: 2.0}
    # No charge or spin given: the models' default state, charge 0 and the lowest multiplicity.
    assert script.group_key({K.ATOMIC_NUMBERS: np.array([8, 1])})[:2] == (0.0, 2.0)
    assert script.group_key({K.ATOMIC_NUMBERS: np.array([8, 1, 1])}) == script.group_key(water)
    assert script.group_key({K.ATOMIC_NUMBERS: np.array([8, 1]), K.CHARGE: -1.0})[:2] == (-1.0, 1.0)
    ammonia = {K.ATOMIC_NUMBERS: np.array([7, 1, 1, 1]), K.CHARGE: -1.0, K.SPIN: 2.0}
    assert script.group_key(water) == (0.0, 1.0, ((1, 2), (8, 1)))
    assert script.group_key(cation) != script.group_key(water)
    keys = [script.group_key(f) for f in (water, water, cation, cation)]
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    # Training errors: +0.1 eV/atom for water, -0.2 for the cation, exactly per group.
    train = np.stack([ref, ref + np.array([0.1, 0.1, -0.2, -0.2])], axis=1)
    # Test: the same offsets plus +-0.01 that no constant removes; the NH3 anion was never trained.
    test_keys = [*keys, script.group_key(ammonia)]
    test_ref = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    test = np.stack([test_ref, test_ref + np.array([0.11, 0.09, -0.19, -0.21, 0.05])], axis=1)
    out = script.energy_offsets(train, keys, test, test_keys)
    assert out["n_groups"] == 2 and out["n_structures_in_trained_groups"] == 4
    assert np.isclose(out["energy_mae"], 1000 * (0.11 + 0.09 + 0.19 + 0.21 + 0.05) / 5)
    assert np.isclose(out["energy_mae_without_group_offsets"], 1000 * (4 * 0.01 + 0.05) / 5)
    # One composition per state here, so a fitted energy per element and state is that
    # state's offset; ammonia's state was never trained and keeps its error.
    assert np.isclose(out["energy_mae_without_element_shifts"], 1000 * (4 * 0.01 + 0.05) / 5)
    # Two compositions in one state, errors additive over elements (0.3 eV per O and N, 0 per
    # H): the fitted energies per element remove them.
    neutral_nh3 = {K.ATOMIC_NUMBERS: ammonia[K.ATOMIC_NUMBERS], K.CHARGE: 0.0, K.SPIN: 1.0}
    keys2 = [*keys[:2], script.group_key(neutral_nh3), script.group_key(neutral_nh3)]
    train2 = np.stack([ref, ref + np.array([0.1, 0.1, 0.075, 0.075])], axis=1)
    out2 = script.energy_offsets(train2, keys2, train2, keys2)
    assert out2["energy_mae"] > 80
    assert np.isclose(out2["energy_mae_without_element_shifts"], 0.0, atol=1e-9)


def test_the_worst_structure_and_the_errors_per_state():
    from mlip.data import keys as K

    script = load_script("error_profile")
    water = {K.ATOMIC_NUMBERS: np.array([8, 1, 1]), K.CHARGE: 0.0, K.SPIN: 1.0, "name": "w"}
    anion = {K.ATOMIC_NUMBERS: np.array([8, 1]), K.CHARGE: -1.0, K.SPIN: 1.0, "name": "oh-"}
    frames = [water, water, anion] * 4  # 12 structures, the OH- anions the bad ones
    ref = np.concatenate([np.full(3 * len(f[K.ATOMIC_NUMBERS]), 1.0) for f in frames])
    err = np.concatenate([np.full(3 * len(f[K.ATOMIC_NUMBERS]), 0.5 if f is anion else 0.01)
                          for f in frames])
    energy = np.stack([np.zeros(12), np.where([f is anion for f in frames], 0.004, 0.001)], 1)
    out = script.by_structure({"forces": np.stack([ref, ref + err], 1), "energy": energy}, frames)
    se_water, se_anion = 9 * 0.01**2, 6 * 0.5**2
    share1 = out["worst_share"][0]
    assert share1["structures"] == 1
    assert np.isclose(share1["share_of_squared_error"], se_anion / (8 * se_water + 4 * se_anion))
    assert np.isclose(out["worst_share"][1]["rmse_without_them"],  # the 4 anions and 1 water
                      1000 * np.sqrt(7 * se_water / 63))
    assert [w["name"] for w in out["worst"][:4]] == ["oh-"] * 4
    assert out["worst"][0]["charge"] == -1.0 and np.isclose(out["worst"][0]["force_rmse"], 500)
    states = {(r["charge"], r["spin"]): r for r in out["by_state"]}
    assert states[(-1.0, 1.0)]["n_structures"] == 4
    assert np.isclose(states[(0.0, 1.0)]["force_rmse"], 10.0)
    assert np.isclose(states[(-1.0, 1.0)]["energy_mae"], 4.0)
