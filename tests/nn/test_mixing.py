import pytest
import torch
from e3nn import o3

from mlip.nn.mixing import EquivariantLinear, Gate, GridMixing, default_grid_resolution
from mlip.nn.spherical import wigner_D

F64 = torch.float64


def ragged(n, lmax, channels, seed=0):
    """Padded ragged features: degree l has channels[l] random channels, the rest zero."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, (lmax + 1) ** 2, max(channels), dtype=F64)
    for l, c in enumerate(channels):
        x[:, l * l : (l + 1) ** 2, :c] = torch.randn(n, 2 * l + 1, c, dtype=F64, generator=gen)
    return x


def assert_padding_zero(y, lmax, channels):
    for l, c in enumerate(channels):
        assert (y[:, l * l : (l + 1) ** 2, c:] == 0).all(), l


def equivariance_error(module, x, lmax, rotation):
    d = wigner_D(lmax, rotation)
    y = module(x)
    return ((module(d @ x) - d @ y).norm() / y.norm()).item()


ROTATIONS = [o3.rand_matrix(dtype=F64), -o3.rand_matrix(dtype=F64)]  # with a reflection


def test_linear_ragged_matches_per_degree_matmul():
    c_in, c_out = (5, 3, 2), (4, 6, 1)
    lin = EquivariantLinear(2, c_in, c_out).double()
    with torch.no_grad():
        lin.bias.normal_()
    x = ragged(7, 2, c_in)
    x_noisy = x.clone()
    x_noisy[:, 1:4, 3:] = 99.0  # beyond C_1 in: must be ignored
    y = lin(x_noisy)
    assert y.shape == (7, 9, 6)
    assert_padding_zero(y, 2, c_out)
    for l in range(3):
        sl = slice(l * l, (l + 1) ** 2)
        ref = x[:, sl, : c_in[l]] @ lin.weights[l] + (lin.bias if l == 0 else 0)
        torch.testing.assert_close(y[:, sl, : c_out[l]], ref)
    # Bias on l = 0 only: a zero input gives zero for l > 0.
    assert lin(torch.zeros_like(x))[:, 1:].abs().max() == 0
    assert lin(torch.zeros_like(x))[:, 0, :4].abs().max() > 0
    for r in ROTATIONS:
        assert equivariance_error(lin, x, 2, r) < 1e-13


def test_gate():
    channels = (3, 2, 4)
    gate = Gate(2, channels)
    c_in = Gate.input_channels(channels)
    assert c_in == (9, 2, 4)
    x = ragged(5, 2, c_in, seed=1)
    y = gate(x)
    assert y.shape == (5, 9, 4)
    assert_padding_zero(y, 2, channels)
    torch.testing.assert_close(y[:, 0, :3], torch.nn.functional.silu(x[:, 0, :3]))
    torch.testing.assert_close(y[:, 1:4, :2], x[:, 1:4, :2] * torch.sigmoid(x[:, None, 0, 3:5]))
    torch.testing.assert_close(y[:, 4:9, :4], x[:, 4:9, :4] * torch.sigmoid(x[:, None, 0, 5:9]))
    for r in ROTATIONS:
        assert equivariance_error(gate, x, 2, r) < 1e-13


def test_grid_mixing_default_resolution_is_nearly_equivariant():
    lmax, c_in, c_out = 2, (8, 6, 4), (5, 3, 2)
    torch.manual_seed(0)
    mixing = GridMixing(lmax, c_in, c_out, hidden=12).double()
    assert mixing.grid_resolution == default_grid_resolution(lmax)
    assert mixing.state_dict().keys() == {k for k, _ in mixing.named_parameters()}
    x = ragged(16, lmax, c_in, seed=2)
    y = mixing(x)
    assert y.shape == (16, 9, 5)
    assert_padding_zero(y, lmax, c_out)
    for r in ROTATIONS:
        assert equivariance_error(mixing, x, lmax, r) < 1e-4
    # The smallest grid aliases the SiLU's output visibly: the error is real, not hidden.
    torch.manual_seed(0)
    coarse = GridMixing(lmax, c_in, c_out, hidden=12, grid_resolution=2 * lmax).double()
    assert equivariance_error(coarse, x, lmax, ROTATIONS[0]) > 1e-3


def test_grid_mixing_scalar_skip_and_validation():
    torch.manual_seed(0)
    mixing = GridMixing(1, 4, 4).double()
    x = ragged(3, 1, (4, 4), seed=3)
    # The output scalars see the input scalars through the concatenation as well.
    grad = torch.autograd.functional.jacobian(lambda s: mixing(torch.cat([s, x[:, 1:]], 1)),
                                              x[:, :1])
    assert grad.abs().max() > 0
    with pytest.raises(ValueError):
        GridMixing(3, 4, 4, grid_resolution=5)
    with pytest.raises(ValueError):
        EquivariantLinear(2, (1, 2), 3)


def test_float32():
    torch.manual_seed(0)
    mixing = GridMixing(2, 6, 6)
    y = mixing(ragged(4, 2, (6, 6, 6)).float())
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


def test_evaluation_uses_the_finer_grid():
    """Weights scaled up (as training does) alias more; model.eval() switches to the finer
    grid, which cuts the rotation error, and the state_dict is the same in both modes."""
    lmax, c = 2, (6, 6, 6)
    torch.manual_seed(0)
    mixing = GridMixing(lmax, c, c, hidden=8).double()
    with torch.no_grad():
        for p in mixing.mlp.parameters():
            p.mul_(4.0)
    assert (mixing.eval_grid_kind, mixing.eval_grid_resolution) == ("lebedev", 29)
    x = ragged(16, lmax, c, seed=4)
    train_err = max(equivariance_error(mixing.train(), x, lmax, r) for r in ROTATIONS)
    eval_err = max(equivariance_error(mixing.eval(), x, lmax, r) for r in ROTATIONS)
    assert eval_err < 0.2 * train_err
    assert mixing.state_dict().keys() == {k for k, _ in mixing.named_parameters()}
    same = GridMixing(lmax, c, c, hidden=8, grid_resolution=20, eval_grid_resolution=20,
                      eval_grid_kind="gauss").double()
    same.load_state_dict(mixing.state_dict())
    torch.testing.assert_close(same.eval()(x), same.train()(x), rtol=0, atol=0)


def test_lebedev_evaluation_grid_aliases_less_than_the_gauss_grid_it_replaces():
    # The default evaluation grid (Lebedev 29 for lmax 2, 302 points) against the Gauss grid of
    # the same margin (degree 24, 325 points), on weights scaled up as training scales them.
    lmax, c = 2, (6, 6, 6)
    gen = torch.Generator().manual_seed(5)
    rotations = [torch.linalg.qr(torch.randn(3, 3, dtype=F64, generator=gen))[0]
                 for _ in range(4)]
    x = ragged(16, lmax, c, seed=4)
    errors, points = {}, {}
    for kind in ("gauss", "lebedev"):
        torch.manual_seed(0)
        mixing = GridMixing(lmax, c, c, hidden=8, eval_grid_kind=kind).double().eval()
        with torch.no_grad():
            for p in mixing.mlp.parameters():
                p.mul_(6.0)
        points[kind] = len(mixing.to_fine.grid)
        errors[kind] = max(equivariance_error(mixing, x, lmax, r) for r in rotations)
    assert points == {"gauss": 325, "lebedev": 302}
    assert errors["lebedev"] < 0.9 * errors["gauss"], errors
