"""Exception hierarchy of spinlat.

Every error spinlat raises on purpose derives from :class:`SpinlatError`, so callers can
catch one type. The subclasses say what kind of problem was found; the message names it.
"""


class SpinlatError(Exception):
    """Base class of all spinlat errors."""


class InputError(SpinlatError, ValueError):
    """Bad input given to a public function: wrong shape, NaN/inf, negative values, ..."""


class ShapeError(InputError):
    """An array has the wrong shape."""


class NonFiniteError(InputError):
    """An array holds NaN or infinite values."""


class UnknownElementError(InputError):
    """An atomic number or symbol that is not a chemical element, or not known to a potential."""


class ZeroSpinError(InputError):
    """A magnetic atom was given a spin vector of zero length."""


class OverlappingAtomsError(InputError):
    """Two atoms are closer than the allowed minimum distance."""


class CellError(InputError):
    """A periodic cell is singular or otherwise unusable."""


class ExportError(InputError):
    """A model, state or run cannot be expressed in another program's input (LAMMPS, OVF, ...);
    the message names the term or setting."""


class MissingFileError(InputError, FileNotFoundError):
    """A file given to spinlat to read does not exist (also a ``FileNotFoundError``, so code that
    catches the built-in keeps working)."""


class FileFormatError(SpinlatError, ValueError):
    """A file is malformed, truncated, or not of the expected format."""


class ConfigError(InputError):
    """A configuration (YAML, keyword arguments) has a bad or missing key."""


class KeywordError(ConfigError, TypeError):
    """A keyword argument a function does not take (misspelt, or another entry point's or code's
    name for it); the message names it, the close matches and the keywords accepted. A
    :class:`ConfigError` (an InputError) and also a ``TypeError``, as Python's own error for an
    unexpected keyword, so code that catches that keeps working."""


class SimulationError(SpinlatError, RuntimeError):
    """A simulation became unphysical (NaN, exploding energy) and was stopped."""


class StorageError(SpinlatError, OSError):
    """A file could not be written or read back (disk full, file-size limit, I/O error, a file
    held by another process); the message says what is safe on disk."""


class DeviceError(SpinlatError, RuntimeError):
    """A compute device was asked for that is not available."""


class WorkerError(SpinlatError, RuntimeError):
    """Worker processes asked for (``workers=`` of a search or sweep) could not be started or
    stopped before finishing; the message says why and what to change."""


class ConvergenceWarning(UserWarning):
    """An iterative solver inside a run (e.g. the implicit spin step of
    :class:`~spinlat.integrators.SpinLatticeNVE`) stopped at its iteration cap before reaching its
    tolerance; the message names the tolerance, the residual and what to change."""


class ReproducibilityWarning(UserWarning):
    """A run cannot continue a random stream bit for bit (e.g. a restart from a checkpoint written
    by an older spinlat whose noise generator differs): the run goes on correctly, but its
    trajectory differs from the one the interrupted run would have followed."""
