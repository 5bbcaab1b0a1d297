"""Exception hierarchy of spinlat.

Every error spinlat raises on purpose derives from :class:`SpinlatError`, so callers can
catch one type. The subclasses say what kind of problem was found; the message names it.
"""


class SpinlatError(Exception):
    """Base class of all spinlat errors. A reader's error that one of its options resolves (a
    LAMMPS dump without elements: ``elements``) carries that option's name in ``option``
    (:func:`needs_option`), which callers such as a run config turn into a hint."""


def needs_option(option: str, exc: SpinlatError) -> SpinlatError:
    """``exc`` with ``exc.option = option``: the reader option that resolves the problem it names
    (kept when the error is pickled). Returns ``exc``, to be raised."""
    exc.option = option
    return exc


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


class InteractionUnitError(FileFormatError):
    """A spin code's file holds interaction values implausible for the unit they are read in (a
    VAMPIRE UCF in meV read as joules, :func:`spinlat.io.read_vampire`); ``unit`` names the other
    unit the reader takes ("meV" or "J"), in which the file may be read instead."""

    def __init__(self, unit, message):
        super().__init__(message)
        self.unit = unit

    def __reduce__(self):  # picklable (across processes) with its unit
        return type(self), (self.unit, self.args[0])


class FixedParameterError(InputError, AttributeError):
    """A potential's parameter was assigned after construction (``zeeman.B = ...``): the term's
    kernels, its coupling tables and the integrators' caches hold the value it was built with, so
    the assignment would change its description but not its energy. Build a new term instead
    (also an ``AttributeError``, what Python raises for a read-only attribute)."""


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
