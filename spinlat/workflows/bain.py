"""The Bain path: energy along the tetragonal deformation bcc (c/a = 1) → fcc (c/a = √2).

The structure is body-centred tetragonal: a conventional cell a × a × c with atoms at (0, 0, 0)
and (½, ½, ½). At c/a = 1 it is bcc; at c/a = √2 it is fcc (the fcc cube of edge c seen along
its [001] with a = c/√2). With V the volume per atom, a = (2V / (c/a))^(1/3).

For each c/a and each magnetic order the energy per atom is computed

- at fixed volume per atom (``volume="fixed"``: the given ``volume_per_atom``, or by default the
  equilibrium volume of the first order at c/a = 1), or
- at relaxed volume (``volume="relaxed"``): the energy minimised over the volume per atom at
  fixed c/a (a bounded 1D minimisation, scipy's Brent method),

for the orders

- ``"FM"``: all moments parallel (along z);
- ``"AFM"``: layered antiferromagnet along c: successive (001) atomic planes alternate, which is
  the B2-type AFM of bcc and the AFM1 [001] order of fcc;
- ``"relaxed"``: the spins minimised (``spinlat.minimize``) from the FM, AFM and ``n_random``
  random starts, the lowest kept.

Moment magnitudes are relaxed at fixed directions (or together with them for ``"relaxed"``)
whenever ``relax_magnitudes`` and the potential depends on them (``depends_on_magnitudes``:
Landau terms, mMACE). Atomic positions stay on the ideal sites (forces vanish there by symmetry).
Works with any spinlat potential, e.g. ``EAM + BetheSlaterExchange + Landau`` or a trained
``MagneticMACE`` model (for alloys pass a ``structure`` callable that decorates the sites).

Symmetry facts the results obey (and the tests check): at fixed volume, bcc and fcc are
stationary points of E(c/a) for orders that keep the cubic symmetry (FM, non-magnetic), since a
volume-conserving tetragonal strain of a cubic crystal has no first-order energy change.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError
from ..files import atomic_write, save_figure
from ..observables import magnetization_norm
from ..state import State
from ..keywords import MINIMIZE, parameters_of, refuse_other_names

ORDERS = ("FM", "AFM", "relaxed")
#: eV/Å: a larger force on an atom of a Bain-path structure gives a UserWarning (not at equilibrium)
MAX_FORCE = 1e-3
SQRT2 = float(np.sqrt(2.0))


@refuse_other_names()
def bct(ca, volume_per_atom, element="Fe", moment=None, reps=(2, 2, 2)) -> State:
    """Body-centred tetragonal supercell (``reps`` of the 2-atom a × a × c cell) with c/a = ``ca``
    and ``volume_per_atom`` Å³; all atoms ``element`` with ``moment`` μB (default: ASE's reference
    moment of the element, else 1 μB), spins along z."""
    from ase.data import atomic_numbers, reference_states

    if not ca > 0 or not volume_per_atom > 0:
        raise InputError(f"bct needs c/a > 0 and a volume per atom > 0, got {ca}, {volume_per_atom} Å³")
    z = atomic_numbers.get(element) if isinstance(element, str) else int(element)
    if z is None:
        raise InputError(f"unknown element {element!r}")
    if moment is None:
        ref = reference_states[z] or {}
        moment = float(ref.get("magmom_per_atom", 1.0))
    a = (2.0 * volume_per_atom / ca) ** (1.0 / 3.0)
    cell = np.diag([a, a, ca * a])
    st = State(np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ cell, [z, z], cell=cell, pbc=True,
               moments=[moment, moment])
    return st.repeat(reps)


def _reference_volume(numbers) -> float:
    """Rough volume per atom (Å³) from ASE's reference crystal structures, for a first guess."""
    from ase.data import reference_states

    vols = []
    for z in np.unique(numbers):
        ref = reference_states[int(z)] or {}
        a, sym = ref.get("a"), ref.get("symmetry")
        if a and sym in ("bcc", "fcc", "sc", "diamond"):
            vols.append(a ** 3 / {"bcc": 2, "fcc": 4, "sc": 1, "diamond": 8}[sym])
    return float(np.mean(vols)) if vols else 12.0


def layered_signs(state) -> np.ndarray:
    """+1/−1 per atom, alternating between successive atomic planes normal to the third cell vector
    (the layered AFM along c). Raises if the periodic cell holds an odd number of planes."""
    frac = state.positions @ np.linalg.inv(state.cell)
    fz = frac[:, 2] - np.floor(frac[:, 2])
    planes = np.sort(fz)
    breaks = np.flatnonzero(np.diff(planes) > 1e-4)
    levels = np.concatenate([[planes[0]], planes[breaks + 1]])
    if len(levels) > 1 and levels[-1] - levels[0] > 1 - 1e-4:  # last plane wraps onto the first
        levels = levels[:-1]
    if len(levels) % 2:
        raise InputError(f"layered AFM needs an even number of atomic planes along c; the cell has {len(levels)}")
    idx = np.argmin(np.abs((fz[:, None] - levels[None, :] + 0.5) % 1.0 - 0.5), axis=1)
    return np.where(idx % 2 == 0, 1.0, -1.0)


class _Evaluator:
    """Energy per atom (eV) of one order at one (c/a, V), with the requested relaxations."""

    def __init__(self, structure, potential, relax_magnitudes, n_random, seed, minimize_kwargs):
        self.structure, self.pot = structure, potential
        self.mags = bool(relax_magnitudes and potential.depends_on_magnitudes)
        self.n_random, self.seed, self.kw = n_random, seed, minimize_kwargs

    def build(self, ca, v):
        st = self.structure(ca, v)
        if not isinstance(st, State):
            raise InputError(f"the structure builder must return a spinlat State, got {type(st).__name__}")
        if not st.pbc.all():
            raise InputError(f"the structure builder must return a periodic crystal (pbc all True), got pbc "
                             f"{st.pbc.tolist()} at c/a = {ca:.6g}")
        per_atom = st.volume / len(st)
        if abs(per_atom - v) > 1e-6 * v:
            raise InputError(f"the structure builder returned {per_atom:.6g} Å³/atom for c/a = {ca:.6g} and "
                             f"volume_per_atom = {v:.6g} Å³: it must build the cell at the volume it is given "
                             "(the rows would report a volume the energies were not computed at)")
        return st

    def __call__(self, order, ca, v):
        from ..minimization import minimize

        st = self.build(ca, v)
        n = len(st)
        z = np.zeros((n, 3))
        z[:, 2] = 1.0
        if order == "FM":
            starts = [z]
        elif order == "AFM":
            starts = [z * layered_signs(st)[:, None]]
        else:
            rng = np.random.default_rng(self.seed)
            starts = [z, z * layered_signs(st)[:, None]] + [rng.normal(size=(n, 3)) for _ in range(self.n_random)]
        best = None
        for s in starts:
            trial, res = st.copy(spins=s), None
            if order == "relaxed":
                trial, res = minimize(trial, self.pot, spins=True, magnitudes=self.mags, return_result=True, **self.kw)
                e = res.energy
            elif self.mags:
                trial, res = minimize(trial, self.pot, spins=False, magnitudes=True, return_result=True, **self.kw)
                e = res.energy
            else:
                e = self.pot.compute(trial, forces=False, magnetic_forces=False).energy
            if best is None or e < best[0]:
                best = (e, trial, res)
        if best[2] is not None:
            best[2].warn_if_unconverged(f"bain_path, order {order} at c/a {ca:.6g}, volume {v:.6g} Å³/atom")
        return best[0] / n, best[1]


def _relax_volume(ev, order, ca, v0, window):
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda v: ev(order, ca, v)[0], bounds=(v0 * (1 - window), v0 * (1 + window)),
                          method="bounded", options={"xatol": 1e-4 * v0})
    v = float(res.x)
    if min(v - v0 * (1 - window), v0 * (1 + window) - v) < 2e-3 * v0:
        raise InputError(f"{order} at c/a = {ca:.4f}: the volume minimum lies at the edge of the search window "
                         f"({v:.3f} Å³/atom); widen volume_window or give a better volume_per_atom")
    return v


@refuse_other_names(extra=parameters_of(MINIMIZE, exclude=("state", "potential", "return_result")))
def bain_path(structure, potential, ca_values=None, volume="fixed", orders=ORDERS, relax_magnitudes=True,
              volume_per_atom=None, volume_window=0.2, reps=(2, 2, 2), moment=None, n_random=2, seed=0,
              plot=None, **minimize_kwargs):
    """Energy per atom along the Bain path for several magnetic orders.

    Parameters
    ----------
    structure : an element symbol (a pure bct crystal, :func:`bct`, with ``reps`` and ``moment``),
        or a callable ``structure(ca, volume_per_atom) -> State`` (alloys, other supercells);
        atomic planes normal to the third cell vector define the layered AFM.
    potential : any spinlat potential.
    ca_values : c/a ratios; default 21 points from 0.9 to 1.6 (bcc at 1, fcc at √2).
    volume : "fixed" (the same volume per atom everywhere) or "relaxed" (minimised at each c/a).
    orders : subset of ("FM", "AFM", "relaxed").
    relax_magnitudes : relax moment magnitudes where the potential depends on them.
    volume_per_atom : Å³; for "fixed", the volume used (default: the equilibrium volume of the
        first order at c/a = 1); for "relaxed", the centre of the search window (default: the
        reference volume of the elements, from ASE).
    volume_window : relative half-width of the volume search window.
    n_random, seed : extra random starts of the "relaxed" order and their seed.
    plot : path of a PNG to write (energy relative to the lowest point vs c/a, one curve per
        order, bcc and fcc marked), or None.
    minimize_kwargs : passed to :func:`spinlat.minimize` (tmax eV, hmax eV/μB, max_steps).

    Returns a list of dicts, one per (order, c/a), in order then c/a order: ``order``, ``ca``,
    ``volume`` (Å³/atom), ``a``, ``c`` (Å), ``energy`` (eV/atom), ``moment`` (mean |m|, μB),
    ``magnetization`` (|Σ m_i| / Σ |m_i|), ``max_force`` (the largest force on an atom, eV/Å: the
    atoms stay on the builder's sites, a UserWarning when it exceeds ``MAX_FORCE``), ``state``
    (the final State). Raises InputError for a builder that returns no periodic State or a cell
    of another volume per atom than it was given.
    """
    if volume not in ("fixed", "relaxed"):
        raise InputError(f"volume must be 'fixed' or 'relaxed', got {volume!r}")
    orders = (orders,) if isinstance(orders, str) else tuple(orders)
    bad = [o for o in orders if o not in ORDERS]
    if bad or not orders:
        raise InputError(f"unknown magnetic order(s) {bad or orders}; choose from {ORDERS}")
    ca_values = np.linspace(0.9, 1.6, 21) if ca_values is None else np.atleast_1d(np.asarray(ca_values, float))
    if ca_values.size == 0 or np.any(~(ca_values > 0)):
        raise InputError(f"c/a values must be positive, got {ca_values}")
    if isinstance(structure, (str, int, np.integer)):
        element = structure

        def structure(ca, v, element=element):  # noqa: F811 - the builder of an element
            return bct(ca, v, element, moment=moment, reps=reps)
    elif not callable(structure):
        raise InputError("structure must be an element symbol or a callable (ca, volume_per_atom) -> State")
    minimize_kwargs.setdefault("tmax", 1e-6)
    minimize_kwargs.setdefault("hmax", 1e-5)
    ev = _Evaluator(structure, potential, relax_magnitudes, n_random, seed, minimize_kwargs)

    if volume_per_atom is None:
        probe = ev.build(1.0, 12.0)
        volume_per_atom = _reference_volume(probe.numbers)
        if volume == "fixed":
            volume_per_atom = _relax_volume(ev, orders[0], 1.0, volume_per_atom, volume_window)
    rows = []
    for order in orders:
        for ca in ca_values:
            v = _relax_volume(ev, order, float(ca), volume_per_atom, volume_window) if volume == "relaxed" \
                else float(volume_per_atom)
            e, st = ev(order, float(ca), v)
            force = float(np.linalg.norm(potential.compute(st, forces=True, magnetic_forces=False).forces,
                                         axis=1).max())
            if force > MAX_FORCE:
                warnings.warn(f"bain_path: {order} at c/a = {float(ca):.6g}, {v:.6g} Å³/atom: the atoms are not at "
                              f"equilibrium (largest force {force:.3g} eV/Å > {MAX_FORCE} eV/Å); the path keeps "
                              "them on the sites the structure gives (a decoration or spin order without a "
                              "centre of inversion on each site), so the energy is not the relaxed one",
                              UserWarning, stacklevel=3)  # the caller (+1: the keyword check's wrapper)
            mags = st.moments
            a = (2.0 * v / ca) ** (1.0 / 3.0)  # bct conventional cell, 2 atoms
            rows.append({"order": order, "ca": float(ca), "volume": v, "a": float(a), "c": float(ca * a),
                         "energy": float(e), "max_force": force,
                         "moment": float(mags[mags > 0].mean()) if np.any(mags > 0) else 0.0,
                         "magnetization": magnetization_norm(st, reduced=True),
                         "state": st})
    if plot is not None:
        plot_bain(rows, plot, title=f"Bain path ({volume} volume)")
    return rows


def format_table(rows) -> str:
    """Text table of :func:`bain_path` rows: energies in meV/atom relative to the lowest row."""
    e0 = min(r["energy"] for r in rows)
    lines = [f"{'order':>8} {'c/a':>7} {'V (Å³/at)':>10} {'a (Å)':>7} {'c (Å)':>7} {'E (eV/at)':>12} "
             f"{'E−Emin (meV/at)':>16} {'|m| (μB)':>9} {'M/Σ|m|':>7}"]
    for r in rows:
        lines.append(f"{r['order']:>8} {r['ca']:7.4f} {r['volume']:10.4f} {r['a']:7.4f} {r['c']:7.4f} "
                     f"{r['energy']:12.6f} {(r['energy'] - e0) * 1e3:16.3f} {r['moment']:9.4f} "
                     f"{r['magnetization']:7.4f}")
    return "\n".join(lines)


def write_table(rows, path) -> None:
    """CSV of :func:`bain_path` rows (no states): order, c/a, V Å³/atom, a Å, c Å, E eV/atom, |m| μB, M."""
    keys = ("order", "ca", "volume", "a", "c", "energy", "moment", "magnetization")
    with atomic_write(path) as f:
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r[k]) for k in keys) + "\n")


def plot_bain(rows, path, title="Bain path") -> None:
    """PNG: E − E_min (meV/atom) against c/a per order; bcc (1) and fcc (√2) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e0 = min(r["energy"] for r in rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = {"FM": "o-", "AFM": "s-", "relaxed": "x--"}  # relaxed often lies on FM: keep both visible
    for order in dict.fromkeys(r["order"] for r in rows):
        sel = [r for r in rows if r["order"] == order]
        ax.plot([r["ca"] for r in sel], [(r["energy"] - e0) * 1e3 for r in sel], styles.get(order, "o-"), ms=4,
                label=order)
    for x, name in ((1.0, "bcc"), (SQRT2, "fcc")):
        ax.axvline(x, color="0.6", lw=0.8, ls="--")
        ax.text(x, ax.get_ylim()[1], name, ha="center", va="bottom", fontsize=9)
    ax.set_xlabel("c/a")
    ax.set_ylabel("E − E$_{min}$ (meV/atom)")
    ax.set_title(title, pad=14)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
