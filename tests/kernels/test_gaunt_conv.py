"""Gaunt-grid convolution: Triton against the torch reference, every direction and dtype."""

import torch
from mlip.kernels.gaunt_conv import gaunt_grid_conv, reference
from pytest import mark

from tests.helpers.kernels import assert_matches, needs_interpreter, needs_triton


def inputs(dtype, device="cpu", N=4, E=10, G=12, C=6, lmax=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    unit = lambda n: torch.nn.functional.normalize(  # noqa: E731
        torch.randn(n, 3, generator=gen, dtype=dtype), dim=-1)
    x = torch.randn(N, G, C, generator=gen, dtype=dtype)
    radial = torch.randn(E, lmax + 1, C, generator=gen, dtype=dtype)
    receiver = torch.sort(torch.randint(0, N, (E,), generator=gen)).values
    sender = torch.randint(0, N, (E,), generator=gen)
    t = (x, unit(E), radial, unit(G), sender, receiver)
    return [a.to(device) for a in t]


def test_reference_is_the_dense_filter():
    x, d, radial, grid, s, r = inputs(torch.float64)
    filt = reference.edge_filter(d, radial, grid)
    dense = torch.zeros_like(x).index_add(0, r, x[s] * filt)
    torch.testing.assert_close(gaunt_grid_conv(x, d, radial, grid, s, r, backend="torch"), dense)
    # l = 0 with unit weight: the filter is 1/(4 pi) everywhere.
    ones = torch.zeros_like(radial)
    ones[:, 0] = 1.0
    assert torch.allclose(reference.edge_filter(d, ones, grid), torch.tensor(1 / (4 * torch.pi),
                          dtype=torch.float64))


def test_reference_gradcheck_and_gradgradcheck():
    x, d, radial, grid, s, r = inputs(torch.float64, N=3, E=5, G=4, C=2, lmax=2)
    fn = lambda x, d, w: reference.gaunt_grid_conv(x, d, w, grid, s, r)  # noqa: E731
    args = [t.requires_grad_() for t in (x, d, radial)]
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


@needs_interpreter
@mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_matches_reference(dtype):
    assert_matches(gaunt_grid_conv, inputs(dtype), wrt=(0, 1, 2), dtype=dtype)


@needs_interpreter
def test_triton_lmax0_and_empty_receivers():
    # A node that receives nothing stays exactly zero; lmax = 0 has no recursion.
    x, d, radial, grid, s, r = inputs(torch.float64, N=6, E=4, lmax=0)
    r = torch.zeros_like(r)
    out = gaunt_grid_conv(x, d, radial, grid, s, r, backend="triton")
    assert torch.equal(out[1:], torch.zeros_like(out[1:]))
    assert_matches(gaunt_grid_conv, (x, d, radial, grid, s, r), (0, 1, 2), torch.float64)


@mark.parametrize("dtype", [torch.float32, torch.float64])
@mark.gpu
@needs_triton
def test_triton_matches_reference_cuda(dtype):
    args = inputs(dtype, "cuda", N=64, E=1000, G=28, C=64, lmax=3)
    assert_matches(gaunt_grid_conv, args, wrt=(0, 1, 2), dtype=dtype)
