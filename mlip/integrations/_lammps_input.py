"""Read a LAMMPS input script that uses ``pair_style mlip`` and rewrite it for ``fix external``.

The script is split at its ``pair_coeff`` command: LAMMPS runs the first part (which defines
the box), mlip then attaches its fix and callback, and LAMMPS runs the rest. Only the input
file itself is scanned, not the files it includes; LAMMPS resolves every path relative to the
working directory, as with ``lmp -in``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class LammpsInputError(ValueError):
    """An input script mlip cannot run. The message names the file and line."""


@dataclass(frozen=True)
class Command:
    """One logical command: ``&`` continuations joined, the comment removed."""

    first: int  # 0-based index of its first physical line
    last: int  # and of its last (inclusive)
    words: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class MlipInput:
    """The input split where mlip attaches itself, and the elements ``pair_coeff`` names."""

    path: str
    before: str  # up to the pair_style command's replacement, ending with the pair_coeff line
    after: str  # everything after pair_coeff
    elements: tuple[str, ...]  # as written; may hold $-variables that LAMMPS expands
    pair_coeff_line: int  # 1-based, for messages


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def commands(lines: list[str]) -> list[Command]:
    """Logical commands of a script, with the physical lines they span."""
    out, parts, first = [], [], None
    for i, raw in enumerate(lines):
        text = _strip_comment(raw.rstrip("\n")).rstrip()
        if first is None:
            first = i
        if text.endswith("&"):
            parts.append(text[:-1])
            continue
        parts.append(text)
        joined = " ".join(p.strip() for p in parts).strip()
        if joined:
            out.append(Command(first, i, tuple(joined.split()), joined))
        parts, first = [], None
    if parts and " ".join(parts).strip():
        joined = " ".join(p.strip() for p in parts).strip()
        out.append(Command(first, len(lines) - 1, tuple(joined.split()), joined))
    return out


def parse_input(path, cutoff: float) -> MlipInput:
    """Find ``pair_style mlip`` and ``pair_coeff * * EL...`` in ``path`` and split the script.

    ``pair_style mlip`` becomes ``pair_style zero CUTOFF`` (LAMMPS keeps its neighbour and
    communication settings and thermo output working), ``pair_coeff * * EL...`` becomes
    ``pair_coeff * *``. Refuses scripts that set another unit style or pair style.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines(keepends=True)
    except OSError as err:
        raise LammpsInputError(f"cannot read LAMMPS input {path}: {err.strerror}") from err
    where = str(path)
    style = coeff = None
    for cmd in commands(lines):
        name, args = cmd.words[0], cmd.words[1:]
        at = f"{where} line {cmd.first + 1}"
        if name == "units" and args and args[0] != "metal" and "$" not in args[0]:
            raise LammpsInputError(
                f"{at}: units {args[0]}: pair_style mlip needs units metal (eV, Å, ps)"
            )
        if name == "pair_style":
            if not args or args[0] != "mlip":
                raise LammpsInputError(
                    f"{at}: pair_style {' '.join(args)}: with pair_style mlip the input may set "
                    "no other pair style (hybrid styles are not supported)"
                )
            if style is not None:
                raise LammpsInputError(f"{at}: a second pair_style mlip command")
            if len(args) > 1:
                raise LammpsInputError(
                    f"{at}: pair_style mlip takes no arguments; the model is given to mlip "
                    "(mlip lammps MODEL INPUT)"
                )
            style = cmd
        elif name == "pair_coeff":
            if style is None:
                raise LammpsInputError(f"{at}: pair_coeff comes before pair_style mlip")
            if coeff is not None:
                raise LammpsInputError(
                    f"{at}: a second pair_coeff command; pair_style mlip takes one, "
                    "pair_coeff * * followed by one element per atom type"
                )
            if args[:2] != ("*", "*"):
                raise LammpsInputError(
                    f"{at}: pair_coeff {' '.join(args)}: pair_style mlip needs "
                    "pair_coeff * * followed by one element per atom type"
                )
            if len(args) == 2:
                raise LammpsInputError(
                    f"{at}: pair_coeff * * names no elements; give one per atom type, "
                    "e.g. pair_coeff * * Cu O"
                )
            coeff = cmd
    if style is None:
        raise LammpsInputError(
            f"{where}: no pair_style mlip command (it must be in this file itself, not in a "
            "file it includes)"
        )
    if coeff is None:
        raise LammpsInputError(f"{where}: pair_style mlip but no pair_coeff * * EL... command")
    new = list(lines)
    new[style.first] = f"pair_style zero {float(cutoff)!r}\n"
    new[style.first + 1 : style.last + 1] = ["\n"] * (style.last - style.first)
    before = "".join(new[: coeff.first]) + "pair_coeff * *\n"
    return MlipInput(
        path=where,
        before=before,
        after="".join(new[coeff.last + 1 :]),
        elements=coeff.words[3:],
        pair_coeff_line=coeff.first + 1,
    )
