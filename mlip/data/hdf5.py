"""HDF5 cache: convert any reader's output once, then read any frame at random, many times.

Layout (``format = "mlip-frames"``, ``format_version = 1``):

- per-atom arrays concatenated over frames: ``positions (A,3)``, ``atomic_numbers (A,)``,
  ``forces (A,3)``, ``tags (A,)``, ``fixed (A,)``; frame ``i`` owns rows
  ``offsets[i]:offsets[i+1]``;
- per-frame arrays: ``cell (F,3,3)``, ``pbc (F,3)``, ``energy``, ``stress (F,3,3)``,
  ``charge``, ``spin``, ``name``;
- ``has/<key> (F,)``: whether frame ``i`` had an optional key (files may mix, e.g. isolated atoms
  with energies only beside frames with forces), so a frame comes back with exactly its own keys;
- attributes: ``provenance`` (JSON: sources, reader, options, bad-record counts, versions) and
  ``complete``, written last.

Everything is float64 and losslessly compressed (gzip + shuffle), so a frame read back equals the
reader's output bit for bit. Conversion writes ``<output>.partial`` beside the output and moves it
into place with ``os.replace`` only when complete: an interrupted run leaves no file that looks
valid, and the next run starts that partial file again from scratch.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from pathlib import Path

import h5py
import numpy as np

from . import keys as K
from .readers import MAX_BAD_FRACTION, DataError, FrameStream, read_frames

log = logging.getLogger("mlip.data")

FORMAT, FORMAT_VERSION = "mlip-frames", 1


def _table(level: str) -> dict:
    """key -> (trailing shape, dtype, fill for frames without it), from the frame fields of
    :mod:`.keys`. These are the file format: changing a frame field there needs a new
    FORMAT_VERSION (tests/data/test_keys.py pins the layout)."""
    fields = (K.FIELDS[key] for key in K.FRAME)
    return {f.name: (f.shape, f.numpy_dtype, f.fill) for f in fields if f.level == level}


PER_ATOM = _table("atom")
PER_FRAME = _table("structure")
OPTIONAL = [k for k, (_, _, fill) in {**PER_ATOM, **PER_FRAME}.items() if fill is not None]
_ATOM_CHUNK, _FRAME_CHUNK = 16384, 2048
_STR = h5py.string_dtype("utf-8")


def _versions() -> dict:
    import ase

    from .. import __version__

    return {
        "mlip": __version__,
        "ase": ase.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": np.__version__,
    }


class _Writer:
    """Appends frames to resizable datasets, a block at a time."""

    def __init__(self, f: h5py.File, block: int = 1024, compression="gzip"):
        self.f, self.block, self.buffer = f, block, []
        self.n_frames = self.n_atoms = 0
        kw = {"compression": compression, "shuffle": compression is not None}
        for key, (shape, dtype, _) in PER_ATOM.items():
            f.create_dataset(
                key, (0, *shape), dtype, maxshape=(None, *shape), chunks=(_ATOM_CHUNK, *shape), **kw
            )
        for key, (shape, dtype, _) in PER_FRAME.items():
            f.create_dataset(
                key,
                (0, *shape),
                dtype,
                maxshape=(None, *shape),
                chunks=(_FRAME_CHUNK, *shape),
                **kw,
            )
        for key in OPTIONAL:
            f.create_dataset(f"has/{key}", (0,), bool, maxshape=(None,), chunks=(_FRAME_CHUNK,))
        f.create_dataset("offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
        f.create_dataset("name", (0,), _STR, maxshape=(None,), chunks=(_FRAME_CHUNK,), **kw)

    def add(self, frame: dict) -> None:
        self.buffer.append(frame)
        if len(self.buffer) >= self.block:
            self.flush()

    def _append(self, name: str, values: np.ndarray) -> None:
        ds = self.f[name]
        start = ds.shape[0]
        ds.resize(start + len(values), axis=0)
        ds[start:] = values

    def flush(self) -> None:
        frames, self.buffer = self.buffer, []
        if not frames:
            return
        counts = np.array([len(fr[K.POSITIONS]) for fr in frames], dtype=np.int64)
        for key, (shape, dtype, fill) in PER_ATOM.items():
            parts = [
                np.asarray(fr[key], dtype).reshape(-1, *shape)
                if key in fr
                else np.full((n, *shape), fill, dtype)
                for fr, n in zip(frames, counts)
            ]
            self._append(key, np.concatenate(parts))
        for key, (shape, dtype, fill) in PER_FRAME.items():
            rows = [
                np.asarray(fr[key], dtype).reshape(shape)
                if key in fr
                else np.full(shape, fill, dtype)
                for fr in frames
            ]
            self._append(key, np.stack(rows))
        for key in OPTIONAL:
            self._append(f"has/{key}", np.array([key in fr for fr in frames]))
        self._append("offsets", self.n_atoms + np.cumsum(counts))
        self._append("name", np.array([fr.get("name", "") for fr in frames], dtype=object))
        self.n_frames += len(frames)
        self.n_atoms += int(counts.sum())


def convert(
    inputs: list[str] | str,
    output: str,
    format: str | None = None,
    overwrite: bool = False,
    compression: str | None = "gzip",
    **reader_options,
) -> dict:
    """Read every input with :func:`~mlip.data.readers.read_frames` into one HDF5 file.

    Returns the summary stored as provenance (frames, atoms, bad records per source). Raises
    :class:`DataError` when a reader gives up; then no output file is left behind.
    """
    inputs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    output = str(output)
    if not inputs:
        raise ValueError("convert needs at least one input file")
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True (--overwrite) to replace it")
    for path in inputs:
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file")
    partial = output + ".partial"
    Path(partial).unlink(missing_ok=True)  # a previous run died: start it again cleanly
    sources = []
    try:
        with h5py.File(partial, "w") as f:
            writer = _Writer(f, compression=compression)
            for path in inputs:
                stream = read_frames(path, format=format, **reader_options)
                first = writer.n_frames + len(writer.buffer)
                for frame in stream:
                    writer.add(frame)
                writer.flush()
                stat = os.stat(path)
                sources.append(
                    {
                        "path": os.path.abspath(path),
                        "size": stat.st_size,
                        "mtime": stat.st_mtime,
                        "first_frame": first,
                        "frames": stream.n_good,
                        "bad": stream.n_bad,
                        "bad_examples": stream.bad[:10],
                    }
                )
                log.info("%s: %d frames, %d bad records skipped", path, stream.n_good, stream.n_bad)
            summary = {
                "format": format,
                "reader_options": {k: repr(v) for k, v in reader_options.items()},
                "sources": sources,
                "n_frames": writer.n_frames,
                "n_atoms": writer.n_atoms,
                "versions": _versions(),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
            f.attrs["format"], f.attrs["format_version"] = FORMAT, FORMAT_VERSION
            f.attrs["provenance"] = json.dumps(summary)
            f.flush()
            f.attrs["complete"] = True  # last: only a finished file carries it
        os.replace(partial, output)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return summary


class HDF5Dataset:
    """Random access to the frames of a converted file: ``len(ds)``, ``ds[i] -> frame``.

    The HDF5 handle opens lazily in each process (h5py handles do not survive ``fork``), so the
    object can go to DataLoader workers.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            f = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise DataError(f"{self.path}: no such file") from None
        except OSError as err:  # h5py's message for a text file or a truncated one
            raise DataError(f"{self.path}: not an HDF5 file ({err})") from None
        with f:
            if not f.attrs.get("complete", False) or f.attrs.get("format") != FORMAT:
                raise DataError(f"{self.path}: not a complete {FORMAT} file (interrupted convert?)")
            if int(f.attrs["format_version"]) > FORMAT_VERSION:
                raise DataError(f"{self.path}: format version {f.attrs['format_version']} is newer")
            self.offsets = f["offsets"][:]
            self.has = {key: f[f"has/{key}"][:] for key in OPTIONAL}
            self.provenance = json.loads(f.attrs["provenance"])
        self.num_atoms = np.diff(self.offsets)
        self._file = self._pid = self._datasets = None

    def __len__(self) -> int:
        return len(self.num_atoms)

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r", rdcc_nbytes=32 << 20), os.getpid()
            # Looking datasets up by name costs more than reading a small frame: keep handles.
            self._datasets = {k: self._file[k] for k in (*PER_ATOM, *PER_FRAME, "name")}
        return self._file

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_pid": None, "_datasets": None}

    def __getitem__(self, i: int) -> dict:
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range for {n} frames in {self.path}")
        i %= n
        self._h5()
        f = self._datasets
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        frame = {}
        for key in PER_ATOM:
            if key in self.has and not self.has[key][i]:
                continue
            frame[key] = f[key][a:b]
        for key in PER_FRAME:
            if key in self.has and not self.has[key][i]:
                continue
            frame[key] = f[key][i]
        frame["name"] = f["name"][i].decode()
        return frame

    def names(self) -> list[str]:
        return [s.decode() for s in self._h5()["name"][:]]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_hdf5(path: str | Path, max_bad_fraction: float = MAX_BAD_FRACTION, supported=None):
    """The frames of a converted file as a :class:`FrameStream`, like every other reader's
    (``read_frames(path)`` for ``.h5``/``.hdf5``); :class:`HDF5Dataset` gives random access."""

    def records():
        ds = HDF5Dataset(path)
        try:
            for i in range(len(ds)):
                frame = ds[i]
                frame["name"] = frame.get("name") or f"{path}:{i}"
                yield frame
        finally:
            ds.close()

    return FrameStream(path, records, max_bad_fraction, supported)
