"""Total charge and spin multiplicity as model inputs (OMol25), shared by both model families.

The structure's charge Q (in e) and multiplicity 2S+1 are spread over its atoms as in SpookyNet's
electronic embedding: each atom takes a share of Q and of the 2S unpaired electrons, by a softmax
over the structure's atoms of a learned logit, so the shares sum to Q and 2S exactly and a charge
spreads thinner over a larger system. With ``shares="element"`` the logit is one per element, so
the shares follow the composition only. With ``shares="environment"`` a smooth sum over the
atom's neighbours (a Bessel basis per element pair) is added to it, so the extra charge or spin
can move with the geometry, as in charge equilibration: an anion's extra electron sits on
different fragments at different geometries, which composition-only shares cannot follow
(measured on the xTB example in docs/benchmarks/charge-spin.md: no clear gain there). Each
atom's pair of shares then enters twice:

- as scalar node features added to the element embedding (channels of degree 0 only, so
  rotations cannot see them), gated by the atom's smooth coordination ``c / (1 + c)`` with
  ``c = sum_j u(r_ij)``: an atom without neighbours receives nothing, so its energy is E0;
- as an atomic energy term ``f(Z, shares)``, the charge-state energy that a lone ion keeps.

Both read the deviation from the structure's default state (neutral, the lowest multiplicity
that its electron count allows), and are zero without one: on a structure in that state a
conditioned model equals the same model without conditioning, exactly. So the isolated-atom,
extensivity and locality contracts hold unchanged for default states, a plain checkpoint's
weights fine-tune into a conditioned model without changing its neutral predictions, and
charge and spin act only as deviations.
docs/architecture.md ("Charge and spin") says what such an extensive model cannot represent.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..data import keys as K
from ..data.validate import lowest_multiplicity
from .radial import BesselBasis, PolynomialEnvelope

SHARES = ("element", "environment")


def electron_counts(graph: dict[str, torch.Tensor]) -> torch.Tensor:
    """Electrons of each neutral structure ``(B,)``: the sum of its atomic numbers."""
    n = graph[K.NUM_ATOMS].shape[0]
    z = graph[K.ATOMIC_NUMBERS]
    return torch.zeros(n, dtype=torch.long, device=z.device).index_add(0, graph[K.BATCH], z)


def charge_and_spin(graph: dict[str, torch.Tensor], warn_owner=None):
    """``(charge, multiplicity)`` per structure in float64, missing values by the policy of
    DESIGN §3: charge 0, then the lowest multiplicity that the electron count allows.

    ``warn_owner`` (a module) is told once, through a warning, that defaults were used.
    """
    electrons = electron_counts(graph)
    device = electrons.device
    charge = graph.get(K.CHARGE)
    spin = graph.get(K.SPIN)
    if (charge is None or spin is None) and warn_owner is not None and not getattr(
        warn_owner, "_warned_default_state", False
    ):
        warn_owner._warned_default_state = True
        missing = " and ".join(k for k, v in ((K.CHARGE, charge), (K.SPIN, spin)) if v is None)
        warnings.warn(
            f"this model reads charge and spin, but the structure gives no {missing}: using "
            "charge 0 and the lowest multiplicity its electron count allows (1 or 2); set "
            'atoms.info["charge"] and atoms.info["spin"] (or --charge/--spin) to choose',
            stacklevel=3,
        )
    if charge is None:
        charge = torch.zeros(electrons.shape, dtype=torch.float64, device=device)
    charge = charge.to(torch.float64)
    if spin is None:
        spin = lowest_multiplicity(electrons - charge.round().long()).to(torch.float64)
    return charge, spin.to(torch.float64)


def build_electronic(charge_spin, num_species: int, channels: int, cutoff: float):
    """A family's ``charge_spin`` hyperparameter -> its :class:`ElectronicEmbedding` or None:
    ``False`` (no conditioning), ``True`` or ``"element"`` (element shares, the checkpoints
    before environment shares), or ``"environment"``."""
    if charge_spin is False or charge_spin is None:
        return None
    shares = "element" if charge_spin is True else charge_spin
    return ElectronicEmbedding(num_species, channels, cutoff, shares=shares)


class ElectronicEmbedding(nn.Module):
    """Charge and spin shares per atom -> node features ``(N, channels)`` and energies ``(N,)``.

    With ``shares="element"`` the shares depend on the composition only, so they carry no
    force; the features' coordination gate does, and is conservative like any other input.
    With ``shares="environment"`` they depend on the neighbours too and carry forces as well.
    """

    def __init__(self, num_species: int, channels: int, cutoff: float, hidden: int = 32,
                 shares: str = "element", num_basis: int = 8):
        super().__init__()
        if shares not in SHARES:
            raise ValueError(f"charge and spin shares must be one of {SHARES}, got {shares!r}")
        self.num_species = num_species
        # Two logits per element: its share of the charge, and of the unpaired electrons.
        self.logits = nn.Embedding(num_species, 2)
        nn.init.zeros_(self.logits.weight)  # equal shares to begin with
        self.pair_logits = self.basis = None
        if shares == "environment":
            # Per (receiver, sender) element pair, Bessel weights for both logits; zero to begin
            # with, so training starts from the element shares.
            self.basis = BesselBasis(cutoff, num_basis)
            self.pair_logits = nn.Embedding(num_species * num_species, 2 * num_basis)
            nn.init.zeros_(self.pair_logits.weight)
        self.features = nn.Sequential(
            nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, channels)
        )
        self.species_energy = nn.Embedding(num_species, hidden)
        self.energy_net = nn.Sequential(
            nn.Linear(hidden + 2, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )
        self.envelope = PolynomialEnvelope(cutoff)

    def shares(self, graph, species, dtype, edges=None):
        """Per-atom (charge, unpaired electrons) ``(N, 2)`` of the structure's state, less those
        of its default state: each column sums over a structure's atoms to that structure's
        (charge, unpaired electrons beyond the neutral lowest multiplicity).

        ``edges``: ``(r, sender, receiver)``, which environment shares need."""
        charge, spin = charge_and_spin(graph, warn_owner=self)
        batch = graph[K.BATCH]
        n_structures = charge.shape[0]
        logits = self.logits(species).to(dtype)
        if self.pair_logits is not None:
            if edges is None:
                raise ValueError("environment charge shares need the edges (r, sender, receiver)")
            r, sender, receiver = edges
            w = self.pair_logits(species[receiver] * self.num_species + species[sender])
            w = w.to(dtype).view(-1, 2, self.basis.num_basis)
            per_edge = (w * self.basis(r.to(dtype))[:, None, :]).sum(-1)
            logits = logits.index_add(0, receiver, per_edge)
        index = batch[:, None].expand(-1, 2)
        top = torch.full((n_structures, 2), float("-inf"), dtype=dtype, device=logits.device)
        top = top.scatter_reduce(0, index, logits.detach(), "amax")
        weight = (logits - top[batch]).exp()
        total = torch.zeros_like(top).index_add(0, batch, weight)
        share = weight / total[batch]
        unpaired = spin - lowest_multiplicity(electron_counts(graph)).to(spin.dtype)
        return share * torch.stack([charge, unpaired], -1).to(dtype)[batch]

    def node_features(self, graph, species, r, sender, receiver, dtype):
        x = self.shares(graph, species, dtype, (r, sender, receiver))
        coordination = r.new_zeros(species.shape[0]).index_add(0, receiver, self.envelope(r))
        gate = coordination / (1 + coordination)
        return gate[:, None] * (self.features(x) - self.features(torch.zeros_like(x)))

    def energy(self, graph, species, dtype, edges=None):
        x = self.shares(graph, species, dtype, edges)
        emb = self.species_energy(species).to(dtype)
        delta = self.energy_net(torch.cat([emb, x], -1)) - self.energy_net(
            torch.cat([emb, torch.zeros_like(x)], -1)
        )
        return delta.squeeze(-1)
