"""Cubic B-spline radial op: Triton against the torch reference; the nn module uses it."""

import torch
from mlip.kernels.bspline import bspline_radial, reference
from pytest import mark

from mlip.nn.radial import CubicBSplineRadial
from tests.helpers.kernels import assert_matches, needs_interpreter, needs_triton

CUTOFF = 5.0


def inputs(dtype, device="cpu", E=40, knots=8, out=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # Past the cutoff too, and exactly on a knot and on the cutoff.
    r = torch.rand(E, generator=gen, dtype=dtype) * 1.2 * CUTOFF
    r[:2] = torch.tensor([CUTOFF / knots * 3, CUTOFF], dtype=dtype)
    table = torch.randn(knots, out, generator=gen, dtype=dtype)
    return [r.to(device), table.to(device), CUTOFF]


def test_module_calls_the_op_and_keeps_its_state_dict():
    torch.manual_seed(0)
    m = CubicBSplineRadial(CUTOFF, 6, num_knots=10)
    assert list(m.state_dict()) == ["weight"]
    r = torch.linspace(0, 6, 50, dtype=torch.float64)
    torch.testing.assert_close(m(r), reference.bspline_radial(r, m.weight.double(), CUTOFF),
                               rtol=0, atol=0)
    # The dense basis agrees with the table lookup.
    torch.testing.assert_close(m(r), m.basis(r) @ m.weight.double())


def test_reference_vanishes_smoothly_at_the_cutoff():
    table = torch.randn(8, 3, dtype=torch.float64)
    r = torch.tensor([CUTOFF - 1e-4, CUTOFF, CUTOFF + 1.0], dtype=torch.float64,
                     requires_grad=True)
    out = reference.bspline_radial(r, table, CUTOFF)
    assert out[1:].abs().max() == 0 and out[0].abs().max() < 1e-9
    (g,) = torch.autograd.grad(out.sum(), r, create_graph=True)
    assert g[1:].abs().max() == 0 and g[0].abs() < 1e-5


def test_reference_gradcheck_and_gradgradcheck():
    r, table, _ = inputs(torch.float64, E=6, knots=5, out=2)
    r = r.clamp(0.1, CUTOFF - 0.1)  # away from knots' kinks in the third derivative
    fn = lambda r, t: reference.bspline_radial(r, t, CUTOFF)  # noqa: E731
    args = [r.requires_grad_(), table.requires_grad_()]
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


@needs_interpreter
@mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_matches_reference(dtype):
    assert_matches(bspline_radial, inputs(dtype), wrt=(0, 1), dtype=dtype)


@mark.parametrize("dtype", [torch.float32, torch.float64])
@mark.gpu
@needs_triton
def test_triton_matches_reference_cuda(dtype):
    assert_matches(bspline_radial, inputs(dtype, "cuda", E=5000, knots=16, out=256),
                   wrt=(0, 1), dtype=dtype)
