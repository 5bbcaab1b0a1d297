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

The evaluation travels with the state: an integrator that ends a run with the potential's
:class:`~spinlat.potentials.base.Evaluation` at the returned State (the forces a velocity-Verlet
step computes anyway, LLG's final fields) records the pair as :attr:`Integrator.last_run`, a
:class:`DynamicsState`. :meth:`Integrator.evaluation_at` hands it out for exactly that State
object (and potential): the next ``run`` from that State starts from those forces, and
:class:`~spinlat.Simulation` writes its frame without evaluating again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import validation
from ..errors import InputError, ReproducibilityWarning
from .noise import GENERATOR, PhiloxNoise


@dataclass(frozen=True)
class DynamicsState:
    """A State with the potential's Evaluation at it, as a run left them.

    Attributes
    ----------
    state : the :class:`~spinlat.state.State` a run returned.
    potential : the potential the run was made with.
    evaluation : :class:`~spinlat.potentials.base.Evaluation` of ``potential`` at ``state``
        (energy eV, forces eV/Å, magnetic forces eV/μB; arrays not computed are None), or None.
    """

    state: object
    potential: object
    evaluation: object = None

    def evaluation_for(self, state, potential, *, forces=False, magnetic_forces=False):
        """``evaluation`` if it belongs to this very ``state`` object and ``potential`` and holds
        the forces / magnetic forces asked for, else None."""
        ev = self.evaluation
        if ev is None or state is not self.state or potential is not self.potential:
            return None
        if (forces and ev.forces is None) or (magnetic_forces and ev.magnetic_forces is None):
            return None
        return ev


class Integrator:
    """Base class. Subclasses implement ``run`` and usually ``check``.

    Attributes
    ----------
    dt : time step in fs (``None`` for Monte Carlo, where one step is one sweep).
    seed : seed of the integrator's random stream (None: no stream, or an unseeded one).
    last_run : :class:`DynamicsState` of the last ``run``: the State it returned and the
        potential's Evaluation there when the integrator has it, else None.
    last_evaluation : ``last_run.evaluation`` (None when there is none).
    """

    dt: float | None = None
    seed = None
    #: the random generator of the integrator's stream: a ``numpy.random.Generator``, a
    #: :class:`~spinlat.integrators.noise.PhiloxNoise` (Gaussian noise drawn inside the threaded
    #: kernels), or None (no randomness)
    rng = None
    #: whether the lattice moves (False for frozen-lattice LLG and Monte Carlo)
    moves_lattice: bool = True
    #: whether spins move
    moves_spins: bool = True

    def __init__(self):
        self.last_run = None

    @property
    def last_evaluation(self):
        """The potential's :class:`~spinlat.potentials.Evaluation` at the State the last ``run``
        returned, or None; assigning None forgets it (the State is then evaluated afresh)."""
        return None if self.last_run is None else self.last_run.evaluation

    @last_evaluation.setter
    def last_evaluation(self, ev):
        if self.last_run is not None:
            self.last_run = DynamicsState(self.last_run.state, self.last_run.potential, ev)

    def evaluation_at(self, state, potential, *, forces=False, magnetic_forces=False):
        """The Evaluation of ``potential`` at ``state`` that the last run left, when ``state`` is the
        very State object it returned and the Evaluation holds the forces / magnetic forces asked
        for; else None (:meth:`DynamicsState.evaluation_for`)."""
        run = self.last_run
        return None if run is None else run.evaluation_for(state, potential, forces=forces,
                                                          magnetic_forces=magnetic_forces)

    def _record(self, state, potential, evaluation):
        """Set :attr:`last_run` to (state, potential, evaluation) and return ``state``."""
        self.last_run = DynamicsState(state, potential, evaluation)
        return state

    def check(self, state, potential) -> None:
        """Raise a clear error if this integrator cannot run ``state`` with ``potential``."""
        if self.moves_spins and not potential.provides_magnetic_forces:
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

        Here: ``seed`` (int or None) and ``rng``, the state of the random stream ``self.rng``
        when the integrator has one: ``numpy.random.Generator.bit_generator.state``, or for a
        :class:`~spinlat.integrators.noise.PhiloxNoise` ``{"generator": "philox4x32", "key":
        [k0, k1], "counter": int, "normals": "ziggurat256"}``. :class:`~spinlat.Simulation` stores the checkpoint of the
        last complete frame in the trajectory and hands it to :meth:`restore` on restart."""
        out = {}
        if isinstance(self.rng, np.random.Generator):
            out["seed"] = seed_key(self.seed)
            out["rng"] = self.rng.bit_generator.state
        elif isinstance(self.rng, PhiloxNoise):
            out["seed"] = seed_key(self.seed)
            out["rng"] = self.rng.state()
        return out

    def restore(self, checkpoint, state, potential) -> None:
        """Continue from a :meth:`checkpoint` taken at ``state``: the random stream goes on where
        it stopped when the checkpoint's ``seed`` equals this integrator's (a different seed
        asks for a new stream, which is then kept). Unknown or missing entries are ignored.

        A checkpoint holding a NumPy bit-generator state for an integrator whose stream is now a
        :class:`~spinlat.integrators.noise.PhiloxNoise` (a trajectory written before the noise
        moved into the threaded kernels) restarts with a Philox key drawn from that saved
        generator (a stream of its own, not a repeat of the run's first draws) and warns
        (:class:`~spinlat.errors.ReproducibilityWarning`): the continued run is correct but
        not the trajectory the interrupted run would have followed. Raises InputError for a
        malformed or unknown generator state."""
        saved = checkpoint.get("rng")
        rng = self.rng
        if not isinstance(saved, dict) or checkpoint.get("seed") != seed_key(self.seed):
            return
        if isinstance(rng, PhiloxNoise):
            if saved.get("generator") == GENERATOR:
                rng.set_state(saved)
                return
            if "bit_generator" not in saved:
                raise InputError(f"checkpoint holds the state of an unknown random generator "
                                 f"{saved.get('generator')!r}")
            old = _numpy_generator(saved)
            words = np.random.SeedSequence(old.integers(0, 2**32, size=4, dtype=np.uint64)).generate_state(2)
            rng.key = (int(words[0]), int(words[1]))
            rng.counter = 0
            warnings.warn(ReproducibilityWarning(
                f"{type(self).__name__}: the checkpoint holds a {saved.get('bit_generator')} state from an older "
                f"spinlat; the noise is now {GENERATOR} (drawn inside the threaded kernels), so the restarted run "
                f"continues with a new random stream (keyed from the saved one) and does not repeat the "
                f"interrupted trajectory bit for bit"), stacklevel=2)
            return
        if not isinstance(rng, np.random.Generator):
            return
        if "bit_generator" not in saved:
            raise InputError(f"checkpoint holds the state of an unknown random generator {saved.get('generator')!r}")
        new = _numpy_generator(saved, rng)
        if new is not rng:
            self.rng = new


def _numpy_generator(saved, rng=None):
    """A NumPy Generator in the bit-generator state ``saved`` (``rng`` itself when its bit
    generator is of that kind). Raises InputError for an unknown or invalid state."""
    name = saved.get("bit_generator")
    if rng is None or name != type(rng.bit_generator).__name__:
        cls = getattr(np.random, str(name), None)
        if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
            raise InputError(f"checkpoint holds the state of an unknown random generator {name!r}")
        rng = np.random.Generator(cls())
    try:
        rng.bit_generator.state = saved
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"checkpoint holds an invalid {name} random generator state: {exc}") from None
    return rng


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
