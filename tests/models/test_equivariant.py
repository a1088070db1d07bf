"""The physics contract on every combination of the equivariant family's blocks."""

import itertools

import pytest

from mlip.testing.mixin import TOLERANCES, PotentialContract

SMALL = {"lmax": 2, "channels": (8, 6, 4), "conv_channels": 6, "num_layers": 2,
         "radial_hidden": 8, "num_knots": 8, "readout_hidden": 8}


# Grid mixing is equivariant only up to its quadrature error (docs/nn.md): measured < 1e-11 at
# the default resolution for these weights; asserted at 1e-8 to leave room across platforms.
GRID_TOLERANCES = {
    "float64": {**TOLERANCES["float64"], "equivariance": 1e-8},
    "float32": TOLERANCES["float32"],
}


def _contract(interaction, radial, self_connection, **extra):
    name = f"Test_{interaction}_{radial}_{self_connection}".replace("-", "_")
    hp = {**SMALL, "interaction": interaction, "radial": radial,
          "self_connection": self_connection, **extra}
    attrs = {"model_name": "equivariant", "hyperparameters": hp}
    if self_connection == "grid":
        attrs["tolerances"] = GRID_TOLERANCES
    return type(name, (PotentialContract,), attrs)


COMBINATIONS = list(
    itertools.product(["gaunt-grid", "cg"], ["mlp", "spline"], ["linear", "gate", "grid"])
)
for combo in COMBINATIONS:
    cls = _contract(*combo)
    globals()[cls.__name__] = cls


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
