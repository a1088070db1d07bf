"""The ``equivariance`` section: augmentation, TransIP and the output regularizer in training."""

import random

import pytest
import torch

from mlip.data import keys as K
from mlip.train import ConfigError, train
from mlip.train.config import EquivarianceConfig
from mlip.train.equivariance import SymmetryObjective
from tests.helpers import kill_and_resume, tiny_config, write_acac

TINY_TRANSFORMER = {"name": "transformer",
                    "hyperparameters": {"dim": 16, "num_heads": 2, "num_layers": 1,
                                        "edge_dim": 8}}


@pytest.fixture(scope="module")
def acac(tmp_path_factory):
    return write_acac(tmp_path_factory.mktemp("acac") / "train.xyz", 16)


def _config(acac, run_dir, **equivariance):
    return tiny_config(acac, run_dir, model=TINY_TRANSFORMER, equivariance=equivariance,
                       run={"epochs": 2, "checkpoint_every": 1})


def test_transip_needs_an_embedding_and_weights_are_checked(acac, tmp_path):
    with pytest.raises(ConfigError, match="embed"):
        train(tiny_config(acac, tmp_path / "a", equivariance={"transip_weight": 1.0}))
    with pytest.raises(ConfigError, match="equivariance.regularizer_weight"):
        train(_config(acac, tmp_path / "b", regularizer_weight=-1.0))
    with pytest.raises(ConfigError, match="unknown key equivariance.augmnt"):
        train(_config(acac, tmp_path / "c", augmnt=True))


def test_augmentation_rotates_positions_and_targets_together(acac):
    import ase.io

    from mlip.data.graph import atoms_to_frame, batch_graphs, frame_to_graph

    frames = [atoms_to_frame(a) for a in ase.io.read(acac, index=":2")]
    graph = batch_graphs([frame_to_graph(f, 5.0) for f in frames])
    objective = SymmetryObjective(EquivarianceConfig(augment=True), model=None)
    torch.manual_seed(0)
    rotated = objective.prepare(graph)
    assert not torch.allclose(rotated[K.POSITIONS], graph[K.POSITIONS])
    # distances and force magnitudes are unchanged; force-position inner products too
    for key in (K.POSITIONS, K.FORCES):
        torch.testing.assert_close(rotated[key].norm(dim=1), graph[key].norm(dim=1))
    dots = lambda g: (g[K.POSITIONS] * g[K.FORCES]).sum(1)  # noqa: E731
    torch.testing.assert_close(dots(rotated), dots(graph))
    assert objective.prepare(graph) is not graph
    assert SymmetryObjective(EquivarianceConfig(), None).prepare(graph) is graph


@pytest.mark.parametrize("terms", [{"augment": True, "transip_weight": 1.0},
                                   {"augment": True, "regularizer_weight": 1.0}])
def test_auxiliary_losses_train_and_resume_exactly(acac, tmp_path, terms):
    train(_config(acac, tmp_path / "whole", **terms))
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["train_state"]
    if "transip_weight" in terms:  # phi was trained: its last layer left zero
        assert whole["symmetry"]["transform.net.4.weight"].abs().max() > 0
    kill_at = random.Random(1).randrange(2, whole["global_step"] - 1)
    kill_and_resume(_config(acac, tmp_path / "cut", **terms), kill_at)
    cut = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["train_state"]
    for part in ("raw_weights", "symmetry"):
        assert cut[part].keys() == whole[part].keys()
        for key in whole[part]:
            torch.testing.assert_close(cut[part][key], whole[part][key], rtol=0, atol=1e-12)


def test_regularizer_pulls_the_model_towards_equivariance(acac, tmp_path):
    """Same data and steps; a strong output regularizer leaves a smaller measured rotation
    error than no symmetry term at all."""
    import ase.io

    import mlip
    from mlip.testing import equivariance_error

    structures = ase.io.read(acac, index=":3")
    errors = {}
    for name, terms in (("none", {}), ("reg", {"regularizer_weight": 100.0})):
        config = _config(acac, tmp_path / name, **terms)
        config["run"]["epochs"] = 6
        train(config)
        model = mlip.load_model(tmp_path / name / "last.pt")
        errors[name] = equivariance_error(model, structures, n_rotations=4).summary
    assert errors["reg"]["force_relative_mean"] < 0.7 * errors["none"]["force_relative_mean"]
