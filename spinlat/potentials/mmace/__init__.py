"""mMACE: an equivariant MACE potential with magnetic moments as inputs.

See :mod:`spinlat.potentials.mmace.model` for the architecture and its symmetries, and
:class:`~spinlat.potentials.mmace.potential.MagneticMACE` for the spinlat potential;
:class:`~spinlat.potentials.mmace.reference.ReferenceMagneticMACE` runs models of the reference
magnetic MACE (mace-torch pull request 1244). Training lives above the potentials, in
:mod:`spinlat.training`.
"""

#: the function behind :meth:`MagneticMACE.train`: :func:`spinlat.training.train`, which installs
#: itself here when :mod:`spinlat.training` is imported (``import spinlat`` does). The potentials
#: never import the training package: it sits above them (it reads data sets, runs the optimiser).
trainer = None


def __getattr__(name):
    if name == "MagneticMACE":
        from .potential import MagneticMACE

        return MagneticMACE
    if name == "MagneticMACEModel":
        from .model import MagneticMACEModel

        return MagneticMACEModel
    if name == "ReferenceMagneticMACE":
        from .reference import ReferenceMagneticMACE

        return ReferenceMagneticMACE
    if name == "build_batch":
        from .graph import build_batch

        return build_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MagneticMACE", "MagneticMACEModel", "ReferenceMagneticMACE", "build_batch"]
