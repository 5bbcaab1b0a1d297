"""Integrators: spin-lattice dynamics, frozen-lattice LLG, thermostats, Monte Carlo."""

from .base import Integrator

_LAZY = {
    "SpinLatticeNVE": ".spin_lattice",
    "SpinLatticeLangevin": ".spin_lattice",
    "LLG": ".llg",
    "MonteCarlo": ".monte_carlo",
}

__all__ = ["Integrator", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinlat.integrators' has no attribute {name!r}")
