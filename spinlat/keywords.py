"""Keyword names that mean the same thing in different spinlat entry points (and in other codes).

spinlat's minimisers, searches and GNEB grew with names taken from the methods they follow:
:func:`spinlat.minimize` limits its iterations with ``max_steps`` and has one tolerance per
degree of freedom (``tmax`` eV, ``fmax`` eV/Å, ``smax`` eV/Å³, ``hmax`` eV/μB, as ASE's
``fmax``), while :func:`spinlat.gneb` (names fixed by DESIGN.md) takes ``max_iterations`` and
one ``tol``. A keyword that belongs to another entry point (or to SciPy, ASE, scikit-learn:
``maxiter``, ``gtol``, ``random_state``, ``n_jobs``) is refused with an
:class:`~spinlat.errors.InputError` (:class:`~spinlat.errors.ConfigError` in a config) that
names the keyword this entry point uses for the same thing, instead of Python's bare
``TypeError: unexpected keyword argument`` or a silent default.
"""

from __future__ import annotations

import difflib
import functools
import inspect

from .errors import InputError

__all__ = ["SAME_MEANING", "hint", "check_names", "refuse_other_names"]

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
    close = difflib.get_close_matches(str(key), accepted, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_names(where, given, accepted, error=InputError) -> None:
    """Raise ``error`` for the first name of ``given`` not in ``accepted``: ``"<where>: unknown
    keyword 'max_iterations'; here the step / iteration limit is max_steps; expected one of ..."``."""
    accepted = list(accepted)
    for key in given:
        if key not in accepted:
            raise error(f"{where}: unknown keyword {key!r}{hint(key, accepted)}; expected one of "
                        f"{', '.join(sorted(map(str, accepted)))}")


def refuse_other_names(where=None, extra=()):
    """Decorator: a keyword argument the function does not take raises :class:`InputError`
    through :func:`check_names` (``where``: the name in the message, default the function's;
    ``extra``: more names that count as accepted, those a ``**kwargs`` passes on), before the
    function runs. The signature (``inspect.signature``, help) stays the function's; a warning the
    function gives its caller needs one more ``stacklevel`` (this wrapper is a frame)."""
    def wrap(func):
        sig = inspect.signature(func)
        named = [p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        label = where or func.__name__

        @functools.wraps(func)
        def checked(*args, **kwargs):
            accepted = named + list(extra() if callable(extra) else extra)
            if not takes_any or extra:
                check_names(label, kwargs, accepted)
            return func(*args, **kwargs)

        return checked

    return wrap
