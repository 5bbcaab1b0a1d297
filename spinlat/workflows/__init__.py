"""Ready-made workflows: Mn3Pt ground state (:mod:`spinlat.workflows.mn3pt`), Bain path
(:mod:`spinlat.workflows.bain`, :func:`bain_path`), Curie temperature with error bars
(:mod:`spinlat.workflows.curie`), magnons and k-paths (:mod:`spinlat.workflows.magnons`), linear
spin waves about any ground state and the magnopy converter (:mod:`spinlat.workflows.lswt`)."""


def __getattr__(name):
    if name == "bain_path":
        from .bain import bain_path

        return bain_path
    raise AttributeError(f"module 'spinlat.workflows' has no attribute {name!r}")
