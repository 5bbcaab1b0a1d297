"""mMACE: an equivariant MACE potential with magnetic moments as inputs.

See :mod:`spinlat.potentials.mmace.model` for the architecture and its symmetries, and
:class:`~spinlat.potentials.mmace.potential.MagneticMACE` for the spinlat potential;
:class:`~spinlat.potentials.mmace.reference.ReferenceMagneticMACE` runs models of the reference
magnetic MACE (mace-torch pull request 1244)."""


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
