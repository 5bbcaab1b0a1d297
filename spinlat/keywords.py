"""Keyword names that mean the same thing in different spinlat entry points (and in other codes).

spinlat's minimisers, searches and GNEB grew with names taken from the methods they follow:
:func:`spinlat.minimize` limits its iterations with ``max_steps`` and has one tolerance per
degree of freedom (``tmax`` eV, ``fmax`` eV/Å, ``smax`` eV/Å³, ``hmax`` eV/μB, as ASE's
``fmax``), while :func:`spinlat.gneb` (names fixed by DESIGN.md) takes ``max_iterations`` and
one ``tol``. A keyword that belongs to another entry point (or to SciPy, ASE, scikit-learn:
``maxiter``, ``gtol``, ``random_state``, ``n_jobs``) is refused with an
:class:`~spinlat.errors.InputError` (:class:`~spinlat.errors.ConfigError` in a config) that
names the keyword this entry point uses for the same thing, instead of Python's bare
``TypeError: unexpected keyword argument`` or a silent default. A misspelt keyword
(``Simulation(..., evrey=10)``, ``sim.run(stpes=10)``) is refused the same way, naming the
close matches: :func:`refuse_other_names` decorates the public functions, methods and classes
(their constructor), and the error is a :class:`~spinlat.errors.KeywordError` (an InputError and
a TypeError).
"""

from __future__ import annotations

import difflib
import functools
import inspect

from .errors import KeywordError

#: where the names of mMACE hyperparameters and training options are (for :func:`parameters_of`)
HYPERPARAMETERS = "spinlat.potentials.mmace.hyperparameters:Hyperparameters"
TRAINING_OPTIONS = "spinlat.training.options:TrainingOptions"
MINIMIZE = "spinlat.minimization:minimize"

__all__ = ["SAME_MEANING", "hint", "check_names", "refuse_other_names", "parameters_of"]

#: what a keyword means → the names spinlat and other codes give it
SAME_MEANING = {
    "the step / iteration limit": ("max_steps", "max_iterations", "max_iter", "maxiter", "n_iter", "niter",
                                   "iterations", "n_iterations", "steps", "n_steps", "nsteps", "max_evaluations",
                                   "maxfun"),
    "the convergence tolerance": ("tmax", "fmax", "smax", "hmax", "tol", "ftol", "gtol", "xtol", "tolerance",
                                   "force_tol", "torque_tol", "conv_tol", "energy_tol", "angle_tol"),
    "the random seed": ("seed", "rng", "random_state", "random_seed", "rng_seed"),
    "the temperature": ("temperature", "temperatures", "T", "temp", "temps", "kT"),
    "the number of Monte Carlo sweeps": ("sweeps", "n_sweeps", "nsweeps", "mc_sweeps", "mc_steps"),
    "the number of random starts": ("starts", "n_starts", "nstarts", "trials", "n_trials", "restarts"),
    "the number of worker processes": ("workers", "n_workers", "n_jobs", "processes", "nprocs", "n_procs"),
    "the frame interval": ("every", "write_every", "save_every", "dump_every", "frame_every", "output_every",
                           "traj_every", "stride", "nstxout"),
    "the cutoff radius": ("r_max", "cutoff", "rcut", "r_cut", "cutoff_radius"),
    "the number of epochs": ("epochs", "max_epochs", "n_epochs", "num_epochs", "nepochs"),
    "the learning rate": ("lr", "learning_rate", "eta"),
    "the number of images": ("images", "n_images", "nimages"),
    "the spring constant": ("spring_constant", "k", "spring", "k_spring"),
}


def hint(key, accepted) -> str:
    """A clause naming what ``accepted`` (the keywords of one entry point) calls what ``key``
    means elsewhere (:data:`SAME_MEANING`), e.g. ``"; here the step / iteration limit is max_steps"``,
    else a close match (``" (did you mean 'tmax'?)"``), else an empty string."""
    accepted = [str(a) for a in accepted]
    for meaning, names in SAME_MEANING.items():
        if key in names:
            here = [n for n in names if n in accepted and n != key]
            if here:
                return f"; here {meaning} is {' / '.join(here)}"
    close = difflib.get_close_matches(str(key), accepted, n=3, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(map(repr, close))}?)"


def check_names(where, given, accepted, error=KeywordError) -> None:
    """Raise ``error`` (default :class:`~spinlat.errors.KeywordError`) for the first name of
    ``given`` not in ``accepted``: ``"<where>: unknown keyword 'max_iterations'; here the step /
    iteration limit is max_steps; expected one of ..."``, or ``"Simulation.run: unknown keyword
    'stpes' (did you mean 'steps'?); expected one of steps"``."""
    accepted = list(accepted)
    for key in given:
        if key not in accepted:
            raise error(f"{where}: unknown keyword {key!r}{hint(key, accepted)}; expected one of "
                        f"{', '.join(sorted(set(map(str, accepted))))}")


def refuse_other_names(where=None, extra=()):
    """Decorator: a keyword argument the function does not take raises
    :class:`~spinlat.errors.KeywordError` through :func:`check_names` (``where``: the name in the
    message, default the function's qualified name, ``Simulation.run``; ``extra``: more names
    that count as accepted, those a ``**kwargs`` passes on, or a callable giving them), before the
    function runs. On a class it decorates the constructor (``__init__``, named by the class). The
    signature (``inspect.signature``, help) stays the function's; a warning the function gives its
    caller needs one more ``stacklevel`` (this wrapper is a frame)."""
    def wrap(func):
        if inspect.isclass(func):
            func.__init__ = refuse_other_names(where or func.__qualname__, extra)(func.__init__)
            return func
        if isinstance(func, (staticmethod, classmethod)):
            return type(func)(wrap(func.__func__))
        sig = inspect.signature(func)
        named = [p.name for k, p in enumerate(sig.parameters.values())
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and not (k == 0 and p.name in ("self", "cls"))]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        label = where or func.__qualname__

        fixed = None if callable(extra) else frozenset(named) | frozenset(extra)
        checks = not takes_any or bool(extra)

        @functools.wraps(func)
        def checked(*args, **kwargs):
            if checks and kwargs and (fixed is None or not fixed.issuperset(kwargs)):  # a cheap test first
                check_names(label, kwargs, named + list(extra() if callable(extra) else extra))
            return func(*args, **kwargs)

        return checked

    return wrap


def parameters_of(*where, exclude=()):
    """A callable for ``extra`` of :func:`refuse_other_names`: the keyword parameters of the
    functions or classes ``where`` (``"module:qualified.name"``, imported on first use, so that a
    light module names a heavy one's keywords), less ``exclude``: what a ``**kwargs`` passes on."""
    names = []

    def accepted():
        if not names:
            import importlib

            for spec in where:
                module, _, qual = spec.partition(":")
                obj = importlib.import_module(module)
                for part in qual.split("."):
                    obj = getattr(obj, part)
                params = inspect.signature(obj).parameters.values()
                names.extend(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                             and p.name not in exclude and p.name != "self")
        return names

    return accepted
