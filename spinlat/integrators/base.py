"""The integrator protocol shared by dynamics, Monte Carlo and their drivers.

An integrator is configured once (time step, temperatures, seed) and then advances states:
``run(state, potential, steps)`` takes a :class:`~spinlat.state.State` and returns a new one
(state in, state out; the input is never modified). Random streams live in the integrator,
so successive ``run`` calls continue one reproducible stream.

Reproducibility (``SpinLatticeNVE``, ``SpinLatticeLangevin``, ``LLG``, ``MonteCarlo``): the same
seed and starting State give the same trajectory bit for bit

- however the steps are split into ``run`` calls (``run(100)`` = ``run(47)`` + ``run(53)``; a
  :class:`~spinlat.Simulation` writing a frame every 5 or every 10 steps): each random stream is
  drawn in the same order whatever the chunks, and the spin integrators keep their colouring
  (the order of the sequential spin updates) with the neighbour-list build it was made for;
- when a run is killed and restarted from its trajectory: :meth:`Integrator.checkpoint` is
  stored with every flushed frame and :meth:`Integrator.restore` takes it over (random
  generator state, Monte Carlo's adapted cone, the positions the neighbour list was built at);
- on any number of numba threads: every threaded kernel (spin colour sweeps, Bethe-Slater
  exchange) has each atom's row computed by one thread in a fixed order, with the same
  floating-point contraction as its serial twin, and no reduction across threads.

Not covered: other machines, CPU instruction sets or numba/LLVM versions (the compiled code may
contract or vectorise differently), and potentials evaluated by PyTorch (``MagneticMACE``), whose
threaded reductions depend on ``torch.get_num_threads()``.
"""

from __future__ import annotations

import numpy as np

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

    # -------------------------------------------------------------- restarts
    def checkpoint(self, potential=None) -> dict:
        """What a run continued from the current State needs, besides that State, to go on
        exactly as this integrator would: a dict of JSON scalars, nested dicts and NumPy arrays.

        Here: ``seed`` (int or None) and ``rng``, the state of the random generator ``self.rng``
        (``numpy.random.Generator.bit_generator.state``), when the integrator has one.
        :class:`~spinlat.Simulation` stores the checkpoint of the last complete frame in the
        trajectory and hands it to :meth:`restore` on restart."""
        out = {}
        rng = getattr(self, "rng", None)
        if isinstance(rng, np.random.Generator):
            out["seed"] = seed_key(getattr(self, "seed", None))
            out["rng"] = rng.bit_generator.state
        return out

    def restore(self, checkpoint, state, potential) -> None:
        """Continue from a :meth:`checkpoint` taken at ``state``: the random stream goes on where
        it stopped when the checkpoint's ``seed`` equals this integrator's (a different seed
        asks for a new stream, which is then kept). Unknown or missing entries are ignored."""
        saved = checkpoint.get("rng")
        rng = getattr(self, "rng", None)
        if not isinstance(saved, dict) or not isinstance(rng, np.random.Generator):
            return
        if checkpoint.get("seed") != seed_key(getattr(self, "seed", None)):
            return
        name = saved.get("bit_generator")
        if name != type(rng.bit_generator).__name__:
            cls = getattr(np.random, str(name), None)
            if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
                raise InputError(f"checkpoint holds the state of an unknown random generator {name!r}")
            rng = self.rng = np.random.Generator(cls())
        try:
            rng.bit_generator.state = saved
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"checkpoint holds an invalid {name} random generator state: {exc}") from None


def seed_key(seed):
    """A seed as stored in checkpoints and trajectories: an int, or None for anything else."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return int(seed)
    return None


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
