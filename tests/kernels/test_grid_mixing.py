"""Spherical-grid mixing: the fused Triton forward and its backward against the reference."""

import pytest
import torch
from mlip.kernels.grid_mixing import grid_mlp, reference
from pytest import mark

from tests.helpers.kernels import assert_matches, needs_interpreter, needs_triton


def inputs(dtype, device="cpu", N=3, lmax=2, G=20, C=5, H=6, O=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    K = (lmax + 1) ** 2
    shapes = [(N, K, C), (G, K), (K, G), (C, H), (H,), (H, O), (O,)]
    return [torch.randn(*s, generator=gen, dtype=dtype).to(device) for s in shapes]


def test_reference_is_an_mlp_on_the_grid():
    x, T, F, w1, b1, w2, b2 = inputs(torch.float64)
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.SiLU(), torch.nn.Linear(6, 7))
    mlp = mlp.double()
    with torch.no_grad():
        mlp[0].weight.copy_(w1.T), mlp[0].bias.copy_(b1)
        mlp[2].weight.copy_(w2.T), mlp[2].bias.copy_(b2)
        expected = torch.einsum("kg,ngo->nko", F, mlp(torch.einsum("gk,nkc->ngc", T, x)))
    torch.testing.assert_close(reference.grid_mlp(x, T, F, w1, b1, w2, b2), expected)


def test_explicit_backward_matches_autograd():
    args = [a.requires_grad_() for a in inputs(torch.float64)]
    out = reference.grid_mlp(*args)
    go = torch.randn_like(out)
    auto = torch.autograd.grad(out, args, go)
    mine = reference.grid_mlp_backward(go, *[a.detach() for a in args])
    for a, m in zip(auto, mine.values()):
        torch.testing.assert_close(a, m)


def test_reference_gradcheck_and_gradgradcheck():
    args = [a.requires_grad_() for a in inputs(torch.float64, N=2, lmax=1, G=6, C=2, H=3, O=2)]
    assert torch.autograd.gradcheck(reference.grid_mlp, args)
    assert torch.autograd.gradgradcheck(reference.grid_mlp, args)


@needs_interpreter
@mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_matches_reference(dtype):
    assert_matches(grid_mlp, inputs(dtype), wrt=range(7), dtype=dtype)


@mark.parametrize("dtype", [torch.float32, torch.float64])
@mark.gpu
@needs_triton
def test_triton_matches_reference_cuda(dtype):
    args = inputs(dtype, "cuda", N=256, lmax=3, G=153, C=64, H=64, O=64)
    assert_matches(grid_mlp, args, wrt=range(7), dtype=dtype)


def test_matches_the_mlp_part_of_grid_mixing():
    # How mlip.nn.mixing.GridMixing calls the op (the weights of nn.Linear transposed).
    mixing = pytest.importorskip("mlip.nn.mixing")
    torch.manual_seed(0)
    m = mixing.GridMixing(2, 6, 6, hidden=5).double()
    h = m.lift(torch.randn(3, 9, 6, dtype=torch.float64))
    expected = m.from_grid(m.mlp(m.to_grid(h)))
    got = grid_mlp(h, m.to_grid.matrix, m.from_grid.matrix, m.mlp[0].weight.T, m.mlp[0].bias,
                   m.mlp[2].weight.T, m.mlp[2].bias, backend="torch")
    torch.testing.assert_close(got, expected)
