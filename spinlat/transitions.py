"""Transitions between minima: the geodesic nudged elastic band (GNEB), minimum-energy paths and barriers.

Method: Bessarab, Uzdin & Jónsson, Comput. Phys. Commun. 196, 335 (2015) ("BUJ"), extended from
spins to moment magnitudes and atomic positions, with the climbing image of Henkelman, Uberuaga &
Jónsson, J. Chem. Phys. 113, 9901 (2000) and the improved tangent of Henkelman & Jónsson, J. Chem.
Phys. 113, 9978 (2000).

A *band* of ``images`` configurations (the two fixed endpoints included) is relaxed until each
inner image feels no force perpendicular to the path. Every image is a point of the manifold

    (S²)^N_mag × R^{3N} × R^{N_mag}      (spin directions, positions, moment magnitudes)

of which only the parts switched on (``spins``, ``positions``, ``magnitudes``) move.

Metric (units explicit). The distance between two nearby images is

    dx² = Σ_i θ_i² + w_r² Σ_i |Δr_i|² + w_m² Σ_i (Δ|m_i|)²

with θ_i the great-circle angle (rad) between the two directions of spin i, Δr_i the
displacement (Å, minimum image in periodic directions) and Δ|m_i| the change of the moment
magnitude (μB). The weights w_r (rad/Å) and w_m (rad/μB) default to 1 (``weights``), so the
reaction coordinate, the path length sqrt(Σθ²) of BUJ eq. (4) for spins only, is in radians
("generalised radians" when atoms or magnitudes move: 1 Å counts as w_r rad, 1 μB as w_m rad).
Spin angles are not weighted by the moment lengths (as in BUJ, Spirit and LAMMPS ``neb/spin``).
When atoms move, a rigid translation of all atoms is a zero mode (every spinlat potential is
translation invariant; a user's own :class:`~spinlat.potentials.base.Potential` must be too: a term
that pins atoms to absolute positions would lose its net force here): the position displacements
and gradients are taken modulo it (their mean over the atoms removed), so images cannot drift along it. Without that, a tangent with a small net
translation fed the optimiser a force along that flat direction; L-BFGS, seeing no curvature there,
translated whole images by Å (a 53-atom vacancy band: images shifted by up to 5.4 Å, a 320 Å
"path" and the climbing image in an intermediate minimum). The same projection as in the
nudged-elastic-band implementations that remove the centre-of-mass motion of each image.

Gradient in that metric, for an image with energy E (eV): spins −|m_i| (1 − s_i s_iᵀ) h_i (eV/rad,
h = −∂E/∂m the magnetic forces, eV/μB), positions −F_i / w_r, magnitudes −(s_i·h_i) / w_m.

Per inner image ν (BUJ section 3):

- neighbour vectors τ± are the logarithmic maps (great-circle directions, length the angle) from
  image ν to ν ± 1, so they lie in the tangent space of the spheres; the tangent τ̂ is the
  improved tangent of Henkelman & Jónsson (the uphill neighbour; an energy-weighted mix at
  extrema), normalised in the metric;
- force F = −∇E|⊥ + k (|τ+| − |τ−|) τ̂: the gradient without its component along τ̂ plus a
  spring along τ̂ (k = ``spring_constant``, eV/rad²);
- the climbing image feels F = −∇E + 2 (∇E·τ̂) τ̂ and no spring: it climbs to the saddle point
  (Henkelman et al. 2000). It is the highest inner image when climbing starts, once the band
  lies near the minimum-energy path: its largest perpendicular force |∇E|⊥| (springs left out)
  below ``climb_after`` (default: one tenth of that force on the initial band, but not below
  10 ``tol``), as Spirit's users do by hand (a band restarted from a converged one climbs at
  once). When the climbing image has reached its saddle (its force below ``tol``) while another
  image lies higher, the band crosses a higher barrier elsewhere and that image climbs instead
  (at most ``images`` such moves; a move only after convergence, so the band cannot hop between
  two equal saddles). A path without an interior maximum above both endpoints has no climbing
  image. ``climbing=False`` relaxes the whole band without one. With several barriers along the
  path (intermediate minima) only the highest is resolved exactly; the others are bounded by
  their images (and :meth:`GNEBResult.curve`).

Optimiser: L-BFGS over all inner images at once in the tangent space, spins moved by orthogonal
rotations (the rotation vector θ_i = s_i × v_i of a tangent vector v_i; Ivanov et al., Comput.
Phys. Commun. 255, 107367 (2020), as Spirit's ``LBFGS_OSO``), without line search (the band force
is not a gradient), each step capped at ``max_step`` (a spin rotation in rad, an atomic move in
Å, a moment change in μB) and the memory reset when its direction stops pointing along the force.
L-BFGS is fastest on smooth paths (a skyrmion collapse converges in about as many iterations as
Spirit's ``LBFGS_OSO``) but can stall where the band crosses very soft modes (e.g. a shallow
intermediate minimum); ``method="auto"`` then continues with FIRE (Bitzek et al. 2006), slower but
robust, in the same variables (``method="fire"`` uses it throughout).

Convergence: every inner image's force (the perpendicular force plus the spring; the full force
on the climbing image), per atom, below ``tol`` in each block: eV/rad for spins (the torque
|s_i × ∂E/∂s_i|), eV/Å for positions, eV/μB for moment magnitudes. The energy along the path is
interpolated between images by cubic Hermite polynomials in the reaction coordinate, with the
slopes dE/dx = ∇E·τ̂ at the images (as Spirit does). :meth:`GNEBResult.saddle_modes` gives the
lowest Hessian eigenvalues at the saddle image: exactly one negative at a first-order saddle.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np

from .errors import InputError
from .files import atomic_path, save_figure
from .integrators.rotation import rotate_all
from .interrupts import abandonable, check, deferred, interrupt_cause, pending, raise_with
from .keywords import parameters_of, refuse_other_names

#: default metric weights: w_r (rad/Å) for positions, w_m (rad/μB) for moment magnitudes
DEFAULT_WEIGHTS = {"positions": 1.0, "magnitudes": 1.0}
#: default largest move of one optimiser step: spin rotation (rad), atomic move (Å), moment change (μB)
DEFAULT_MAX_STEP = {"spins": 0.1, "positions": 0.05, "magnitudes": 0.05}
_BLOCKS = ("spins", "positions", "magnitudes")
_UNITS = {"spins": "eV/rad", "positions": "eV/Angstrom", "magnitudes": "eV/mu_B"}
_MIN_MOMENT = 1e-6  # μB, smallest moment magnitude a step may leave
_PATIENCE = 300  # iterations without a 10 % drop of the band force before "auto" leaves L-BFGS for FIRE


@dataclass
class GNEBResult:
    """A converged (or stopped) band.

    Attributes
    ----------
    states : list of :class:`~spinlat.State`, the images from initial to final (configurations:
        velocities zero, whatever the endpoints carried).
    energies : (M,) total potential energy of each image, eV.
    reaction_coordinate : (M,) path length from the initial image in the metric of the module
        docstring, rad (generalised radians when atoms or magnitudes move).
    slopes : (M,) dE/dx along the path tangent at each image, eV/rad.
    saddle : index of the saddle image: the climbing image (without one, the highest image).
    climbing : index of the climbing image, or None.
    converged, reason, iterations, n_evaluations : how the optimisation ended.
    max_force : {"spins": eV/rad, "positions": eV/Å, "magnitudes": eV/μB}, the largest per-atom
        force of the final band (only the blocks that moved).
    image_forces : (M,) largest per-atom force on each image in its block's unit (0 at the ends).
    history : largest force (max over blocks) at every iteration.
    weights : the metric weights used, {"positions": rad/Å, "magnitudes": rad/μB}.
    forces, magnetic_forces : (M, N, 3) forces (eV/Å) and magnetic forces (eV/μB) of the images
        (None where not computed).
    endpoint_forces : [initial, final], each {"spins": eV/rad, "positions": eV/Å, "magnitudes":
        eV/μB}: the largest per-atom force on the fixed endpoints (blocks that move). Above ``tol``
        the endpoint is no local minimum: :attr:`barrier` is then measured from a point on a slope
        (a UserWarning says so; ``relax_endpoints=True`` relaxes them first).
    parameters : the band's :data:`BAND_PARAMETERS` (images, spring_constant, moving parts,
        weights); potential, potential_digests : the potential's description and its terms'
        :meth:`~spinlat.potentials.Potential.term_digests`. A restart from this result
        (``gneb(..., path=result)``) or from its file compares them (:func:`band_changes`).
    """

    states: list
    energies: np.ndarray
    reaction_coordinate: np.ndarray
    slopes: np.ndarray
    saddle: int
    climbing: int | None
    converged: bool
    reason: str
    iterations: int
    n_evaluations: int
    max_force: dict
    image_forces: np.ndarray
    weights: dict
    history: list = field(default_factory=list)
    forces: np.ndarray | None = None
    magnetic_forces: np.ndarray | None = None
    parameters: dict = field(default_factory=dict)
    potential: str = ""
    potential_digests: list | None = None
    endpoint_forces: list | None = None

    @property
    def barrier(self) -> float:
        """Energy of the saddle image minus the initial image, eV."""
        return float(self.energies[self.saddle] - self.energies[0])

    @property
    def reverse_barrier(self) -> float:
        """Energy of the saddle image minus the final image, eV."""
        return float(self.energies[self.saddle] - self.energies[-1])

    def curve(self, n: int = 20):
        """Energy along the path, interpolated between the images by cubic Hermite polynomials
        in the reaction coordinate with the tangential slopes :attr:`slopes` (as Spirit's
        ``Cubic_Hermite_Spline``). Returns ``(x, E)``: (n (M−1) + 1,) arrays, rad and eV, with
        ``n`` points per segment (the images are among them)."""
        return hermite_curve(self.reaction_coordinate, self.energies, self.slopes, n)

    @property
    def barrier_interpolated(self) -> float:
        """Highest energy of :meth:`curve` minus the initial energy, eV (a sharper estimate than
        :attr:`barrier` without a climbing image)."""
        return float(np.max(self.curve(50)[1]) - self.energies[0])

    def to_atoms(self) -> list:
        """The images as ``ase.Atoms`` with ``info`` energy (eV), reaction_coordinate (rad),
        image index and saddle flag, and the forces / magnetic forces arrays."""
        out = []
        for k, st in enumerate(self.states):
            atoms = st.to_ase()
            atoms.info.update(energy=float(self.energies[k]), reaction_coordinate=float(self.reaction_coordinate[k]),
                              image=k, saddle=bool(k == self.saddle))
            if self.forces is not None:
                atoms.arrays["forces"] = self.forces[k].copy()
            if self.magnetic_forces is not None:
                atoms.arrays["magnetic_forces"] = self.magnetic_forces[k].copy()
            out.append(atoms)
        return out

    def plot(self, path, title=None):
        """PNG (or any matplotlib format, by the suffix of ``path``) of E − E_initial (meV) against
        the reaction coordinate (rad): the images, the interpolated curve (:meth:`curve`) and the
        saddle marked with the barrier. Returns ``path``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x, e = self.curve(20)
        e0 = self.energies[0]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(x, (e - e0) * 1e3, "-", color="C0", lw=1.2, label="cubic Hermite (tangential slopes)")
        ax.plot(self.reaction_coordinate, (self.energies - e0) * 1e3, "o", color="C0", ms=4, label="images")
        k = self.saddle
        ax.plot(self.reaction_coordinate[k], (self.energies[k] - e0) * 1e3, "*", color="C3", ms=14,
                label=f"saddle (image {k}{', climbing' if self.climbing == k else ''}): {self.barrier * 1e3:.4g} meV")
        ax.set_xlabel("reaction coordinate (rad)")
        ax.set_ylabel("E − E(initial) (meV)")
        if title:
            ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save_figure(fig, path)

    @classmethod
    def read(cls, path) -> "GNEBResult":
        """The band a :meth:`write` (or ``spinlat gneb``, its ``path.h5``) left in ``path``: the
        images as States, their energies (eV), forces and magnetic forces when stored, and the
        reaction coordinate (rad), slopes (eV/rad), saddle, climbing image, convergence, largest
        forces, band parameters and potential digests from its metadata, so that
        :attr:`barrier`, :meth:`curve`, :meth:`plot`, :meth:`summary` and a restart
        (``gneb(..., path=result)``) work as on the result that was written. ``history`` is not
        stored (empty); ``reason``, ``n_evaluations``, ``image_forces`` and ``endpoint_forces``
        of a file written before they were recorded read "", 0, NaN and None. Raises
        MissingFileError / FileFormatError for a missing file or one that is not a spinlat
        trajectory, FileFormatError for a trajectory that is no GNEB band (a run's trajectory)
        or whose band metadata does not match its frames."""
        import os

        from .errors import FileFormatError
        from .io import Trajectory

        with Trajectory(path) as tr:
            attrs, states = tr.attrs, list(tr)
            energies = np.asarray(tr.array("potential_energy"), dtype=float)
            names = tr.names
            # NaN rows: the writer's filler for an array the band did not compute
            forces, mforces = (np.asarray(tr.array(n), float) if n in names else None
                               for n in ("forces", "magnetic_forces"))
        forces, mforces = (None if a is None or np.isnan(a).all() else a for a in (forces, mforces))
        where = os.fspath(path)
        meta = attrs.get("metadata") if isinstance(attrs.get("metadata"), dict) else {}
        g = meta.get("gneb")
        if not isinstance(g, dict) or attrs.get("integrator") != "gneb":
            raise FileFormatError(f"{where}: a spinlat trajectory ({attrs.get('integrator') or 'no'} integrator) "
                                  f"but no GNEB band: it has no 'gneb' metadata (GNEBResult.write and spinlat "
                                  f"gneb's path.h5 have it); read it with spinlat.io.Trajectory")
        m = len(states)
        try:
            x = np.asarray(g["reaction_coordinate"], dtype=float)
            slopes = np.asarray(g["slopes"], dtype=float)
            saddle, climbing = int(g["saddle"]), g.get("climbing")
            image_forces = np.asarray(g.get("image_forces", [math.nan] * m), dtype=float)
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{where}: the gneb metadata lacks or garbles {exc}") from None
        if not (x.shape == slopes.shape == image_forces.shape == energies.shape == (m,) and 0 <= saddle < m
                and (climbing is None or 0 <= int(climbing) < m)):
            raise FileFormatError(f"{where}: the gneb metadata ({x.size} reaction coordinates, {slopes.size} slopes, "
                                  f"saddle {saddle}) does not match its {m} images: the file was cut short, altered "
                                  "or holds several bands (written with mode='a')")
        return cls(states=states, energies=energies, reaction_coordinate=x, slopes=slopes, saddle=saddle,
                   climbing=None if climbing is None else int(climbing), converged=bool(g.get("converged", False)),
                   reason=str(g.get("reason", "")), iterations=int(g.get("iterations", 0)),
                   n_evaluations=int(g.get("n_evaluations", 0)), max_force=dict(g.get("max_force", {})),
                   image_forces=image_forces, weights=dict(g.get("weights", {})), history=[], forces=forces,
                   magnetic_forces=mforces, parameters=dict(g.get("parameters", {})),
                   potential=str(attrs.get("potential", "")), potential_digests=meta.get("potential_digests"),
                   endpoint_forces=g.get("endpoint_forces"))

    def resampled(self, images) -> list:
        """The band as ``images`` States (both endpoints included, kept exactly) at equal steps
        of the reaction coordinate, each between its two neighbouring images of this band on
        their geodesic (great circles for spins, straight lines for positions and magnitudes, of
        the parts that moved): a start with more images (a finer curve, a second barrier
        resolved) or fewer, for ``gneb(None, None, potential, path=states)``. A band file or
        result refuses another image count as a restart; this list is a new band, and nothing
        recorded is compared (use the same potential and band parameters). Raises InputError
        for ``images`` < 3."""
        if isinstance(images, bool) or not isinstance(images, (int, np.integer)) or images < 3:
            raise InputError(f"resampled: images must be an integer >= 3 (both endpoints included), got {images!r}")
        p = self.parameters
        dofs = (bool(p.get("spins", True)), bool(p.get("positions")), bool(p.get("magnitudes")))
        x = np.asarray(self.reaction_coordinate, dtype=float)
        out = []
        for target in np.linspace(0.0, x[-1], int(images)):
            k = min(int(np.searchsorted(x, target, side="right")) - 1, len(x) - 2)
            span = x[k + 1] - x[k]
            t = 0.0 if span <= 0 else min(1.0, max(0.0, (target - x[k]) / span))
            a, b = self.states[k], self.states[k + 1]
            S, R, MU = _interpolate(a, b, np.array([t]), *dofs)
            out.append(a.copy(spins=S[0], positions=R[0], moments=MU[0]))
        out[0], out[-1] = self.states[0].copy(), self.states[-1].copy()
        return out

    def dimensions(self, image=None) -> int:
        """Dimensions of the manifold the band moves on at image ``image`` (default the saddle):
        2 per magnetic spin, 3 per atom, 1 per magnetic moment magnitude, of the parts that moved
        (:attr:`parameters`): the largest ``k`` of :meth:`saddle_modes`."""
        st = self.states[self.saddle if image is None else image]
        n_mag, p = int(np.count_nonzero(st.moments > 0)), self.parameters
        return (2 * n_mag * bool(p.get("spins", True)) + 3 * len(st) * bool(p.get("positions"))
                + n_mag * bool(p.get("magnitudes")))

    @refuse_other_names()
    def saddle_modes(self, potential, k=2, image=None, step=1e-4):
        """The ``k`` lowest eigenvalues and eigenvectors of the Hessian of the energy at the saddle
        image (or image ``image``), on the manifold of the degrees of freedom the band moved
        (spins on their spheres, positions, magnitudes; the metric of the module docstring):
        a first-order saddle point, the top of a minimum-energy path, has exactly one negative
        eigenvalue, its unstable mode along the path; two or more mean the band sits on a
        higher-order saddle (e.g. a symmetric band that never left coherent rotation: restart
        it with ``noise``); none, that the climbing image is not at a saddle. Zero modes (a
        Goldstone rotation, a translation) give eigenvalues near 0 of either sign, of the order
        of the finite-difference error and of the band's residual force (:func:`saddle_verdict`
        counts the unstable modes with that in mind).

        Hessian-vector products by central differences of the metric gradient along geodesics
        (spins rotated by ``step`` rad about s × v, positions and magnitudes moved linearly),
        each projected onto the tangent space of the image, which gives the Riemannian Hessian
        (on a sphere P ∇²E P − (s·∇E) 1; Absil, Mahony & Sepulchre, *Optimization Algorithms on
        Matrix Manifolds*, 2008, ch. 5); two evaluations each. Dense for up to 64 dimensions
        (2 per magnetic spin, 3 per atom, 1 per magnitude), else Lanczos (scipy's ``eigsh``).

        Returns ``(values, modes)``: values (k,) ascending, eV/rad² (generalised radians when
        atoms or magnitudes move); modes a list of k dicts with the moving blocks, each unit
        length in the metric: "spins" (N, 3) tangent vectors (rad, 0 on non-magnetic atoms),
        "positions" (N, 3) (Å × w_r), "magnitudes" (N,) (μB × w_m). Raises InputError for ``k``
        not in 1 … dimensions, a bad ``image`` or ``step``, a ``potential`` the band's moving
        parts cannot use, or one that differs from the band's recorded potential (its
        description or its terms' parameters, as a restart compares them)."""
        dofs = {b: bool(self.parameters.get(b, b == "spins")) for b in _BLOCKS}
        m = len(self.states)
        image = self.saddle if image is None else image
        if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or not -m <= image < m:
            raise InputError(f"saddle_modes: image must be an index of the {m} images, got {image!r}")
        if not (isinstance(step, (int, float)) and 0 < step < 0.1):
            raise InputError(f"saddle_modes: step must be a small positive move (rad, Å, μB), got {step!r}")
        _check_potential(potential, **dofs)
        changed = _recorded_changes({"potential": self.potential, "metadata": {
            "gneb": {"parameters": self.parameters}, "potential_digests": self.potential_digests}}, potential,
            dict(self.parameters), "the band")
        if changed:  # the Hessian of another energy than the band's would be read as the band's saddle
            raise InputError(f"saddle_modes: not the potential of this band: {'; '.join(changed)}")
        st = self.states[image]
        w = {"spins": 1.0, **_option_dict(self.weights or None, DEFAULT_WEIGHTS, "weights")}
        band = _Band(st.copy(), np.repeat(st.spins[None], 2, 0), np.repeat(st.positions[None], 2, 0),
                     np.repeat(st.moments[None], 2, 0), potential, dofs, {b: w[b] for b in DEFAULT_WEIGHTS},
                     modulo_translation=False)
        base = (band.S.copy(), band.R.copy(), band.MU.copy())
        mag = np.flatnonzero(band.mag)
        tb = _tangent_basis(st.spins[mag])  # (n_mag, 2, 3)
        sizes = {"spins": 2 * len(mag), "positions": 3 * band.n, "magnitudes": len(mag)}
        parts = [b for b in band.names]
        dim = sum(sizes[b] for b in parts)  # = self.dimensions(image)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= dim:
            raise InputError(f"saddle_modes: k must be an integer from 1 to {dim} (the dimensions), got {k!r}")

        def to_tangent(x):
            """Coordinates x (dim,) → a tangent vector of the band layout (size,)."""
            v, j = np.zeros(band.size), 0
            for b in parts:
                blk = x[j:j + sizes[b]]
                j += sizes[b]
                out = np.zeros((band.n, 3)) if b != "magnitudes" else np.zeros(band.n)
                if b == "spins":
                    out[mag] = np.einsum("ia,iak->ik", blk.reshape(-1, 2), tb)
                elif b == "positions":
                    out = blk.reshape(band.n, 3)
                else:
                    out[mag] = blk
                v[band.slices[b]] = out.ravel()
            return v

        def to_coordinates(v):
            out = []
            for b in parts:
                blk = v[band.slices[b]]
                if b == "spins":
                    out.append(np.einsum("ik,iak->ia", blk.reshape(band.n, 3)[mag], tb).ravel())
                elif b == "positions":
                    out.append(blk)
                else:
                    out.append(blk[mag])
            return np.concatenate(out)

        E, G, EV = np.zeros(2), np.zeros((2, band.size)), [None, None]

        def hess_vec(x):
            v = to_tangent(np.asarray(x, dtype=float).ravel())
            band.S[:], band.R[:], band.MU[:] = base
            d = band.to_step(0, np.stack([step * v, -step * v]))
            band.apply(0, d)
            band.evaluate_images(0, 2, E, G, EV)
            return to_coordinates((G[0] - G[1]) / (2.0 * step))

        if dim <= 64:
            H = np.column_stack([hess_vec(e) for e in np.eye(dim)])
            values, vectors = np.linalg.eigh(0.5 * (H + H.T))
            values, vectors = values[:k], vectors[:, :k]
        else:
            from scipy.sparse.linalg import LinearOperator, eigsh

            op = LinearOperator((dim, dim), matvec=hess_vec, dtype=float)
            # a random (seeded) start: a symmetric one (all ones) spans only the symmetric modes
            v0 = np.random.default_rng(0).normal(size=dim)
            values, vectors = eigsh(op, k=k, which="SA", tol=1e-8, v0=v0)
            order = np.argsort(values)
            values, vectors = values[order], vectors[:, order]
        modes = []
        for x in vectors.T:
            v = to_tangent(x)
            modes.append({b: v[band.slices[b]].reshape(band.n, 3) if b != "magnitudes" else v[band.slices[b]].copy()
                          for b in parts})
        return values, modes

    def summary(self) -> dict:
        """JSON-ready summary: barrier, reverse barrier and interpolated barrier (eV), saddle and
        climbing index, energies (eV), reaction coordinate (rad), convergence, largest forces."""
        return {"barrier_eV": self.barrier, "reverse_barrier_eV": self.reverse_barrier,
                "barrier_interpolated_eV": self.barrier_interpolated, "saddle": int(self.saddle),
                "climbing": self.climbing, "images": len(self.states), "energies_eV": self.energies.tolist(),
                "reaction_coordinate_rad": self.reaction_coordinate.tolist(), "converged": bool(self.converged),
                "reason": self.reason, "iterations": int(self.iterations), "n_evaluations": int(self.n_evaluations),
                "max_force": self.max_force, "max_force_units": {k: _UNITS[k] for k in self.max_force},
                "endpoint_forces": self.endpoint_forces, "weights": self.weights}

    @refuse_other_names()
    def write(self, path, potential="", mode="w") -> None:
        """Write the band as a spinlat HDF5 trajectory (DESIGN.md layout): one frame per image,
        ``step`` = image index, ``time`` = 0, ``potential_energy`` the image energy (eV), with
        forces and magnetic forces; the reaction coordinate (rad), slopes (eV/rad), saddle, barrier
        (eV), convergence and the band's :attr:`parameters` go into the ``metadata`` attribute (key
        ``"gneb"``), with the digests of ``potential``'s terms (``"potential_digests"``, when it is
        a Potential; with ``potential`` left out, the description and digests this result
        records) for :func:`band_changes`.

        The file is written beside ``path`` and renamed over it when complete (``mode="a"``: from
        a copy of it): an interrupt, a crash or a full disk while writing leaves the old file
        whole (a band restarted from ``path`` and written back there is never lost). Raises
        InputError when ``path`` exists and is not a spinlat trajectory (``mode="w"``),
        StorageError when it cannot be written."""
        import os

        from .errors import FileFormatError
        from .io import Trajectory
        from .io.hdf5 import TrajectoryWriter

        if mode == "w" and os.path.exists(path):  # as TrajectoryWriter: only a spinlat trajectory is replaced
            try:
                with Trajectory(path):
                    pass
            except FileFormatError:
                raise InputError(f"refusing to overwrite {path}: it exists and is not a spinlat trajectory; choose "
                                 f"another path or remove the file") from None

        digests = potential.term_digests() if hasattr(potential, "term_digests") else None
        if isinstance(potential, str) and not potential:
            potential, digests = self.potential, self.potential_digests

        meta = {"gneb": {"reaction_coordinate": self.reaction_coordinate.tolist(), "reaction_coordinate_unit": "rad",
                         "slopes": self.slopes.tolist(), "slopes_unit": "eV/rad", "saddle": int(self.saddle),
                         "climbing": self.climbing, "barrier": self.barrier, "barrier_unit": "eV",
                         "converged": bool(self.converged), "reason": self.reason, "iterations": int(self.iterations),
                         "n_evaluations": int(self.n_evaluations), "image_forces": self.image_forces.tolist(),
                         "max_force": self.max_force, "max_force_units": {k: _UNITS[k] for k in self.max_force},
                         "endpoint_forces": self.endpoint_forces, "weights": self.weights,
                         "parameters": self.parameters}}
        if digests is not None:  # what a restart from this band compares (band_changes)
            meta["potential_digests"] = digests
        store = self.forces is not None or self.magnetic_forces is not None
        with atomic_path(path, copy=mode == "a") as tmp, \
                TrajectoryWriter(tmp, self.states[0], potential=str(potential), integrator="gneb", mode=mode,
                                 store_forces=store, metadata=meta, flush_every=len(self.states),
                                 flush_seconds=None) as w:  # a temporary file: the band at once
            for k, st in enumerate(self.states):
                w.write(st, k, 0.0, potential_energy=self.energies[k],
                        forces=None if self.forces is None else self.forces[k],
                        magnetic_forces=None if self.magnetic_forces is None else self.magnetic_forces[k])


def hermite_curve(x, energies, slopes, n=20):
    """Cubic Hermite interpolation of ``energies`` (M,) at the points ``x`` (M,, increasing) with
    derivatives ``slopes`` (M,) = dE/dx; ``n`` points per interval. Returns ``(xs, Es)``."""
    x, e, m = (np.asarray(a, dtype=float) for a in (x, energies, slopes))
    if int(n) < 1:
        raise InputError(f"curve: n must be a positive integer, got {n}")
    t = np.arange(int(n)) / int(n)
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    dx = np.diff(x)[:, None]
    xs = x[:-1, None] + t[None, :] * dx
    es = h00 * e[:-1, None] + h10 * dx * m[:-1, None] + h01 * e[1:, None] + h11 * dx * m[1:, None]
    return np.append(xs.ravel(), x[-1]), np.append(es.ravel(), e[-1])


# ------------------------------------------------------------------------------- numba kernels
@numba.njit(cache=True)
def _spin_logs(S, mag, fwd, bwd, th2):
    """Great-circle log maps between consecutive images: for k < M−1 and every spin i,
    fwd[k, i] = log of S[k+1, i] at S[k, i] and bwd[k, i] = log of S[k, i] at S[k+1, i] (tangent
    vectors of length the angle θ, rad), th2[k] = Σ_i θ_i². Antiparallel pairs have no unique
    direction: their vectors are 0 (their angle π still counts). Non-magnetic atoms are skipped."""
    for k in range(S.shape[0] - 1):
        acc = 0.0
        for i in range(S.shape[1]):
            if not mag[i]:
                for c in range(3):
                    fwd[k, i, c] = 0.0
                    bwd[k, i, c] = 0.0
                continue
            ax, ay, az = S[k, i, 0], S[k, i, 1], S[k, i, 2]
            bx, by, bz = S[k + 1, i, 0], S[k + 1, i, 1], S[k + 1, i, 2]
            c = ax * bx + ay * by + az * bz
            cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
            cr = math.sqrt(cx * cx + cy * cy + cz * cz)
            th = math.atan2(cr, c)
            if cr > 1e-12:
                f = th / cr
            elif c > 0.0:
                f = 1.0
            else:
                f = 0.0
            fwd[k, i, 0], fwd[k, i, 1], fwd[k, i, 2] = (bx - c * ax) * f, (by - c * ay) * f, (bz - c * az) * f
            bwd[k, i, 0], bwd[k, i, 1], bwd[k, i, 2] = (ax - c * bx) * f, (ay - c * by) * f, (az - c * bz) * f
            acc += th * th
        th2[k] = acc


@numba.njit(cache=True)
def _spin_gradient(s, mu, h, out):
    """out_i = −|m_i| (h_i − (s_i·h_i) s_i): the gradient of E on the sphere of spin i, eV/rad."""
    for i in range(s.shape[0]):
        sh = s[i, 0] * h[i, 0] + s[i, 1] * h[i, 1] + s[i, 2] * h[i, 2]
        for c in range(3):
            out[i, c] = -mu[i] * (h[i, c] - sh * s[i, c])


@numba.njit(cache=True)
def _spin_gradients(S, mu, H, out):
    """:func:`_spin_gradient` of every image k: S, H, out (K, N, 3), mu (N,)."""
    for k in range(S.shape[0]):
        _spin_gradient(S[k], mu, H[k], out[k])


@numba.njit(cache=True)
def _rotate_images(S, theta):
    """Rotate every spin S[k, i] (in place, unit length kept) by its rotation vector theta[k, i]
    (angle |θ| rad about θ̂, right-handed; Rodrigues, ``rotation.rotate_all``)."""
    for k in range(S.shape[0]):
        rotate_all(S[k], theta[k], 1.0, 0.0)


@numba.njit(cache=True)
def _rotation_vectors(S, V, out):
    """out[k, i] = S[k, i] × V[k, i]: the rotation vector that moves spin i of image k along the
    tangent vector V[k, i] (same length)."""
    for k in range(S.shape[0]):
        for i in range(S.shape[1]):
            sx, sy, sz = S[k, i, 0], S[k, i, 1], S[k, i, 2]
            vx, vy, vz = V[k, i, 0], V[k, i, 1], V[k, i, 2]
            out[k, i, 0] = sy * vz - sz * vy
            out[k, i, 1] = sz * vx - sx * vz
            out[k, i, 2] = sx * vy - sy * vx


# ------------------------------------------------------------------------------------- the band
class _Band:
    """The images as stacked arrays (M images, N atoms), the metric of the module docstring and
    the gradients. A tangent vector of one image is a flat array [spins (3N) | positions (3N) |
    magnitudes (N)] of the blocks that move, in metric units (spins: v_i ⊥ s_i, rad); a (K, size)
    array holds one per image.

    Evaluations: when only the spins move and every magnetic term has linear couplings, all
    images are evaluated at once by the field engine (one kernel over the stacked spins, plus the
    constant energy of the lattice terms); otherwise in one ``potential.compute_many`` call (mMACE:
    all images in one model call; analytic terms image by image)."""

    def __init__(self, template, S, R, MU, potential, dofs, weights, modulo_translation=True):
        self.template, self.S, self.R, self.MU, self.pot = template, S, R, MU, potential
        # positions taken modulo a rigid translation (module docstring); off for saddle_modes'
        # Hessian, whose translations are its documented zero modes
        self.modulo_translation = modulo_translation
        self.dofs = dofs
        self.w = {"spins": 1.0, **weights}
        self.n = n = len(template)
        self.mag = np.any(MU > 0, axis=0)
        self.slices, k = {}, 0
        for name, size in (("spins", 3 * n), ("positions", 3 * n), ("magnitudes", n)):
            if dofs[name]:
                self.slices[name] = slice(k, k + size)
                k += size
        self.size = k
        self.names = list(self.slices)
        self.n_eval = 0
        self.engine = None
        frozen = all(np.array_equal(R[k], template.positions) and np.array_equal(MU[k], template.moments)
                     for k in range(len(R)))
        if dofs["spins"] and not (dofs["positions"] or dofs["magnitudes"]) and frozen:
            from .integrators.fields import SpinFieldEngine

            engine = SpinFieldEngine(potential)
            self.nl = potential.neighbor_list(template) if potential.cutoff > 0 else None
            engine.update(template, self.nl)
            if engine.complete:
                self.engine = engine

    def __len__(self):
        return self.S.shape[0]

    def state(self, k):
        # the arrays are valid by construction (unit spins, moments >= 0): no validation pass
        return self.template.with_arrays(positions=self.R[k], spins=self.S[k], moments=self.MU[k])

    def evaluate_images(self, first, last, E, G, EV):
        """Energies E[k] (eV), gradients G[k] in the metric and Evaluations EV[k] of the images
        k = first … last − 1."""
        if self.engine is None:
            d = self.dofs
            evs = self.pot.compute_many([self.state(k) for k in range(first, last)], forces=d["positions"],
                                        magnetic_forces=d["spins"] or d["magnitudes"])
            for k, ev in zip(range(first, last), evs):
                E[k], EV[k] = self.gradient(k, ev, G[k])
            return
        from .potentials.base import Evaluation

        self.n_eval += last - first
        e, h = self.engine.evaluate_images(self.template, self.S[first:last], self.nl)
        _spin_gradients(self.S[first:last], self.template.moments, h, G[first:last].reshape(last - first, self.n, 3))
        E[first:last] = e
        for j, k in enumerate(range(first, last)):
            EV[k] = Evaluation(float(e[j]), magnetic_forces=h[j])

    def gradient(self, k, ev, g):
        """Energy (eV) and the Evaluation ``ev`` of image k; its gradient in the metric is written to g."""
        self.n_eval += 1
        d = self.dofs
        if d["spins"]:  # the spins block comes first: a contiguous (N, 3) view of g
            _spin_gradient(self.S[k], self.MU[k], ev.magnetic_forces, g[self.slices["spins"]].reshape(self.n, 3))
        if d["positions"]:
            gp = g[self.slices["positions"]].reshape(self.n, 3)
            gp[:] = -ev.forces / self.w["positions"]
            if self.modulo_translation:
                gp -= gp.mean(axis=0)
        if d["magnitudes"]:
            sh = np.einsum("ij,ij->i", self.S[k], ev.magnetic_forces)
            g[self.slices["magnitudes"]] = np.where(self.mag, -sh, 0.0) / self.w["magnitudes"]
        return float(ev.energy), ev

    def logs(self):
        """Neighbour vectors and distances: ``fwd[k]`` = log map from image k to k+1 (tangent at
        k), ``bwd[k]`` = from k+1 to k (tangent at k+1), ``dist[k]`` = their metric length, rad."""
        m = len(self)
        fwd, bwd = np.empty((m - 1, self.size)), np.empty((m - 1, self.size))
        d2 = np.zeros(m - 1)
        if self.dofs["spins"]:
            sl = self.slices["spins"]
            if self.size == sl.stop:  # spins only: write in place
                _spin_logs(self.S, self.mag, fwd.reshape(m - 1, self.n, 3), bwd.reshape(m - 1, self.n, 3), d2)
            else:
                f3, b3 = np.empty((m - 1, self.n, 3)), np.empty((m - 1, self.n, 3))
                _spin_logs(self.S, self.mag, f3, b3, d2)
                fwd[:, sl], bwd[:, sl] = f3.reshape(m - 1, -1), b3.reshape(m - 1, -1)
        for name, arr in (("positions", self.R), ("magnitudes", self.MU)):
            if self.dofs[name]:
                diff = np.diff(arr, axis=0)
                if name == "positions":
                    diff = _minimum_image(diff, self.template)
                    if self.modulo_translation:
                        diff = diff - diff.mean(axis=1, keepdims=True)
                diff = diff.reshape(m - 1, -1) * self.w[name]
                fwd[:, self.slices[name]], bwd[:, self.slices[name]] = diff, -diff
                d2 += np.einsum("ki,ki->k", diff, diff)
        return fwd, bwd, np.sqrt(d2)

    def to_step(self, first, V):
        """Tangent vectors V (K, size) of images first, first+1, ... → optimiser variables (spins
        as rotation vectors s × v, the rest unchanged), a new (K, size) array."""
        out = V.copy()
        if self.dofs["spins"]:
            sl, K = self.slices["spins"], V.shape[0]
            r = np.empty((K, self.n, 3))
            _rotation_vectors(self.S[first:first + K], np.ascontiguousarray(V[:, sl]).reshape(K, self.n, 3), r)
            out[:, sl] = r.reshape(K, -1)
        return out

    def block_max(self, V, physical_force=False):
        """Largest per-atom norm of each block of the vectors V (K, size): (K, n_blocks), in metric
        units, or with ``physical_force`` times the weights (a force in eV/rad, eV/Å, eV/μB); a
        step divided by the weights is the move in rad, Å, μB."""
        out = np.zeros((V.shape[0], len(self.names)))
        V = np.ascontiguousarray(V)
        for j, name in enumerate(self.names):
            sl = self.slices[name]
            _block_max(V, sl.start, sl.stop, 1 if name == "magnitudes" else 3, out, j)
            if physical_force:
                out[:, j] *= self.w[name]
        return out

    def apply(self, first, D):
        """Move images first, first+1, ... by the optimiser steps D (K, size)."""
        K = D.shape[0]
        if self.dofs["spins"]:
            theta = np.ascontiguousarray(D[:, self.slices["spins"]]).reshape(K, self.n, 3)
            _rotate_images(self.S[first:first + K], theta)
        for j in range(K):
            k, d = first + j, D[j]
            if self.dofs["positions"]:
                self.R[k] += d[self.slices["positions"]].reshape(-1, 3) / self.w["positions"]
            if self.dofs["magnitudes"]:
                mu = self.MU[k] + d[self.slices["magnitudes"]] / self.w["magnitudes"]
                self.MU[k] = np.where(self.mag, np.maximum(mu, _MIN_MOMENT), 0.0)


def _minimum_image(d, state):
    """Displacements d (..., 3) Å reduced to their shortest periodic images in ``state``'s cell
    (a film's cell may have a zero vector along its non-periodic direction: the periodic vectors
    are completed by unit normals, :func:`spinlat.sites.completed_basis`)."""
    from .sites import completed_basis

    pbc = np.asarray(state.pbc, bool)
    if not pbc.any():
        return d
    cell = completed_basis(state.cell, pbc)
    frac = d @ np.linalg.inv(cell)
    frac[..., pbc] -= np.round(frac[..., pbc])
    return frac @ cell


@numba.njit(cache=True)
def _band_forces(fwd, bwd, dist, E, G, climb, k_spring, F, T, P):
    """Forces on the inner images k = 1 … M−2 of a band (module docstring), all (M, size) arrays:
    T[k] the improved tangent of Henkelman & Jónsson (2000) from τ+ = fwd[k] and τ− = −bwd[k−1]
    (the uphill neighbour; at an extremum τ+ ΔE_max + τ− ΔE_min towards the higher neighbour; the
    bisector of the unit vectors where all three energies are equal), normalised; P[k] = −(G − (G·τ)τ)
    the perpendicular gradient force; F[k] = P[k] + k (|τ+| − |τ−|) τ, or −G + 2 (G·τ) τ for the
    climbing image ``climb`` (−1: none). T[0], T[M−1] are the unit directions to the neighbour
    image; rows 0 and M−1 of F and P are left as they are."""
    m, n = G.shape
    for k in range(1, m - 1):
        ep, e0, em = E[k + 1], E[k], E[k - 1]
        if ep > e0 > em:
            a, b = 1.0, 0.0
        elif ep < e0 < em:
            a, b = 0.0, 1.0
        else:
            big, small = max(abs(ep - e0), abs(em - e0)), min(abs(ep - e0), abs(em - e0))
            a, b = (big, small) if ep > em else (small, big)
        nt2 = 0.0
        for i in range(n):
            x = a * fwd[k, i] - b * bwd[k - 1, i]
            T[k, i] = x
            nt2 += x * x
        if nt2 == 0.0:
            npl, nmi = 0.0, 0.0
            for i in range(n):
                npl += fwd[k, i] * fwd[k, i]
                nmi += bwd[k - 1, i] * bwd[k - 1, i]
            npl, nmi = max(math.sqrt(npl), 1e-300), max(math.sqrt(nmi), 1e-300)
            for i in range(n):
                x = fwd[k, i] / npl - bwd[k - 1, i] / nmi
                T[k, i] = x
                nt2 += x * x
        inv = 1.0 / math.sqrt(nt2) if nt2 > 0.0 else 0.0
        gt = 0.0
        for i in range(n):
            T[k, i] *= inv
            gt += G[k, i] * T[k, i]
        spring = k_spring * (dist[k] - dist[k - 1])
        for i in range(n):
            p = -(G[k, i] - gt * T[k, i])
            P[k, i] = p
            F[k, i] = -G[k, i] + 2.0 * gt * T[k, i] if k == climb else p + spring * T[k, i]
    for k, row, sign in ((0, 0, 1.0), (m - 1, m - 2, -1.0)):
        src = fwd if k == 0 else bwd
        nv = 0.0
        for i in range(n):
            nv += src[row, i] * src[row, i]
        inv = sign / math.sqrt(nv) if nv > 0.0 else 0.0
        for i in range(n):
            T[k, i] = src[row, i] * inv


@numba.njit(cache=True)
def _block_max(V, start, stop, width, out, col):
    """out[k, col] = largest per-atom norm of V[k, start:stop] (rows of ``width`` 3 or 1)."""
    for k in range(V.shape[0]):
        big = 0.0
        if width == 3:
            for i in range(start, stop, 3):
                big = max(big, V[k, i] * V[k, i] + V[k, i + 1] * V[k, i + 1] + V[k, i + 2] * V[k, i + 2])
            big = math.sqrt(big)
        else:
            for i in range(start, stop):
                big = max(big, abs(V[k, i]))
        out[k, col] = big


# ------------------------------------------------------------------------------ initial band
@refuse_other_names()
def geodesic_path(initial, final, images, spins=True, positions=False, magnitudes=False):
    """Initial band between two States: spins along great circles at equal angle steps (BUJ eq.
    (A.1); antiparallel pairs turn about s × e with e the Cartesian axis least aligned with s, as
    any great circle is then geodesic), positions and moment magnitudes linear (positions by
    the minimum-image displacement). Returns (S (M,N,3), R (M,N,3), MU (M,N)) arrays."""
    return _interpolate(initial, final, np.linspace(0.0, 1.0, int(images)), spins, positions, magnitudes)


def _interpolate(initial, final, t, spins, positions, magnitudes):
    """Points at fractions t (K,) of the geodesic from ``initial`` to ``final`` (see
    :func:`geodesic_path`; t = 1 gives ``final``'s arrays exactly): (S, R, MU) (K, N, …) arrays."""
    m = len(t)
    a, b = initial.spins, final.spins
    S = np.repeat(a[None], m, axis=0)
    if spins:
        axis = np.cross(a, b)
        sin = np.linalg.norm(axis, axis=1)
        ang = np.arctan2(sin, np.einsum("ij,ij->i", a, b))
        anti = (sin < 1e-12) & (ang > 1.0)
        if np.any(anti):
            e = np.eye(3)[np.argmin(np.abs(a[anti]), axis=1)]
            axis[anti] = np.cross(a[anti], e)
            sin[anti] = np.linalg.norm(axis[anti], axis=1)
        axis = np.where(sin[:, None] > 0, axis / np.maximum(sin, 1e-300)[:, None], 0.0) * ang[:, None]
        axis[(initial.moments == 0) & (final.moments == 0)] = 0.0
        for k in range(m):
            if t[k] == 1.0:
                S[k] = b
            elif t[k] != 0.0:
                rotate_all(S[k], np.ascontiguousarray(axis * t[k]), 1.0, 0.0)
    R = np.repeat(initial.positions[None], m, axis=0)
    if positions:
        d = _minimum_image(final.positions - initial.positions, initial)
        R = initial.positions[None] + t[:, None, None] * d[None]
        R[t == 1.0] = final.positions
    MU = np.repeat(initial.moments[None], m, axis=0)
    if magnitudes:
        MU = initial.moments[None] + t[:, None] * (final.moments - initial.moments)[None]
        MU[t == 1.0] = final.moments
    return S, R, MU


def _check_endpoints(initial, final, spins, positions, magnitudes, names=("initial", "final")):
    """Raise InputError unless ``final`` can be reached from ``initial`` moving only the degrees
    of freedom switched on (``names``: how the two are called in the messages)."""
    from .state import State

    first, second = names
    for name, st in zip(names, (initial, final)):
        if not isinstance(st, State):
            hint = (": convert it with spinlat.State.from_ase(atoms) (a band read from path.extxyz: one State per "
                    "image; its path.h5 restarts as it is)") if type(st).__name__ == "Atoms" else ""
            raise InputError(f"gneb: {name} must be a spinlat.State, got {type(st).__name__}{hint}")
    if len(initial) != len(final):
        raise InputError(f"gneb: {first} has {len(initial)} atoms, {second} {len(final)}")
    if not np.array_equal(initial.numbers, final.numbers):
        k = int(np.argmax(initial.numbers != final.numbers))
        raise InputError(f"gneb: atom {k} is element {initial.numbers[k]} in {first} but {final.numbers[k]} in "
                         f"{second}")
    if not np.array_equal(initial.pbc, final.pbc):
        raise InputError(f"gneb: {first} is periodic along {np.asarray(initial.pbc).tolist()} but {second} along "
                         f"{np.asarray(final.pbc).tolist()} (x, y, z); the band has one cell and periodicity")
    if not np.allclose(initial.cell, final.cell, rtol=0, atol=1e-10):
        i, j = np.unravel_index(np.argmax(np.abs(initial.cell - final.cell)), (3, 3))
        raise InputError(f"gneb: {first} and {second} have different cells (cell vector {i}, component {'xyz'[j]}: "
                         f"{initial.cell[i, j]:.10g} Å and {final.cell[i, j]:.10g} Å); the cell is fixed along the "
                         f"path: give both endpoints the same cell (a path that strains the cell, e.g. the Bain path, "
                         f"is spinlat.workflows.bain.bain_path)")
    mi, mf = initial.moments > 0, final.moments > 0
    if np.any(mi != mf):
        k = int(np.argmax(mi != mf))
        yes, no = (first, second) if mi[k] else (second, first)
        raise InputError(f"gneb: atom {k} is magnetic in {yes} but not in {no} (moments {initial.moments[k]} "
                         f"and {final.moments[k]} μB); a moment cannot appear along the path")
    swapped = _relabelled_atom(initial, final)
    if swapped is not None:
        i, j, near, far, moved = swapped
        raise InputError(f"gneb: {first} and {second} list their atoms in different orders: atom {j} of {second} "
                         f"sits {near:.3g} Å from atom {i} of {first}, while atom {i} of {second} is {far:.3g} Å "
                         f"away "
                         f"({moved} atoms of {second} are those of {first} relabelled, each within 0.3 Å of the "
                         f"place of another). The band joins atom k to atom k, so it would carry atoms through "
                         f"each other; put the atoms of {second} in the order of {first} (e.g. the same file or "
                         f"builder for both)")
    checks = [("spins", spins, np.max(np.linalg.norm((initial.spins - final.spins)[mi], axis=1), initial=0.0), 1e-10,
               "rad"),
              ("moments", magnitudes, np.max(np.abs(initial.moments - final.moments), initial=0.0), 1e-10, "μB")]
    if not positions:
        d = _minimum_image(final.positions - initial.positions, initial)
        checks.append(("positions", False, np.max(np.linalg.norm(d, axis=1), initial=0.0), 1e-8, "Å"))
    for name, free, diff, limit, unit in checks:
        if not free and diff > limit:
            flag = "magnitudes" if name == "moments" else name
            raise InputError(f"gneb: the {name} of {first} and {second} differ (by up to {diff:.3g} {unit}) but "
                             f"{flag}=False keeps them fixed; pass {flag}=True or equal {name}")


def _relabelled_atom(initial, final, shift=0.3):
    """Evidence that ``final`` lists the atoms of ``initial`` in another order: every atom that
    moved more than ``shift`` Å (minimum image) has an atom of ``final`` of its element within
    ``shift`` of its initial place, and those atoms are exactly the ones that moved (a
    permutation). Returns (i, j, |r_j' − r_i| Å, |r_i' − r_i| Å, how many atoms moved) for the
    first such atom i and the atom j of ``final`` at its place, or None. A hop into a vacancy or
    an interstitialcy move (an atom pushed off its site onto another place) leaves some place
    empty and is no such evidence."""
    d = np.linalg.norm(_minimum_image(final.positions - initial.positions, initial), axis=1)
    moved = np.flatnonzero(d > shift)
    found = []
    for i in moved:
        same = np.flatnonzero(final.numbers == initial.numbers[i])
        r = np.linalg.norm(_minimum_image(final.positions[same] - initial.positions[i], initial), axis=1)
        k = int(np.argmin(r))
        if r[k] >= shift:  # its place is empty in final: a real move
            return None
        found.append((int(i), int(same[k]), float(r[k]), float(d[i])))
    if not found or sorted(f[1] for f in found) != moved.tolist():
        return None
    return (*found[0], len(found))


#: eigenvalues within this fraction of the largest one's size count as zero modes: a Goldstone mode
#: of a band converged to tol is off zero by about its distance from the saddle times E''' (either sign)
ZERO_MODE = 1e-2


def saddle_verdict(values):
    """(number of unstable modes, a phrase) for the ascending Hessian eigenvalues ``values`` at a
    saddle image: negative means below −``ZERO_MODE`` × max |value|; those nearer 0 are zero modes."""
    scale = max(abs(float(v)) for v in values)
    negative = sum(float(v) < -ZERO_MODE * scale for v in values)
    zero = sum(abs(float(v)) <= ZERO_MODE * scale for v in values)
    zeros = f" ({zero} zero mode{'s' if zero > 1 else ''})" if zero else ""
    if negative == 0:
        return 0, f"no negative eigenvalue: the saddle image is not at a saddle point{zeros}"
    if negative == 1:
        first = "a first-order saddle" if len(values) > 1 else "one negative eigenvalue (the only one there is)"
        return 1, first + zeros
    more = "at least " if negative == len(values) else ""  # every eigenvalue asked for negative
    return negative, (f"{more}{negative} negative: the band lies on a higher-order saddle (a symmetric starting "
                      "band keeps its symmetry): restart it with noise (0.01 rad; noise: 0.01 in spinlat gneb's "
                      f"config) to let it fall to the minimum-energy path{zeros}")


def _largest_differences(a, b) -> dict:
    """Largest per-atom differences between two States of the same atoms: spin angle of the
    magnetic atoms (rad), minimum-image displacement (Å) and moment (μB), keyed by unit."""
    mag = (a.moments > 0) & (b.moments > 0)
    cos = np.clip(np.einsum("ij,ij->i", a.spins[mag], b.spins[mag]), -1.0, 1.0)
    d = np.linalg.norm(_minimum_image(b.positions - a.positions, a), axis=1)
    return {"rad": float(np.max(np.arccos(cos), initial=0.0)), "Å": float(np.max(d, initial=0.0)),
            "μB": float(np.max(np.abs(a.moments - b.moments), initial=0.0))}


def _check_potential(potential, spins, positions, magnitudes):
    """InputError unless ``potential`` gives what the moving degrees of freedom need."""
    if (spins or magnitudes) and not potential.magnetic:
        raise InputError(f"gneb: the energy of {potential!r} does not depend on spins; spins/magnitudes cannot "
                         "change it (pass spins=False, positions=True for a lattice path)")
    if (spins or magnitudes) and not potential.provides_magnetic_forces:
        raise InputError(f"gneb: {potential!r} gives no magnetic forces; spins/magnitudes cannot move")
    if magnitudes and not potential.depends_on_magnitudes:
        raise InputError(f"gneb: magnitudes=True but {potential!r} does not depend on moment magnitudes")


def _tangent_basis(s):
    """Two orthonormal vectors ⊥ each unit vector s (N, 3): (N, 2, 3)."""
    e = np.eye(3)[np.argmin(np.abs(s), axis=1)]
    u = np.cross(s, e)
    u /= np.linalg.norm(u, axis=1)[:, None]
    return np.stack([u, np.cross(s, u)], axis=1)


def _option_dict(value, defaults, name):
    out = dict(defaults)
    if value is None:
        return out
    if not isinstance(value, dict):
        raise InputError(f"gneb: {name} must be a dict with keys from {sorted(defaults)}, got {value!r}")
    bad = set(value) - set(defaults)
    if bad:
        raise InputError(f"gneb: unknown {name} key(s) {sorted(bad)}; expected some of {sorted(defaults)}")
    for k, v in value.items():
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
            raise InputError(f"gneb: {name}[{k!r}] must be a positive number, got {v!r}")
        out[k] = float(v)
    return out


# ------------------------------------------------------------------------------------- driver
@refuse_other_names()
def gneb(initial, final, potential, images=None, climbing=True, spins=True, magnitudes=False, positions=False,
         tol=1e-5, max_iterations=10000, *, spring_constant=1e-3, weights=None, path=None, climb_after=None,
         max_step=None, method="auto", memory=10, noise=0.0, seed=None, relax_endpoints=False,
         callback=None) -> GNEBResult:
    """Minimum-energy path and barrier between ``initial`` and ``final`` by the geodesic nudged
    elastic band with a climbing image (method, metric and units in the module docstring).

    Parameters
    ----------
    initial, final : :class:`~spinlat.State` endpoints (local minima; kept fixed unless
        ``relax_endpoints``). Same atoms, cell and magnetic atoms; the parts that do not move
        (spins, positions or moment magnitudes switched off) must be equal. May be None when
        ``path`` is given.
    potential : any spinlat potential (magnetic forces needed for ``spins``/``magnitudes``, forces
        for ``positions``; moment-dependent energy for ``magnitudes``).
    images : number of images M including both endpoints (≥ 3; default 16, or the length of
        ``path``, which another number contradicts: InputError).
    climbing : let the highest image climb to the saddle point once the band's perpendicular
        force is below ``climb_after`` (module docstring); False relaxes the plain band
        throughout.
    spins, magnitudes, positions : which degrees of freedom move along the path.
    tol : convergence threshold on every inner image's largest per-atom force: eV/rad (spins),
        eV/Å (positions), eV/μB (magnitudes); a number for all, or a dict per block.
    max_iterations : optimiser iterations (each evaluates the M − 2 inner images once).
    spring_constant : k, eV/rad² (Spirit's default, 1 meV/rad², made for spins). The springs hold
        the image spacing only to tol/k; with moving atoms (1 Å = w_r rad) ~1 eV/Å² is usual. A
        converged band with very uneven images warns (:func:`spacing_problems`).
    weights : metric weights {"positions": w_r rad/Å, "magnitudes": w_m rad/μB} (default 1, 1).
    path : optional starting band (sets ``images``): a band file (``path.h5`` of
        :meth:`GNEBResult.write` or ``spinlat gneb``), an open :class:`~spinlat.io.Trajectory`
        of one, a :class:`GNEBResult` (the ``partial_result`` of an interrupted call), or a list
        of States from ``initial`` to ``final``; default the geodesic interpolation
        :func:`geodesic_path`. A file, Trajectory or result continues the same band: its
        recorded potential (description and term digests) and :data:`BAND_PARAMETERS` must be
        this call's (InputError naming each difference, as :func:`band_changes`); climbing,
        tolerances and the optimiser may change. A plain list of States records nothing, so
        nothing is compared: another potential, spring constant, weights or moving parts start
        a different band from those images without a word.
    climb_after : perpendicular force (largest block, its unit; springs left out) below which the
        climbing image starts; default max(10 tol, 0.1 × that force on the initial band).
    max_step : largest move of one step {"spins": rad, "positions": Å, "magnitudes": μB}
        (default :data:`DEFAULT_MAX_STEP`).
    method : optimiser: "lbfgs", "fire", or "auto" (L-BFGS, continued by FIRE if its largest force
        has not dropped by 10 % for ``_PATIENCE`` iterations; the result's ``reason`` says so).
    memory : L-BFGS memory (pairs).
    noise : standard deviation (rad) of random rotations applied to every spin of the inner images
        of the starting band (as Spirit's ``transition.add_noise``): a band that starts on a
        symmetric path can stay there, on a higher-order saddle, since its perpendicular forces
        vanish by symmetry (it converges, reporting too high a barrier); a little noise lets it
        fall to the minimum-energy path. :meth:`GNEBResult.saddle_modes` tells the two apart
        (one negative Hessian eigenvalue at a first-order saddle).
    seed : seed of that noise.
    relax_endpoints : first relax both endpoints with :func:`spinlat.minimize` (same degrees of
        freedom, tolerance ``tol``); two endpoints that relax into one minimum (every spin within
        0.01 rad, atom within 0.01 Å, moment within 0.01 μB) are refused (InputError). Without it
        an endpoint whose largest force exceeds ``tol``
        (no local minimum) gives a UserWarning naming it (:func:`endpoint_problems`); its forces
        are in the result's ``endpoint_forces``.
    callback : called every iteration with a dict (iteration, max_force, energies, climbing
        (index or None)).

    Returns
    -------
    :class:`GNEBResult` — ``states``, ``energies`` (eV), ``reaction_coordinate`` (rad),
    ``barrier`` (eV), ``saddle``, ``curve(n)``, convergence data.

    Raises
    ------
    InputError for inconsistent endpoints, unknown options or a potential that lacks what the
    moving degrees of freedom need. ``KeyboardInterrupt`` on Ctrl-C (SIGTERM:
    :class:`~spinlat.interrupts.Terminated`), held back to the end of the iteration under way, or
    to the next image evaluation of its step when the images go through the potential's
    ``compute_many`` (a model without spin couplings, mMACE: a step can take long), the band
    then put back as it stood: its ``partial_result`` attribute is the :class:`GNEBResult` of
    the band at the last whole iteration (``reason`` "interrupted"; a second signal keeps it
    too), whose ``states`` can start a new call as ``path``.
    """
    if not (spins or positions or magnitudes):
        raise InputError("gneb: nothing moves (spins, positions and magnitudes are all False)")
    if path is not None:
        path = _starting_band(path, potential, dict(images=images, spring_constant=spring_constant, weights=weights,
                                                    spins=spins, positions=positions, magnitudes=magnitudes))
        if len(path) < 3:
            raise InputError(f"gneb: path needs at least 3 images, got {len(path)}")
        if images is not None and images != len(path):
            raise InputError(f"gneb: images={images!r} but the starting path has {len(path)} images "
                             f"(leave images out to take the path's, or start from "
                             f"GNEBResult.read(file).resampled({images!r}) for a band of {images!r} images)")
        images = len(path)
    elif images is None:
        images = 16
    if isinstance(images, bool) or not isinstance(images, (int, np.integer)) or images < 3:
        raise InputError(f"gneb: images must be an integer >= 3 (both endpoints included), got {images!r}")
    tols = _option_dict(tol if isinstance(tol, dict) else None, {k: 1e-5 for k in _BLOCKS}, "tol")
    if not isinstance(tol, dict):
        if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol > 0):
            raise InputError(f"gneb: tol must be a positive number (or a dict per block), got {tol!r}")
        tols = {k: float(tol) for k in _BLOCKS}
    w = _option_dict(weights, DEFAULT_WEIGHTS, "weights")
    caps = _option_dict(max_step, DEFAULT_MAX_STEP, "max_step")
    if not (isinstance(spring_constant, (int, float)) and spring_constant > 0):
        raise InputError(f"gneb: spring_constant must be positive (eV/rad²), got {spring_constant!r}")
    if not isinstance(max_iterations, (int, np.integer)) or max_iterations < 0:
        raise InputError(f"gneb: max_iterations must be a non-negative integer, got {max_iterations!r}")
    if method not in ("auto", "lbfgs", "fire"):
        raise InputError(f"gneb: method must be 'auto', 'lbfgs' or 'fire', got {method!r}")
    if not isinstance(memory, (int, np.integer)) or memory < 1:
        raise InputError(f"gneb: memory must be a positive integer, got {memory!r}")
    if not (isinstance(noise, (int, float)) and noise >= 0):
        raise InputError(f"gneb: noise must be a non-negative angle (rad), got {noise!r}")
    if climb_after is not None and not climb_after > 0:
        raise InputError(f"gneb: climb_after must be positive, got {climb_after!r}")
    _check_potential(potential, spins, positions, magnitudes)
    if path is not None:
        for name, given, end in (("initial", initial, path[0]), ("final", final, path[-1])):
            if given is not None and given is not end and not all(
                    np.array_equal(getattr(given, f), getattr(end, f)) for f in ("spins", "positions", "moments")):
                raise InputError(f"gneb: {name} differs from the {'first' if name == 'initial' else 'last'} image of "
                                 "path (pass None or the same State)")
        initial, final = path[0], path[-1]
        for k, st in enumerate(path):
            _check_endpoints(initial, st, spins, positions, magnitudes, names=("path[0]", f"path[{k}]"))
    _check_endpoints(initial, final, spins, positions, magnitudes)
    mag = initial.moments > 0
    if np.array_equal(initial.spins[mag], final.spins[mag]) and np.array_equal(initial.moments, final.moments) and \
            not np.any(_minimum_image(final.positions - initial.positions, initial)):
        raise InputError("gneb: initial and final are the same configuration: there is no path between them (the "
                         "same file or search minimum given twice?)")
    if relax_endpoints:
        from .minimization import minimize

        kw = dict(spins=spins, positions=positions, magnitudes=magnitudes, tmax=tols["spins"],
                  fmax=tols["positions"], hmax=tols["magnitudes"])
        initial, final = minimize(initial, potential, **kw), minimize(final, potential, **kw)
        apart = _largest_differences(initial, final)
        # both fell into one minimum (copies relaxed to tol differ by ~ tol / curvature): a "path" of length ~0
        if all(v < 1e-2 for v in apart.values()):
            raise InputError("gneb: relax_endpoints: initial and final relaxed into the same minimum (they differ by "
                             "at most " + ", ".join(f"{v:.3g} {u}" for u, v in apart.items()) + "): the final "
                             "state lay in the initial one's basin; give a final state in another minimum (relaxed "
                             "on its own, e.g. a spinlat search minimum)")
    dofs = dict(spins=bool(spins), positions=bool(positions), magnitudes=bool(magnitudes))
    if path is not None:
        S = np.array([st.spins for st in path], dtype=float)
        R = np.array([st.positions for st in path], dtype=float)
        MU = np.array([st.moments for st in path], dtype=float)
        S[0], S[-1], R[0], R[-1], MU[0], MU[-1] = (initial.spins, final.spins, initial.positions, final.positions,
                                                   initial.moments, final.moments)
    else:
        S, R, MU = geodesic_path(initial, final, images, spins, positions, magnitudes)
    if noise > 0 and spins:
        rng = np.random.default_rng(seed)
        for k in range(1, len(S) - 1):
            theta = rng.normal(0.0, noise, S[k].shape)
            theta[MU[k] == 0] = 0.0
            rotate_all(S[k], theta, 1.0, 0.0)
    # images are configurations, not moments of a trajectory: no velocities (the initial
    # endpoint's, from an MD snapshot, went to every image, kinetic energy and temperature)
    band = _Band(initial.copy(velocities=np.zeros_like(initial.velocities)), np.ascontiguousarray(S),
                 np.ascontiguousarray(R), np.ascontiguousarray(MU), potential, dofs, w)
    # Ctrl-C / SIGTERM: at the next whole band
    with deferred("at the end of the band iteration under way (a model's band: at its next image evaluation)"):
        abandoned, result = _relax(band, bool(climbing), tols, float(spring_constant), climb_after, caps,
                                   int(memory), int(max_iterations), method, callback)
        result.parameters = _band_parameters(dict(images=images, spring_constant=spring_constant, weights=weights,
                                                  **dofs))
        result.potential = str(potential)
        if hasattr(potential, "term_digests"):
            result.potential_digests = potential.term_digests()
        if abandoned is not None:  # stopped inside a step: the band of the last whole iteration
            raise_with(abandoned, result)
        check(result)  # interrupted: raised with the band so far as ``partial_result``
    for msg in endpoint_problems(result, tols) + spacing_problems(result, spring_constant, tols):
        warnings.warn(msg, UserWarning, stacklevel=3)  # the caller (+1: the keyword check's wrapper)
    return result


def spacing_problems(result, spring_constant, tol) -> list:
    """A phrase when the converged band ``result`` has very uneven images: its segments away from
    the climbing image (whose two segments are free) differ by more than a factor 3. The springs
    hold the spacing only to tol / k (a spring force k Δd below ``tol`` counts as converged): with a
    weak ``spring_constant`` k images slide into minima and the band can cross a higher barrier
    between two images (a vacancy hop with atoms and Spirit's k = 1e-3 eV/rad²: 0.557 eV reported
    for the 0.654 eV hump). Empty otherwise."""
    d = np.diff(result.reaction_coordinate)
    keep = np.ones(d.size, bool)
    if result.climbing is not None:
        keep[max(0, result.climbing - 1):result.climbing + 1] = False
    d = d[keep]
    if not result.converged or d.size < 2 or not d.max() > 0 or d.max() <= 3.0 * d.min():  # d.min() 0: collapsed
        return []
    slack = max(tol.values()) if isinstance(tol, dict) else float(tol)
    return [f"gneb: the converged band's images are unevenly spaced (segments from {d.min():.3g} to {d.max():.3g} "
            f"rad, away from the climbing image): the springs hold the spacing only to tol/k = "
            f"{slack / spring_constant:.3g} rad, so images may have slid into minima and a barrier between two "
            f"of them gone unseen; raise spring_constant (with moving atoms ~1 eV/Å²) or lower tol"]


def endpoint_problems(result, tol) -> list:
    """One phrase per endpoint of ``result`` (:class:`GNEBResult`) that is no local minimum: its
    largest per-atom force (:attr:`GNEBResult.endpoint_forces`) above ``tol`` (a number, or a dict
    per block as in :func:`gneb`; eV/rad, eV/Å, eV/μB). Empty when both are minima to ``tol``."""
    out = []
    for name, forces in zip(("initial", "final"), result.endpoint_forces or []):
        over = {k: v for k, v in forces.items() if v > (tol[k] if isinstance(tol, dict) else tol)}
        if over:
            what = ", ".join(f"{k} {v:.3g} {_UNITS[k]}" for k, v in over.items())
            out.append(f"gneb: the {name} endpoint is not a local minimum (largest force {what} > tol): the barrier is "
                       f"measured from a point on a slope and the band may not end in the minimum; relax it first "
                       f"(relax_endpoints=True, or spinlat.minimize to tol)")
    return out


def _starting_band(path, potential, gneb_kwargs) -> list:
    """The States of :func:`gneb`'s ``path``: a band file, an open Trajectory or a
    :class:`GNEBResult` is compared with the call (``gneb_kwargs``: its band parameters) and
    refused on a difference (InputError naming each); any other iterable is taken as the States."""
    import os

    from .io import Trajectory

    if isinstance(path, (str, os.PathLike)):
        with Trajectory(path) as tr:
            attrs, states = tr.attrs, list(tr)
        where = f"the band in {os.fspath(path)}"
    elif isinstance(path, Trajectory):
        attrs, states, where = path.attrs, list(path), f"the band in {path.path}"
    elif isinstance(path, GNEBResult):
        attrs = {"potential": path.potential,
                 "metadata": {"gneb": {"parameters": path.parameters}, "potential_digests": path.potential_digests}}
        states, where = list(path.states), "the band of that GNEBResult"
    else:
        return list(path)
    changed = _recorded_changes(attrs, potential, gneb_kwargs, "the result" if isinstance(path, GNEBResult) else "the file")
    if changed:
        raise InputError(f"gneb: path: {where} was made with other parameters: {'; '.join(changed)}. A restart "
                         f"continues the same band (climbing, tol, max_iterations and method may change): use the "
                         f"recorded values, or start a new band from the endpoints without path"
                         + (" (or, for another number of images, from GNEBResult.read(file).resampled(images))"
                            if any(c.startswith("images ") for c in changed) else ""))
    return states


#: the parameters of :func:`gneb` that define the band (recorded in its file; a restart must keep them)
BAND_PARAMETERS = ("images", "spring_constant", "spins", "positions", "magnitudes", "weights")


def _band_parameters(values) -> dict:
    """The :data:`BAND_PARAMETERS` of ``values`` (gneb's keyword arguments; its defaults for those
    missing), as recorded: numbers as floats, ``weights`` complete; ``images`` None when unknown."""
    import inspect

    given = {k: p.default for k, p in inspect.signature(gneb).parameters.items() if k in BAND_PARAMETERS}
    given.update({k: v for k, v in values.items() if k in BAND_PARAMETERS})
    return {"images": None if given["images"] is None else int(given["images"]),
            "spring_constant": float(given["spring_constant"]),
            **{k: bool(given[k]) for k in ("spins", "positions", "magnitudes")},
            "weights": {k: float(v) for k, v in _option_dict(given["weights"], DEFAULT_WEIGHTS, "weights").items()}}


@refuse_other_names(extra=parameters_of("spinlat.transitions:gneb", exclude=("initial", "final", "potential")))
def band_changes(path, potential, **gneb_kwargs) -> list:
    """What differs between a band about to start from the GNEB band file ``path`` (a
    ``path.h5`` of :meth:`GNEBResult.write`) and the one that wrote it: one phrase per
    difference, empty when none is seen. Compared: the potential (its description, then each
    term's :meth:`~spinlat.potentials.Potential.parameter_digest`, as trajectory restarts do) and
    the :data:`BAND_PARAMETERS` of ``gneb_kwargs`` (keyword arguments of :func:`gneb`, its
    defaults for those left out; ``images`` only when given). A file written before parameters
    were recorded compares only the potential's description. Climbing, tolerances and the
    optimiser may change: a converged band restarted with ``climbing=True`` is the usual
    refinement. Raises MissingFileError / FileFormatError for a missing file or one that is not a
    trajectory, InputError for bad ``weights``."""
    from .io import Trajectory

    with Trajectory(path) as tr:
        attrs = tr.attrs
    return _recorded_changes(attrs, potential, gneb_kwargs)


def _recorded_changes(attrs, potential, gneb_kwargs, source="the file") -> list:
    """:func:`band_changes` of a band whose trajectory attributes are ``attrs`` (``potential``:
    its description; ``metadata``: its ``gneb.parameters`` and ``potential_digests``), recorded
    by ``source`` (for the phrases)."""
    from .potentials.base import changed_parameters

    meta = attrs.get("metadata") if isinstance(attrs.get("metadata"), dict) else {}
    gmeta = meta.get("gneb") if isinstance(meta.get("gneb"), dict) else {}
    recorded = gmeta.get("parameters") if isinstance(gmeta.get("parameters"), dict) else {}
    changed = []
    old, new = attrs.get("potential"), str(potential)
    if isinstance(old, str) and old and old != new:
        changed.append(f"another potential {new} ({source} records {old})")
    elif hasattr(potential, "term_digests"):
        changed += [c.replace("the file records", f"{source} records")
                    for c in changed_parameters(meta.get("potential_digests"), potential.term_digests())]
    for key, value in _band_parameters(gneb_kwargs).items():
        if key in recorded and value is not None and recorded[key] != value:
            changed.append(f"{key} {value!r} ({source} records {recorded[key]!r})")
    return changed


class _LBFGS:
    """L-BFGS directions for the whole band (no line search: the band force is no gradient); the
    pairs live in a ring buffer of ``memory`` rows."""

    name = "lbfgs"

    def __init__(self, memory):
        self.memory, self.S, self.Y, self.order = memory, None, None, []
        self.rho, self.gamma = np.zeros(memory), 1.0

    def reset(self):
        self.order = []

    def direction(self, f, first):
        """Step along the force f (flat, optimiser variables); ``first``: the step to take without
        curvature information (a scaled copy of f)."""
        from .integrators.lbfgs import dot, two_loop_rows

        d = two_loop_rows(f, self.S, self.Y, np.array(self.order), self.rho, self.gamma) if self.order else None
        if d is None or dot(d, f) <= 0.0:  # no memory, or not along the force: restart
            self.reset()
            d = first
        return d

    def capped(self, factor):
        pass

    def update(self, d, f, f_new):
        from .integrators.lbfgs import dot

        if self.S is None:
            self.S, self.Y = np.empty((self.memory, f.size)), np.empty((self.memory, f.size))
        y = f - f_new  # change of the gradient (−force)
        sy, yy = dot(d, y), dot(y, y)
        if sy > 1e-12 * math.sqrt(dot(d, d) * yy):
            # rows fill 0, 1, … after a reset, then the oldest is overwritten
            row = self.order.pop(0) if len(self.order) == self.memory else len(self.order)
            self.S[row], self.Y[row] = d, y
            self.rho[row], self.gamma = 1.0 / sy, sy / yy
            self.order.append(row)


class _FIRE:
    """Fast inertial relaxation engine (Bitzek et al., Phys. Rev. Lett. 97, 170201 (2006)) with
    unit masses, its published parameters (N_min 5, f_inc 1.1, f_dec 0.5, α 0.1, f_α 0.99,
    Δt_max = 10 Δt₀), Δt₀ set so that the first step moves ``first``."""

    name = "fire"

    def __init__(self):
        self.v = None

    def reset(self):
        self.v = None

    def direction(self, f, first):
        from .integrators.lbfgs import dot

        if self.v is None:  # Δt₀² |f| = |first|
            self.dt = self.dt0 = math.sqrt(math.sqrt(dot(first, first) / max(dot(f, f), 1e-300)))
            self.v, self.alpha, self.n_pos = np.zeros_like(f), 0.1, 0
        if dot(self.v, f) > 0.0:
            mix = self.alpha * math.sqrt(dot(self.v, self.v) / max(dot(f, f), 1e-300))
            self.v = (1 - self.alpha) * self.v + mix * f
            if self.n_pos > 5:
                self.dt, self.alpha = min(1.1 * self.dt, 10.0 * self.dt0), 0.99 * self.alpha
            self.n_pos += 1
        else:  # uphill: stop
            self.v[:] = 0.0
            self.dt, self.alpha, self.n_pos = 0.5 * self.dt, 0.1, 0
        self.v = self.v + self.dt * f
        return self.dt * self.v

    def capped(self, factor):
        self.v *= factor

    def update(self, d, f, f_new):
        pass


def _relax(band, climbing, tols, k_spring, climb_after, caps, memory, max_iterations, method, callback):
    m = len(band)
    E, G, EV = np.zeros(m), np.zeros((m, band.size)), [None] * m
    band.evaluate_images(0, m, E, G, EV)
    names = band.names
    tol_vec = np.array([tols[n] for n in names])
    cap_vec = np.array([caps[n] * band.w[n] for n in names])  # largest step per block, metric units
    opt = _FIRE() if method == "fire" else _LBFGS(memory)
    climb, started, hops, climb_at = None, False, 0, climb_after
    converged, interrupted, it, switched, abandoned = False, False, 0, None, None
    best, best_it = math.inf, 0
    history = []

    def band_forces():
        """Band forces F, tangents T, image distances, per-image block maxima of F (eV/rad, eV/Å,
        eV/μB) and the largest perpendicular gradient force (springs left out)."""
        fwd, bwd, dist = band.logs()
        F, T, P = np.zeros((m, band.size)), np.empty((m, band.size)), np.zeros((m, band.size))
        _band_forces(fwd, bwd, dist, E, G, -1 if climb is None else climb, k_spring, F, T, P)
        return F, T, dist, band.block_max(F, physical_force=True), float(band.block_max(P, True).max())

    F, T, dist, per_image, perp = band_forces()
    for it in range(max_iterations + 1):
        if climb_at is None:
            climb_at = max(10.0 * float(tol_vec.max()), 0.1 * perp)
        done = bool(np.all(per_image.max(axis=0) <= tol_vec))
        top = 1 + int(np.argmax(E[1:-1]))
        if climbing and not started and (done or perp <= climb_at):
            started = True
            if E[top] > max(E[0], E[-1]):
                climb = top
        elif climb is not None and top != climb and hops < m and np.all(per_image[climb] <= tol_vec) and \
                E[top] > E[climb] + 1e-12 * max(1.0, abs(E[climb])):
            climb, hops = top, hops + 1  # the climbing image sits on a lower saddle: move it up
        else:
            top = None
        if top is not None and top == climb:
            opt.reset()
            best = math.inf
            F, T, dist, per_image, perp = band_forces()
            done = bool(np.all(per_image.max(axis=0) <= tol_vec))
        history.append(float(per_image.max()))
        if callback is not None:
            callback({"iteration": it, "max_force": history[-1], "energies": E.copy(), "climbing": climb})
        if pending():  # Ctrl-C / SIGTERM held back to here: the band is whole and evaluated
            interrupted = True
            break
        if done and (started or not climbing):
            converged = True
            break
        if it == max_iterations:
            break
        # stalled quasi-Newton (soft modes, kinks): continue with the robust inertial relaxation
        if history[-1] < 0.9 * best:
            best, best_it = history[-1], it
        elif method == "auto" and opt.name == "lbfgs" and it - best_it > _PATIENCE:
            opt, switched, best, best_it = _FIRE(), it, history[-1], it
        # one step for all inner images at once: gradient −F, spins as rotation vectors. A stop during it (at
        # an image evaluation: a big model's band takes long) puts the band back as it was: iteration it, whole
        # (only the blocks that move: Band.apply changes them in place, the others never)
        moving = [a for a, on in ((band.S, band.dofs["spins"]), (band.R, band.dofs["positions"]),
                                  (band.MU, band.dofs["magnitudes"])) if on]
        whole = ([a.copy() for a in moving], E.copy(), G.copy(), list(EV), (F, T, dist, per_image, perp))
        try:
            with abandonable():
                f = band.to_step(1, F[1:-1]).ravel()
                first = f * (0.1 * cap_vec.min() / max(float(band.block_max(f.reshape(m - 2, -1)).max()), 1e-300))
                d = opt.direction(f, first)
                moves = band.block_max(d.reshape(m - 2, -1)).max(axis=0)
                factor = min(1.0, float(np.min(cap_vec / np.maximum(moves, 1e-300))))
                d *= factor
                opt.capped(factor)
                band.apply(1, d.reshape(m - 2, -1))
                band.evaluate_images(1, m - 1, E, G, EV)
                F, T, dist, per_image, perp = band_forces()
                opt.update(d, f, band.to_step(1, F[1:-1]).ravel())
        except BaseException as exc:  # the first signal at an evaluation, or a second one anywhere in the step
            abandoned = interrupt_cause(exc)
            if abandoned is None:
                raise
            for a, saved in zip(moving, whole[0]):
                a[...] = saved
            E[...], G[...] = whole[1:3]
            EV[:] = whole[3]
            F, T, dist, per_image, perp = whole[4]
            interrupted = True
            break
    no_climb = ("; no interior energy maximum, so no climbing image" if started else
                f"; no climbing image yet (it starts once the largest perpendicular force, {perp:.3g}, is below "
                f"climb_after, {climb_at:.3g}): the highest image is not at the saddle")
    reason = ("converged" if converged else "interrupted" if interrupted else "max_iterations reached") + (
        no_climb if climbing and climb is None else "") + (
        f"; L-BFGS stalled, FIRE from iteration {switched}" if switched is not None else "")
    slopes = np.einsum("ki,ki->k", G, T)
    x = np.concatenate([[0.0], np.cumsum(dist)])
    saddle = climb if climb is not None else int(np.argmax(E))
    dofs = band.dofs
    moved = {f: arr for f, arr, on in (("spins", band.S, dofs["spins"]), ("positions", band.R, dofs["positions"]),
                                         ("moments", band.MU, dofs["magnitudes"])) if on}
    states = [band.template.copy(**{f: arr[k] for f, arr in moved.items()}) for k in range(m)]
    ends = band.block_max(G[[0, m - 1]], physical_force=True)  # fixed endpoints: the bare gradient
    endpoint_forces = [{n: float(b) for n, b in zip(names, row)} for row in ends]
    return abandoned, GNEBResult(states=states, energies=E.copy(), reaction_coordinate=x, slopes=slopes,
                                 saddle=int(saddle),
                      climbing=climb, converged=converged, reason=reason, iterations=it, n_evaluations=band.n_eval,
                      max_force={n: float(b) for n, b in zip(names, per_image.max(axis=0))},
                      image_forces=per_image.max(axis=1), weights={k: v for k, v in band.w.items() if k != "spins"},
                      history=history, endpoint_forces=endpoint_forces,
                      forces=np.array([ev.forces for ev in EV]) if dofs["positions"] else None,
                      magnetic_forces=np.array([ev.magnetic_forces for ev in EV])
                      if (dofs["spins"] or dofs["magnitudes"]) else None)
