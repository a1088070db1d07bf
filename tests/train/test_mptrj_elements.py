"""MPTrj-scale element tables (issue #22): a model built for MPTrj's 89 elements trains on the
MPTrj sample with stress end to end; an element outside the table is refused by name."""

import pytest

import mlip
from mlip.train import train
from mlip.train.config import ConfigError
from tests.helpers import SAMPLES, tiny_config

MPTRJ = SAMPLES / "mptrj_sample.json"
# H to Bi and Ac to Pu: the 89 elements of MPTrj
MPTRJ_ELEMENTS = list(range(1, 84)) + list(range(89, 95))


def test_89_element_model_trains_with_stress(tmp_path):
    config = tiny_config(MPTRJ, tmp_path / "run", data={"valid_fraction": 0.4, "max_atoms": 200})
    config["model"] = {"name": "equivariant", "hyperparameters": {
        "lmax": 1, "channels": 4, "num_layers": 1, "cutoff": 4.0,
        "elements": MPTRJ_ELEMENTS}}
    config["loss"] = {"stress_weight": 10.0}
    config["run"]["epochs"] = 2
    result = train(config)
    assert result.status == "finished"
    model = mlip.load_model(tmp_path / "run" / "best.pt")
    assert len(model.elements) == 89
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header, last = metrics[0].split(","), metrics[-1].split(",")
    assert float(last[header.index("valid_stress_rmse_mev")]) > 0  # the stress term is there


def test_data_element_missing_from_the_table_is_named(tmp_path):
    config = tiny_config(MPTRJ, tmp_path / "run")
    config["model"] = {"name": "equivariant", "hyperparameters": {
        "lmax": 1, "channels": 4, "num_layers": 1, "elements": ["O", "Ti"]}}
    with pytest.raises(ConfigError, match=r"elements \['Hf'\] that model"):
        train(config)


def test_parameters_per_element():
    """The cost of a wider element table: a few hundred values per element for facet-s
    (docs/training.md gives the numbers for each preset)."""
    sizes = [sum(p.numel() for p in mlip.build_model("facet-s", elements=e).parameters())
             for e in (MPTRJ_ELEMENTS[:1], MPTRJ_ELEMENTS)]
    assert 0 < (sizes[1] - sizes[0]) / 88 <= 1024
