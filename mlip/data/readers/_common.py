"""What every reader shares: record checks, bad-record accounting, compressed files.

A reader is a generator of *records*: either a frame (DESIGN §2 keys, numpy arrays, ``name`` set
to ``"file:frame"``) or a :class:`BadRecord` it could not turn into one. :class:`FrameStream`
checks each frame, skips and counts bad ones, and stops with a :class:`DataError` once the bad
fraction passes ``max_bad_fraction``. A file the parser cannot continue through (truncated,
corrupt) is a :class:`DataError` straight away, never a parser traceback.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from .. import keys as K
from ..validate import StructureError, check_charge_spin

log = logging.getLogger("mlip.data")

MAX_BAD_FRACTION = 0.01
# Below this many records the fraction is only judged at the end of the file: one bad frame
# among the first ten says little about a file of a million.
MIN_RECORDS_FOR_EARLY_STOP = 1000


class DataError(ValueError):
    """A data file that cannot be read as asked. The message names the file (and frame)."""


class BadRecord(DataError):
    """One frame that cannot be used; readers yield it instead of raising so it is counted."""

    def __init__(self, name: str, message: str, key: str | None = None):
        self.name, self.key = name, key
        where = f"{name}: key '{key}'" if key else name
        super().__init__(f"{where}: {message}")


# key -> shape in a frame, "N" standing for the atom count; checked in the table's order
_SHAPES = {key: K.frame_shape(key, "N") for key in K.FRAME}
_FINITE = tuple(key for key in K.FRAME if K.FIELDS[key].dtype == "float")


def check_record(frame: dict, supported: Iterable[int] | None = None) -> None:
    """Raise :class:`BadRecord` naming the key for a missing, misshapen or non-finite field."""
    name = frame.get("name", "?")
    for key in K.REQUIRED:
        if frame.get(key) is None:
            raise BadRecord(name, "missing", key)
    n = np.shape(frame[K.POSITIONS])[0] if np.ndim(frame[K.POSITIONS]) else -1
    if n < 1:
        raise BadRecord(name, "no atoms", K.POSITIONS)
    for key, shape in _SHAPES.items():
        if key not in frame:
            continue
        want = tuple(n if s == "N" else s for s in shape)
        got = np.shape(frame[key])
        if got != want:
            what = f"shape {got}, expected {want}"
            if len(got) == len(want) and shape and shape[0] == "N":
                what += f" (atom count {got[0]} != {n})"
            raise BadRecord(name, what, key)
    for key in _FINITE:
        if key in frame and not np.isfinite(np.asarray(frame[key], dtype=np.float64)).all():
            raise BadRecord(name, "contains NaN or infinite values", key)
    z = np.asarray(frame[K.ATOMIC_NUMBERS])
    if (z < 1).any() or (z >= len(chemical_symbols)).any():
        raise BadRecord(name, f"unknown element(s) {sorted(set(z.tolist()))}", K.ATOMIC_NUMBERS)
    if supported is not None:
        unknown = sorted(set(z.tolist()) - {int(s) for s in supported})
        if unknown:
            symbols = [chemical_symbols[u] for u in unknown]
            raise BadRecord(name, f"element(s) {symbols} not supported", K.ATOMIC_NUMBERS)
    if K.STRESS in frame:
        # A stress is a derivative per volume: without a 3D periodic cell it means nothing, and
        # training would have to drop it silently.
        pbc = np.asarray(frame.get(K.PBC, False), dtype=bool).reshape(-1)
        volume = abs(np.linalg.det(np.asarray(frame.get(K.CELL, np.zeros((3, 3)))).reshape(3, 3)))
        if not pbc.all() or volume < 1e-6:
            raise BadRecord(name, f"a stress needs a 3D periodic cell (pbc {pbc.tolist()}, "
                            f"volume {volume:.3g} Å³)", K.STRESS)
    try:
        check_charge_spin(frame, name)
    except StructureError as err:
        raise BadRecord(name, str(err).split(": ", 1)[-1], "charge/spin") from None


class FrameStream:
    """Iterate a reader's records: yields good frames, skips and counts bad ones.

    After iteration ``n_good``, ``n_bad`` and ``bad`` (the first 100 messages) tell what
    happened. Iterating twice re-reads the file.
    """

    def __init__(
        self,
        path: str | Path,
        records: Callable[[], Iterator[dict | BadRecord]],
        max_bad_fraction: float = MAX_BAD_FRACTION,
        supported: Iterable[int] | None = None,
    ):
        self.path, self._records = str(path), records
        self.max_bad_fraction = float(max_bad_fraction)
        self.supported = None if supported is None else [int(s) for s in supported]
        self.n_good = self.n_bad = 0
        self.bad: list[str] = []

    def __iter__(self) -> Iterator[dict]:
        self.n_good = self.n_bad = 0
        self.bad = []
        for record in self._records():
            if not isinstance(record, BadRecord):
                try:
                    check_record(record, self.supported)
                except BadRecord as err:
                    record = err
            if isinstance(record, BadRecord):
                self._count_bad(record)
                continue
            self.n_good += 1
            yield record
        self._judge(final=True)

    def _count_bad(self, err: BadRecord) -> None:
        self.n_bad += 1
        if len(self.bad) < 100:
            self.bad.append(str(err))
        log.warning("skipping bad record %s", err)
        self._judge(final=False)

    def _judge(self, final: bool) -> None:
        total = self.n_good + self.n_bad
        if not total or (not final and total < MIN_RECORDS_FOR_EARLY_STOP):
            return
        if self.n_bad > math.floor(self.max_bad_fraction * total + 1e-9):
            shown = "\n  ".join(self.bad[:5])
            raise DataError(
                f"{self.path}: {self.n_bad} bad of {total} records read "
                f"({self.n_bad / total:.1%} > max_bad_fraction {self.max_bad_fraction:.1%})"
                f"{'' if final else ', stopped early'}; first ones:\n  {shown}"
            )


def open_text(path: str | Path):
    """Open a text file, decompressing .xz, .gz and .bz2 on the fly (streamed, never whole)."""
    path = str(path)
    if path.endswith(".xz"):
        return lzma.open(path, "rt")
    if path.endswith(".gz"):
        return gzip.open(path, "rt")
    if path.endswith(".bz2"):
        return bz2.open(path, "rt")
    return open(path)


def open_binary(path: str | Path):
    path = str(path)
    for ext, opener in ((".xz", lzma.open), (".gz", gzip.open), (".bz2", bz2.open)):
        if path.endswith(ext):
            return opener(path, "rb")
    return open(path, "rb")


DECOMPRESS_ERRORS = (lzma.LZMAError, gzip.BadGzipFile, EOFError, OSError, UnicodeDecodeError)
