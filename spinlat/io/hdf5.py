"""HDF5 trajectories, format ``"spinlat-trajectory"`` version 1 (see DESIGN.md).

Layout
------
Root attributes: ``format``, ``version``, ``units`` (JSON), ``spinlat_version``, ``potential``,
``integrator``, ``seed`` (an integer, or the string ``"none"``), ``metadata`` (JSON).

Static datasets: ``numbers`` (N,), ``masses`` (N,) amu, ``pbc`` (3,) bool.

Per-frame datasets, resizable along axis 0, chunked and compressed: ``step`` (F,), ``time`` (F,)
fs, ``cell`` (F,3,3) Å, ``positions`` (F,N,3) Å, ``velocities`` (F,N,3) Å/fs, ``spins``
(F,N,3) unit vectors, ``moments`` (F,N) μB, ``potential_energy``, ``kinetic_energy``,
``total_energy`` (F,) eV, ``temperature`` (F,) K, ``magnetization`` (F,3) μB; optional
``forces`` (F,N,3) eV/Å and ``magnetic_forces`` (F,N,3) eV/μB.

Crash safety
------------
The writer keeps frames in memory and touches the file only in :meth:`TrajectoryWriter.flush`
(every ``flush_every`` frames): all per-frame datasets are resized together, written and the file
is flushed. Between flushes the file on disk is complete and consistent, so a run killed with
``kill -9`` leaves a file that opens and holds every frame flushed before the kill. The reader
takes the number of frames as the shortest per-frame dataset, so even a kill in the middle of a
flush leaves the earlier frames readable, and appending (``mode="a"``) trims such a file back to
its last complete frame before going on.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .. import units
from ..errors import FileFormatError, InputError, ShapeError
from ..state import State

FORMAT = "spinlat-trajectory"
VERSION = 1

#: per-frame datasets: name -> (shape of one frame given N, dtype)
_FRAME_FIELDS = {
    "step": (lambda n: (), np.int64),
    "time": (lambda n: (), np.float64),
    "cell": (lambda n: (3, 3), np.float64),
    "positions": (lambda n: (n, 3), np.float64),
    "velocities": (lambda n: (n, 3), np.float64),
    "spins": (lambda n: (n, 3), np.float64),
    "moments": (lambda n: (n,), np.float64),
    "potential_energy": (lambda n: (), np.float64),
    "kinetic_energy": (lambda n: (), np.float64),
    "total_energy": (lambda n: (), np.float64),
    "temperature": (lambda n: (), np.float64),
    "magnetization": (lambda n: (3,), np.float64),
}
_OPTIONAL_FIELDS = {
    "forces": (lambda n: (n, 3), np.float64),
    "magnetic_forces": (lambda n: (n, 3), np.float64),
}
_STATIC = ("numbers", "masses", "pbc")
_SMALL_CHUNK_ROWS = 1024  # frames per chunk of the small per-frame datasets


def _spinlat_version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def _frame_fields(group) -> list[str]:
    return [k for k in (*_FRAME_FIELDS, *_OPTIONAL_FIELDS) if k in group]


def _n_complete(f) -> int:
    """Number of frames present in every per-frame dataset."""
    lengths = [f[k].shape[0] for k in _frame_fields(f)]
    return min(lengths) if lengths else 0


def _check_format(f, path) -> None:
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT:
        raise FileFormatError(f"{path} is not a spinlat trajectory (format attribute {fmt!r}, expected {FORMAT!r})")
    version = int(f.attrs.get("version", -1))
    if version > VERSION:
        raise FileFormatError(f"{path} has trajectory format version {version}; this spinlat reads up to {VERSION}")
    missing = [k for k in ("numbers", "masses", *_FRAME_FIELDS) if k not in f]
    if missing:
        raise FileFormatError(f"{path} is a damaged spinlat trajectory: dataset(s) {missing} are missing")


def _open_h5(path, mode):
    """Open an HDF5 file; FileFormatError when it is not one."""
    import h5py

    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise
    except OSError as exc:
        msg = str(exc)
        if mode == "r" and "lock" in msg.lower():
            # another process (a running simulation) holds the file: read without locking
            try:
                return h5py.File(path, mode, locking=False)
            except OSError as exc2:
                msg = str(exc2)
        if not Path(path).exists():
            raise FileNotFoundError(f"trajectory file {path} does not exist") from None
        raise FileFormatError(f"{path} cannot be opened as an HDF5 trajectory: {msg}") from None


class TrajectoryWriter:
    """Write frames of a simulation to an HDF5 trajectory.

    Parameters
    ----------
    path : file to write.
    state : the first :class:`~spinlat.State` (fixes N, ``numbers``, ``masses``, ``pbc``); not written
        as a frame, call :meth:`write` for that.
    potential, integrator : descriptions stored as root attributes.
    seed : random seed of the run (int or None), stored as a root attribute.
    mode : ``"w"`` creates (overwrites) the file, ``"a"`` appends to an existing trajectory of the
        same atoms (created if missing).
    flush_every : frames kept in memory between flushes to disk (>= 1).
    store_forces : also store ``forces`` (eV/Å) and ``magnetic_forces`` (eV/μB) per frame.
    metadata : dict of extra JSON-serialisable metadata, stored as the ``metadata`` attribute.
    compression : ``"lzf"`` (default, with byte shuffle: fast; read by h5py and by other HDF5
        tools that have the lzf filter), ``"gzip"`` (level 1 with shuffle, readable by every HDF5
        tool, 2-3x slower to write for ~7% smaller files) or ``None``. Measured on 16 000 atoms of
        thermal bcc Fe with random spins: 19 ms/frame lzf, 51 ms gzip, 3 ms uncompressed.
    """

    def __init__(self, path, state, potential="", integrator="", seed=None, mode="w", flush_every=10,
                 store_forces=False, metadata=None, compression="lzf"):
        import h5py

        if mode not in ("w", "a"):
            raise InputError(f"trajectory mode must be 'w' or 'a', got {mode!r}")
        if int(flush_every) < 1:
            raise InputError(f"flush_every must be >= 1, got {flush_every}")
        if compression not in ("gzip", "lzf", None):
            raise InputError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        self.path = Path(path)
        self.flush_every = int(flush_every)
        self.n_atoms = len(state)
        self._numbers = np.asarray(state.numbers).copy()
        self._buffer: list[dict] = []
        self._file = None
        self._datasets = None
        self._store_forces = None
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"cannot write trajectory {self.path}: directory {parent} does not exist")
        if self.path.is_dir():
            raise InputError(f"cannot write trajectory {self.path}: it is a directory")

        if mode == "a" and self.path.exists():
            self._file = _open_h5(self.path, "a")
            try:
                self._open_existing(state, store_forces)
            except BaseException:
                self._file.close()
                self._file = None
                raise
        else:
            if not os.access(parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
                raise InputError(f"cannot write trajectory {self.path}: permission denied")
            try:
                self._file = h5py.File(self.path, "w")
            except OSError as exc:
                raise InputError(f"cannot write trajectory {self.path}: {exc}") from None
            self._create(state, potential, integrator, seed, store_forces, metadata, compression)
        self._n_flushed = _n_complete(self._file)

    # ------------------------------------------------------------------ file set-up
    def _create(self, state, potential, integrator, seed, store_forces, metadata, compression):
        f = self._file
        n = self.n_atoms
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["units"] = json.dumps(units.UNITS)
        f.attrs["spinlat_version"] = _spinlat_version()
        f.attrs["potential"] = str(potential)
        f.attrs["integrator"] = str(integrator)
        f.attrs["seed"] = "none" if seed is None else int(seed)
        try:
            f.attrs["metadata"] = json.dumps(metadata or {}, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise InputError(f"trajectory metadata must be JSON-serialisable: {exc}") from None
        f.create_dataset("numbers", data=np.asarray(state.numbers, dtype=np.int64))
        f.create_dataset("masses", data=np.asarray(state.masses, dtype=np.float64))
        f.create_dataset("pbc", data=np.asarray(state.pbc, dtype=bool))
        kw = {}
        if compression == "gzip":
            kw = dict(compression="gzip", compression_opts=1, shuffle=True)
        elif compression == "lzf":
            kw = dict(compression="lzf", shuffle=True)
        fields = dict(_FRAME_FIELDS)
        if store_forces:
            fields.update(_OPTIONAL_FIELDS)
        for name, (shape_of, dtype) in fields.items():
            shape = shape_of(n)
            if len(shape) and shape[0] == n:
                # per-atom data: one frame per compressed chunk, so that a flush only adds new
                # chunks and never rewrites (re-compresses) a chunk holding earlier frames
                f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                 chunks=(1, *shape), **kw)
            else:
                # small per-frame values: uncompressed chunks, overwritten in place (earlier
                # values keep their bytes even if a flush is interrupted)
                f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                 chunks=(_SMALL_CHUNK_ROWS, *shape))
        f.flush()

    def _open_existing(self, state, store_forces):
        f = self._file
        _check_format(f, self.path)
        numbers = f["numbers"][()]
        if len(numbers) != self.n_atoms:
            raise InputError(f"cannot append to {self.path}: it holds {len(numbers)} atoms, the state has {self.n_atoms}")
        if not np.array_equal(numbers, self._numbers):
            k = int(np.argmax(numbers != self._numbers))
            raise InputError(f"cannot append to {self.path}: atomic numbers differ (atom {k}: file {numbers[k]}, "
                             f"state {self._numbers[k]})")
        if store_forces and not all(k in f for k in _OPTIONAL_FIELDS):
            raise InputError(f"cannot append forces to {self.path}: it was written without store_forces")
        # a kill during a flush can leave datasets of different lengths: trim to the complete frames
        n = _n_complete(f)
        for k in _frame_fields(f):
            if f[k].shape[0] != n:
                f[k].resize(n, axis=0)
        f.flush()

    # ------------------------------------------------------------------ writing
    @property
    def store_forces(self) -> bool:
        """Whether frames hold ``forces`` and ``magnetic_forces``."""
        if self._store_forces is None:
            self._store_forces = self._file is not None and "forces" in self._file
        return self._store_forces

    def write(self, state, step, time, potential_energy=math.nan, kinetic_energy=None, temperature=None,
              forces=None, magnetic_forces=None, total_energy=None) -> None:
        """Append one frame.

        ``step`` (int), ``time`` (fs), ``potential_energy`` (eV); ``kinetic_energy`` (eV) and
        ``temperature`` (K) default to the state's lattice values; ``total_energy`` (eV) defaults
        to potential + kinetic. ``forces`` (N,3 eV/Å) and ``magnetic_forces`` (N,3 eV/μB) are
        stored only when the writer was made with ``store_forces=True`` (NaN rows when missing)."""
        if self._file is None:
            raise InputError(f"trajectory writer for {self.path} is closed")
        if len(state) != self.n_atoms:
            raise ShapeError(f"trajectory {self.path} holds {self.n_atoms} atoms; frame has {len(state)}")
        if not np.array_equal(state.numbers, self._numbers):
            raise InputError(f"trajectory {self.path}: atomic numbers of the frame differ from the file's")
        ke = state.kinetic_energy() if kinetic_energy is None else float(kinetic_energy)
        temp = state.temperature() if temperature is None else float(temperature)
        pe = float(potential_energy)
        frame = {
            "step": int(step),
            "time": float(time),
            "cell": np.array(state.cell, dtype=np.float64),
            "positions": np.array(state.positions, dtype=np.float64),
            "velocities": np.array(state.velocities, dtype=np.float64),
            "spins": np.array(state.spins, dtype=np.float64),
            "moments": np.array(state.moments, dtype=np.float64),
            "potential_energy": pe,
            "kinetic_energy": ke,
            "total_energy": pe + ke if total_energy is None else float(total_energy),
            "temperature": temp,
            "magnetization": state.magnetization(),
        }
        if self.store_forces:
            for name, val in (("forces", forces), ("magnetic_forces", magnetic_forces)):
                if val is None:
                    arr = np.full((self.n_atoms, 3), np.nan)
                else:
                    arr = np.array(val, dtype=np.float64)
                    if arr.shape != (self.n_atoms, 3):
                        raise ShapeError(f"{name} must have shape {(self.n_atoms, 3)}, got {arr.shape}")
                frame[name] = arr
        self._buffer.append(frame)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write the buffered frames and flush the file to disk."""
        if self._file is None or not self._buffer:
            if self._file is not None:
                self._file.flush()
            return
        f = self._file
        k = len(self._buffer)
        start = self._n_flushed
        names = list(self._buffer[0])
        if self._datasets is None:
            self._datasets = {name: f[name] for name in _frame_fields(f)}
        ds = self._datasets
        data = {name: np.stack([np.asarray(fr[name]) for fr in self._buffer]) for name in names}
        # all datasets grow together, then the new rows are written: a kill during this leaves
        # earlier frames intact (new chunks only) and the reader trims to the shortest dataset
        for name in names:
            ds[name].resize(start + k, axis=0)
        for name in names:
            ds[name].write_direct(data[name], dest_sel=np.s_[start:start + k])
        f.flush()
        self._n_flushed = start + k
        self._buffer.clear()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return self._n_flushed + len(self._buffer)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


class Trajectory:
    """Read a spinlat HDF5 trajectory.

    ``len(traj)`` frames; ``traj[i]`` is a :class:`~spinlat.State` (negative indices work; a
    slice gives a list); iterating gives States; ``traj[name]`` / ``traj.array(name)`` give a
    dataset as a NumPy array (units as in the module docstring); ``traj.atoms(i)`` gives
    ``ase.Atoms``; ``traj.attrs`` is the metadata dict.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"trajectory file {self.path} does not exist")
        self._file = _open_h5(self.path, "r")
        try:
            _check_format(self._file, self.path)
        except BaseException:
            self._file.close()
            raise
        self._n = _n_complete(self._file)
        self._static = {k: self._file[k][()] for k in _STATIC if k in self._file}
        if "pbc" not in self._static:
            self._static["pbc"] = np.ones(3, dtype=bool)

    # ------------------------------------------------------------------ metadata
    @property
    def attrs(self) -> dict:
        """Root attributes, with ``units`` and ``metadata`` decoded from JSON and ``seed`` None
        when the run had none."""
        out = {}
        for k, v in self._f.attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, np.generic):
                v = v.item()
            out[k] = v
        for k in ("units", "metadata"):
            if isinstance(out.get(k), str):
                try:
                    out[k] = json.loads(out[k])
                except json.JSONDecodeError:
                    pass
        if out.get("seed") == "none":
            out["seed"] = None
        return out

    @property
    def _f(self):
        if self._file is None:
            raise InputError(f"trajectory {self.path} is closed")
        return self._file

    @property
    def n_atoms(self) -> int:
        return len(self._static["numbers"])

    @property
    def names(self) -> list[str]:
        """Names of the datasets (static and per-frame)."""
        return list(self._f.keys())

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------ data access
    def array(self, name) -> np.ndarray:
        """Dataset ``name`` as an array; per-frame datasets cover the ``len(self)`` complete frames."""
        if name in self._static:
            return np.array(self._static[name])
        if name not in self._f:
            raise KeyError(f"trajectory {self.path} has no dataset {name!r}; it has {self.names}")
        ds = self._f[name]
        if name in _FRAME_FIELDS or name in _OPTIONAL_FIELDS:
            return ds[: self._n]
        return ds[()]

    def _index(self, i) -> int:
        i = int(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"frame {i} out of range: trajectory {self.path} holds {self._n} frames")
        return i

    def _frame(self, i) -> State:
        f = self._f
        i = self._index(i)
        return State._trusted(
            f["positions"][i], self._static["numbers"].astype(np.int64), f["cell"][i],
            np.array(self._static["pbc"], dtype=bool), f["spins"][i], f["moments"][i], f["velocities"][i],
            np.array(self._static["masses"], dtype=np.float64))

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.array(key)
        if isinstance(key, slice):
            return [self._frame(i) for i in range(*key.indices(self._n))]
        if isinstance(key, (int, np.integer)):
            return self._frame(key)
        raise TypeError(f"trajectory index must be an int, a slice or a dataset name, got {type(key).__name__}")

    def __iter__(self):
        for i in range(self._n):
            yield self._frame(i)

    def last(self) -> State:
        """The last complete frame as a State (for restarts)."""
        if self._n == 0:
            raise IndexError(f"trajectory {self.path} holds no frames")
        return self._frame(self._n - 1)

    def scalars(self, i) -> dict:
        """Scalar per-frame values of frame i: step, time (fs), energies (eV), temperature (K)."""
        i = self._index(i)
        out = {}
        for k in ("step", "time", "potential_energy", "kinetic_energy", "total_energy", "temperature"):
            v = self._f[k][i]
            out[k] = int(v) if k == "step" else float(v)
        return out

    def atoms(self, i):
        """Frame i as ``ase.Atoms``: non-collinear initial magmoms (N,3) μB, velocities, and a
        SinglePointCalculator with the potential energy (eV) and, if stored, forces (eV/Å);
        ``info`` holds step, time and temperature, ``arrays["magnetic_forces"]`` the magnetic forces."""
        from ase.calculators.singlepoint import SinglePointCalculator

        i = self._index(i)
        atoms = self._frame(i).to_ase()
        sc = self.scalars(i)
        atoms.info.update(step=sc["step"], time=sc["time"], temperature=sc["temperature"],
                          kinetic_energy=sc["kinetic_energy"], total_energy=sc["total_energy"])
        results = {}
        if math.isfinite(sc["potential_energy"]):
            results["energy"] = sc["potential_energy"]
            results["free_energy"] = sc["potential_energy"]
        if "forces" in self._f:
            fr = self._f["forces"][i]
            if np.all(np.isfinite(fr)):
                results["forces"] = fr
        if "magnetic_forces" in self._f:
            h = self._f["magnetic_forces"][i]
            if np.all(np.isfinite(h)):
                atoms.arrays["magnetic_forces"] = h
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"Trajectory({str(self.path)!r}, frames={self._n}, n_atoms={self.n_atoms})"
