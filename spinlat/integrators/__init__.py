"""Integrators: spin-lattice dynamics, frozen-lattice LLG, thermostats, Monte Carlo, and the
field engine they share (:mod:`spinlat.integrators.fields`)."""

from .base import DynamicsState, Integrator

_LAZY = {
    "SpinLatticeNVE": ".spin_lattice",
    "SpinLatticeLangevin": ".spin_lattice",
    "LLG": ".llg",
    "MonteCarlo": ".monte_carlo",
    "SpinFieldEngine": ".fields",
}

__all__ = ["DynamicsState", "Integrator", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinlat.integrators' has no attribute {name!r}")
