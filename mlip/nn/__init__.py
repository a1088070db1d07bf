"""Reusable equivariant layers in the spherical-channel layout ``(N, (L+1)^2, C)``."""

from .interaction import Layer, RadialNet, make_interaction, message_gain
from .mixing import EquivariantLinear, Gate, GridMixing, default_grid_resolution, per_degree
from .product import CGPathProduct, SymmetricGridProduct
from .spherical import (
    FromGrid,
    S2Grid,
    ToGrid,
    degree_index,
    from_grid,
    spherical_harmonics,
    to_grid,
    wigner_D,
)
from .tensor_product import (
    CGTensorProduct,
    GauntFourierProduct,
    GauntGridProduct,
    gaunt_coefficients,
)

__all__ = [
    "CGPathProduct",
    "CGTensorProduct",
    "EquivariantLinear",
    "FromGrid",
    "GauntFourierProduct",
    "GauntGridProduct",
    "Gate",
    "GridMixing",
    "Layer",
    "RadialNet",
    "S2Grid",
    "SymmetricGridProduct",
    "ToGrid",
    "default_grid_resolution",
    "degree_index",
    "from_grid",
    "gaunt_coefficients",
    "make_interaction",
    "message_gain",
    "per_degree",
    "spherical_harmonics",
    "to_grid",
    "wigner_D",
]
