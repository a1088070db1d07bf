"""The scale of the equivariant family's messages (``message_norm``) and its checkpoint rule."""

import math

import pytest
import torch
from ase import Atoms

import mlip
from mlip.data.graph import from_ase
from mlip.models.registry import checkpoint_dict, model_from_checkpoint

SMALL = {"elements": [1, 6, 8], "lmax": 2, "channels": (8, 6, 4), "conv_channels": 6,
         "num_layers": 2, "radial_hidden": 8, "num_knots": 8, "readout_hidden": 8}
GAINS = {"gaunt-grid": 4 * math.pi, "gaunt-fourier": 4 * math.pi, "cg": math.sqrt(4 * math.pi)}


def _dimer_messages(interaction, norm, n=300, seed=0):
    """One interaction's output on ``n`` dimers of random orientation, each atom carrying
    unit-variance features at every degree: every receiver sees exactly one edge."""
    torch.manual_seed(seed)
    model = mlip.build_model("equivariant", interaction=interaction, message_norm=norm, **SMALL)
    layer = model.layers[1]
    direction = torch.nn.functional.normalize(torch.randn(n, 3, dtype=torch.float64), dim=-1)
    vec = torch.cat([direction, -direction]) * 1.5
    sender = torch.cat([torch.arange(n), torch.arange(n) + n])
    receiver = torch.cat([torch.arange(n) + n, torch.arange(n)])
    r = torch.linalg.norm(vec, dim=-1)
    sh = mlip.nn.spherical_harmonics(model.lmax, vec)
    x = torch.randn(2 * n, (model.lmax + 1) ** 2, 6, dtype=torch.float64)
    with torch.no_grad():
        return layer.interaction(x, vec, r, sh, sender, receiver)


@pytest.mark.parametrize("interaction", sorted(GAINS))
def test_component_norm_multiplies_by_the_harmonics_factor(interaction):
    component = _dimer_messages(interaction, "component")
    integral = _dimer_messages(interaction, "integral")
    torch.testing.assert_close(component, GAINS[interaction] * integral)


@pytest.mark.parametrize("interaction", ["gaunt-grid", "cg"])
def test_component_messages_have_unit_scale(interaction):
    # The point of the normalisation: one edge's message is as large as the features it is
    # made from (e3nn's component normalisation), not 1/sqrt(4 pi) or 1/(4 pi) of them.
    rms = [float(_dimer_messages(interaction, "component")[:, rows].pow(2).mean().sqrt())
           for rows in (slice(0, 1), slice(1, 4), slice(4, 9))]
    assert all(0.3 < v < 3.0 for v in rms), rms
    legacy = float(_dimer_messages(interaction, "integral").pow(2).mean().sqrt())
    assert legacy < 0.5


def test_unknown_message_norm_is_refused():
    with pytest.raises(ValueError, match="message_norm"):
        mlip.build_model("equivariant", elements=[1], message_norm="unit")


def test_checkpoints_before_format_3_keep_their_message_scale():
    model = mlip.build_model("equivariant", **SMALL).eval()
    atoms = Atoms("CHHO", positions=[[0, 0, 0], [1.1, 0, 0], [-0.4, 1.0, 0], [0, 0, 1.3]])
    graph = from_ase(atoms, model.cutoff)
    old = checkpoint_dict(model)
    old["format_version"] = 2
    del old["hyperparameters"]["message_norm"]  # saved (resolved) from format 3 on
    legacy = model_from_checkpoint(old).eval()
    assert legacy.layers[0].interaction.gain == 1.0
    same = mlip.build_model("equivariant", message_norm="integral", **SMALL).eval()
    same.load_state_dict(model.state_dict())
    torch.testing.assert_close(legacy(graph)["energy"], same(graph)["energy"])
    # A current checkpoint loads as saved: the component scale.
    current = model_from_checkpoint(checkpoint_dict(model)).eval()
    torch.testing.assert_close(current(graph)["energy"], model(graph)["energy"])
    assert not torch.allclose(legacy(graph)["energy"], model(graph)["energy"])
