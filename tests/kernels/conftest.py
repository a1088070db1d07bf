"""Without a GPU the Triton path runs under ``TRITON_INTERPRET=1``, which must be set before
the kernels are first built: here, before any module of this folder imports mlip.kernels."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
