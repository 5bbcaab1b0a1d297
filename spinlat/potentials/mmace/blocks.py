"""Magnetic building blocks of mMACE: smooth bases of moment magnitudes and of m_i·m_j, the
node-level coupling of features to a moment's harmonics, and the time-reversal-graded product
basis (symmetric contraction)."""

from __future__ import annotations

import functools
import warnings

from . import safe_imports  # noqa: F401  -- mace-torch and e3nn, leaving torch.load safe
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import o3

from . import graded


def chebyshev(x: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Chebyshev polynomials T_start..T_{n+start-1} of x, stacked on the last axis."""
    ts = [torch.ones_like(x), x]
    while len(ts) < n + start:
        ts.append(2 * x * ts[-1] - ts[-2])
    return torch.stack(ts[start:n + start], dim=-1)


def moment_basis(u: torch.Tensor, n: int) -> torch.Tensor:
    """Basis of the moment magnitude from u = (|m|/m_max)² (dimensionless), (N, n).

    T_k(x) with x = (1 − u)/(1 + u): a polynomial-like smooth function of |m|² (hence even in m and
    smooth at m = 0), x = 1 at |m| = 0, 0 at |m| = m_max and → −1 for large moments, so it stays
    bounded for any moment."""
    x = (1 - u) / (1 + u)
    return chebyshev(x, n)


def exchange_basis(c: torch.Tensor, n: int) -> torch.Tensor:
    """Basis of the pair invariant c = m̃_i·m̃_j (moments in units of m_max), (E, n).

    T_1..T_n of y = c / sqrt(1 + c²) ∈ (−1, 1): smooth, bounded, invariant under m → −m of all
    moments, and under any rotation of all moments."""
    y = c / torch.sqrt(1 + c * c)
    return chebyshev(y, n, start=1)


class MomentCoupling(torch.nn.Module):
    """Couple node features x to harmonics Y(m̃) of the node's own moment, with weights that are a
    per-species linear function of the magnitude basis:

        out = Linear( TP_uvu(x, Y(m̃); w = W · (onehot ⊗ T(|m|))) )

    All paths x ⊗ Y_l → graded irreps present in ``irreps_out`` are used (spatial parity and
    time-reversal parity both conserved, see :mod:`.graded`), the l = 0 path included (a
    magnitude-dependent rescaling of every channel). Irreps are :class:`~.graded.GradedIrreps`."""

    def __init__(self, irreps_in, sh_irreps, irreps_out, n_moment_feats: int):
        super().__init__()
        mid, instructions = graded.tp_out_with_instructions(irreps_in, sh_irreps, irreps_out)
        self.tp = o3.TensorProduct(irreps_in.irreps, sh_irreps.irreps, mid.irreps, instructions=instructions,
                                   shared_weights=False, internal_weights=False)
        self.weights = torch.nn.Linear(n_moment_feats, self.tp.weight_numel, bias=False)
        self.linear = graded.linear(mid, irreps_out)

    def forward(self, x: torch.Tensor, ym: torch.Tensor, moment_feats: torch.Tensor) -> torch.Tensor:
        return self.linear(self.tp(x, ym, self.weights(moment_feats)))


# ----------------------------------------------------------------------------- product basis
def symmetrize(blocks, nu: int, M: int):
    """Sum coupling tensors over the orderings of their indices (the ν-fold product of one feature
    vector is symmetric, so only that sum acts on it).

    ``blocks``: list over columns k of lists of (global index arrays (ν, n), values (M, n)) pieces.
    Returns (monomials (P, ν) sorted index tuples, coefficients (P, M, K))."""
    import numpy as np

    rows, cols, vals = [], [], []
    for k, pieces in enumerate(blocks):
        for idx, val in pieces:
            rows.append(np.sort(idx, axis=0).T)
            cols.append(np.full(idx.shape[1], k))
            vals.append(val.T)
    if not rows or sum(len(r) for r in rows) == 0:
        return np.zeros((0, nu), np.int64), np.zeros((0, M, len(blocks)))
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    mono, inverse = np.unique(rows, axis=0, return_inverse=True)
    coef = np.zeros((len(mono), M, len(blocks)))
    np.add.at(coef, (inverse.reshape(-1), slice(None), cols), vals)
    return mono, coef


def symmetrize_dense(U, D: int, nu: int):
    """:func:`symmetrize` for a dense coupling tensor U (M, D, …, D, K) (mace's ``U_matrix_real``)."""
    import numpy as np

    U = np.asarray(U, dtype=np.float64)
    M, K = (U.shape[0] if U.ndim == nu + 2 else 1), U.shape[-1]
    U = U.reshape(M, D ** nu, K)
    index = np.array(np.unravel_index(np.arange(D ** nu), (D,) * nu))           # (ν, D^ν)
    blocks = []
    for k in range(K):
        nz = np.nonzero(np.abs(U[:, :, k]).max(axis=0))[0]
        blocks.append([(index[:, nz], U[:, nz, k])])
    return symmetrize(blocks, nu, M)


@functools.lru_cache(maxsize=64)
def coupling_terms(entries: tuple, ir_out, tau_out: int, nu: int):
    """Independent symmetric couplings of ν copies of one channel's features to ``ir_out``.

    ``entries``: the channel's graded irreps ((l, p), τ) in feature order. For every multiset of
    entries i₁ ≤ … ≤ i_ν whose time-reversal parities multiply to ``tau_out``, and every chain of
    intermediate irreps ((i₁ ⊗ i₂) → λ₂ ⊗ i₃ → … → ir_out, e3nn's Wigner 3j symbols, "component"
    normalisation as mace), one coupling tensor; the chains of one multiset span all its
    equivariant maps (recoupling), and orderings of the multiset add nothing once symmetrised.
    Columns are symmetrised (:func:`symmetrize`) and a maximal linearly independent subset is kept
    (pivoted QR). Returns (monomials (P, ν), coefficients (P, 2L+1, K)); cached."""
    import itertools

    import numpy as np
    import scipy.linalg

    irs = [o3.Irrep(ir) for ir, _ in entries]
    taus = [int(t) for _, t in entries]
    offsets = np.concatenate([[0], np.cumsum([ir.dim for ir in irs])])
    ir_out = o3.Irrep(ir_out)
    blocks = []
    for combo in itertools.combinations_with_replacement(range(len(irs)), nu):
        if int(np.prod([taus[i] for i in combo])) != tau_out:
            continue
        # chains: list of (irrep so far, tensor (dim, d_1, …, d_k))
        chains = [(irs[combo[0]], torch.eye(irs[combo[0]].dim, dtype=torch.float64))]
        for i in combo[1:]:
            ir = irs[i]
            new = []
            for ir_left, C_left in chains:
                for ir_mid in ir_left * ir:
                    w3j = o3.wigner_3j(ir_mid.l, ir_left.l, ir.l, dtype=torch.float64) * ir_mid.dim ** 0.5
                    C = torch.einsum("jk,ijl->ikl", C_left.reshape(ir_left.dim, -1), w3j)
                    new.append((ir_mid, C.reshape(ir_mid.dim, *C_left.shape[1:], ir.dim)))
            chains = new
        grids = np.meshgrid(*[np.arange(irs[i].dim) + offsets[i] for i in combo], indexing="ij")
        index = np.stack([g.reshape(-1) for g in grids])                          # (ν, n)
        for ir_end, C in chains:
            if ir_end == ir_out:
                blocks.append([(index, C.reshape(ir_out.dim, -1).numpy())])
    mono, coef = symmetrize(blocks, nu, ir_out.dim)
    if coef.shape[-1] == 0:
        return mono, coef
    flat = coef.reshape(len(mono) * ir_out.dim, -1)
    _, r, piv = scipy.linalg.qr(flat, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > 1e-10 * diag[0])) if len(diag) and diag[0] > 0 else 0
    coef = coef[:, :, np.sort(piv[:rank])]
    used = np.abs(coef).reshape(len(mono), -1).max(axis=1) > 0
    return mono[used], coef[used]


class SymmetricProduct(torch.nn.Module):
    """MACE's product basis with time-reversal grading, on symmetric monomials.

    For each output entry (L, p, τ) and channel c (Batatia et al., NeurIPS 2022, Eqs. 10-11):

        B_{i,c,LM} = Σ_{ν=1..correlation} Σ_k W^{ν}_{z_i,k,c} Σ_{d₁..d_ν} U^{ν}_{M,d₁..d_ν,k} A_{i,c,d₁}…A_{i,c,d_ν}

    with U the couplings of :func:`coupling_terms` (only paths of the output's time-reversal
    parity; O(3) parity is enforced by the Clebsch-Gordan coefficients). Evaluation: the monomials
    A_{d₁}…A_{d_ν} (d₁ ≤ … ≤ d_ν, only those with a non-zero coefficient, built degree by degree)
    are contracted with per-species coefficients V_{z,c} = Σ_k U_k W_{z,k,c}, formed once per call,
    in one batched matrix product. Every term is a monomial of a definite spatial and
    time-reversal parity, so B changes sign exactly as its labels say.

    ``irreps_in``: the per-atom features as C copies of every entry (the message A, channel-major
    per entry as e3nn lays out ``C x ir``); ``irreps_out``: entries of multiplicity C."""

    def __init__(self, irreps_in, irreps_out, correlation: int, num_elements: int, terms=None):
        import numpy as np

        super().__init__()
        irreps_in, irreps_out = graded.GradedIrreps(irreps_in), graded.GradedIrreps(irreps_out)
        C = irreps_in[0][0]
        if any(mul != C for mul, _, _ in tuple(irreps_in) + tuple(irreps_out)):
            raise ValueError(f"every entry needs the same multiplicity, got {irreps_in} -> {irreps_out}")
        self.C, self.S = C, int(num_elements)
        self.dims = [ir.dim for _, ir, _ in irreps_in]
        entries = tuple((str(ir), t) for _, ir, t in irreps_in)
        self.out_dims = [ir.dim for _, ir, _ in irreps_out]
        # monomials needed per degree, and the coefficient blocks per output entry and degree
        needed = [set() for _ in range(correlation + 1)]
        blocks = []
        for o, (_, ir, tau) in enumerate(irreps_out):
            per_nu = []
            for nu in range(1, correlation + 1):
                if terms is None:
                    mono, coef = coupling_terms(entries, str(ir), tau, nu)
                else:
                    mono, coef = terms[o][nu - 1]
                needed[nu].update(map(tuple, mono))
                per_nu.append((mono, coef))
            blocks.append(per_nu)
        # every monomial of degree ν is (its prefix of degree ν − 1) × A_d: compute prefixes too
        computed = [None] * (correlation + 1)
        for nu in range(correlation, 0, -1):
            extra = {m[:-1] for m in computed[nu + 1]} if nu < correlation else set()
            computed[nu] = sorted(needed[nu] | extra)
        position, offset = {}, 0
        self.num_monomials = []
        for nu in range(1, correlation + 1):
            for k, m in enumerate(computed[nu]):
                position[m] = offset + k
            offset += len(computed[nu])
            self.num_monomials.append(len(computed[nu]))
        self.correlation = correlation
        self.register_buffer("first", torch.tensor([m[0] for m in computed[1]], dtype=torch.int64))
        for nu in range(2, correlation + 1):
            start = sum(self.num_monomials[:nu - 2])       # where degree ν − 1 starts
            prefix = [position[m[:-1]] - start for m in computed[nu]]
            self.register_buffer(f"prefix_{nu}", torch.tensor(prefix, dtype=torch.int64))
            self.register_buffer(f"last_{nu}", torch.tensor([m[-1] for m in computed[nu]], dtype=torch.int64))
        P = offset
        self.weights = torch.nn.ParameterList()
        for o, per_nu in enumerate(blocks):
            M = self.out_dims[o]
            cols = []
            for nu, (mono, coef) in enumerate(per_nu, start=1):
                K = coef.shape[-1]
                if K == 0:
                    continue
                full = np.zeros((P, M, K))
                full[[position[tuple(m)] for m in mono]] = coef
                cols.append((full, K))
            if cols:
                U = np.concatenate([c for c, _ in cols], axis=-1)
                w = torch.cat([torch.randn(self.S, K, C) / K for _, K in cols], dim=1)
            else:
                U, w = np.zeros((P, M, 0)), torch.zeros(self.S, 0, C)
            self.register_buffer(f"U_{o}", torch.tensor(U, dtype=torch.get_default_dtype()))
            self.weights.append(torch.nn.Parameter(w.to(torch.get_default_dtype())))

    def monomials(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dim_in) features → (P, C, N) monomials, degree by degree (index-major layout, so
        that every gather copies contiguous rows)."""
        n = x.shape[0]
        parts, k = [], 0
        for d in self.dims:
            parts.append(x[:, k:k + self.C * d].reshape(n, self.C, d).permute(2, 1, 0))
            k += self.C * d
        a = torch.cat(parts, dim=0)                                         # (D, C, N)
        prev = a.index_select(0, self.first)
        out = [prev]
        for nu in range(2, self.correlation + 1):
            prev = prev.index_select(0, getattr(self, f"prefix_{nu}")) * a.index_select(0, getattr(self, f"last_{nu}"))
            out.append(prev)
        return torch.cat(out, dim=0)

    def coefficients(self) -> torch.Tensor:
        """Per-species, per-channel coefficients V (C, S·ΣM, P) = Σ_k U_k W_{s,k,c}."""
        V = torch.cat([torch.einsum("pmk,skc->csmp", getattr(self, f"U_{o}"), w) for o, w in enumerate(self.weights)],
                      dim=2)                                                # (C, S, ΣM, P)
        return V.reshape(self.C, -1, V.shape[-1])

    def forward(self, x: torch.Tensor, node_attrs: torch.Tensor) -> torch.Tensor:
        mono = self.monomials(x)                                            # (P, C, N)
        C, n, S = self.C, x.shape[0], self.S
        R = torch.bmm(self.coefficients(), mono.transpose(0, 1))            # (C, S·ΣM, N)
        R = R.reshape(C, S, -1, n)
        if S == 1:
            R = R[:, 0]
        else:
            R = torch.einsum("csmn,ns->cmn", R, node_attrs)
        R = R.permute(2, 0, 1)                                              # (N, C, ΣM)
        outs, k = [], 0
        for M in self.out_dims:
            outs.append(R[:, :, k:k + M].reshape(n, C * M))
            k += M
        return torch.cat(outs, dim=-1)


class ProductBasis(torch.nn.Module):
    """:class:`SymmetricProduct`, then a graded linear map, plus the residual ``sc`` when given
    (the role of mace's ``EquivariantProductBasisBlock``)."""

    def __init__(self, irreps_in, irreps_out, correlation: int, num_elements: int):
        super().__init__()
        self.symmetric_product = SymmetricProduct(irreps_in, irreps_out, correlation, num_elements)
        self.linear = graded.linear(irreps_out, irreps_out)

    def forward(self, x: torch.Tensor, sc, node_attrs: torch.Tensor) -> torch.Tensor:
        out = self.linear(self.symmetric_product(x, node_attrs))
        return out if sc is None else out + sc
