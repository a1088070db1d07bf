"""The ASE calculator: atoms -> graph -> model -> results, nothing more."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from .inference import ase_results, run_batch, structure_graph
from .models.base import Potential, resolve_dtype

# atoms.info keys that atoms_to_frame reads as the charge and the spin multiplicity
_STATE_KEYS = ("charge", "spin", "multiplicity", "spin_multiplicity")


def _load(model, device, dtype) -> Potential:
    if isinstance(model, Potential):
        if dtype is not None and resolve_dtype(dtype) != model.dtype:
            raise ValueError(
                f"the model runs in {model.dtype}; pass dtype=None or load it with that dtype"
            )
        return model.to(device).eval()
    from .models.registry import load_model

    return load_model(model, device=device, dtype=dtype)


class MLIPCalculator(Calculator):
    """ASE calculator for any mlip model.

    ``model`` is a checkpoint path or a :class:`Potential`. Provides energy, free_energy,
    forces, stress (Voigt, ASE sign; periodic structures only), energies (per atom) and, for
    direct-force models, labels the forces as non-conservative and warns once.

    One model call per structure: whatever ASE asks for first, the call computes energy,
    per-atom energies and forces, and for a structure periodic in all three directions the
    stress as well, so a later ``get_forces`` or ``get_stress`` on unchanged atoms reads the
    stored results instead of running the model again (the stress costs one more gradient in
    the same backward pass, far less than a second call). The model runs in eval mode, so
    autograd builds no graph for a second derivative.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model, device: str | None = None, dtype=None, neighbors="vesin", **kwargs):
        super().__init__(**kwargs)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = _load(model, self.device, dtype)
        self.neighbors = neighbors
        self.supported = self.model.elements.tolist()
        self.conservative = bool(self.model.conservative)
        if not self.conservative:
            warnings.warn(
                "this model predicts forces directly (non-conservative): energy is not conserved "
                "in MD and relaxations may not converge to a minimum",
                stacklevel=2,
            )

    def check_state(self, atoms, tol=1e-15):
        # ASE compares positions, numbers, cell and pbc; the charge and spin in atoms.info
        # are inputs too, and a changed one must not return the previous state's results.
        changes = super().check_state(atoms, tol)
        if self.atoms is not None and any(
            self.atoms.info.get(k) != atoms.info.get(k) for k in _STATE_KEYS
        ):
            changes.append("info")
        return changes

    def _graph(self, atoms):
        return structure_graph(atoms, self.model, self.neighbors, supported=self.supported)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        # Everything at once (see the class docstring): asking for the stress later must not
        # run the model a second time.
        periodic = bool(self.atoms.pbc.all())
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError(
                f"stress of {self.atoms.get_chemical_formula()}: a stress needs a cell periodic "
                f"in all three directions (pbc is {self.atoms.pbc.tolist()}); a slab or a "
                "molecule has none"
            )
        (result,) = run_batch(self.model, [self._graph(self.atoms)], device=self.device)
        self.results = ase_results(result)


def predict_batched(
    model,
    structures: Iterable,
    batch_size: int = 16,
    device: str | None = None,
    compute_stress: bool = True,
    neighbors: str = "vesin",
) -> list[dict]:
    """Energy, forces, per-atom energies and (periodic only) stress for many ASE structures,
    ``batch_size`` structures per model call (results under ASE's names, as the calculator's)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = _load(model, device, None)
    supported = model.elements.tolist()
    structures = list(structures)
    results: list[dict] = []
    for start in range(0, len(structures), batch_size):
        chunk = structures[start : start + batch_size]
        graphs = [
            structure_graph(atoms, model, neighbors, name=f"#{start + i}", supported=supported)
            for i, atoms in enumerate(chunk)
        ]
        stress = "periodic" if compute_stress else False
        results += [ase_results(r) for r in run_batch(model, graphs, stress, device)]
    return results
