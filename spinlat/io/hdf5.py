"""HDF5 trajectories, format ``"spinlat-trajectory"`` version 1 (see DESIGN.md).

Layout
------
Root attributes: ``format``, ``version``, ``units`` (JSON), ``spinlat_version``, ``potential``,
``integrator``, ``seed`` (an integer, or the string ``"none"``), ``metadata`` (JSON), and
``checkpoint`` (JSON, see below). These describe the run that created the file; a file continued
(``mode="a"``, a restart) with another potential, integrator, seed or metadata also has ``runs``
(JSON): a list of ``{"first_frame", "first_step", "potential", "integrator", "seed",
"metadata"}``, one per later run, first frames ascending (:attr:`Trajectory.runs`; files without
it hold one run).

Static datasets: ``numbers`` (N,), ``masses`` (N,) amu, ``pbc`` (3,) bool.

Per-frame datasets, resizable along axis 0, chunked and compressed: ``step`` (F,), ``time`` (F,)
fs (sweeps for Monte Carlo: the ``metadata`` attribute then says ``"time_unit": "sweep"``),
``cell`` (F,3,3) Å, ``positions`` (F,N,3) Å, ``velocities`` (F,N,3) Å/fs, ``spins`` (F,N,3) unit
vectors, ``moments`` (F,N) μB, ``potential_energy``, ``kinetic_energy``, ``total_energy`` (F,)
eV, ``temperature`` (F,) K (lattice), ``magnetization`` (F,3) μB: the total moment
M = Σ_i m_i = Σ_i moments_i spins_i of the frame (:func:`spinlat.observables.total_moment`, as
:meth:`spinlat.State.magnetization`; not normalised); optional ``forces`` (F,N,3) eV/Å and
``magnetic_forces`` (F,N,3) eV/μB. Rows never written read as the fill values NaN (floats) and
−1 (``step``).

Compression
-----------
Every per-frame dataset is compressed, with byte shuffle, by the filter ``compression`` of the
writer names (:data:`COMPRESSIONS`): ``"gzip"`` (the default, deflate at level
:data:`GZIP_LEVEL`; deflate is built into every HDF5 library, so h5dump, h5ls, HDFView, MATLAB,
Julia, h5netcdf ... read the file), an integer 0-9 (gzip at that level, as h5py reads an integer),
``"lzf"`` (about 2x faster to write, but only h5py and programs that load its LZF plugin read it;
``h5dump`` cannot) or None (uncompressed, the fastest and largest). The reader reads all of them
(and files of earlier versions, whose small per-frame datasets were uncompressed). Measured on
16 000 atoms of thermal bcc Fe with random spins (``benchmarks/bench_hdf5_compression.py``):
see :data:`GZIP_LEVEL`.

Per-atom datasets hold one frame per chunk, so that a flush only adds chunks. The small per-frame
datasets hold :func:`_small_chunk_rows` frames per chunk (a multiple of ``flush_every``): a flush
rewrites the chunk it completes. So that a rewritten chunk can never land on the bytes of a
chunk the committed frames still use (HDF5 reuses freed file space within a session, and a kill
between writing the chunk and writing the index would then leave the old index pointing at new
data), files are created with HDF5's ``"aggregate"`` file-space strategy: freed space is never
reused (superblock version 2, read by HDF5 ≥ 1.8). The cost is the superseded copies of small
chunks, under 3 % of the file for a few hundred atoms and nothing for large systems.

``checkpoint`` (added to version 1; files without it read as before) is a JSON object padded
with spaces to a fixed size, rewritten in place: ``n_frames``, the number of complete frames,
``step`` of the last of them, and ``integrator_state``, what the integrator needs to continue
from that frame exactly (the random generator's state, Monte Carlo's adapted cone, the
positions the neighbour list was built at; see :meth:`spinlat.integrators.Integrator.checkpoint`),
or null. Arrays of the integrator state are datasets ``checkpoint/0/…`` or ``checkpoint/1/…``
(alternately, so that the ones the attribute names are never being overwritten), named in the
JSON as ``{"__array__": "checkpoint/1/reference_positions"}``.

Faults
------
The writer keeps frames in memory and touches the file only in :meth:`TrajectoryWriter.flush`
(every ``flush_every`` frames, and at a frame written :data:`FLUSH_SECONDS` s or more after the
last flush: a reader — ``spinlat analyze`` on a live run, a user watching it — sees every frame
but those of about the last second; ``flush_seconds=0`` flushes each frame before
:meth:`~TrajectoryWriter.write` returns), in two phases: (1) all per-frame datasets grow together, the new
rows are written, the file is flushed and ``fsync``-ed; (2) only then is ``checkpoint`` updated
(in place) and flushed. Readers count ``min(checkpoint n_frames, shortest per-frame dataset)``
frames, so a frame counts only once its data is on disk:

- ``kill -9`` (or a power cut, thanks to the ``fsync``) at any moment leaves a file that opens and
  holds every frame flushed before; appending (``mode="a"``) trims it back to those frames.
- Before each flush the writer checks that the free space of the filesystem and the process's
  file-size limit (``ulimit -f``, RLIMIT_FSIZE) leave room for the flush (its uncompressed size
  plus 64 KiB of metadata); if not, it raises :class:`~spinlat.errors.StorageError` without
  touching the file, which stays complete. Should a write fail anyway (another process filling
  the disk, quotas), the writer stops writing to the file at once (HDF5's remaining writes go to
  a scratch buffer, so it can close without a crash and without adding inconsistent metadata)
  and raises StorageError saying how many frames the file keeps.
- A file that HDF5 refuses to open because it ends before the end its superblock records
  (``truncated file: eof = …, stored_eof = …``, the mark of an interrupted write at the size
  limit) is read through a read-only view padded with zeros to the recorded end
  (``Trajectory.recovered`` is then True): every frame that reads back complete — no read error,
  no fill value, unit spins — up to the first one that does not, is available; the file itself is
  not modified. Appending to such a file first rewrites those frames into a fresh file
  (:func:`recover_trajectory`) that replaces it.

One writer at a time: a writer holds an exclusive ``flock`` on the file from before it opens it
until it is closed (a shared one while suspended between the runs of a Simulation, so that
programs reading with HDF5's lock can open it); a second writer (another process, or another
writer in this process) is refused with :class:`~spinlat.errors.InputError` before the file is
touched (HDF5's own lock
comes too late for that: it truncates a file opened with mode "w" before locking it). The lock
is as good as the filesystem's ``flock``: on network filesystems that keep locks per node it
does not see writers on other nodes. ``mode="w"`` replaces only an empty file or an existing
spinlat trajectory, never another file. Readers (:class:`Trajectory`) may open a file while it
is being written.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import warnings
import weakref
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import monotonic as _monotonic  # (write() has an argument ``time``)

import numpy as np

from .. import units, validation
from ..errors import FileFormatError, InputError, MissingFileError, ShapeError, StorageError
from ..state import State
from ..keywords import refuse_other_names

try:  # POSIX only: file locks and the file-size limit
    import fcntl
    import resource
except ImportError:  # pragma: no cover - Windows
    fcntl = resource = None

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
#: seconds after which a frame written is flushed at once (TrajectoryWriter ``flush_seconds``):
#: a reader of a live run trails it by the frames of about one second at most, and a slow run
#: (a frame every few seconds: large systems) by none; at most one flush (and fsync) per second
#: costs a fast run nothing measurable (its flushes come every ``flush_every`` frames anyway)
FLUSH_SECONDS = 1.0
_SMALL_CHUNK_FRAMES = 64  # at least this many frames per chunk of the small per-frame datasets
#: compression filters a writer takes (besides an integer gzip level 0-9)
COMPRESSIONS = ("gzip", "lzf", None)
#: gzip (deflate) level of ``compression="gzip"``. Measured on 16 000 atoms of thermal bcc Fe
#: with spins near +z (benchmarks/bench_hdf5_compression.py, 2 shared cores, flush every 10
#: frames), per frame written: uncompressed 3.2 ms, 1.30 MB; lzf 11 ms, 1.10 MB; gzip 1 13.5 ms,
#: 1.02 MB; gzip 4 22 ms, 1.01 MB; gzip 6 30 ms, 1.01 MB; gzip 9 220 ms, 1.01 MB. Float64
#: mantissas barely compress: levels above 1 gain under 0.5 % for 1.6-16x the time. Level 1 chunks
#: are deflated by spinlat with zlib's run-length strategy, in parallel threads (HDF5's own
#: level-1 filter, one chunk after the other, took 30-36 ms per frame here). One SpinLatticeNVE
#: step of EAM + exchange takes 29 ms on the same system, so a frame every 10 steps costs 4.7 %
#: of the run with gzip 1 (lzf: 4.0 %, uncompressed 1.1 %), less with more cores or a costlier
#: potential.
GZIP_LEVEL = 1
_CHECKPOINT = "checkpoint"  # root attribute and group
_CHECKPOINT_BYTES = 4096  # fixed size of the checkpoint attribute (JSON padded with spaces)
_METADATA_MARGIN = 64 * 1024  # bytes of HDF5 metadata a flush may add, beyond the raw data
_NO_LOCK_ERRNOS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", -1)}


def _spinlat_version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def _frame_fields(group) -> list[str]:
    return [k for k in (*_FRAME_FIELDS, *_OPTIONAL_FIELDS) if k in group]


def _read_checkpoint(f):
    """The decoded ``checkpoint`` record (dict) of an open file, or None (older file, damaged)."""
    raw = f.attrs.get(_CHECKPOINT)
    if raw is None:
        return None
    if isinstance(raw, np.ndarray):
        raw = raw.item() if raw.size == 1 else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        rec = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("n_frames"), int) else None


def _n_complete(f) -> int:
    """Number of complete frames: present in every per-frame dataset and committed."""
    lengths = [f[k].shape[0] for k in _frame_fields(f)]
    n = min(lengths) if lengths else 0
    rec = _read_checkpoint(f)
    if rec is not None:
        n = min(n, max(rec["n_frames"], 0))
    return n


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


# ---------------------------------------------------------------------------- damaged files
#: the 8 bytes an HDF5 superblock begins with (HDF5 file format specification, "Format Signature")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def stored_end_of_file(path) -> int | None:
    """The end-of-file address an HDF5 file's superblock records (bytes, absolute), or None when
    no superblock is found. Superblock versions 0-3 (HDF5 file format specification, "Disk Format:
    Level 0A"); the superblock is searched at 0, 512, 1024, 2048, ... as HDF5 does."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        where = 0
        while where + 64 <= size:
            fh.seek(where)
            head = fh.read(64)
            if head[:8] == HDF5_SIGNATURE:
                version = head[8]
                if version in (0, 1):
                    width = head[13]
                    at = 24 if version == 0 else 28
                elif version in (2, 3):
                    width = head[9]
                    at = 12
                else:
                    return None
                if width not in (2, 4, 8):
                    return None
                base = int.from_bytes(head[at:at + width], "little")
                eof = int.from_bytes(head[at + 2 * width:at + 3 * width], "little")
                return base + eof
            where = 512 if where == 0 else 2 * where
    return None


class _ZeroPaddedFile(io.RawIOBase):
    """Read-only view of a file that reads as zeros past its real end, up to ``size`` bytes (for
    h5py's file-object driver: an HDF5 file cut short at a size limit opens and the frames
    stored before the cut read back; nothing is written)."""

    def __init__(self, path, size):
        super().__init__()
        self._fh = open(path, "rb")
        self._real = os.fstat(self._fh.fileno()).st_size
        self._size = max(int(size), self._real)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + int(offset))
        return self._pos

    def tell(self):
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        got = 0
        if self._pos < self._real:
            self._fh.seek(self._pos)
            got = self._fh.readinto(view[:min(n, self._real - self._pos)]) or 0
        view[got:n] = bytes(n - got)
        self._pos += n
        return n

    def close(self):
        if not self.closed:
            self._fh.close()
        super().close()


def _close_quietly(*objs):
    for obj in objs:
        try:
            obj.close()
        except Exception:  # noqa: BLE001 - closing what is left of a damaged file
            pass


def _open_h5(path, mode, locking=False):
    """Open an HDF5 file: (h5py.File, recovered). ``recovered`` is True when the file was cut short
    and is read through a zero-padded view (mode "r" only). FileFormatError when it is no HDF5.

    Readers open without HDF5's file lock (``locking=False``): they neither wait for nor block a
    running simulation, whose flushes keep the file consistent; a file this process already holds
    open with the lock is opened with it (HDF5 wants the same setting for one file)."""
    import h5py

    try:
        return h5py.File(path, mode, locking=locking), False
    except FileNotFoundError:
        raise
    except OSError as exc:
        msg = str(exc)
    if "flag values don't match" in msg:
        try:
            return h5py.File(path, mode, locking=not locking), False
        except OSError as exc2:
            msg = str(exc2)
    if not Path(path).exists():
        raise MissingFileError(f"trajectory file {path} does not exist") from None
    if mode == "r" and "truncated file" in msg:
        end = stored_end_of_file(path)
        if end is None:
            match = re.search(r"stored_eof\s*=\s*(\d+)", msg)
            end = int(match.group(1)) if match else None
        if end is not None:
            view = _ZeroPaddedFile(path, end)
            try:
                f = h5py.File(view, "r")
            except OSError as exc3:
                view.close()
                msg = f"{msg}; reading it zero-padded to {end} bytes failed too: {exc3}"
            else:
                f._spinlat_view = view  # closed with the file (see _close_h5)
                return f, True
    if "file signature not found" in msg:  # not HDF5 at all: say how to make a trajectory of it
        from .lammps_read import lammps_file_kind

        kind = lammps_file_kind(path)
        what = f"a LAMMPS {kind} file" if kind else "not an HDF5 file"
        if not kind and Path(path).suffix.lower() == ".ovf":  # spins without atoms: convert refuses it too
            raise FileFormatError(f"{path} cannot be opened as an HDF5 trajectory: it is an OVF spin file (spin "
                                  "vectors, no atoms); sl.io.read_ovf(path, state) puts its spins onto a structure")
        msg = f"it is {what}" + ("" if Path(path).suffix.lower() in (".h5", ".hdf5") else (
            f"; `spinlat convert {Path(path).name} {Path(path).stem}.h5` turns a LAMMPS spin dump or data file, an "
            "extxyz or any file ASE reads into a spinlat trajectory"))
    raise FileFormatError(f"{path} cannot be opened as an HDF5 trajectory: {msg}") from None


def _close_h5(f):
    view = getattr(f, "_spinlat_view", None)
    try:
        f.close()
    finally:
        if view is not None:
            view.close()


#: per-frame fields that hold the State of the frame: finite in every frame a writer was given
#: (State refuses NaN and inf), so the fill value NaN marks rows that were never written
_STATE_FIELDS = ("cell", "positions", "velocities", "moments")


def _frame_is_complete(f, i) -> bool:
    """Whether frame i reads back without error, with a finite State and unit spins (rows never
    written read as NaN or, in files of older versions and past the end of a cut-short file, 0)."""
    try:
        for name in _frame_fields(f):
            value = np.asarray(f[name][i])
            if name in _STATE_FIELDS and not np.all(np.isfinite(value)):
                return False
            if name == "spins" and value.size and not np.all(np.abs(np.sum(value * value, axis=-1) - 1.0) < 1e-6):
                return False
    except Exception:  # noqa: BLE001 - any failure to read the frame back makes it incomplete
        return False
    return True


def _readable_frames(f, n, full) -> int:
    """Frames 0..k-1 that read back complete, k ≤ n: all of them checked when ``full`` (a file cut
    short, where damaged metadata may hide any frame), else the last frames only, going back
    from n − 1 until one is complete (a fault damages the frames of the last flush)."""
    if full:
        for i in range(n):
            if not _frame_is_complete(f, i):
                return i
        return n
    while n > 0 and not _frame_is_complete(f, n - 1):
        n -= 1
    return n


# ---------------------------------------------------------------------------- locking
def _lock(path, create):
    """Open ``path`` (created empty when missing and ``create``) and take an exclusive flock on
    it; returns the descriptor (None when the platform or filesystem has no locks). InputError
    when another writer holds the file: it is then left exactly as it was."""
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except PermissionError:
        raise InputError(f"cannot write trajectory {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot write trajectory {path}: {exc.strerror}") from None
    if fcntl is None:  # pragma: no cover - Windows
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(
            f"trajectory {path} is in use by another writer (a simulation running in another process, "
            f"a Simulation or TrajectoryWriter of this process that was not closed, or a program "
            f"holding the file open); it was left untouched. Let it finish or close it (close()), or "
            f"choose another trajectory path") from None
    except OSError as exc:
        if exc.errno not in _NO_LOCK_ERRNOS:
            os.close(fd)
            raise InputError(f"cannot lock trajectory {path}: {exc.strerror}") from None
        warnings.warn(f"the filesystem of {path} has no file locks: make sure no other run writes this "
                      f"trajectory at the same time", stacklevel=3)
    return fd


def check_not_in_use(path) -> None:
    """Raise InputError when another writer holds trajectory ``path`` (the exclusive ``flock`` a
    :class:`TrajectoryWriter` keeps from before it opens the file until it is closed); the file
    is not changed. Used before reading a trajectory that is about to be continued (restarts), so
    a live run is reported as such rather than through whatever its half-written file shows."""
    if os.path.exists(path):
        _unlock(_lock(path, create=False))


def writer_holds(path) -> bool | None:
    """Whether a process holds an exclusive ``flock`` on ``path`` — a :class:`TrajectoryWriter`
    (which holds one from before it opens the file until it is closed) or another program
    writing it with HDF5's file lock — read from ``/proc/locks`` (Linux), so that asking takes no
    lock and never gets in a writer's way. None when unknown (no ``/proc/locks``, no file)."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as fh:
            table = fh.read()
    except OSError:
        return None
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF" (waiters: "1: -> FLOCK ...")
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == where:
            return True
    return False


def _unlock(fd):
    if fd is not None:
        try:
            os.close(fd)  # releases the flock
        except OSError:
            pass


def _scratch_descriptor():
    """A descriptor that accepts every write at any offset: /dev/null (a character device: no
    free space needed, and the file-size limit RLIMIT_FSIZE does not apply to it)."""
    return os.open(os.devnull, os.O_RDWR)


def _format_bytes(n) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


#: HDF5 file-creation settings of every trajectory: freed file space is never reused (see the
#: module docstring, "Compression")
_FILE_SPACE = {"fs_strategy": "aggregate"}
_READERS = weakref.WeakSet()  # this process's open Trajectory readers (see _release_readers)


def _release_readers(path, replacing=False) -> None:
    """Close this process's :class:`Trajectory` readers of ``path`` before a writer opens it
    read-write: HDF5 refuses that while the process holds a read-only handle of the file ("file is
    already open for read-only"), so a notebook that ran, looked at the trajectory and ran again
    failed. The readers reopen the file at their next access (:meth:`Trajectory._release`).
    ``replacing``: the writer rewrites the file in place (mode "w"): readers released before
    refuse to reopen it (their frame count and static data are the old file's)."""
    try:
        stat = os.stat(path)
    except OSError:
        return
    for reader in list(_READERS):
        reader._release(stat, replacing)


def compression_filters(compression) -> dict:
    """h5py dataset keywords (``compression``, ``compression_opts``, ``shuffle``) of a trajectory
    ``compression`` setting: ``"gzip"`` (level :data:`GZIP_LEVEL`), an integer gzip level 0-9,
    ``"lzf"``, or None / ``"none"`` (no filter). Byte shuffle goes with every filter (it groups
    the bytes of equal significance of the floats, which is what lets them compress).
    Raises :class:`~spinlat.errors.InputError` for anything else."""
    if compression is None or (isinstance(compression, str) and compression.lower() == "none"):
        return {}
    if isinstance(compression, (int, np.integer)) and not isinstance(compression, bool):
        if not 0 <= compression <= 9:
            raise InputError(f"compression: a gzip level must be 0-9, got {compression}")
        return {"compression": "gzip", "compression_opts": int(compression), "shuffle": True}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise InputError(f"compression must be 'gzip', a gzip level 0-9, 'lzf' or None, got {compression!r}")


_H5Z_DEFLATE, _H5Z_SHUFFLE = 1, 2  # HDF5 filter identifiers
_POOL = None  # threads compressing chunks (zlib releases the GIL)


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _pool():
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="spinlat-h5-deflate")
    return _POOL


def _deflate_level(ds) -> int | None:
    """The deflate level of a dataset whose filter pipeline is exactly shuffle then deflate (as
    :func:`compression_filters` makes it), else None."""
    plist = ds.id.get_create_plist()
    if plist.get_nfilters() != 2:
        return None
    shuffle, deflate = plist.get_filter(0), plist.get_filter(1)
    if shuffle[0] != _H5Z_SHUFFLE or deflate[0] != _H5Z_DEFLATE or len(deflate[2]) != 1:
        return None
    return int(deflate[2][0])


def _shuffle_deflate(block, level) -> bytes:
    """One chunk as HDF5's shuffle + deflate filters store it: the bytes of equal significance of
    the elements grouped together (byte j of element i goes to j·n + i; HDF5 shuffle filter),
    then a zlib stream (RFC 1950/1951, what HDF5's deflate filter reads). Level 1 is deflated with
    zlib's run-length strategy (``Z_RLE``: matches at distance 1 only, then Huffman coding): on
    shuffled float64 it is ~3x faster than zlib's level 1 for a size within ±2 % of it (the bytes
    that compress are the runs of equal exponent and high-mantissa bytes); levels 2-9 use zlib's
    default strategy at that level."""
    raw = np.ascontiguousarray(block)
    shuffled = raw.view(np.uint8).reshape(-1, raw.dtype.itemsize).T.tobytes()
    if level == 1:
        z = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS, 8, zlib.Z_RLE)
        return z.compress(shuffled) + z.flush()
    return zlib.compress(shuffled, level)


def _compress_frames(jobs):
    """{name: [compressed chunk of each row]} for ``jobs`` {name: (rows (k, ...), level)}, the
    chunks compressed in parallel threads (zlib releases the GIL)."""
    tasks = [(name, r, rows[r], level) for name, (rows, level) in jobs.items() for r in range(len(rows))]
    if len(tasks) == 1 or _threads() == 1:
        chunks = [_shuffle_deflate(block, level) for _, _, block, level in tasks]
    else:
        chunks = list(_pool().map(lambda t: _shuffle_deflate(t[2], t[3]), tasks))
    out = {name: [None] * len(rows) for name, (rows, _) in jobs.items()}
    for (name, r, _, _), chunk in zip(tasks, chunks):
        out[name][r] = chunk
    return out


def _small_chunk_rows(flush_every) -> int:
    """Frames per chunk of the small per-frame datasets: the multiple of ``flush_every`` that
    reaches ``_SMALL_CHUNK_FRAMES`` (so regular flushes fill chunks and never straddle two)."""
    return int(flush_every) * max(1, -(-_SMALL_CHUNK_FRAMES // int(flush_every)))


@refuse_other_names()
class TrajectoryWriter:
    """Write frames of a simulation to an HDF5 trajectory.

    Parameters
    ----------
    path : file to write.
    state : the first :class:`~spinlat.State` (fixes N, ``numbers``, ``masses``, ``pbc``); not written
        as a frame, call :meth:`write` for that.
    potential, integrator : descriptions stored as root attributes.
    seed : random seed of the run (int or None), stored as a root attribute.
    mode : ``"w"`` creates the file, replacing an empty file or an existing spinlat trajectory
        (any other file is refused with InputError); ``"a"`` appends to an existing trajectory of
        the same atoms (created if missing; a damaged one is first repaired, see
        :func:`recover_trajectory`).
    flush_every : frames kept in memory between flushes to disk (>= 1).
    flush_seconds : a frame written this many seconds or more after the last flush is flushed at
        once (default :data:`FLUSH_SECONDS`, 1 s; 0: every frame, so that a reader sees it when
        :meth:`write` returns; None: only every ``flush_every`` frames). Each flush rewrites the
        partly filled chunk of the small per-frame datasets (a few kB, kept: module docstring).
    store_forces : also store ``forces`` (eV/Å) and ``magnetic_forces`` (eV/μB) per frame.
    metadata : dict of extra JSON-serialisable metadata, stored as the ``metadata`` attribute.
    compression : filter of every per-frame dataset (module docstring, "Compression"):
        ``"gzip"`` (default; level :data:`GZIP_LEVEL`, read by every HDF5 tool), an integer 0-9
        (gzip at that level), ``"lzf"`` (faster; h5py only) or ``None`` (uncompressed). Used when
        the file is created; appending keeps the file's own settings. InputError for anything else.
    fsync : ``fsync`` the file between writing the frames of a flush and counting them (default
        True: a power cut cannot leave counted frames unwritten; one fsync per flush).

    The writer holds an exclusive lock on the file until :meth:`close` (a second writer gets
    InputError before the file is touched). A flush that cannot be written raises
    :class:`~spinlat.errors.StorageError`; the file then keeps every frame of the earlier
    flushes, and the writer is closed. See the module docstring for the guarantees.
    """

    def __init__(self, path, state, potential="", integrator="", seed=None, mode="w", flush_every=10,
                 store_forces=False, metadata=None, compression="gzip", fsync=True, runs=None,
                 flush_seconds=FLUSH_SECONDS):
        import h5py

        path = validation.path(path, "TrajectoryWriter path")
        mode = validation.choice(mode, "TrajectoryWriter mode", ("w", "a"))
        flush_every = validation.integer(flush_every, "TrajectoryWriter flush_every", minimum=1)
        if flush_seconds is not None:
            flush_seconds = validation.number(flush_seconds, "TrajectoryWriter flush_seconds", nonnegative=True,
                                              unit="s")
        store_forces = validation.boolean(store_forces, "TrajectoryWriter store_forces")
        fsync = validation.boolean(fsync, "TrajectoryWriter fsync")
        filters = compression_filters(compression)
        metadata_json = _metadata_json(metadata)
        if not isinstance(state, State):
            raise InputError(f"a trajectory is written from a spinlat State, got {type(state).__name__}")
        if len(state) == 0:
            raise InputError(f"cannot write trajectory {path}: the state has no atoms")
        self._run = {"potential": str(potential), "integrator": str(integrator),
                     "seed": None if seed is None else int(seed), "metadata": json.loads(metadata_json)}
        earlier_runs = _runs_json(runs, path) if runs is not None else None
        self.path = Path(path)
        self.flush_every = int(flush_every)
        self.flush_seconds = flush_seconds
        self._flushed_at = _monotonic()  # of the last flush (or the opening)
        self.fsync = bool(fsync)
        self.n_atoms = len(state)
        self._numbers = np.asarray(state.numbers).copy()
        # static datasets: every frame must agree with them (a frame's own would be read as these)
        self._masses = np.asarray(state.masses, dtype=np.float64).copy()
        self._pbc = np.asarray(state.pbc, dtype=bool).copy()
        self._buffer: list[dict] = []
        self._file = None
        self._datasets = None
        self._direct = None  # per-atom dataset → its deflate level, when chunks are compressed here
        self._store_forces = None
        self._lock_fd = None
        self._failed = None  # message of the StorageError that closed the writer
        self._checkpoint = None  # integrator state of the last buffered frame
        self._slot = 1  # checkpoint slot the committed record refers to (the next flush uses the other)
        self._last_step = None
        self._suspended = False  # between runs: file closed, shared lock kept (see suspend)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"cannot write trajectory {self.path}: directory {parent} does not exist")
        if self.path.is_dir():
            raise InputError(f"cannot write trajectory {self.path}: it is a directory")
        existed = self.path.exists()
        self._lock_fd = _lock(self.path, create=True)
        try:
            occupied = os.fstat(self._lock_fd).st_size > 0 if self._lock_fd is not None else existed
            if mode == "a" and occupied:
                self._file = self._open_for_append()
                self._open_existing(store_forces)
                self._record_run()
            else:
                if occupied:
                    self._check_replaceable()
                    _release_readers(self.path, replacing=True)
                try:
                    self._file = h5py.File(self.path, "w", locking=False, **_FILE_SPACE)
                except OSError as exc:
                    if "already open" in str(exc):
                        raise InputError(f"cannot replace trajectory {self.path}: this process has it open "
                                         f"(a Trajectory not closed?); close it first") from None
                    raise StorageError(f"cannot create trajectory {self.path}: {_reason(exc)}") from None
                try:
                    self._create(state, potential, integrator, seed, store_forces, metadata_json, filters)
                    if earlier_runs:
                        f_ = self._file
                        f_.attrs[_RUNS] = earlier_runs
                        f_.flush()
                except (OSError, RuntimeError) as exc:
                    self._abandon()
                    raise StorageError(f"cannot create trajectory {self.path}: {_reason(exc)}") from None
        except BaseException:
            if self._file is not None:
                _close_quietly(self._file)
                self._file = None
            if not existed:  # leave no trace of a file this writer created
                try:
                    self.path.unlink()
                except OSError:
                    pass
            _unlock(self._lock_fd)
            self._lock_fd = None
            raise
        self._n_flushed = _n_complete(self._file)
        self._store_forces = "forces" in self._file

    # ------------------------------------------------------------------ file set-up
    def _check_replaceable(self):
        """mode "w" on a non-empty file: replace it only if it is a spinlat trajectory."""
        try:
            f, _ = _open_h5(self.path, "r", locking=False)
        except (OSError, FileFormatError):
            fmt = None
        else:
            try:
                fmt = f.attrs.get("format")
            finally:
                _close_h5(f)
        if isinstance(fmt, bytes):
            fmt = fmt.decode(errors="replace")
        if fmt != FORMAT:
            raise InputError(f"refusing to overwrite {self.path}: it exists and is not a spinlat trajectory; "
                             f"choose another trajectory path or remove the file")

    def _open_for_append(self):
        """The existing trajectory opened for appending; a file cut short is repaired first."""
        import h5py

        _release_readers(self.path)
        try:
            return h5py.File(self.path, "r+", locking=False)
        except OSError as exc:
            msg = str(exc)
        if "truncated file" not in msg:
            # not HDF5 at all, or damaged beyond what the reader can recover
            raise FileFormatError(f"cannot append to {self.path}: it cannot be opened as an HDF5 trajectory "
                                  f"({msg})")
        n = recover_trajectory(self.path, _locked=True)
        warnings.warn(f"trajectory {self.path} was cut short (an interrupted write); rewrote its {n} complete "
                      f"frames into a fresh file before appending", stacklevel=5)
        # the fresh file is a new inode: lock it in place of the old one
        fd = _lock(self.path, create=False)
        _unlock(self._lock_fd)
        self._lock_fd = fd
        return h5py.File(self.path, "r+", locking=False)

    def _create(self, state, potential, integrator, seed, store_forces, metadata_json, filters):
        f = self._file
        n = self.n_atoms
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["units"] = json.dumps(units.UNITS)
        f.attrs["spinlat_version"] = _spinlat_version()
        f.attrs["potential"] = str(potential)
        f.attrs["integrator"] = str(integrator)
        f.attrs["seed"] = "none" if seed is None else int(seed)
        f.attrs["metadata"] = metadata_json
        _set_record(f, {"n_frames": 0, "step": None, "integrator_state": None})
        f.create_dataset("numbers", data=np.asarray(state.numbers, dtype=np.int64))
        f.create_dataset("masses", data=np.asarray(state.masses, dtype=np.float64))
        f.create_dataset("pbc", data=np.asarray(state.pbc, dtype=bool))
        fields = dict(_FRAME_FIELDS)
        if store_forces:
            fields.update(_OPTIONAL_FIELDS)
        small_rows = _small_chunk_rows(self.flush_every)
        for name, (shape_of, dtype) in fields.items():
            shape = shape_of(n)
            fill = -1 if name == "step" else np.nan
            # per-atom data: one frame per chunk, so that a flush only adds chunks; small
            # per-frame values: small_rows frames per chunk (see the module docstring)
            rows = 1 if len(shape) and shape[0] == n else small_rows
            f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                             chunks=(rows, *shape), fillvalue=fill, **filters)
        f.flush()

    def _open_existing(self, store_forces):
        f = self._file
        _check_format(f, self.path)
        numbers = f["numbers"][()]
        if len(numbers) != self.n_atoms:
            raise InputError(f"cannot append to {self.path}: it holds {len(numbers)} atoms, the state has {self.n_atoms}")
        if not np.array_equal(numbers, self._numbers):
            k = int(np.argmax(numbers != self._numbers))
            raise InputError(f"cannot append to {self.path}: atomic numbers differ (atom {k}: file {numbers[k]}, "
                             f"state {self._numbers[k]})")
        self._check_static(f["masses"][()], f["pbc"][()] if "pbc" in f else np.ones(3, bool),
                           f"cannot append to {self.path}", "file", "state")
        if store_forces and not all(k in f for k in _OPTIONAL_FIELDS):
            raise InputError(f"cannot append forces to {self.path}: it was written without store_forces")
        # an interrupted flush can leave datasets longer than the committed frames, or frames
        # that do not read back: trim to the complete frames
        rec = _read_checkpoint(f)
        n = _readable_frames(f, _n_complete(f), full=False)
        for k in _frame_fields(f):
            if f[k].shape[0] != n:
                f[k].resize(n, axis=0)
        if rec is not None and rec["n_frames"] == n:
            self._slot = _record_slot(rec)
        else:  # no record (older file), or one counting frames that are gone: count them anew
            _set_record(f, {"n_frames": n, "step": int(f["step"][n - 1]) if n else None,
                            "integrator_state": None})
        f.flush()

    def _ready(self):
        """Before writing: StorageError after a failed flush, a suspended writer resumed,
        InputError when closed."""
        if self._failed is not None:
            raise StorageError(self._failed)
        if self._suspended:
            self.resume()
        if self._file is None:
            raise InputError(f"trajectory writer for {self.path} is closed")

    @refuse_other_names()
    def begin_run(self, potential="", integrator="", seed=None, metadata=None) -> None:
        """Record that the frames written from now on come from another run (another potential,
        integrator, seed or metadata: :attr:`Trajectory.runs`), e.g. when joining trajectories of
        several runs into one file. The buffered frames are flushed first. Nothing is recorded
        when the description is that of the file's last run. InputError for metadata that is not
        JSON-serialisable; StorageError as :meth:`flush`."""
        metadata_json = _metadata_json(metadata)
        self._ready()
        self.flush()
        self._run = {"potential": str(potential), "integrator": str(integrator),
                     "seed": None if seed is None else int(seed), "metadata": json.loads(metadata_json)}
        self._record_run()

    def _record_run(self):
        """Appending: when this writer's potential, integrator, seed or metadata differ from those
        of the file's last run, record it as a new run starting at the next frame (root attribute
        ``runs``, see :attr:`Trajectory.runs`). A writer given no description (all empty) records
        nothing; a file without frames takes the new description as its own."""
        new = self._run
        if not (new["potential"] or new["integrator"] or new["metadata"]):
            return
        f = self._file
        n = _n_complete(f)
        if n == 0:  # nothing written by the earlier run(s): the file describes this one
            for key in ("potential", "integrator"):
                f.attrs[key] = new[key]
            f.attrs["seed"] = "none" if new["seed"] is None else new["seed"]
            f.attrs["metadata"] = json.dumps(new["metadata"])
            if _RUNS in f.attrs:
                del f.attrs[_RUNS]
            f.flush()
            return
        recorded = _run_records(f)
        runs = [r for r in recorded if r["first_frame"] < n]  # runs that left no frame are gone
        last = runs[-1]
        if all(last[k] == new[k] for k in ("potential", "integrator", "seed", "metadata")):
            if len(runs) != len(recorded):
                f.attrs[_RUNS] = _runs_json(runs[1:], self.path)
                f.flush()
            return
        runs.append({"first_frame": n, "first_step": int(f["step"][n - 1]), **new})
        f.attrs[_RUNS] = _runs_json(runs[1:], self.path)
        f.flush()

    def _check_static(self, masses, pbc, what, other, own):
        """InputError when ``masses`` (N,) amu or ``pbc`` (3,) of the ``other`` ("file" or "frame")
        differ from the writer's (``own``: "state" or "file"): a trajectory stores them once
        (static datasets), so a frame with its own would read back with the file's, without a word."""
        masses, pbc = np.asarray(masses, dtype=np.float64), np.asarray(pbc, dtype=bool)
        if masses.shape == self._masses.shape and not np.array_equal(masses, self._masses):
            k = int(np.argmax(masses != self._masses))
            raise InputError(f"{what}: masses differ (atom {k}: {other} {masses[k]:g} amu, {own} "
                             f"{self._masses[k]:g} amu); a trajectory stores one set of masses for every frame")
        if pbc.shape == self._pbc.shape and not np.array_equal(pbc, self._pbc):
            raise InputError(f"{what}: periodic directions differ ({other} {pbc.tolist()}, {own} "
                             f"{self._pbc.tolist()}); a trajectory stores one pbc for every frame")

    # ------------------------------------------------------------------ writing
    @property
    def store_forces(self) -> bool:
        """Whether frames hold ``forces`` and ``magnetic_forces``."""
        if self._store_forces is None and self._file is not None:
            self._store_forces = "forces" in self._file
        return bool(self._store_forces)

    @refuse_other_names()
    def write(self, state, step, time, potential_energy=math.nan, kinetic_energy=None, temperature=None,
              forces=None, magnetic_forces=None, total_energy=None, checkpoint=None) -> None:
        """Append one frame.

        ``step`` (int), ``time`` (fs), ``potential_energy`` (eV); ``kinetic_energy`` (eV) and
        ``temperature`` (K) default to the state's lattice values; ``total_energy`` (eV) defaults
        to potential + kinetic. ``forces`` (N,3 eV/Å) and ``magnetic_forces`` (N,3 eV/μB) are
        stored only when the writer was made with ``store_forces=True`` (NaN rows when missing).
        ``checkpoint``: the integrator's state at this frame (a dict of JSON values and NumPy
        arrays, see :meth:`spinlat.integrators.Integrator.checkpoint`); the one of the last frame
        of each flush is stored. The frame reaches the file (a reader sees it) before this returns
        when it fills ``flush_every`` frames or comes ``flush_seconds`` after the last flush.
        StorageError when a flush this write starts fails."""
        self._ready()
        if len(state) != self.n_atoms:
            raise ShapeError(f"trajectory {self.path} holds {self.n_atoms} atoms; frame has {len(state)}")
        if not np.array_equal(state.numbers, self._numbers):
            raise InputError(f"trajectory {self.path}: atomic numbers of the frame differ from the file's")
        self._check_static(state.masses, state.pbc, f"trajectory {self.path}: cannot write the frame", "frame", "file")
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
        if checkpoint is not None and not isinstance(checkpoint, dict):
            raise InputError(f"checkpoint must be a dict, got {type(checkpoint).__name__}")
        self._buffer.append(frame)
        self._checkpoint = checkpoint
        if len(self._buffer) >= self.flush_every or (
                self.flush_seconds is not None and _monotonic() - self._flushed_at >= self.flush_seconds):
            self.flush()

    def _bytes_needed(self, start, k, arrays) -> int:
        """Upper bound of the bytes a flush of rows start..start+k−1 adds to the file: the chunks
        it allocates at their uncompressed size (a compressed chunk is never stored larger, up to
        a few bytes), the checkpoint arrays, and a margin for HDF5 metadata (chunk index
        entries, heaps)."""
        total = sum(a.nbytes for a in arrays.values())
        for ds in self._datasets.values():
            rows = ds.chunks[0]
            # a compressed chunk that already holds rows is written anew (uncompressed ones in place)
            first = start // rows if ds.compression is not None else -(-start // rows)
            new_chunks = -(-(start + k) // rows) - first
            total += new_chunks * int(np.prod(ds.chunks)) * ds.dtype.itemsize
        return int(1.02 * total) + _METADATA_MARGIN

    def _check_room(self, need) -> None:
        """StorageError, before anything is written, when the filesystem's free space or the
        process's file-size limit leaves less than ``need`` bytes."""
        fd = self._lock_fd
        where = None
        if fd is not None and hasattr(os, "fstatvfs"):
            try:
                st = os.fstatvfs(fd)
            except OSError:
                st = None
            if st is not None and st.f_blocks > 0:
                free = st.f_bavail * st.f_frsize
                if need > free:
                    where = (f"its filesystem has {_format_bytes(free)} free, the next flush of "
                             f"{len(self._buffer)} frames needs up to {_format_bytes(need)}")
        if where is None and resource is not None:
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if limit != resource.RLIM_INFINITY:
                size = self._file.id.get_filesize()
                if fd is not None:
                    size = max(size, os.fstat(fd).st_size)
                if size + need > limit:
                    where = (f"the file-size limit of this process (ulimit -f) is {_format_bytes(limit)}, the "
                             f"file has {_format_bytes(size)} and the next flush of {len(self._buffer)} frames "
                             f"needs up to {_format_bytes(need)}")
        if where is not None:
            self._fail(f"not enough room to write trajectory {self.path}: {where}", abandon=False)

    def flush(self) -> None:
        """Write the buffered frames to disk (see the module docstring); StorageError if they
        cannot be (the file keeps the frames of the earlier flushes and the writer closes)."""
        if self._failed is not None:
            raise StorageError(self._failed)
        if self._file is None or not self._buffer:
            return
        f = self._file
        k = len(self._buffer)
        start = self._n_flushed
        names = list(self._buffer[0])
        data = {name: np.stack([np.asarray(fr[name]) for fr in self._buffer]) for name in names}
        slot = 1 - self._slot
        state, arrays = _split_arrays(self._checkpoint, f"{_CHECKPOINT}/{slot}")
        if self._datasets is None:
            self._datasets = {name: f[name] for name in _frame_fields(f)}
        self._check_room(self._bytes_needed(start, k, arrays))
        last_step = int(data["step"][-1])
        record = {"n_frames": start + k, "step": last_step, "integrator_state": state}
        _encode_record(record)  # too large: InputError before the file is touched
        # gzip per-atom chunks (one frame each) are compressed here, in parallel, and written
        # as they are (HDF5 would deflate them one after the other in this thread)
        if self._direct is None:
            self._direct = {name: _deflate_level(d) for name, d in self._datasets.items() if d.chunks[0] == 1}
        chunks = _compress_frames({name: (data[name], self._direct[name]) for name in names
                                   if self._direct.get(name) is not None})
        try:
            ds = self._datasets
            # phase 1: the data. All datasets grow together, then the new rows (new chunks
            # only for per-atom data) and the checkpoint arrays of the free slot are written
            for name in names:
                ds[name].resize(start + k, axis=0)
            for name in names:
                if name in chunks:
                    zeros = (0,) * (ds[name].ndim - 1)
                    for r, chunk in enumerate(chunks[name]):
                        ds[name].id.write_direct_chunk((start + r, *zeros), chunk)
                else:
                    ds[name].write_direct(data[name], dest_sel=np.s_[start:start + k])
            _write_arrays(f, arrays)
            f.flush()
            if self.fsync:
                os.fsync(self._lock_fd if self._lock_fd is not None else f.id.get_vfd_handle())
            # phase 2: count the frames (one attribute, rewritten in place)
            _set_record(f, record)
            f.flush()
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError or RuntimeError
            self._fail(f"writing trajectory {self.path} failed ({_reason(exc)})")
        self._n_flushed = start + k
        self._slot = slot
        self._last_step = last_step
        self._buffer.clear()
        self._flushed_at = _monotonic()

    def _fail(self, message, abandon=True):
        """Close the writer after a failed (or impossible) flush and raise StorageError."""
        n = self._n_flushed
        last = f"up to step {self._last_step}" if self._last_step is not None else ""
        if self._last_step is None and n:
            try:
                last = f"up to step {int(self._file['step'][n - 1])}"
            except Exception:  # noqa: BLE001
                last = ""
        lost = len(self._buffer)
        message = (f"{message}. The file keeps its {n} complete frames{' ' + last if last else ''}; the "
                   f"{lost} frame(s) of this flush are not in it. Free space (or raise the limit) and restart "
                   f"from the file's last frame")
        self._failed = message
        self._buffer.clear()
        if abandon:
            self._abandon()
        else:
            self._release()
        raise StorageError(message) from None  # the h5py error is in the message, not chained

    def _abandon(self):
        """Stop writing to the file at once: HDF5's remaining writes (it flushes on close) go to
        a scratch descriptor in place of the file, then the file is closed; no error, no crash."""
        f, self._file, self._datasets = self._file, None, None
        if f is not None:
            try:
                fd = f.id.get_vfd_handle()
            except Exception:  # noqa: BLE001
                fd = None
            if isinstance(fd, int) and fd >= 0:
                scratch = _scratch_descriptor()
                os.dup2(scratch, fd)
                os.close(scratch)
            _close_quietly(f)
        _unlock(self._lock_fd)
        self._lock_fd = None

    def _release(self):
        """Close the file (nothing left to write) and release the lock; on any error abandon it."""
        self._suspended = False
        f, self._file, self._datasets = self._file, None, None
        if f is not None:
            try:
                f.close()
            except Exception:  # noqa: BLE001
                self._file = f
                self._abandon()
        _unlock(self._lock_fd)
        self._lock_fd = None

    def close(self) -> None:
        """Flush and close the file, releasing its lock (idempotent). After a StorageError the
        file is only released (the frames that could not be written are dropped)."""
        if self._file is None or self._failed is not None:
            self._release()
            return
        try:
            self.flush()
        finally:
            if self._file is not None:
                self._release()

    # ------------------------------------------------------------------ between runs
    def suspend(self) -> None:
        """Between two runs: write the buffered frames, close the HDF5 file and keep only a
        shared lock on it, so that programs reading with HDF5's lock (h5dump, h5py) can open it
        while no other writer can; :meth:`resume` (or the next :meth:`write`) takes it back.
        StorageError as :meth:`flush`."""
        if self._suspended or self.closed:
            return
        self.flush()
        f, self._file, self._datasets = self._file, None, None
        try:
            f.close()
        except Exception:  # noqa: BLE001
            self._file = f
            self._abandon()
            raise
        self._suspended = True
        if fcntl is not None and self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                pass  # no locks here: see _lock

    def resume(self) -> None:
        """Reopen a suspended writer for appending: the exclusive lock again (InputError when a
        program holds the file meanwhile: it is left untouched), then the file."""
        import h5py

        if not self._suspended:
            return
        fd = self._lock_fd
        if fcntl is not None and fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:  # the conversion may have dropped the shared lock: keep the file reserved
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:
                    pass
                raise InputError(f"trajectory {self.path} is open in another program (a reader holding "
                                 f"HDF5's file lock, or another writer); close it to go on writing") from None
            except OSError:
                pass
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path)) if fd is not None else True
        except OSError:
            same = False
        if not same:
            raise InputError(f"trajectory {self.path} was removed or replaced since the last run; this "
                             f"writer will not write into another file")
        _release_readers(self.path)
        self._file = h5py.File(self.path, "r+", locking=False)
        self._suspended = False
        self._open_existing(self.store_forces)
        self._n_flushed = _n_complete(self._file)

    @property
    def closed(self) -> bool:
        """Whether the writer was closed (by :meth:`close`, or by a StorageError)."""
        return self._file is None and not self._suspended

    @property
    def failed(self) -> str | None:
        """The message of the StorageError that closed this writer, or None."""
        return self._failed

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


def _metadata_json(metadata) -> str:
    """Trajectory metadata (a dict of JSON values, NumPy values allowed) as JSON; InputError if not."""
    try:
        return json.dumps(metadata or {}, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InputError(f"trajectory metadata must be JSON-serialisable: {exc}") from None


def _reason(exc) -> str:
    """The operating-system cause of an h5py error, in words."""
    err = getattr(exc, "errno", None)
    msg = str(exc)
    match = re.search(r"errno = (\d+)", msg)
    if err is None and match:
        err = int(match.group(1))
    if err:
        return f"{os.strerror(err)} [errno {err}]"
    return msg.splitlines()[0] if msg else type(exc).__name__


def _encode_record(record) -> np.bytes_:
    text = json.dumps(record, separators=(",", ":"), default=_json_default)
    if len(text) > _CHECKPOINT_BYTES:
        raise InputError(f"trajectory checkpoint too large ({len(text)} bytes of JSON, limit {_CHECKPOINT_BYTES}); "
                         f"integrators must give large values as NumPy arrays")
    return np.bytes_(text.ljust(_CHECKPOINT_BYTES).encode())


def _set_record(f, record):
    """Write the checkpoint record: in place when the attribute has the fixed size (one write of
    one object-header message), else (re)created."""
    value = _encode_record(record)
    if _CHECKPOINT in f.attrs:
        aid = f.attrs.get_id(_CHECKPOINT)
        if aid.shape == () and aid.dtype == value.dtype:
            f.attrs.modify(_CHECKPOINT, value)
            return
        del f.attrs[_CHECKPOINT]
    f.attrs[_CHECKPOINT] = value


def _record_slot(rec) -> int:
    """The checkpoint slot (0 or 1) whose arrays the record names (1 when it names none)."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"__array__"} and isinstance(v["__array__"], str):
                found.append(v["__array__"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(rec.get("integrator_state"))
    for name in found:
        parts = name.split("/")
        if len(parts) >= 2 and parts[1] in ("0", "1"):
            return int(parts[1])
    return 1


def _split_arrays(state, prefix):
    """(JSON-ready copy of ``state`` with every NumPy array replaced by {"__array__": path},
    {path: array}); paths are ``prefix/<keys joined by '.'>``."""
    arrays = {}

    def walk(v, key):
        if isinstance(v, np.ndarray):
            path = f"{prefix}/{key or 'value'}"
            arrays[path] = np.ascontiguousarray(v)
            return {"__array__": path}
        if isinstance(v, dict):
            return {str(k): walk(x, f"{key}.{k}" if key else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{key}.{i}") for i, x in enumerate(v)]
        if isinstance(v, np.generic):
            return v.item()
        return v

    if state is None:
        return None, {}
    return walk(state, ""), arrays


def _write_arrays(f, arrays):
    for path, arr in arrays.items():
        ds = f.get(path)
        if ds is not None and (ds.shape != arr.shape or ds.dtype != arr.dtype):
            del f[path]
            ds = None
        if ds is None:
            f.create_dataset(path, data=arr)
        else:
            ds.write_direct(arr)


def _join_arrays(f, value):
    """Inverse of :func:`_split_arrays` for an open file."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return np.array(f[value["__array__"]][()])
        return {k: _join_arrays(f, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(f, v) for v in value]
    return value


def recover_trajectory(path, output=None, _locked=False) -> int:
    """Rewrite the complete frames of a damaged trajectory into a fresh, consistent file.

    Reads ``path`` as :class:`Trajectory` does (a file cut short through a zero-padded view; the
    frames that read back complete), writes them with the same attributes, dataset settings and,
    when it belongs to the last kept frame, the integrator checkpoint into ``output`` (default:
    ``path`` itself, replaced atomically once the copy is complete and fsync-ed). Returns the
    number of frames kept. InputError when another writer holds ``path``."""
    import h5py

    path = Path(validation.path(path, "recover_trajectory path"))
    target = Path(validation.path(output, "recover_trajectory output")) if output is not None else path
    fd = None if _locked else _lock(path, create=False)
    tmp = target.with_name(f".{target.name}.recover-{os.getpid()}")
    try:
        src, _ = _open_h5(path, "r", locking=False)
        try:
            _check_format(src, path)
            n = _readable_frames(src, _n_complete(src), full=True)
            rec = _read_checkpoint(src)
            with h5py.File(tmp, "w", locking=False, **_FILE_SPACE) as dst:
                for key, val in src.attrs.items():
                    if key != _CHECKPOINT:
                        dst.attrs[key] = val
                for name in _STATIC:
                    if name in src:
                        dst.create_dataset(name, data=src[name][()])
                for name in _frame_fields(src):
                    d = src[name]
                    out = dst.create_dataset(name, shape=(n, *d.shape[1:]), maxshape=(None, *d.shape[1:]),
                                             dtype=d.dtype, chunks=d.chunks, compression=d.compression,
                                             compression_opts=d.compression_opts, shuffle=d.shuffle,
                                             fillvalue=-1 if name == "step" else np.nan)
                    block = max(1, (64 << 20) // max(1, int(np.prod(d.shape[1:])) * d.dtype.itemsize))
                    for a in range(0, n, block):
                        out[a:min(n, a + block)] = d[a:min(n, a + block)]
                state = None
                if rec is not None and rec["n_frames"] == n and rec.get("integrator_state") is not None:
                    try:
                        state, arrays = _split_arrays(_join_arrays(src, rec["integrator_state"]),
                                                      f"{_CHECKPOINT}/1")
                        _write_arrays(dst, arrays)
                    except Exception:  # noqa: BLE001 - a damaged checkpoint is dropped, not the frames
                        state = None
                step = int(dst["step"][n - 1]) if n else None
                _set_record(dst, {"n_frames": n, "step": step, "integrator_state": state})
                dst.flush()
                os.fsync(dst.id.get_vfd_handle())
        finally:
            _close_h5(src)
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    finally:
        _unlock(fd)
    return n


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


_RUNS = "runs"  # root attribute: the runs appended with other descriptions (JSON list)


def _decoded(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _run_records(f) -> list[dict]:
    """The runs of an open trajectory, first frame ascending: the run that created it (frame 0,
    the root attributes ``potential``, ``integrator``, ``seed``, ``metadata``) and those the
    ``runs`` attribute records (appended with other descriptions). A damaged ``runs`` attribute
    is ignored (one run)."""
    meta = _decoded(f.attrs.get("metadata", "{}"))
    try:
        meta = json.loads(meta) if isinstance(meta, str) else {}
    except ValueError:
        meta = {}
    seed = _decoded(f.attrs.get("seed"))
    first = {"first_frame": 0, "first_step": None, "potential": str(_decoded(f.attrs.get("potential", ""))),
             "integrator": str(_decoded(f.attrs.get("integrator", ""))),
             "seed": None if seed in (None, "none") else seed, "metadata": meta if isinstance(meta, dict) else {}}
    out = [first]
    raw = _decoded(f.attrs.get(_RUNS))
    try:
        later = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        later = []
    for r in later if isinstance(later, list) else []:
        if isinstance(r, dict) and isinstance(r.get("first_frame"), int) and r["first_frame"] > out[-1]["first_frame"]:
            out.append({"first_frame": r["first_frame"], "first_step": r.get("first_step"),
                        "potential": str(r.get("potential", "")), "integrator": str(r.get("integrator", "")),
                        "seed": r.get("seed"), "metadata": r.get("metadata") if isinstance(r.get("metadata"), dict)
                        else {}})
    return out


def _runs_json(runs, path) -> str:
    """The ``runs`` attribute (JSON) of run records (dicts with ``first_frame`` ≥ 1, ascending)."""
    try:
        records = [{"first_frame": int(r["first_frame"]), "first_step": r.get("first_step"),
                    "potential": str(r.get("potential", "")), "integrator": str(r.get("integrator", "")),
                    "seed": r.get("seed"), "metadata": dict(r.get("metadata") or {})} for r in runs]
        return json.dumps(records, default=_json_default)
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"trajectory {path}: runs must be a list of dicts with first_frame, potential, integrator, "
                         f"seed and metadata (JSON values): {exc}") from None


class Trajectory:
    """Read a spinlat HDF5 trajectory.

    ``len(traj)`` frames; ``traj[i]`` is a :class:`~spinlat.State` (negative indices work; a
    slice gives a list); iterating gives States; ``traj[name]`` / ``traj.array(name)`` give a
    dataset as a NumPy array (units as in the module docstring); ``traj.atoms(i)`` gives
    ``ase.Atoms``; ``traj.attrs`` is the metadata dict; ``traj.runs`` the runs that wrote the
    frames. ``traj.array(name, frames=i)`` and ``traj.blocks(name)`` read part of a per-frame
    dataset (a large trajectory is never loaded whole by them, nor by ``traj[i]``).
    """

    def __init__(self, path):
        self.path = Path(validation.existing_file(path, "Trajectory path", "trajectory file"))
        self._file, self.recovered = _open_h5(self.path, "r")
        self._closer = weakref.finalize(self, _close_h5, self._file)  # also at interpreter exit
        self._released = None  # os.stat of the file while a writer of this process holds it closed
        try:
            _check_format(self._file, self.path)
            written = _n_complete(self._file)
            # frames that do not read back complete (a fault during the last flush, or a file cut
            # short) are left out: at the end only, or from the first bad one when cut short
            self._n = _readable_frames(self._file, written, full=self.recovered)
            self._static = {k: self._file[k][()] for k in _STATIC if k in self._file}
        except BaseException:
            self.close()
            raise
        if "pbc" not in self._static:
            self._static["pbc"] = np.ones(3, dtype=bool)
        if not self.recovered:  # a zero-padded view is no HDF5 handle of the file itself
            _READERS.add(self)
        if self.recovered and self.being_written:  # not cut short: a live writer has not flushed yet
            warnings.warn(f"trajectory {self.path} is being written by a running simulation that has not "
                          f"completed its file yet; reading the {self._n} frames flushed so far", stacklevel=2)
        elif self.recovered:
            warnings.warn(f"trajectory {self.path} was cut short by an interrupted write; reading its "
                          f"{self._n} complete frames (the file is not modified; spinlat.io.hdf5."
                          f"recover_trajectory rewrites them into a consistent file)", stacklevel=2)

    #: True when the file was cut short and is read through a zero-padded view (see the module
    #: docstring); its complete frames are then all checked on opening
    recovered = False

    @property
    def being_written(self) -> bool | None:
        """Whether a simulation (or another program) is writing the file now (:func:`writer_holds`;
        None when unknown): its later frames are not in this reader, which counts the frames
        flushed when it was opened."""
        return writer_holds(self.path)

    def no_frame_reason(self) -> str:
        """Why a trajectory holds no frame, for messages: a run writing it that has not flushed
        yet, or its run stopped before the first flush."""
        if self.being_written:
            return ("a simulation is writing it and has not flushed a frame yet (frames reach the file every "
                    "flush_every frames: wait, or run with a smaller flush_every)")
        return "its run stopped before the first frame reached the disk"

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
        if self._file is None and self._released is not None:
            self._reopen()
        if self._file is None:
            raise InputError(f"trajectory {self.path} is closed")
        return self._file

    def _release(self, stat, replacing=False) -> None:
        """Close the file for a writer of this process that opens the file ``stat`` describes
        read-write (:func:`_release_readers`); the next access reopens it (:meth:`_reopen`). A
        writer ``replacing`` it leaves an open reader open (HDF5 then refuses the writer, which
        says to close the reader) and makes a released one refuse to reopen."""
        if self._file is None:
            if replacing and self._released is not None and os.path.samestat(self._released, stat):
                self._released = "replaced"
            return
        if replacing:
            return
        try:
            same = os.path.samestat(os.fstat(self._file.id.get_vfd_handle()), stat)
        except (OSError, ValueError, TypeError):
            same = False
        if same:
            self._file = None
            self._closer()
            self._released = stat

    def _reopen(self) -> None:
        """Reopen a file released to a writer of this process. Appending leaves the frames this
        reader counted as they were, so it goes on reading those; a file replaced meanwhile
        (``overwrite``, a rewrite of a file cut short) is another file: InputError."""
        stat, self._released = self._released, None
        try:
            now = os.stat(self.path)
        except OSError:
            now = None
        if now is None or stat == "replaced" or not os.path.samestat(now, stat):
            raise InputError(f"trajectory {self.path} was replaced since this reader opened it; open it again")
        self._file, _ = _open_h5(self.path, "r")
        self._closer = weakref.finalize(self, _close_h5, self._file)

    @property
    def n_atoms(self) -> int:
        return len(self._static["numbers"])

    @property
    def names(self) -> list[str]:
        """Names of the datasets (static and per-frame; not the ``checkpoint`` group of the
        integrator state, which :meth:`checkpoint` reads)."""
        import h5py

        return [k for k, v in self._f.items() if isinstance(v, h5py.Dataset)]

    def _is_dataset(self, name) -> bool:
        """Whether the file holds a dataset ``name`` (one lookup: :attr:`names` lists them all)."""
        import h5py

        return isinstance(self._f.get(name), h5py.Dataset)

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------ data access
    def array(self, name, frames=None) -> np.ndarray:
        """Dataset ``name`` as an array; per-frame datasets cover the ``len(self)`` complete frames.

        ``frames`` (per-frame datasets only) reads just those frames from the file: an int (one
        frame, the leading axis dropped; negative counts from the end), a ``slice``, or a 1-D
        sequence of frame indices (in any order, repeats allowed) — so that one frame of a large
        trajectory (``traj.array("spins", frames=-1)``: (N, 3)) never loads the others.
        IndexError for a frame out of range, KeyError for a dataset the file does not hold,
        InputError for ``frames`` given with a static dataset."""
        if name not in self._static and not self._is_dataset(name):
            hint = "; the integrator checkpoint is read with Trajectory.checkpoint()" if name == _CHECKPOINT else ""
            raise KeyError(f"trajectory {self.path} has no dataset {name!r}; it has {self.names}{hint}")
        if name in self._static or (name not in _FRAME_FIELDS and name not in _OPTIONAL_FIELDS):
            if frames is not None:
                raise InputError(f"trajectory {self.path}: {name!r} is not a per-frame dataset; frames= selects frames "
                                 f"of {list(_frame_fields(self._f))}")
            return np.array(self._static[name]) if name in self._static else self._f[name][()]
        ds = self._f[name]
        if frames is None:
            return ds[: self._n]
        if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
            return ds[self._index(frames)]
        if isinstance(frames, slice):
            start, stop, step = frames.indices(self._n)
            if step == 1:
                return ds[start:stop]
            frames = range(start, stop, step)
        idx = np.asarray(frames)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise InputError(f"frames must be an int, a slice or a 1-D sequence of frame indices, got {frames!r}")
        idx = np.array([self._index(i) for i in idx], dtype=np.int64)
        if idx.size == 0:
            return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
        order = np.unique(idx)  # h5py reads increasing indices; put them back in the order asked
        return ds[order][np.searchsorted(order, idx)]

    @refuse_other_names()
    def blocks(self, name, max_bytes=64 << 20, frames=None):
        """Per-frame dataset ``name`` in consecutive blocks of frames, each at most ``max_bytes``
        (at least one frame): yields ``(first frame index, array (k, ...))``, so that a quantity
        over every frame of a trajectory larger than memory is computed block by block.
        ``frames``: a ``slice`` of step 1 (one run's frames), only those are read; default all."""
        if name not in _FRAME_FIELDS and name not in _OPTIONAL_FIELDS:
            raise InputError(f"trajectory {self.path}: blocks() reads per-frame datasets, not {name!r}")
        if name not in self._f:
            raise KeyError(f"trajectory {self.path} has no dataset {name!r}; it has {self.names}")
        ds = self._f[name]
        per_frame = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
        k = max(1, int(max_bytes) // per_frame)
        lo, hi, step = (frames if frames is not None else slice(None)).indices(self._n)
        if step != 1:
            raise InputError(f"trajectory {self.path}: blocks() reads consecutive frames (a slice of step 1), "
                             f"not {frames}")
        for start in range(lo, hi, k):
            # looked up per block: a writer of this process may have closed the file in between
            yield start, self._f[name][start:min(hi, start + k)]

    @property
    def runs(self) -> list[dict]:
        """The runs that wrote the frames, in order: one dict per run (``first_frame``, ``frames``,
        ``first_step`` (the step it continued from; None for the first), ``potential``,
        ``integrator``, ``seed``, ``metadata``), the first from the root attributes, each later
        one a continuation (``mode="a"``, :meth:`spinlat.Simulation.restart`) with another
        potential, integrator, seed or metadata (another temperature, damping, ``every``). A
        continuation with the same ones stays in its run. Runs that left no complete frame are
        not listed."""
        out = [dict(r) for r in _run_records(self._f) if r["first_frame"] < self._n or r["first_frame"] == 0]
        for r, nxt in zip(out, out[1:] + [None]):
            r["frames"] = (nxt["first_frame"] if nxt is not None else self._n) - r["first_frame"]
        return out

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
        return State.from_trusted_arrays(
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

    def checkpoint(self) -> dict | None:
        """The integrator checkpoint stored with the last complete frame: ``{"n_frames", "step",
        "integrator_state"}`` with the arrays read back, or None when the file has none for
        that frame (older files, runs without an integrator)."""
        rec = _read_checkpoint(self._f)
        if rec is None or rec["n_frames"] != self._n or rec.get("integrator_state") is None:
            return None
        try:
            rec["integrator_state"] = _join_arrays(self._f, rec["integrator_state"])
        except Exception:  # noqa: BLE001 - a damaged checkpoint is no checkpoint
            return None
        return rec

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        self._released = None
        _READERS.discard(self)
        if self._file is not None:
            self._file = None
            self._closer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"Trajectory({str(self.path)!r}, frames={self._n}, n_atoms={self.n_atoms})"
