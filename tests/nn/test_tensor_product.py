import pytest
import torch
from e3nn import o3

from mlip.nn.spherical import S2Grid, wigner_D
from mlip.nn.tensor_product import (
    CGTensorProduct,
    GauntFourierProduct,
    GauntGridProduct,
    gaunt_coefficients,
)

F64 = torch.float64
GAUNT = [GauntGridProduct, GauntFourierProduct]


def rand(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def gaunt_reference(x1, x2, lout):
    """Explicit sum over paths of the coefficient tensors."""
    l1max, l2max = int(x1.shape[-2] ** 0.5) - 1, int(x2.shape[-2] ** 0.5) - 1
    out = torch.zeros(*x1.shape[:-2], (lout + 1) ** 2, x1.shape[-1], dtype=x1.dtype)
    for a in range(l1max + 1):
        for b in range(l2max + 1):
            for c in range(lout + 1):
                g = gaunt_coefficients(a, b, c).to(x1.dtype)
                out[..., c * c : (c + 1) ** 2, :] += torch.einsum(
                    "ijk,...ic,...jc->...kc", g, x1[..., a * a : (a + 1) ** 2, :],
                    x2[..., b * b : (b + 1) ** 2, :])
    return out


def test_gaunt_coefficients_match_quadrature():
    grid = S2Grid(18)
    y = grid.harmonics(6)
    for l1, l2, l3 in [(0, 0, 0), (1, 1, 2), (2, 3, 5), (3, 3, 4), (6, 4, 2), (2, 2, 3), (1, 2, 4)]:
        blocks = [y[:, l * l : (l + 1) ** 2] for l in (l1, l2, l3)]
        ref = torch.einsum("g,gi,gj,gk->ijk", grid.weights, *blocks)
        torch.testing.assert_close(gaunt_coefficients(l1, l2, l3), ref, atol=1e-13, rtol=0)
    assert gaunt_coefficients(2, 2, 3).abs().max() == 0  # odd: absent
    assert gaunt_coefficients(1, 1, 2).abs().max() > 0.1


@pytest.mark.parametrize("cls", GAUNT)
@pytest.mark.parametrize("l1,l2,lout", [(2, 2, 2), (3, 1, 4), (1, 3, 2), (4, 4, 3), (0, 2, 2)])
def test_gaunt_products_match_coefficients(cls, l1, l2, lout):
    x1, x2 = rand(6, (l1 + 1) ** 2, 5, seed=1), rand(6, (l2 + 1) ** 2, 5, seed=2)
    out = cls(l1, l2, lout)(x1, x2)
    torch.testing.assert_close(out, gaunt_reference(x1, x2, lout), atol=1e-10, rtol=0)


@pytest.mark.parametrize("cls", GAUNT)
def test_per_degree_weights_and_one_channel_input(cls):
    l1, l2, lout = 3, 3, 3
    x1, x2 = rand(2, 4, 16, 8, seed=3), rand(2, 4, 16, 1, seed=4)
    w1, w2 = rand(2, 4, 4, 8, seed=5), rand(2, 4, 4, 8, seed=6)
    deg = torch.tensor([0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3])
    ref = gaunt_reference(x1 * w1[..., deg, :], x2 * w2[..., deg, :], lout)
    out = cls(l1, l2, lout)(x1, x2, weights1=w1, weights2=w2)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    # Fast and general branches agree: C broadcast copies of x2.
    out_c = cls(l1, l2, lout)(x1, x2.expand(-1, -1, -1, 8), weights1=w1, weights2=w2)
    torch.testing.assert_close(out_c, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("cls", GAUNT)
def test_odd_paths_absent(cls):
    tp = cls(2, 2, 3)
    for l1 in range(3):
        for l2 in range(3):
            x1, x2 = torch.zeros(1, 9, 2, dtype=F64), torch.zeros(1, 9, 2, dtype=F64)
            x1[:, l1 * l1 : (l1 + 1) ** 2] = rand(1, 2 * l1 + 1, 2, seed=l1)
            x2[:, l2 * l2 : (l2 + 1) ** 2] = rand(1, 2 * l2 + 1, 2, seed=9 + l2)
            out = tp(x1, x2)
            for l3 in range(4):
                block = out[:, l3 * l3 : (l3 + 1) ** 2].abs().max()
                if (l1 + l2 + l3) % 2 or not abs(l1 - l2) <= l3 <= l1 + l2:
                    assert block < 1e-13, (l1, l2, l3)
                else:
                    assert block > 1e-3, (l1, l2, l3)


def test_gaunt_is_cg_with_even_paths_and_fixed_weights():
    lmax = 3
    cg = CGTensorProduct(lmax, lmax, lmax, paths="even")
    w = torch.stack([gaunt_coefficients(*p).norm() / o3.wigner_3j(*p, dtype=F64).norm()
                     / (2 * p[2] + 1) ** 0.5 for p in cg.paths])
    x1, x2 = rand(4, 16, 3, seed=7), rand(4, 16, 3, seed=8)
    ref = GauntGridProduct(lmax, lmax, lmax)(x1, x2)
    signs = torch.stack([gaunt_coefficients(*p)[p[0], p[1], p[2]].sign()
                         * o3.wigner_3j(*p, dtype=F64)[p[0], p[1], p[2]].sign() for p in cg.paths])
    out = cg(x1, x2, (w * signs)[None, :, None].expand(4, -1, 3))
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)


def _flat(x, lmax):
    return torch.cat([x[:, l * l : (l + 1) ** 2].transpose(1, 2).flatten(1)
                      for l in range(lmax + 1)], 1)


def _unflat(f, lmax, c):
    sizes = [c * (2 * l + 1) for l in range(lmax + 1)]
    return torch.cat([b.unflatten(1, (c, -1)).transpose(1, 2)
                      for b in f.split(sizes, dim=1)], 1)


@pytest.mark.parametrize("c2", [1, 4])
def test_cg_matches_e3nn(c2):
    lmax, c, e = 2, 4, 5
    cg = CGTensorProduct(lmax, lmax, lmax)
    # All-even e3nn parities admit every triangle path; the coefficients do not depend on them.
    irreps = o3.Irreps([(c, (l, 1)) for l in range(lmax + 1)])
    irreps2 = o3.Irreps([(c2, (l, 1)) for l in range(lmax + 1)])
    mode = "uvu" if c2 == 1 else "uuu"
    tp = o3.TensorProduct(irreps, irreps2, irreps, [(*p, mode, True) for p in cg.paths],
                          shared_weights=False, internal_weights=False,
                          irrep_normalization="component", path_normalization="none")
    x1, x2, w = rand(e, 9, c, seed=1), rand(e, 9, c2, seed=2), rand(e, cg.num_paths, c, seed=3)
    ref = _unflat(tp.to(F64)(_flat(x1, lmax), _flat(x2, lmax), w.flatten(1)), lmax, c)
    torch.testing.assert_close(cg(x1, x2, w), ref, atol=1e-6, rtol=0)  # e3nn: float32 w3j
    assert cg.num_paths == sum(1 for a in range(3) for b in range(3) for d in range(3)
                               if abs(a - b) <= d <= a + b)


def _equivariance_error(tp, lmax_in, lout, rotation, **kw):
    x1, x2 = rand(3, (lmax_in + 1) ** 2, 4, seed=11), rand(3, (lmax_in + 1) ** 2, 1, seed=12)
    d_in, d_out = wigner_D(lmax_in, rotation), wigner_D(lout, rotation)
    rotated = tp(d_in @ x1, d_in @ x2, **kw)
    return (rotated - d_out @ tp(x1, x2, **kw)).abs().max()


@pytest.mark.parametrize("cls", GAUNT)
def test_gaunt_equivariant_under_o3(cls):
    for r in (o3.rand_matrix(dtype=F64), -o3.rand_matrix(dtype=F64)):
        assert _equivariance_error(cls(3, 3, 4), 3, 4, r) < 1e-11


def test_cg_parity_behaviour():
    w = rand(3, CGTensorProduct(2, 2, 2).num_paths, 4, seed=5)
    rotation, reflection = o3.rand_matrix(dtype=F64), -o3.rand_matrix(dtype=F64)
    all_paths, even = CGTensorProduct(2, 2, 2), CGTensorProduct(2, 2, 2, paths="even")
    we = w[:, : even.num_paths]
    assert _equivariance_error(all_paths, 2, 2, rotation, weights=w) < 1e-11
    assert _equivariance_error(even, 2, 2, reflection, weights=we) < 1e-11
    # Odd paths make pseudo-tensors: summed into the same rows, reflections break.
    assert _equivariance_error(all_paths, 2, 2, reflection, weights=w) > 1e-3


@pytest.mark.parametrize("cls", GAUNT + [CGTensorProduct])
def test_float32_and_gradients(cls):
    x1, x2 = rand(3, 9, 2, seed=1), rand(3, 9, 2, seed=2)
    ref = cls(2, 2, 2)(x1, x2)
    out32 = cls(2, 2, 2).float()(x1.float(), x2.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), ref, atol=1e-5, rtol=1e-5)
    # Small sizes: gradgradcheck costs one forward per input element.
    tp = cls(1, 1, 1)
    x1, x2 = rand(2, 4, 1, seed=3).requires_grad_(), rand(2, 4, 1, seed=4).requires_grad_()
    assert torch.autograd.gradcheck(tp, (x1, x2))
    assert torch.autograd.gradgradcheck(tp, (x1, x2))


def test_fourier_product_survives_module_dtype_moves():
    # Module.to(dtype) casts complex buffers to real: the matrices must not be complex buffers.
    torch.manual_seed(3)
    x1 = torch.randn(4, 4, 3, dtype=torch.float64)
    x2 = torch.randn(4, 4, 3, dtype=torch.float64)
    ref = GauntGridProduct(1, 1, 1)(x1, x2)
    moved = GauntFourierProduct(1, 1, 1).to(torch.float64)
    torch.testing.assert_close(moved(x1, x2), ref, atol=1e-12, rtol=0)
    f32 = GauntFourierProduct(1, 1, 1).to(torch.float32)
    torch.testing.assert_close(f32(x1.float(), x2.float()), ref.float(), atol=1e-5, rtol=0)
