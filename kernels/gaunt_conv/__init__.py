"""Gaunt-grid convolution: gather, filter on the S2 grid, product, scatter."""

from .reference import edge_filter, gaunt_grid_conv, legendre

__all__ = ["edge_filter", "gaunt_grid_conv", "legendre"]
