"""The ``equivariance`` section of a training run: augmentation, TransIP, output regularizer.

:class:`SymmetryObjective` is what the trainer calls in each step. Its rotations come from its
own generator, seeded from ``run.seed`` and saved in ``last.pt`` (torch's global RNG is also
drawn by the data loader at each epoch start, so it would not give an exact resume).
TransIP's embedding transform phi is trained with the model (its parameters are in the
optimizer and its weights in ``last.pt``) but is not part of the saved potential: it is needed
only to compute the alignment loss.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.equivariance_training import (
    EmbeddingTransform,
    augment,
    equivariance_regularizer,
    transip_loss,
)
from .config import ConfigError, EquivarianceConfig


def embedding_dim(model) -> int:
    """Width of ``model.embed``'s output, found by the model's own declaration."""
    dim = getattr(model, "dim", None)
    if not isinstance(dim, int):
        raise ConfigError(f"{type(model).__name__} does not declare its embedding width (dim)")
    return dim


class SymmetryObjective(nn.Module):
    """Applies ``config`` to a training step; holds TransIP's phi when it is used."""

    def __init__(self, config: EquivarianceConfig, model, seed: int = 0):
        super().__init__()
        self.config = config
        self.generator = torch.Generator().manual_seed(int(seed) + 7919)
        self.transform = None
        if config.transip_weight > 0:
            if not callable(getattr(model, "embed", None)):
                raise ConfigError(
                    f"equivariance.transip_weight > 0 needs a model with a structure embedding "
                    f"(embed), such as the transformer; {type(model).__name__} has none")
            self.transform = EmbeddingTransform(
                embedding_dim(model), config.transip_hidden, config.transip_rotation,
                dtype=model.dtype)

    def prepare(self, graph: dict) -> dict:
        """The batch the losses are taken on: randomly rotated when ``augment`` is on."""
        if not self.config.augment:
            return graph
        rotated, _ = augment(graph, self.generator, reflect=self.config.reflect)
        return rotated

    def auxiliary(self, model, graph: dict, pred: dict) -> dict[str, torch.Tensor]:
        """Weighted auxiliary losses ``{name: tensor}`` for this batch (empty when none)."""
        c, out = self.config, {}
        if self.transform is not None:
            loss, _ = transip_loss(model, self.transform, graph, generator=self.generator,
                                   detach_target=c.transip_detach_target)
            out["transip"] = c.transip_weight * loss.to(torch.float64)
        if c.regularizer_weight > 0:
            loss, _ = equivariance_regularizer(
                model, graph, reference=pred, generator=self.generator,
                energy_weight=c.regularizer_energy_weight, reflect=c.reflect)
            out["regularizer"] = c.regularizer_weight * loss
        return out

    def rng_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor | None) -> None:
        if state is not None:
            self.generator.set_state(state)
