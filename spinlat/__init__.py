"""spinlat: spin-lattice simulation engine for magnetic materials.

Units: Å, fs, eV, amu, K, μB, T (see :mod:`spinlat.units`).
"""

__version__ = "0.1.0"

from . import errors, units  # noqa: E402
from .state import State  # noqa: E402
from .neighbors import NeighborList  # noqa: E402
from .minimization import minimize  # noqa: E402  (the module is spinlat.minimization)
from . import training  # noqa: E402,F401  (light; installs the trainer behind MagneticMACE.train)


def __getattr__(name):
    # heavy sub-packages are imported on first use
    import importlib

    if name in ("io", "potentials", "integrators", "analysis", "observables", "statistics", "datasets", "search",
                "ase", "data", "transitions", "workflows"):
        return importlib.import_module(f".{name}", __name__)
    if name == "Simulation":
        from .simulation import Simulation

        return Simulation
    if name in ("gneb", "GNEBResult"):
        from . import transitions

        return getattr(transitions, name)
    if name == "bain_path":
        from .workflows.bain import bain_path

        return bain_path
    if name == "sweep":
        from .search import sweep

        return sweep
    raise AttributeError(f"module 'spinlat' has no attribute {name!r}")
