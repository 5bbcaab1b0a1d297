"""The integrator protocol shared by dynamics, Monte Carlo and their drivers.

An integrator is configured once (time step, temperatures, seed) and then advances states:
``run(state, potential, steps)`` takes a :class:`~spinlat.state.State` and returns a new one
(state in, state out; the input is never modified). Random streams live in the integrator,
so successive ``run`` calls continue one reproducible stream: same seed, same machine, same
trajectory bit for bit.
"""

from __future__ import annotations


from .. import validation
from ..errors import InputError


class Integrator:
    """Base class. Subclasses implement ``run`` and usually ``check``.

    Attributes
    ----------
    dt : time step in fs (``None`` for Monte Carlo, where one step is one sweep).
    last_evaluation : the potential's :class:`~spinlat.potentials.Evaluation` at the state
        returned by the last ``run`` when the integrator has it (saves a recomputation),
        else ``None``.
    """

    dt: float | None = None
    #: whether the lattice moves (False for frozen-lattice LLG and Monte Carlo)
    moves_lattice: bool = True
    #: whether spins move
    moves_spins: bool = True

    def __init__(self):
        self.last_evaluation = None

    def check(self, state, potential) -> None:
        """Raise a clear error if this integrator cannot run ``state`` with ``potential``."""
        if self.moves_spins and not getattr(potential, "provides_magnetic_forces", False):
            raise InputError(f"{type(self).__name__} moves spins but {potential!r} gives no magnetic forces")

    def run(self, state, potential, steps: int):  # pragma: no cover - abstract
        """Advance ``steps`` steps; return the new State."""
        raise NotImplementedError

    def describe(self) -> str:
        return repr(self)


def check_dt(dt, max_dt=10.0, name="time step dt"):
    """A time step in fs: a positive real number ≤ ``max_dt`` (a bool or a string is refused).
    Raises InputError naming ``name``."""
    dt = validation.number(dt, name, positive=True, unit="fs")
    if dt > max_dt:
        raise InputError(f"{name} = {dt} fs is absurdly large (limit {max_dt} fs)")
    return dt


def check_nonnegative(value, name, unit):
    """A non-negative real number (``unit`` named in the error). Raises InputError."""
    return validation.number(value, name, nonnegative=True, unit=unit)


def check_seed(seed, name="seed"):
    """A random seed for ``numpy.random.default_rng``: None, a non-negative integer, a
    SeedSequence or a Generator. Raises InputError."""
    return validation.seed(seed, name)
