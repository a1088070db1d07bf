"""The potential contract (DESIGN §3): graph -> per-atom energies; forces and stress by autograd.

A model implements :meth:`Potential.atomic_output`, the per-atom output before scaling, from
the graph and the edge vectors. The base class owns everything physical: edge vectors recomputed
from positions, cell and shifts (so autograd sees them), a symmetric strain for the stress,
E0 and scale, isolated atoms, and the checkpoint.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..data import keys as K
from ..nn.derivatives import energy_derivatives, strain_inputs

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def atomic_number(element) -> int:
    """An element given as a symbol ("Cu") or an atomic number (29, "29") as its number."""
    from ase.data import atomic_numbers

    if isinstance(element, str) and element.strip() in atomic_numbers:
        return atomic_numbers[element.strip()]
    try:
        z = int(element)
    except (TypeError, ValueError):
        raise ValueError(f"unknown element {element!r}: give a symbol or an atomic number") \
            from None
    if not 1 <= z <= 118:
        raise ValueError(f"unknown element {element!r}: atomic numbers are 1 to 118")
    return z


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


class Potential(nn.Module):
    """Base class of every mlip model.

    Energy = sum over atoms of (scale * atomic_output + E0[Z]). ``atomic_output`` minus its value
    for the same element with no neighbours is used, so an atom without neighbours gets exactly
    E0 and no force, and the energy stays continuous as the last neighbour leaves the cutoff.
    """

    #: whether forces are -dE/dr. A direct force head sets this False and is labelled everywhere.
    conservative: bool = True

    def __init__(
        self, cutoff: float, elements: list[int], dtype="float64",
        pair_repulsion: bool | float = False,
    ):
        super().__init__()
        if not elements:
            raise ValueError("a model needs at least one element")
        self.cutoff = float(cutoff)
        self.dtype_name = dtype if isinstance(dtype, str) else str(dtype).split(".")[-1]
        elements = sorted(set(atomic_number(z) for z in elements))
        self.register_buffer("elements", torch.tensor(elements, dtype=torch.long))
        # Z -> row of per-element tables; -1 for elements the model was not built for.
        index = torch.full((119,), -1, dtype=torch.long)
        index[self.elements] = torch.arange(len(elements))
        self.register_buffer("element_index", index, persistent=False)
        self.register_buffer("e0", torch.zeros(119, dtype=torch.float64))
        self.register_buffer("scale", torch.ones((), dtype=torch.float64))
        # Charge and spin conditioning (mlip.nn.charge_spin), set by a family built with
        # charge_spin=True; None: the model ignores them and says so once when given a charge.
        self.electronic = None
        # Optional ZBL wall, added in eV after scaling: it is physics, not a learned output.
        # pair_repulsion: false, true (the default switch-off) or the switch-off fraction.
        from ..nn.repulsion import ZBLRepulsion, repulsion_switch

        switch = repulsion_switch(pair_repulsion)
        self.repulsion = None if switch is None else ZBLRepulsion(switch)

    # ---- to be implemented by models ---------------------------------------------------
    def atomic_output(
        self, graph: dict[str, torch.Tensor], edge_vec: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Per-atom output ``(N,)`` before scale and E0; a direct-force model also returns
        forces ``(N, 3)``."""
        raise NotImplementedError

    # ---- the contract --------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return resolve_dtype(self.dtype_name)

    @property
    def uses_charge_spin(self) -> bool:
        """Whether the model reads total charge and spin multiplicity (OMol25-style data)."""
        return self.electronic is not None

    def _electronic_energy(self, graph, out, edge_vec):
        """The charge-state term of a conditioned model; a plain one warns once about a
        charged or high-spin structure, whose charge and spin it cannot see."""
        if self.electronic is not None:
            sender, receiver = graph[K.EDGE_INDEX]
            edges = (torch.linalg.norm(edge_vec, dim=-1), sender, receiver)
            return out + self.electronic.energy(graph, self.species(graph), out.dtype, edges)
        if not getattr(self, "_tracing", False):  # run.compile checks outside the trace
            self._warn_ignored_charge(graph)
        return out

    def _warn_ignored_charge(self, graph) -> None:
        """Once: a model without conditioning was given charged or high-spin structures."""
        if self.electronic is None and not getattr(self, "_warned_ignored_charge", False) and (
            K.CHARGE in graph or K.SPIN in graph
        ):
            from ..data.validate import lowest_multiplicity
            from ..nn.charge_spin import charge_and_spin, electron_counts

            charge, spin = charge_and_spin(graph)
            lowest = lowest_multiplicity(electron_counts(graph) - charge.round().long())
            if bool((charge != 0).any() | (spin != lowest).any()):
                self._warned_ignored_charge = True
                warnings.warn(
                    f"this {type(self).__name__} was built without charge/spin conditioning: it "
                    "ignores the total charge and multiplicity of charged or high-spin structures "
                    "(build it with charge_spin=True to use them)",
                    stacklevel=4,
                )

    def set_e0(self, e0: dict[int, float]) -> None:
        for z, value in e0.items():
            self.e0[int(z)] = float(value)

    def set_kernel_backend(self, backend: str) -> Potential:
        """Run every block that has a kernel (``mlip.kernels``) with ``backend``: "auto",
        "torch", "triton" or "compile". Weights and state_dict do not depend on it."""
        from ..kernels._dispatch import BACKENDS

        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        for module in self.modules():
            if isinstance(getattr(module, "backend", None), str):
                module.backend = backend
        return self

    def set_scale(self, scale: float) -> None:
        self.scale.fill_(float(scale))

    def species(self, graph) -> torch.Tensor:
        """Per-atom row into per-element tables."""
        return self.element_index[graph[K.ATOMIC_NUMBERS]]

    def edge_vectors(self, graph, positions, cell) -> torch.Tensor:
        sender, receiver = graph[K.EDGE_INDEX]
        shift = graph[K.EDGE_SHIFT].to(positions.dtype)
        image = torch.einsum("ek,ekl->el", shift, cell[graph[K.BATCH][receiver]])
        return positions[sender] - positions[receiver] + image

    def forward(
        self,
        graph: dict[str, torch.Tensor],
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energy ``(B,)``, node_energy ``(N,)``, forces ``(N,3)``, stress ``(B,3,3)``."""
        dtype = self.dtype
        pos_leaf = graph[K.POSITIONS].to(dtype)
        cell = graph[K.CELL].to(dtype)
        n_structures = cell.shape[0]
        batch = graph[K.BATCH]
        conservative_grads = self.conservative and (compute_forces or compute_stress)
        pos_leaf, positions, cell, strain = strain_inputs(
            pos_leaf, cell, batch, conservative_grads, compute_stress and self.conservative
        )
        edge_vec = self.edge_vectors(graph, positions, cell)
        out = self.atomic_output(graph, edge_vec)
        direct_forces = None
        if isinstance(out, tuple):
            out, direct_forces = out
        out = out - self._isolated_output(graph, out)
        # Atoms with no neighbours: exactly E0 (the subtraction above is exact only up to the
        # rounding of differently sized matmuls).
        receivers = graph[K.EDGE_INDEX][1]
        has_edge = torch.zeros_like(out, dtype=torch.bool).index_fill(0, receivers, True)
        out = torch.where(has_edge, out, torch.zeros_like(out))
        out = self._electronic_energy(graph, out, edge_vec)
        # Energies are accumulated in float64 whatever the model dtype: E0 dominates them.
        e0 = self.e0[graph[K.ATOMIC_NUMBERS]]
        node_energy = self.scale * out.to(torch.float64) + e0
        if self.repulsion is not None:
            length = torch.linalg.norm(edge_vec, dim=-1)
            node_energy = node_energy + self.repulsion(
                graph[K.ATOMIC_NUMBERS], graph[K.EDGE_INDEX], length
            ).to(torch.float64)
        energy = torch.zeros(n_structures, dtype=torch.float64, device=out.device).index_add(
            0, batch, node_energy
        )
        result = {K.ENERGY: energy, K.NODE_ENERGY: node_energy}
        if create_graph is None:
            create_graph = self.training
        if conservative_grads:
            grads = energy_derivatives(energy, pos_leaf, strain, graph[K.CELL].to(dtype),
                                       compute_forces, create_graph)
            result.update(grads)
        elif compute_forces:
            if direct_forces is None:
                raise RuntimeError(f"{type(self).__name__} is not conservative but gave no forces")
            result[K.FORCES] = direct_forces
        return result

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        # E0 and the scale stay float64 in a float32 model; a device move still applies.
        self.e0 = self.e0.to(torch.float64)
        self.scale = self.scale.to(torch.float64)
        return self

    def save(self, path, training: dict | None = None) -> None:
        """Write a checkpoint (DESIGN §3) atomically."""
        from .registry import save_model

        save_model(self, path, training)

    def _isolated_output(self, graph, out):
        """Per-atom output of each atom's element with no neighbours."""
        z = self.elements
        n = len(z)
        lonely = {
            K.POSITIONS: torch.zeros(n, 3, dtype=self.dtype, device=out.device),
            K.ATOMIC_NUMBERS: z,
            K.CELL: torch.zeros(n, 3, 3, dtype=self.dtype, device=out.device),
            K.PBC: torch.zeros(n, 3, dtype=torch.bool, device=out.device),
            K.EDGE_INDEX: torch.zeros(2, 0, dtype=torch.long, device=out.device),
            K.EDGE_SHIFT: torch.zeros(0, 3, dtype=self.dtype, device=out.device),
            K.BATCH: torch.arange(n, device=out.device),
            K.NUM_ATOMS: torch.ones(n, dtype=torch.long, device=out.device),
        }
        if self.electronic is not None:
            # The reference is each element's lone neutral atom in its default state.
            from ..data.validate import lowest_multiplicity

            lonely[K.CHARGE] = torch.zeros(n, dtype=torch.float64, device=out.device)
            lonely[K.SPIN] = lowest_multiplicity(z).to(torch.float64)
        ref = self.atomic_output(lonely, lonely[K.EDGE_SHIFT])
        if isinstance(ref, tuple):
            ref = ref[0]
        return ref[self.species(graph)]
