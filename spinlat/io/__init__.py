"""Input and output: HDF5 trajectories, extxyz, TB2J exchange files."""

_LAZY = {
    "Trajectory": ".hdf5",
    "TrajectoryWriter": ".hdf5",
    "read_extxyz": ".extxyz",
    "write_extxyz": ".extxyz",
    "read_tb2j": ".tb2j",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinlat.io' has no attribute {name!r}")
