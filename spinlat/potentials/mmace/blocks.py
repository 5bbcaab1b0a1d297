"""Magnetic building blocks of mMACE: smooth bases of moment magnitudes and of m_i·m_j, and the
node-level coupling of features to a moment's harmonics."""

from __future__ import annotations

import warnings

from . import safe_imports  # noqa: F401  -- mace-torch and e3nn, leaving torch.load safe
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import o3
    from mace.modules.irreps_tools import tp_out_irreps_with_instructions


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

    All paths x ⊗ Y_l → irreps present in ``irreps_out`` are used, the l = 0 path included (a
    magnitude-dependent rescaling of every channel)."""

    def __init__(self, irreps_in, sh_irreps, irreps_out, n_moment_feats: int):
        super().__init__()
        irreps_in, sh_irreps, irreps_out = o3.Irreps(irreps_in), o3.Irreps(sh_irreps), o3.Irreps(irreps_out)
        mid, instructions = tp_out_irreps_with_instructions(irreps_in, sh_irreps, irreps_out)
        self.tp = o3.TensorProduct(irreps_in, sh_irreps, mid, instructions=instructions, shared_weights=False,
                                   internal_weights=False)
        self.weights = torch.nn.Linear(n_moment_feats, self.tp.weight_numel, bias=False)
        self.linear = o3.Linear(mid, irreps_out)

    def forward(self, x: torch.Tensor, ym: torch.Tensor, moment_feats: torch.Tensor) -> torch.Tensor:
        return self.linear(self.tp(x, ym, self.weights(moment_feats)))
