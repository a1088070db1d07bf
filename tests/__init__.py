# A regular package, so `tests.helpers` is this folder: mace-torch installs a top-level `tests`
# package into site-packages, which would win over a namespace package of the same name.
