"""Engines users already run, driven by mlip models: LAMMPS (:mod:`mlip.integrations.lammps`)
and torch-sim (:mod:`mlip.integrations.torchsim`).

Each integration imports its engine only when used, so ``import mlip`` never needs them.
"""
