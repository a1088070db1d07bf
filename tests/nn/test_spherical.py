import pytest
import torch
from e3nn import o3

from mlip.nn.spherical import (
    FromGrid,
    S2Grid,
    ToGrid,
    from_grid,
    spherical_harmonics,
    to_grid,
    wigner_D,
)

F64 = torch.float64


@pytest.mark.parametrize("lmax", [0, 1, 3, 8, 11])
def test_matches_e3nn(lmax):
    vec = torch.randn(500, 3, dtype=F64, generator=torch.Generator().manual_seed(lmax)) * 3
    vec[:3] = torch.eye(3, dtype=F64)  # the poles of every axis
    ours = spherical_harmonics(lmax, vec)
    ref = o3.spherical_harmonics(list(range(lmax + 1)), vec, True, normalization="integral")
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=0)


def test_float32_high_degree_stays_accurate():
    vec = torch.randn(200, 3, dtype=F64)
    ref = spherical_harmonics(16, vec)
    ours = spherical_harmonics(16, vec.float())
    assert ours.dtype == torch.float32
    assert (ours.double() - ref).abs().max() < 1e-4


def test_orthonormal_on_grid():
    grid = S2Grid(12)
    y = grid.harmonics(6)
    gram = (y * grid.weights[:, None]).T @ y
    torch.testing.assert_close(gram, torch.eye(49, dtype=F64), atol=1e-13, rtol=0)


def test_rotation_and_reflection():
    vec = torch.randn(50, 3, dtype=F64)
    for r in (o3.rand_matrix(dtype=F64), -o3.rand_matrix(dtype=F64)):
        d = wigner_D(6, r)
        torch.testing.assert_close(
            spherical_harmonics(6, vec @ r.T), spherical_harmonics(6, vec) @ d.T,
            atol=1e-12, rtol=0,
        )
        # e3nn's own D (float32 generators) agrees to its precision.
        e3nn_d = o3.Irreps([(1, (l, (-1) ** l)) for l in range(7)]).D_from_matrix(r)
        assert (d - e3nn_d).abs().max() < 1e-5


def test_twice_differentiable():
    vec = torch.randn(5, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spherical_harmonics(3, v), (vec,))
    assert torch.autograd.gradgradcheck(lambda v: spherical_harmonics(3, v), (vec,))
    # e3nn's second derivative as an independent check of the recursion's.
    def hess(fn):
        v = vec.detach().requires_grad_()
        (g,) = torch.autograd.grad(fn(v).pow(2).sum(), v, create_graph=True)
        return torch.autograd.grad(g.sum(), v)[0]
    ref = hess(lambda v: o3.spherical_harmonics([0, 1, 2, 3], v, True, normalization="integral"))
    torch.testing.assert_close(hess(lambda v: spherical_harmonics(3, v)), ref)


@pytest.mark.parametrize("degree", [0, 3, 6, 9])
def test_grid_is_smallest_exact(degree):
    grid = S2Grid(degree)
    assert (grid.n_theta, grid.n_phi) == (degree // 2 + 1, degree + 1)
    y = S2Grid(4 * degree + 4).harmonics(degree + 1)
    big = S2Grid(4 * degree + 4)

    def integral(g, lmax, k):
        return (g.weights * g.harmonics(lmax)[:, k]).sum()

    # Every harmonic of degree 1..degree integrates to zero, and one of degree+1 does not.
    for k in range(1, (degree + 1) ** 2):
        assert abs(integral(grid, degree, k)) < 1e-12
    misses = [abs(integral(grid, degree + 1, k)) for k in range((degree + 1) ** 2, y.shape[1])]
    assert max(misses) > 1e-3
    assert abs(integral(big, degree + 1, 0) - integral(grid, 0, 0)) < 1e-12


def test_round_trip_modules_and_functions():
    lmax = 5
    grid = S2Grid(2 * lmax)
    x = torch.randn(3, 4, (lmax + 1) ** 2, 7, dtype=F64)
    to, back = ToGrid(lmax, grid), FromGrid(lmax, grid)
    f = to(x)
    assert f.shape == (3, 4, len(grid), 7)
    torch.testing.assert_close(back(f), x, atol=1e-12, rtol=0)
    torch.testing.assert_close(from_grid(to_grid(x, grid), grid, lmax), x, atol=1e-12, rtol=0)
    # One degree too coarse aliases.
    coarse = S2Grid(2 * lmax - 1)
    assert (from_grid(to_grid(x, coarse), coarse, lmax) - x).abs().max() > 1e-3


def test_buffers_not_in_state_dict_and_follow_dtype():
    grid = S2Grid(4)
    module = torch.nn.Sequential(ToGrid(2, grid), FromGrid(2, grid))
    assert module.state_dict() == {}
    assert module[0].matrix.dtype == F64
    x = torch.randn(2, 9, 3, dtype=F64)
    torch.testing.assert_close(module(x), x, atol=1e-12, rtol=0)
    module = module.float()
    assert module[1].matrix.dtype == torch.float32
    assert module(x.float()).dtype == torch.float32
    assert ToGrid(2, grid, torch.float32).matrix.dtype == torch.float32


@pytest.mark.parametrize("degree", [4, 8, 16, 23, 25])
def test_lebedev_grid_is_exact_for_its_degree(degree):
    from mlip.nn.spherical import FromGrid, S2Grid, ToGrid, lebedev_degrees

    grid = S2Grid(degree, "lebedev")
    # Rounded up to a rule with positive weights: 25 (and 27) have a negative one.
    assert grid.degree >= degree and grid.degree in lebedev_degrees()
    assert (grid.weights > 0).all() and grid.degree != 25
    torch.testing.assert_close(grid.weights.sum(), torch.tensor(4 * torch.pi, dtype=torch.float64))
    ones = torch.ones(len(grid), dtype=torch.float64)
    torch.testing.assert_close(grid.directions.norm(dim=-1), ones)
    lmax = grid.degree // 2
    eye = FromGrid(lmax, grid).matrix @ ToGrid(lmax, grid).matrix
    identity = torch.eye((lmax + 1) ** 2, dtype=torch.float64)
    torch.testing.assert_close(eye, identity, atol=1e-12, rtol=0)
    assert len(grid) < len(S2Grid(grid.degree))  # fewer points than Gauss for the same degree


def test_unknown_grid_kind_is_refused():
    from mlip.nn.spherical import S2Grid

    with pytest.raises(ValueError, match="kind"):
        S2Grid(8, "fibonacci")
