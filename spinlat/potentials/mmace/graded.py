"""Irreps graded by time-reversal parity, on top of e3nn's O(3) irreps.

A magnetic feature transforms under the group O(3) × {1, 𝒯}: under a rotation or inversion as an
O(3) irrep (l, p) (e3nn's label: p is the *spatial* parity, the sign under r → −r), and under time
reversal 𝒯 (m → −m) with a sign τ = ±1 of its own. e3nn carries only (l, p), so this module keeps τ
beside every irreps entry and builds e3nn's layers with explicit instructions that obey both
selection rules: a path (l₁,p₁,τ₁) ⊗ (l₂,p₂,τ₂) → (l,p,τ) exists only when |l₁−l₂| ≤ l ≤ l₁+l₂,
p = p₁p₂ (checked by e3nn) and τ = τ₁τ₂ (checked here). Since every path then maps features of a
definite (p, τ) to features of the product (p, τ), the network is equivariant under spatial inversion
and time reversal *separately*, exactly, for any weights.

The magnetic moment m is an axial vector odd under time reversal: its harmonics Y_l(m) are the
graded irreps (l, +1, (−1)^l) (even under inversion for every l, since m → m there), while the
harmonics of a bond vector Y_l(r̂) are (l, (−1)^l, +1) (Birss, *Symmetry and Magnetism*, 1964; the
"polar/axial, i/c-tensor" classification of magnetic point groups).

Entries are plain tuples (mul, o3.Irrep, tau); a :class:`GradedIrreps` is an ordered list of them
(never merged across τ: two entries with the same (l, p) but opposite τ stay apart).
"""

from __future__ import annotations

import warnings

from . import safe_imports  # noqa: F401  -- mace-torch and e3nn, leaving torch.load safe

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import o3


class GradedIrreps(tuple):
    """Ordered tuple of (mul, o3.Irrep, tau) entries, tau = ±1 the time-reversal parity."""

    def __new__(cls, entries=()):
        out = []
        for mul, ir, tau in entries:
            if int(tau) not in (1, -1):
                raise ValueError(f"time-reversal parity must be ±1, got {tau!r}")
            out.append((int(mul), o3.Irrep(ir), int(tau)))
        return super().__new__(cls, out)

    @classmethod
    def even(cls, irreps) -> "GradedIrreps":
        """All entries of the e3nn ``irreps`` with τ = +1 (time-reversal even)."""
        return cls((mul, ir, 1) for mul, ir in o3.Irreps(irreps))

    @property
    def irreps(self) -> o3.Irreps:
        """The O(3) part, entry by entry (not simplified)."""
        return o3.Irreps([(mul, ir) for mul, ir, _ in self])

    @property
    def dim(self) -> int:
        return sum(mul * ir.dim for mul, ir, _ in self)

    @property
    def keys(self) -> set:
        return {(ir, tau) for _, ir, tau in self}

    def __add__(self, other):
        return GradedIrreps(tuple(self) + tuple(other))

    def __mul__(self, n):  # a multiplicity for every entry
        return GradedIrreps((n * mul, ir, tau) for mul, ir, tau in self)

    def sorted(self) -> tuple["GradedIrreps", list[int]]:
        """Entries sorted by (l, p, −τ); returns (sorted, permutation old index → new index)."""
        order = sorted(range(len(self)), key=lambda k: (self[k][1].l, self[k][1].p, -self[k][2]))
        inv = [0] * len(self)
        for new, old in enumerate(order):
            inv[old] = new
        return GradedIrreps(self[k] for k in order), inv

    def simplify(self) -> "GradedIrreps":
        """Sort, then merge neighbouring entries of equal (l, p, τ)."""
        out = []
        for mul, ir, tau in self.sorted()[0]:
            if out and out[-1][1] == ir and out[-1][2] == tau:
                out[-1] = (out[-1][0] + mul, ir, tau)
            else:
                out.append((mul, ir, tau))
        return GradedIrreps(out)

    def __repr__(self):
        return "+".join(f"{mul}x{ir}{'' if tau == 1 else '(T-)'}" for mul, ir, tau in self) or "0"


def tp_out_with_instructions(in1: GradedIrreps, in2: GradedIrreps, target: GradedIrreps):
    """Output irreps and "uvu" instructions of the tensor product in1 ⊗ in2 keeping the paths whose
    (l, p, τ) lies in ``target`` (mace's ``tp_out_irreps_with_instructions`` with the τ rule)."""
    wanted = target.keys
    out, instructions = [], []
    for i, (mul, ir1, t1) in enumerate(in1):
        for j, (_, ir2, t2) in enumerate(in2):
            for ir in ir1 * ir2:
                if (ir, t1 * t2) in wanted:
                    instructions.append((i, j, len(out), "uvu", True))
                    out.append((mul, ir, t1 * t2))
    mid, perm = GradedIrreps(out).sorted()
    instructions = sorted([(a, b, perm[k], mode, train) for a, b, k, mode, train in instructions], key=lambda x: x[2])
    return mid, instructions


def linear(irreps_in: GradedIrreps, irreps_out: GradedIrreps) -> o3.Linear:
    """e3nn Linear connecting only entries of equal (l, p, τ)."""
    instructions = [(i, o) for i, (_, ir_i, t_i) in enumerate(irreps_in)
                    for o, (_, ir_o, t_o) in enumerate(irreps_out) if ir_i == ir_o and t_i == t_o]
    return o3.Linear(irreps_in.irreps, irreps_out.irreps, instructions=instructions)


def tensor_product(in1: GradedIrreps, in2: GradedIrreps, out: GradedIrreps, mode: str = "uvw",
                   **kwargs) -> o3.TensorProduct:
    """e3nn TensorProduct with every path allowed by O(3) and by τ (fully connected for "uvw")."""
    instructions = [(i1, i2, o, mode, True) for i1, (_, ir1, t1) in enumerate(in1)
                    for i2, (_, ir2, t2) in enumerate(in2)
                    for o, (_, ir_o, t_o) in enumerate(out) if ir_o in ir1 * ir2 and t_o == t1 * t2]
    return o3.TensorProduct(in1.irreps, in2.irreps, out.irreps, instructions, **kwargs)


def harmonics_of_bonds(lmax: int) -> GradedIrreps:
    """Y_l(r̂), l = 0..lmax: (l, (−1)^l, τ = +1)."""
    return GradedIrreps((1, (l, (-1) ** l), 1) for l in range(lmax + 1))


def harmonics_of_moments(lmax: int) -> GradedIrreps:
    """Y_l(m), l = 0..lmax, m axial and time-reversal odd: (l, +1, τ = (−1)^l)."""
    return GradedIrreps((1, (l, 1), (-1) ** l) for l in range(lmax + 1))


def from_labels(irreps, time_reversal_labels: bool) -> GradedIrreps:
    """Graded irreps of a hidden-irreps string.

    With ``time_reversal_labels`` (mMACE ``soc=True``) the e3nn parity letter of the string gives the
    time-reversal parity (``1o`` = time-reversal-odd l = 1, as ``hidden_irreps`` has always been
    read with soc=True) and the spatial parity is the one of the harmonics that generate such
    features: bond-like (−1)^l for τ = +1, moment-like +1 for τ = −1. So ``32x0e+32x1o`` means 32
    invariant scalars and 32 axial time-reversal-odd vectors (the type of m). Otherwise the string
    is ordinary e3nn (spatial parity) and every entry is time-reversal even."""
    irreps = o3.Irreps(irreps)
    if not time_reversal_labels:
        return GradedIrreps.even(irreps)
    return GradedIrreps((mul, (ir.l, (-1) ** ir.l if ir.p == 1 else 1), ir.p) for mul, ir in irreps)
