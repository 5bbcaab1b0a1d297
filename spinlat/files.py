"""Crash-safe writing of user files: write a temporary file beside the target, flush and fsync it,
then rename it over the target (``os.replace``, atomic on POSIX and Windows within one file
system) and fsync the directory. A crash, a full disk or an exception part-way through leaves the
previous file as it was (and no temporary file behind); readers never see a half-written file.

Every writer of a user file in spinlat goes through :func:`atomic_write` (file objects: text,
CSV, JSON, extxyz, LAMMPS inputs, model files) or :func:`atomic_path` (libraries that write to a
path themselves: matplotlib, ASE, the OVF library, h5py). HDF5 trajectories have their own
append-and-checkpoint protocol (:mod:`spinlat.io.hdf5`). Available as :func:`spinlat.io.atomic_write`
too; it lives below :mod:`spinlat.io` so that the potentials (model files) can use it.

The recipe (write, fsync file, rename, fsync directory) is the one of ext4/XFS's documented
guarantees for ``rename`` replacement, e.g. T. Ts'o, "Don't fear the fsync!" (2009), and
``man 2 rename``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from . import validation
from .errors import StorageError
from .keywords import refuse_other_names

__all__ = ["atomic_write", "atomic_path", "atomic_write_text"]


def _fsync_directory(directory: str) -> None:
    """fsync a directory so that a rename in it is durable (no-op where directories cannot be
    opened, e.g. on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_bits(target: str) -> int:
    """Permission bits for the new file: the old file's, or 0o666 less the umask."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
@refuse_other_names()
def atomic_path(path, *, copy: bool = False, fsync: bool = True, name: str = "path"):
    """Context manager yielding a temporary path (``str``) in the directory of ``path``; write the
    whole file there. On a normal exit the temporary file is fsync-ed and renamed over ``path``;
    on an exception it is removed and ``path`` is untouched.

    ``copy``: start from a copy of the existing ``path`` (for appending); ``fsync``: make the
    result durable (file and directory); ``name``: the argument's name in messages. Raises
    InputError for a bad ``path``, :class:`~spinlat.errors.StorageError` when the directory does
    not exist or the file cannot be written or renamed (the message says the old file is intact)."""
    target = os.path.abspath(validation.path(path, name))
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise StorageError(f"cannot write {path}: directory {directory} does not exist")
    if os.path.isdir(target):
        raise StorageError(f"cannot write {path}: it is a directory")
    try:
        # the target's name (and so its extension, which ASE and matplotlib read) ends the name
        fd, tmp = tempfile.mkstemp(prefix=".spinlat-tmp-", suffix="-" + os.path.basename(target), dir=directory)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; nothing was changed") from None
    os.close(fd)
    try:
        if copy and os.path.exists(target):
            shutil.copyfile(target, tmp)
        yield tmp
        os.chmod(tmp, _mode_bits(target))
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}; the previous file (if any) is "
                               f"intact") from exc
        raise
    if fsync:
        _fsync_directory(directory)


@contextlib.contextmanager
@refuse_other_names()
def atomic_write(path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None,
                 fsync: bool = True, name: str = "path"):
    """Context manager yielding a file object open for writing a temporary file beside ``path``
    (``mode`` ``"w"``/``"wb"``, or ``"a"``/``"ab"`` to append to a copy of the existing file);
    renamed over ``path`` after flush and fsync when the block ends normally, removed (``path``
    untouched) when it raises. Example::

        with atomic_write("table.csv") as fh:
            fh.write("T,M\\n")

    Raises InputError for a bad ``path`` or ``mode``, StorageError as :func:`atomic_path`."""
    mode = validation.choice(mode, "mode", ("w", "wb", "a", "ab"))
    binary = mode.endswith("b")
    with atomic_path(path, copy=mode.startswith("a"), fsync=False, name=name) as tmp:
        kw = {} if binary else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **kw) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
    if fsync:
        _fsync_directory(os.path.dirname(os.path.abspath(os.fspath(path))))


#: magic bytes of the compressed files other codes write (LAMMPS's ``dump ... FILE.gz``, gzip-ed
#: TB2J outputs and potential tables) → the module that reads them
_COMPRESSION = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "lzma"))


def open_decompressed(path):
    """``path`` opened for binary reading, decompressed when it is gzip, bzip2 or xz (recognised by
    its first bytes, whatever its name): the handle reads, tells and seeks in the uncompressed
    bytes. Raises OSError as ``open`` does (EOFError later, for a compressed file cut short)."""
    import importlib

    with open(path, "rb") as fh:
        magic = fh.read(6)
    for signature, module in _COMPRESSION:
        if magic.startswith(signature):
            return importlib.import_module(module).open(path, "rb")
    return open(path, "rb")


def atomic_write_text(path, text: str, *, name: str = "path") -> None:
    """Write the string ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    with atomic_write(path, name=name) as fh:
        fh.write(text)


def save_figure(fig, path, dpi: int = 120):
    """Write the matplotlib figure ``fig`` to ``path`` (its format from the suffix) through
    :func:`atomic_path` — an earlier figure there stays until the new one is complete — and close
    it, also when writing fails (a full disk, an unknown suffix: a plotting loop would otherwise
    keep every failed figure open). Returns ``path``."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def file_digest(path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
