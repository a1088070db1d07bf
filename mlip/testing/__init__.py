"""The physics contract, importable by anyone who writes a model.

The checks are plain functions in :mod:`mlip.testing.contract`; :mod:`mlip.testing.mixin`
wraps them as a pytest class (it needs pytest).
"""

from .contract import (
    batch_consistency_error,
    cutoff_continuity_error,
    directional_finite_difference_error,
    directional_stress_finite_difference_error,
    evaluate,
    extensivity_error,
    finite_difference_error,
    gradient_leak_error,
    isolated_atom_error,
    locality_error,
    rotation_error,
    stress_finite_difference_error,
    translation_permutation_error,
)
from .equivariance import EquivarianceReport, equivariance_error
from .structures import contract_structures, random_rotation

__all__ = [
    "batch_consistency_error",
    "cutoff_continuity_error",
    "directional_finite_difference_error",
    "directional_stress_finite_difference_error",
    "evaluate",
    "extensivity_error",
    "finite_difference_error",
    "gradient_leak_error",
    "isolated_atom_error",
    "locality_error",
    "rotation_error",
    "stress_finite_difference_error",
    "translation_permutation_error",
    "EquivarianceReport",
    "equivariance_error",
    "contract_structures",
    "random_rotation",
]
