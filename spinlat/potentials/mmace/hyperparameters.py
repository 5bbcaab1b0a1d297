"""The mMACE hyperparameters: one definition of each one's type, default, range and meaning.

:class:`Hyperparameters` is the single place where they are checked, wherever they come from:
:meth:`MagneticMACE.create <spinlat.potentials.mmace.potential.MagneticMACE.create>`,
:meth:`MagneticMACEModel.build <spinlat.potentials.mmace.model.MagneticMACEModel.build>`, the
metadata of a model file (:meth:`MagneticMACE.load`, before any network is built), the training
(:func:`spinlat.training.train`) and the ``model:`` section of a ``spinlat train`` config. Names
follow mace-torch (``r_max``, ``num_bessel``, ``num_polynomial_cutoff``, ``max_ell``,
``num_interactions``, ``hidden_irreps``, ``correlation``, ``MLP_irreps``, ``radial_MLP``,
``avg_num_neighbors``); the magnetic ones are spinlat's.

The ranges are far above any published MACE model and low enough that building a network stays
bounded, so a small model file cannot make spinlat build a huge network. Options tagged
``architecture`` fix the shapes of the weights: fine-tuning keeps them.
"""

from __future__ import annotations

import dataclasses

from ... import validation
from ...errors import InputError
from ...options import Options, integer_in, number_in, optional, option, per_element

#: multiplicities of ``hidden_irreps`` / scalars of ``MLP_irreps`` / width of a radial-MLP layer
MAX_CHANNELS = 1024
MAX_WIDTH = 4096
#: highest l of ``hidden_irreps``; layers of ``radial_MLP``
MAX_HIDDEN_L = 4
MAX_RADIAL_LAYERS = 8


def irreps(value, key):
    """An e3nn ``Irreps`` from its string (``"32x0e+32x1o"``); InputError naming ``key`` otherwise."""
    from . import safe_imports  # noqa: F401  -- e3nn through mace-torch, leaving torch.load safe
    from e3nn import o3

    if not isinstance(value, str):
        raise InputError(f"{key}: expected a string of irreps like '32x0e+32x1o', got {value!r}")
    try:
        return o3.Irreps(value)
    except (ValueError, AssertionError, TypeError) as exc:
        raise InputError(f"{key}: {value!r} is not an irreps string like '32x0e+32x1o' ({exc})") from None


def _hidden_irreps(v, k):
    if type(v).__name__ == "Irreps":  # an e3nn Irreps object is taken as its string
        v = str(v)
    ir = irreps(v, k)
    muls = {mul for mul, _ in ir}
    if len(muls) != 1 or not 1 <= next(iter(muls)) <= MAX_CHANNELS or ir.lmax > MAX_HIDDEN_L \
            or "0e" not in [str(x) for _, x in ir]:
        raise InputError(f"{k}: expected irreps holding 0e, all of one multiplicity in [1, {MAX_CHANNELS}] and "
                         f"l ≤ {MAX_HIDDEN_L}, got {v!r}")
    return v


def _mlp_irreps(v, k):
    if type(v).__name__ == "Irreps":
        v = str(v)
    ir = irreps(v, k)
    if ir.lmax != 0 or not 1 <= ir.num_irreps <= MAX_CHANNELS:
        raise InputError(f"{k}: expected 1 to {MAX_CHANNELS} scalars like '16x0e', got {v!r}")
    return v


def _radial_mlp(v, k):
    what = f"a list of integers (1 to {MAX_RADIAL_LAYERS} layer widths, each in [1, {MAX_WIDTH}])"
    if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= MAX_RADIAL_LAYERS or not all(
            validation.is_real_number(w) and not isinstance(w, float) for w in v):
        raise InputError(f"{k}: expected {what}, got {v!r}")
    return [integer_in(1, MAX_WIDTH)(w, f"{k}[{n}]") for n, w in enumerate(v)]


def _correlation(v, k):
    check = integer_in(1, 6)
    if isinstance(v, (list, tuple)):
        if not v:
            raise InputError(f"{k}: expected an integer in [1, 6] or one per interaction, got {v!r}")
        return [check(c, f"{k}[{n}]") for n, c in enumerate(v)]
    return check(v, k)


def _elements(v, k):
    from ase.data import chemical_symbols

    if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= validation.MAX_Z:
        raise InputError(f"{k}: expected a list of 1 to {validation.MAX_Z} distinct elements, got {v!r}")
    out = [chemical_symbols[validation.atomic_number(e, f"{k}[{n}]")] for n, e in enumerate(v)]
    if len(set(out)) != len(out):
        raise InputError(f"{k}: expected distinct elements, got {v!r}")
    return out


@dataclasses.dataclass(frozen=True)
class Hyperparameters(Options):
    """The hyperparameters of an mMACE model (see the module docstring; the architecture is
    described in :mod:`spinlat.potentials.mmace.model`)."""

    elements: list | None = option(None, optional(_elements), "elements the model knows (symbols; species order)",
                                   architecture=True)
    soc: bool = option(True, validation.boolean, "spin-orbit variant: spins locked to the lattice", architecture=True)
    r_max: float = option(5.0, number_in(0.0, 20.0, "Å", low_open=True), "cutoff radius, Å", architecture=True)
    num_bessel: int = option(8, integer_in(1, 64), "radial Bessel functions", architecture=True)
    num_polynomial_cutoff: int = option(5, integer_in(1, 64), "power of the polynomial cutoff envelope",
                                        architecture=True)
    max_ell: int = option(3, integer_in(0, 6), "highest l of the bond harmonics", architecture=True)
    num_interactions: int = option(2, integer_in(1, 8), "message-passing layers", architecture=True)
    hidden_irreps: str = option("32x0e+32x1o", _hidden_irreps,
                                "node features; with soc=True the parity letter is the time-reversal parity",
                                architecture=True)
    correlation: int | list = option(3, _correlation, "body order of the product basis (one, or one per layer)",
                                     architecture=True)
    MLP_irreps: str = option("16x0e", _mlp_irreps, "hidden scalars of the last readout", architecture=True)
    radial_MLP: list = option([64, 64, 64], _radial_mlp, "hidden widths of the radial MLP", architecture=True)
    avg_num_neighbors: float = option(30.0, number_in(0.0, 1e4, low_open=True),
                                      "normalisation of the message sum (training: from the data)")
    m_max: float | dict = option(3.0, per_element(number_in(0.0, 20.0, "μB", low_open=True), "μB"),
                                 "moment scale per species, μB (number or {element: μB})")
    num_moment_basis: int = option(8, integer_in(1, 64), "Chebyshev functions of the moment magnitude",
                                   architecture=True)
    max_ell_m: int = option(1, integer_in(0, 4), "highest l of the moment harmonics (soc=True)", architecture=True)
    max_ell_odd: int = option(1, integer_in(0, 4), "highest l of time-reversal-odd message irreps (soc=True)",
                              architecture=True)
    num_exchange_basis: int = option(4, integer_in(0, 64), "Chebyshev functions of m_i·m_j on the edges",
                                     architecture=True)
    landau_order: int = option(3, integer_in(0, 16), "one-body polynomial in |m|²: orders 1..landau_order (0: off)",
                               architecture=True)
    moment_channels: int | None = option(None, optional(integer_in(1, MAX_WIDTH)),
                                         "channels of moment irreps absent from the node features (None: C // 4)",
                                         architecture=True)

    @classmethod
    def check_together(cls, full, given, prefix, complete):
        corr = full["correlation"]
        if isinstance(corr, list) and len(corr) != full["num_interactions"]:
            raise InputError(f"{prefix}correlation: {len(corr)} entries for {full['num_interactions']} interactions "
                             "(num_interactions)")
        m, elements = full["m_max"], full["elements"]
        if isinstance(m, dict) and elements is not None:
            missing = [e for e in elements if e not in m]
            if missing:
                raise InputError(f"{prefix}m_max: no value for element(s) {missing} (the model knows {elements})")
            extra = sorted(set(m) - set(elements))
            if extra and complete:
                raise InputError(f"{prefix}m_max: values for {extra}, which the model does not know ({elements})")
            if "m_max" in given:
                given["m_max"] = {e: m[e] for e in elements}

    @classmethod
    def architecture(cls) -> list[str]:
        """Names of the options that fix the shapes of the weights (kept when fine-tuning)."""
        return [n for n in cls.names() if cls.spec(n).get("architecture")]


#: defaults of the network's hyperparameters (mace-torch names plus the magnetic ones), without
#: ``elements`` and ``soc``
DEFAULTS = {k: v for k, v in Hyperparameters.defaults().items() if k not in ("elements", "soc")}


def m_max_per_species(m_max, elements) -> list[float]:
    """``m_max`` (a number or {symbol: μB}) as one value per element of ``elements`` (μB)."""
    if isinstance(m_max, dict):
        return [float(m_max[e]) for e in elements]
    return [float(m_max)] * len(elements)


__all__ = ["Hyperparameters", "DEFAULTS", "irreps", "m_max_per_species"]
