from pathlib import Path

import pytest
import yaml

from mlip.train.config import ConfigError, TrainConfig, config_from_dict, load_config
from mlip.train.prepare import new_model, split_data
from tests.helpers import REPO


def test_defaults_and_yaml_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": "x.xyz"}, "optim": {"lr": 1}}))
    config = load_config(path)
    assert isinstance(config, TrainConfig)
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.run.dtype == "float32"
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"data": {"train": "x", "trian": 1}}, "data.trian"),
        ({"data": {"train": "x"}, "optimiser": {}}, "optimiser"),
        ({"data": {"train": "x"}, "optim": {"lr": "fast"}}, "optim.lr"),
        ({"data": {"train": "x"}, "run": {"epochs": 2.5}}, "run.epochs"),
        ({"data": {"train": "x"}, "run": {"bf16": "yes"}}, "run.bf16"),
        ({"data": {"train": "x"}, "optim": {"schedule": "linear"}}, "optim.schedule"),
        ({"data": {"train": "x"}, "loss": {"kind": "l1"}}, "loss.kind"),
        ({"data": {"train": "x"}, "optim": {"ema_decay": 1.5}}, "optim.ema_decay"),
        ({"data": {"train": "x", "e0": "isolated"}}, "data.isolated"),
        ({"data": {"train": "x", "e0": {"Xx": 1.0}}}, "data.e0"),
        ({"data": {"train": "x"}, "loss": {"element_weights": {"H": -1}}},
         "loss.element_weights"),
        ({}, "data.train"),
        ({"data": {"train": "x"}, "run": {"kernels": "compile"}}, "run.kernels"),
    ],
)
def test_errors_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(raw)


def test_set_overrides_parse_yaml_scalars(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": "x.xyz"}}))
    config = load_config(path, ["optim.lr=5e-4", "run.epochs=7", "data.e0={1: -13.6}",
                                "model.hyperparameters.lmax=1", "run.max_time=null"])
    assert config.optim.lr == 5e-4
    assert config.run.epochs == 7
    assert config.data.e0 == {1: -13.6}
    assert config.model.hyperparameters == {"lmax": 1}
    with pytest.raises(ConfigError, match="run.epohcs"):
        load_config(path, ["run.epohcs=3"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["run.epochs"])


def test_config_is_frozen():
    config = config_from_dict({"data": {"train": "x"}})
    with pytest.raises(AttributeError):
        config.run.epochs = 3


CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_prepare_their_model(path, monkeypatch):
    # The docs' commands run these files: a renamed key, a missing data file or a rejected
    # hyperparameter must fail here first, on the path `mlip train` takes before its first step.
    monkeypatch.chdir(path.parents[1])  # their data paths are relative to the repository
    config = load_config(path)
    if config.finetune.checkpoint is not None:
        # A second stage continues a shipped config's run, on the same data and split.
        first = [c for c in map(load_config, CONFIGS) if c.finetune.checkpoint is None
                 and Path(config.finetune.checkpoint).parent == Path(c.run.run_dir)]
        assert len(first) == 1, f"{config.finetune.checkpoint} is no shipped config's run"
        split = ("train", "valid", "test", "test_fraction", "valid_fraction", "split_seed",
                 "e0", "scale", "format", "reader_options")  # batching may differ
        assert all(getattr(first[0].data, k) == getattr(config.data, k) for k in split)
        config = first[0]
    train, _, _ = split_data(config)
    model, summary = new_model(config, train)
    assert summary["n_train_frames"] == len(train) > 0
    assert sum(p.numel() for p in model.parameters()) > 0
