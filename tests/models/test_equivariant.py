"""The physics contract on a pairwise-covering set of the equivariant family's blocks."""

import itertools

import pytest

from mlip.models.equivariant import INTERACTIONS, RADIALS, SELF_CONNECTIONS
from mlip.testing.mixin import TOLERANCES, PotentialContract

SMALL = {"lmax": 2, "channels": (8, 6, 4), "conv_channels": 6, "num_layers": 2,
         "radial_hidden": 8, "num_knots": 8, "readout_hidden": 8}


# Grid mixing is equivariant only up to its quadrature error (docs/nn.md): measured < 1e-11 at
# the default resolution for these weights; asserted at 1e-8 to leave room across platforms.
GRID_TOLERANCES = {
    "float64": {**TOLERANCES["float64"], "equivariance": 1e-8},
    "float32": TOLERANCES["float32"],
}

# The block choices, read from the model so that a new choice must be placed below. The Fourier
# interaction is slow per edge and has a class of its own (TestGauntFourier).
AXES = {
    "interaction": tuple(i for i in INTERACTIONS if i != "gaunt-fourier"),
    "radial": RADIALS,
    "self_connection": SELF_CONNECTIONS,
}
# Every pair of choices of every two axes, in 6 classes instead of the full product's 12 (each
# class runs the whole contract). Pairs suffice: a bug lives in one block or in the interface
# of two (a radial shape the interaction misreads, a layout the self-connection expects);
# nothing here couples all three at once. test_combinations_cover_every_pair guards the list.
COMBINATIONS = [
    ("gaunt-grid", "mlp", "linear"),
    ("gaunt-grid", "spline", "gate"),
    ("gaunt-grid", "mlp", "grid"),
    ("cg", "spline", "linear"),
    ("cg", "mlp", "gate"),
    ("cg", "spline", "grid"),
]


def _contract(interaction, radial, self_connection, **extra):
    name = f"Test_{interaction}_{radial}_{self_connection}".replace("-", "_")
    hp = {**SMALL, "interaction": interaction, "radial": radial,
          "self_connection": self_connection, **extra}
    attrs = {"model_name": "equivariant", "hyperparameters": hp}
    if self_connection == "grid":
        attrs["tolerances"] = GRID_TOLERANCES
    return type(name, (PotentialContract,), attrs)


for combo in COMBINATIONS:
    cls = _contract(*combo)
    globals()[cls.__name__] = cls


def test_combinations_cover_every_pair():
    names = list(AXES)
    for combo in COMBINATIONS:
        assert all(choice in AXES[axis] for axis, choice in zip(names, combo)), combo
    for i, j in itertools.combinations(range(len(names)), 2):
        wanted = set(itertools.product(AXES[names[i]], AXES[names[j]]))
        missing = wanted - {(combo[i], combo[j]) for combo in COMBINATIONS}
        assert not missing, f"{names[i]} x {names[j]}: no class runs {sorted(missing)}"


class TestGauntFourier(PotentialContract):
    # The FFT form is slow per edge; one combination shows it obeys the same contract.
    model_name = "equivariant"
    hyperparameters = {**SMALL, "interaction": "gaunt-fourier", "lmax": 1,
                       "channels": (8, 4), "conv_channels": 4}


class TestManyBodyProduct(PotentialContract):
    model_name = "equivariant"
    hyperparameters = {**SMALL, "correlation": 3}


class TestElementDependentProduct(PotentialContract):
    model_name = "equivariant"
    hyperparameters = {**SMALL, "correlation": 2, "element_product": True}


class TestPathWeightedProduct(PotentialContract):
    model_name = "equivariant"
    hyperparameters = {**SMALL, "correlation": 3, "element_product": True, "product": "cg"}


class TestWithPairRepulsion(PotentialContract):
    model_name = "equivariant"
    hyperparameters = {**SMALL, "pair_repulsion": True}


def test_unknown_block_names_are_refused():
    import mlip

    for key, bad in [("interaction", "fft"), ("radial", "gauss"), ("self_connection", "mlp"),
                     ("product", "fft")]:
        with pytest.raises(ValueError, match=key):
            mlip.build_model("equivariant", elements=[1], **{key: bad})
    with pytest.raises(ValueError, match="correlation >= 2"):
        mlip.build_model("equivariant", elements=[1], element_product=True)
    with pytest.raises(ValueError, match="correlation >= 2"):
        mlip.build_model("equivariant", elements=[1], product="cg")


@pytest.mark.parametrize("radial", ["spline", "mlp"])
def test_inference_path_matches_training_path(radial):
    # In eval mode the Gaunt-grid convolution and grid mixing run in chunks recomputed in the
    # backward (mlip.kernels._recompute); on the same grid they must give the training path's
    # energy, forces and stress, and the same force-loss gradients when differentiated twice.
    import torch

    import mlip
    from mlip.data import from_ase
    from mlip.testing.structures import triclinic_crystal

    torch.manual_seed(0)
    model = mlip.build_model("equivariant", elements=[1, 8], dtype="float64",
                             **{**SMALL, "interaction": "gaunt-grid", "radial": radial,
                                "self_connection": "grid", "grid_resolution": 8,
                                "eval_grid_resolution": 8, "eval_grid_kind": "gauss"})
    graph = from_ase(triclinic_crystal([1, 8], n_atoms=8), model.cutoff)
    results = []
    for training in (True, False):
        model.train(training)
        out = model(graph, compute_forces=True, compute_stress=True, create_graph=True)
        loss = out["forces"].square().sum() + out["stress"].square().sum()
        grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True,
                                    materialize_grads=True)
        results.append(([out[k].detach() for k in ("energy", "forces", "stress")], grads))
    (train_out, train_grads), (eval_out, eval_grads) = results
    for a, b in zip(eval_out, train_out):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert any(g.abs().max() > 0 for g in train_grads)
    for a, b in zip(eval_grads, train_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # An energy-only call under torch.no_grad (the lean path's views of the weights then
    # carry no grad_fn) gives the same energy.
    with torch.no_grad():
        energy = model(graph, compute_forces=False)["energy"]
    torch.testing.assert_close(energy, train_out[0], rtol=1e-12, atol=1e-12)


def test_checkpoints_before_format_4_keep_their_gauss_evaluation_grid():
    # Format 4 made Lebedev rules the evaluation grid of grid mixing; an older checkpoint must
    # predict what it predicted when saved (a Gauss grid of the same defaults).
    import torch
    from ase import Atoms

    import mlip
    from mlip.data import from_ase
    from mlip.models.registry import checkpoint_dict, model_from_checkpoint

    hp = {**SMALL, "interaction": "gaunt-grid", "self_connection": "grid"}
    model = mlip.build_model("equivariant", elements=[1, 6, 8], **hp).eval()
    assert model.hyperparameters["eval_grid_kind"] == "lebedev"
    assert model.layers[0].update.to_fine.grid.kind == "lebedev"
    atoms = Atoms("CHHO", positions=[[0, 0, 0], [1.1, 0, 0], [-0.4, 1.0, 0], [0, 0, 1.3]])
    graph = from_ase(atoms, model.cutoff)
    old = checkpoint_dict(model)
    old["format_version"] = 3
    del old["hyperparameters"]["eval_grid_kind"]  # saved (resolved) from format 4 on
    legacy = model_from_checkpoint(old).eval()
    mixing = legacy.layers[0].update
    assert (mixing.eval_grid_kind, mixing.eval_grid_resolution) == ("gauss", 24)
    same = mlip.build_model("equivariant", elements=[1, 6, 8], eval_grid_kind="gauss", **hp)
    same.load_state_dict(model.state_dict())
    torch.testing.assert_close(legacy(graph)["forces"], same.eval()(graph)["forces"],
                               rtol=0, atol=0)
    current = model_from_checkpoint(checkpoint_dict(model)).eval()
    torch.testing.assert_close(current(graph)["forces"], model(graph)["forces"], rtol=0, atol=0)
    assert not torch.equal(legacy(graph)["forces"], model(graph)["forces"])
