"""Whole models on each kernel backend: same energies, forces and stress, same state_dict.

The Triton path runs under the interpreter here (slow, so the models are small); on a GPU the
same comparison is the 100-step loss-curve check of docs/kernels.md.
"""

import pytest
import torch
from mlip.kernels.cg_conv import cg_conv

import mlip
from mlip.data.graph import batch_graphs, from_ase
from mlip.nn.tensor_product import CGTensorProduct
from mlip.testing import contract_structures
from tests.helpers.kernels import needs_interpreter

SMALL = {"lmax": 2, "channels": (6, 4, 3), "conv_channels": 4, "num_layers": 2,
         "radial_hidden": 8, "num_knots": 8, "readout_hidden": 4, "elements": [1, 6, 8, 29],
         "dtype": "float64"}
MODELS = {
    "nequip-like": {**SMALL, "interaction": "cg", "radial": "mlp", "self_connection": "gate"},
    "facet-s": {**SMALL, "interaction": "gaunt-grid", "radial": "spline",
                "self_connection": "grid"},
}


def _graph(device="cpu"):
    # a 3.5 Å graph for a 5 Å model: fewer edges for the interpreter, same comparison
    structures = contract_structures(SMALL["elements"])
    graphs = [from_ase(structures[k], 3.5) for k in ("triclinic", "molecule")]
    return {k: v.to(device) for k, v in batch_graphs(graphs).items()}


def test_cg_coupling_table_is_the_product():
    torch.manual_seed(0)
    tp = CGTensorProduct(2, 2, 2, paths="even")
    x, sh = torch.randn(5, 9, 3, dtype=torch.float64), torch.randn(7, 9, dtype=torch.float64)
    w = torch.randn(7, tp.num_paths, 3, dtype=torch.float64)
    sender, receiver = torch.randint(0, 5, (7,)), torch.randint(0, 5, (7,))
    blocked = torch.zeros_like(x).index_add(0, receiver, tp(x[sender], sh[:, :, None], w))
    fused = cg_conv(x, sh, w, tp.coupling_table(), sender, receiver, 9, backend="torch")
    torch.testing.assert_close(fused, blocked, rtol=1e-13, atol=1e-13)


def _compare(name, device):
    torch.manual_seed(0)
    model = mlip.build_model(name, **MODELS[name]).to(device)
    graph = _graph(device)
    keys = set(model.state_dict())
    ref = model.set_kernel_backend("torch")(graph, compute_stress=True)
    out = model.set_kernel_backend("triton")(graph, compute_stress=True)
    assert set(model.state_dict()) == keys
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(out[key], ref[key], rtol=1e-10, atol=1e-10)


@needs_interpreter
@pytest.mark.parametrize("name", sorted(MODELS))
def test_triton_backend_equals_torch_backend(name):
    _compare(name, "cpu")


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.gpu
def test_triton_backend_equals_torch_backend_cuda(name):
    _compare(name, "cuda")


def test_unknown_backend_is_refused():
    model = mlip.build_model("nequip-like", **MODELS["nequip-like"])
    with pytest.raises(ValueError, match="backend must be one of"):
        model.set_kernel_backend("cuda")
