"""The physics contract as a pytest mixin that every model test inherits (nequip style).

A test module subclasses :class:`PotentialContract`, sets ``model_name`` and ``hyperparameters``
(and optionally tolerances), and gets every check in float64 and float32::

    class TestMyModel(PotentialContract):
        model_name = "equivariant"
        hyperparameters = {"lmax": 1}
"""

from __future__ import annotations

import pytest
import torch

from . import contract as C
from .structures import charged_structures, contract_structures

ELEMENTS = [1, 6, 8]

# (equivariance rel, FD forces eV/Å, FD stress eV/Å^3, extensivity/batch rel) per dtype. float32
# has no per-component FD check (its rounding swamps a 1e-5 Å step) but has the directional ones
# (relative errors, contract.directional_*), measured at their default steps (1e-2 Å, strain
# 5e-3) on the equivariant family (cg/gaunt-grid/gaunt-fourier, mlp/spline, linear/gate/grid,
# correlation 3, pair repulsion, charged), the transformer (plain, canonical, frame-averaged,
# charged frame-averaged): 2-3 weight seeds x 3 structures (stress: triclinic) x 3-4 directions.
# Worst seen, float32: forces 5.6e-3, stress 3.9e-3 (grid mixing); float64: forces 4.1e-5
# (canonical: its frame weights curve sharply), stress 5.5e-6 (charged frame-averaged). Set at
# 3.5-5x. A 10 % scale error of the forces or stress reads as 0.04-0.07 and a sign error as
# 1.2-1.8 (measured; tests/testing/test_contract.py shows both failing in both dtypes).
TOLERANCES = {
    "float64": {"equivariance": 1e-10, "fd": 1e-6, "fd_stress": 1e-6, "rel": 1e-10,
                "fd_direction": 2e-4, "fd_stress_direction": 2e-5},
    "float32": {"equivariance": 1e-4, "fd": None, "fd_stress": None, "rel": 1e-4,
                "fd_direction": 2e-2, "fd_stress_direction": 2e-2},
}


class PotentialContract:
    model_name: str = ""
    hyperparameters: dict = {}
    elements = ELEMENTS
    #: False for models that learn equivariance: their rotation error is asserted to exceed the
    #: exact tolerance, and that of the same model frame-averaged to be within it
    exact_equivariance: bool = True
    #: The charge_spin hyperparameter (True, "element" or "environment") for models built with
    #: it: the checks run on charged, open-shell structures (locality stays on neutral ones: a
    #: total charge is shared over the whole structure)
    charge_spin: bool | str = False
    tolerances = TOLERANCES

    @pytest.fixture(scope="class", params=["float64", "float32"])
    @classmethod
    def dtype(cls, request):
        return request.param

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, dtype):
        from ..models.registry import build_model

        torch.manual_seed(0)
        hp = {"cutoff": 3.5, "elements": cls.elements, **cls.hyperparameters, "dtype": dtype}
        if cls.charge_spin:
            hp["charge_spin"] = cls.charge_spin
        model = build_model(cls.model_name, **hp).eval()
        # Non-trivial E0, scale and charge shares (zero logits at first), so the checks see them.
        model.set_e0({z: -1.5 * z for z in cls.elements})
        model.set_scale(1.7)
        electronic = getattr(getattr(model, "inner", model), "electronic", None)
        if electronic is not None:
            with torch.no_grad():
                for table in (electronic.logits, electronic.pair_logits):
                    if table is not None:
                        table.weight.normal_(0.0, 0.5)
        return model

    @pytest.fixture(scope="class")
    @classmethod
    def structures(cls):
        if cls.charge_spin:
            return charged_structures(cls.elements)
        return contract_structures(cls.elements)

    def tol(self, dtype, key):
        return self.tolerances[dtype][key]

    @pytest.fixture(scope="class")
    @classmethod
    def frame_averaged(cls, model):
        from ..models.frame_averaging import FrameAveraged

        return FrameAveraged(model).eval()

    @pytest.mark.parametrize("name", ["triclinic", "slab", "molecule"])
    @pytest.mark.parametrize("reflect", [False, True])
    def test_rotation(self, model, structures, dtype, name, reflect, request):
        tol = self.tol(dtype, "equivariance")
        err = C.rotation_error(model, structures[name], reflect=reflect)
        if self.exact_equivariance:
            C._check("rotation", err, tol)
            return
        # Learned equivariance is approximate: above the exact tolerance (an error below it
        # would mean the model is exact and should say so), and frame averaging the same
        # weights makes it exact.
        assert err > tol, f"rotation error {err:.1e} is within the exact tolerance {tol:.0e}"
        averaged = request.getfixturevalue("frame_averaged")
        C.rotation_error(averaged, structures[name], reflect=reflect, tol=tol)

    @pytest.mark.parametrize("name", ["triclinic", "molecule"])
    def test_translation_permutation(self, model, structures, dtype, name):
        C.translation_permutation_error(model, structures[name], tol=self.tol(dtype, "rel") * 10)

    @pytest.mark.parametrize("name", ["triclinic", "slab", "molecule"])
    def test_forces_finite_difference(self, model, structures, dtype, name):
        # Along one direction over all atoms in every dtype; per component (3 atoms x 3 axes)
        # where the dtype resolves the small step.
        C.directional_finite_difference_error(model, structures[name],
                                              tol=self.tol(dtype, "fd_direction"))
        if self.tol(dtype, "fd") is not None:
            C.finite_difference_error(model, structures[name], tol=self.tol(dtype, "fd"))

    def test_stress_finite_difference(self, model, structures, dtype):
        crystal = structures["triclinic"]
        C.directional_stress_finite_difference_error(
            model, crystal, tol=self.tol(dtype, "fd_stress_direction"))
        if self.tol(dtype, "fd_stress") is not None:
            C.stress_finite_difference_error(model, crystal, tol=self.tol(dtype, "fd_stress"))

    def test_extensivity(self, model, structures, dtype):
        C.extensivity_error(model, structures["triclinic"], tol=self.tol(dtype, "rel"))

    def test_locality(self, model, dtype):
        molecule = contract_structures(self.elements)["molecule"]
        C.locality_error(model, molecule, molecule[:3], tol=self.tol(dtype, "rel"))

    def test_isolated_atoms(self, model):
        C.isolated_atom_error(model, tol=0.0)

    def test_batch_consistency(self, model, structures, dtype):
        C.batch_consistency_error(model, list(structures.values()), tol=self.tol(dtype, "rel") * 10)

    def test_no_gradient_leak(self, model, structures):
        C.gradient_leak_error(model, list(structures.values()), tol=0.0)

    def test_cutoff_continuity(self, model, dtype):
        C.cutoff_continuity_error(model, tol=1e-6 if dtype == "float64" else 1e-3)

    def test_save_load_roundtrip(self, model, structures, dtype, tmp_path_factory):
        from ..models.registry import load_model

        path = tmp_path_factory.mktemp("ckpt") / "model.pt"
        model.save(path)
        loaded = load_model(path)
        assert loaded.dtype == model.dtype
        a, b = (C.evaluate(m, structures["triclinic"]) for m in (model, loaded))
        # float32 BLAS kernels may round differently between two calls; float64 must be exact.
        assert C._rel(b[0]["energy"], a[0]["energy"]) <= (0 if dtype == "float64" else 1e-6)
        assert C._rel(b[0]["forces"], a[0]["forces"]) <= (0 if dtype == "float64" else 1e-5)
