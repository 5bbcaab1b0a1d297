"""Energy models behind one interface: ``compute(state, ...) -> Evaluation``; terms at most
quadratic in each spin also give ``spin_couplings(state) -> LinearSpinCouplings``."""

from .base import Evaluation, Potential, SumPotential, spin_torques

__all__ = ["Evaluation", "Potential", "SumPotential", "spin_torques", "LinearSpinCouplings", "EAM",
           "BetheSlaterExchange", "Heisenberg", "Zeeman", "UniaxialAnisotropy", "CubicAnisotropy",
           "Landau", "Biquadratic", "Quadruplet", "MagneticMACE", "ReferenceMagneticMACE"]

_LAZY = {
    "LinearSpinCouplings": ".couplings",
    "EAM": ".eam",
    "BetheSlaterExchange": ".exchange",
    "Heisenberg": ".heisenberg",
    "Zeeman": ".single_site",
    "UniaxialAnisotropy": ".single_site",
    "CubicAnisotropy": ".single_site",
    "Landau": ".single_site",
    "Biquadratic": ".biquadratic",
    "Quadruplet": ".quadruplet",
    "MagneticMACE": ".mmace",
    "ReferenceMagneticMACE": ".mmace",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinlat.potentials' has no attribute {name!r}")
