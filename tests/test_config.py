"""Configs: YAML numbers as people write them, strict types with full key paths, schemas that
match the constructors they feed, and structures read from files with their moments."""

import inspect
import warnings

import numpy as np
import pytest
import yaml

import spinlat as sl
from spinlat import config as C
from spinlat import integrators, potentials
from spinlat.errors import ConfigError, InputError
from spinlat.search import ground_state

from conftest import EAM_FE, bcc_fe, funcfl_writer


def _cfg(tmp_path, **extra):
    cfg = {"structure": {"crystal": "bcc", "element": "Fe", "a": 2.8665, "repeat": 2, "moments": 2.2},
           "potential": [{"type": "Zeeman", "B": [0, 0, 1.0]}],
           "integrator": {"type": "LLG", "dt": 0.1, "damping": 0.1}, "steps": 10, "seed": 3}
    cfg.update(extra)
    cfg["_base"] = str(tmp_path)
    return cfg


# ------------------------------------------------------------------------------ YAML numbers
@pytest.mark.parametrize("text, value", [
    ("1e-1", 0.1), ("2.2e0", 2.2), ("1E3", 1000.0), ("-1e-2", -0.01), ("+5e+1", 50.0), (".5", 0.5),
    ("1.", 1.0), ("3.25", 3.25), ("1_000", 1000), ("0x1F", 31), ("0o17", 15), ("010", 10), ("-7", -7),
    (".inf", np.inf), ("-.Inf", -np.inf),
])
def test_yaml_reads_numbers_as_yaml_1_2(text, value):
    got = C.parse_yaml(f"x: {text}")["x"]
    assert type(got) is type(value) and got == value  # 010 is ten, not octal 8


def test_yaml_keeps_non_numbers_as_strings_and_refuses_duplicates():
    d = C.parse_yaml("a: 1:30\nb: '1e-1'\nc: 300K\nd: true\ne: null\nf: 1e\ng: e5")
    assert d == {"a": "1:30", "b": "1e-1", "c": "300K", "d": True, "e": None, "f": "1e", "g": "e5"}
    assert np.isnan(C.parse_yaml("x: .nan")["x"])
    with pytest.raises(ConfigError, match=r"line 3: duplicate key 'dt' \(first on line 1\)"):
        C.parse_yaml("dt: 0.1\nsteps: 5\ndt: 1.0\n", "c.yaml")
    # anchors and merge keys: an explicit key overrides a merged one
    d = C.parse_yaml("base: &b {dt: 1e-1, damping: 0.1}\nintegrator: {<<: *b, dt: 2e-1}\n")
    assert d["integrator"] == {"dt": 0.2, "damping": 0.1}
    with pytest.raises(ConfigError, match="c.yaml: not valid YAML"):
        C.parse_yaml("a: [1, 2\n", "c.yaml")


def test_every_float_format_round_trips_through_yaml():
    rng = np.random.default_rng(0)
    for x in np.concatenate([10.0 ** rng.uniform(-12, 12, 200) * rng.choice([-1, 1], 200), [0.0, 1.0, 1e-1]]):
        for text in (repr(float(x)), f"{x:e}", f"{x:.3E}", f"{x:g}"):
            assert C.parse_yaml(f"x: {text}")["x"] == float(text), text


def test_numbers_in_exponent_form_reach_the_objects(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(f"""
structure: {{crystal: bcc, element: Fe, a: 2.8665e0, repeat: 2, moments: 2.2e0, temperature: 3e2}}
potential:
  - {{type: EAM, path: {EAM_FE}}}
  - {{type: BetheSlaterExchange, cutoff: 3.4e0, J1: 2.726e-2, J2: 2.171e-1, J3: 1.841e0}}
integrator: {{type: SpinLatticeLangevin, dt: 1e-1, temperature: 3e2, friction: 1e-2, damping: 1e-1}}
steps: 1e2
every: 1e1
seed: 0
""")
    cfg = C.load(p)
    integ = C.build_integrator(cfg)
    assert (integ.dt, integ.temperature, integ.friction, integ.damping) == (0.1, 300.0, 0.01, 0.1)
    assert C.check_run(cfg) == (100, 10)
    st = C.build_structure(cfg)
    np.testing.assert_array_equal(st.moments, 2.2)
    pot = C.build_potential(cfg)
    assert pot.terms[1].J1 == 0.02726


# ---------------------------------------------------------------------------- strict types
@pytest.mark.parametrize("change, message", [
    ({"integrator": {"type": "LLG", "dt": True}}, "integrator.dt: expected a positive number (fs), got True"),
    ({"integrator": {"type": "LLG", "dt": "0.5"}}, "integrator.dt: expected a positive number (fs), got '0.5'"),
    ({"integrator": {"type": "LLG", "dt": [0.5]}}, "integrator.dt: expected a positive number"),
    ({"integrator": {"type": "LLG", "dt": "300K"}}, "integrator.dt: expected"),
    ({"integrator": {"type": "LLG", "dt": 0.1, "solver": "euler"}}, "integrator.solver: expected one of 'sib'"),
    ({"integrator": {"type": "LLG"}}, "integrator.dt: missing"),
    ({"integrator": {"dt": 0.1}}, "integrator.type: missing"),
    ({"integrator": {"type": "MonteCarlo", "temperature": 10, "adapt": "yes"}}, "integrator.adapt: expected true or false"),
    ({"integrator": {"type": "SpinLatticeLangevin", "dt": 0.1, "temperature": "hot", "friction": 0.01,
                     "damping": 0.1}}, "integrator.temperature: expected a non-negative number (K)"),
    ({"seed": "abc"}, "seed: expected a non-negative integer"),
    ({"seed": -1}, "seed: expected a non-negative integer"),
    ({"seed": 1.5}, "seed: expected a non-negative integer"),
    ({"seed": True}, "seed: expected a non-negative integer"),
    ({"steps": -3}, "steps: expected a non-negative integer"),
    ({"steps": 2.5}, "steps: expected a non-negative integer"),
    ({"every": 0}, "every: expected a positive integer"),
    ({"store_forces": "false"}, "store_forces: expected true or false, got 'false'"),
    ({"progress": "no"}, "progress: expected true or false, got 'no'"),
    ({"progress": 1}, "progress: expected true or false, got 1"),
    ({"flush_seconds": -1}, "flush_seconds: expected a non-negative number (s), got -1"),
    ({"minimize": {"max_steps": -5}}, "minimize.max_steps: expected a positive integer, got -5"),
    ({"minimize": {"fmax": "small"}}, "minimize.fmax: expected a positive number (eV/Å), got 'small'"),
    ({"minimize": {"spins": "yes"}}, "minimize.spins: expected true or false"),
    ({"minimize": {"method": "bfgs"}}, "minimize.method: expected one of 'lbfgs', 'precession'"),
    ({"search": {"workers": "many"}}, "search.workers: expected a positive integer, got 'many'"),
    ({"search": {"starts": 0}}, "search.starts: expected a positive integer"),
    ({"search": {"anneal": {"t_start": "hot"}}}, "search.anneal.t_start: expected a positive number (K)"),
    ({"search": {"anneal": {"stages": 3, "cool": 1}}}, "search.anneal.cool: unknown key"),
    ({"search": {"start_cell": [2, 2]}}, "search.start_cell: expected three integers or a 3×3 cell"),
    ({"potential": [{"type": "EAM", "path": 5}]}, "potential[0].path: expected a file path (str or os.PathLike), got 5"),
    ({"potential": [{"type": "Zeeman", "B": [0, 0, True]}]}, "potential[0].B: expected an array of real numbers"),
    ({"potential": [{"type": "Zeeman", "B": ["0", "0", "1"]}]}, "potential[0].B: expected an array of real numbers"),
    ({"potential": [{"type": "Zeeman", "B": [0, 1]}]}, "potential[0].B: expected shape (3,), got (2,)"),
    ({"potential": [{"type": "Zeeman", "B": [0, 0, 1], "elements": ["Xx"]}]},
     "potential[0].elements[0]: unknown element symbol 'Xx'"),
    ({"potential": [{"type": "Zeeman", "B": [0, 0, 1]}, {"type": "BetheSlaterExchange", "cutoff": 3.4,
                                                          "J1": "0.02", "J2": 0.2, "J3": 1.8}]},
     "potential[1].J1: expected a number (eV), got '0.02'"),
    ({"potential": [{"type": "BetheSlaterExchange", "cutoff": 3.4, "J1": 0.02, "J2": 0.2, "J3": 1.8,
                     "offset": "no"}]}, "potential[0].offset: expected true or false"),
    ({"potential": [{"type": "UniaxialAnisotropy", "K": {"Fe": "big"}, "axis": [0, 0, 1]}]},
     "potential[0].K.Fe: expected a number (eV)"),
    ({"potential": [{"type": "Landau", "a": True}]}, "potential[0].a: expected a number or a mapping"),
    ({"potential": [{"type": "Zeeman", "Bfield": [0, 0, 1]}]}, "potential[0].Bfield: unknown key for Zeeman"),
    ({"potential": [{"type": "Magnet"}]}, "potential[0].type: unknown potential 'Magnet'"),
    ({"potential": []}, "potential: expected a term"),
    ({"structure": {"element": "Fe", "repeat": -1}}, "structure.repeat: expected a positive integer, got -1"),
    ({"structure": {"element": "Fe", "repeat": "big"}}, "structure.repeat: expected a positive integer, got 'big'"),
    ({"structure": {"element": "Fe", "repeat": 0}}, "structure.repeat: expected a positive integer, got 0"),
    ({"structure": {"element": "Fe", "repeat": [2, 2]}}, "structure.repeat: expected a positive integer or three"),
    ({"structure": {"element": "Fe", "repeat": [2, 2, 1.5]}}, "structure.repeat[2]: expected a positive integer"),
    ({"structure": {"element": "Fe", "temperature": "hot"}}, "structure.temperature: expected a non-negative number (K)"),
    ({"structure": {"element": "Fe", "temperature": -100}}, "structure.temperature: expected a non-negative number (K)"),
    ({"structure": {"element": "Fe", "rattle": -0.1}}, "structure.rattle: expected a non-negative number (Å)"),
    ({"structure": {"element": "Fe", "a": True}}, "structure.a: expected a positive number (Å)"),
    ({"structure": {"element": "Fe", "cubic": "yes"}}, "structure.cubic: expected true or false"),
    ({"structure": {"element": "Fe", "moments": {"Xx": 2.2}}}, "structure.moments.Xx: unknown element symbol 'Xx'"),
    ({"structure": {"element": "Fe", "moments": {"X": 2.2}}}, "structure.moments.X: unknown element symbol 'X'"),
    ({"structure": {"element": "Fe", "moments": -2.2}}, "structure.moments: expected a non-negative number (μB)"),
    ({"structure": {"element": "Fe", "moments": "2.2"}}, "structure.moments: expected a number or a mapping"),
    ({"structure": {"element": "Fe", "spins": "up"}}, "structure.spins: expected one of 'random', 'file'"),
    ({"structure": {"element": "Fe", "spins": [0, 0, 0]}}, "structure.spins: the direction [0, 0, 0] has zero length"),
    ({"structure": {"element": "Fe", "colour": "red"}}, "structure.colour: unknown key"),
    ({"bogus": 1}, "bogus: unknown key"),
])
def test_bad_values_are_refused_with_the_full_key(tmp_path, change, message):
    cfg = _cfg(tmp_path, **change)
    with pytest.raises(ConfigError) as err:
        cfg = C.load(cfg)
        C.build_structure(cfg)
        C.build_potential(cfg)
        C.build_integrator(cfg)
    assert str(err.value).startswith(message.split(":")[0] + ":"), str(err.value)
    assert message in str(err.value)


def test_moments_of_elements_missing_from_the_structure_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"structure.moments.Ni: the structure has no Ni \(it holds Fe\)"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"element": "Fe", "moments": {"Fe": 2.2, "Ni": 0.6}})))
    # by atomic number, and elements not named get no moment
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"element": "Fe", "moments": {26: 1.5}})))
    np.testing.assert_array_equal(st.moments, 1.5)


def test_constructor_errors_name_the_term(tmp_path):
    cfg = C.load(_cfg(tmp_path, potential=[{"type": "UniaxialAnisotropy", "K": 1e-4, "axis": [0, 0, 0]}]))
    with pytest.raises(ConfigError, match=r"potential\[0\] \(UniaxialAnisotropy\): .*zero length"):
        C.build_potential(cfg)
    cfg = C.load(_cfg(tmp_path, integrator={"type": "LLG", "dt": 0.1, "temperature": 10}))
    with pytest.raises(ConfigError, match=r"integrator \(LLG\): .*damping > 0"):
        C.build_integrator(cfg)
    cfg = C.load(_cfg(tmp_path, potential=[{"type": "EAM", "path": "missing.eam.fs"}]))
    with pytest.raises(ConfigError, match=r"potential\[0\].path: .*missing.eam.fs does not exist$"):
        C.build_potential(cfg)
    # a shipped file named without its path (a newcomer's first config) is pointed to
    cfg = C.load(_cfg(tmp_path, potential=[{"type": "EAM", "path": "Fe_mm.eam.fs"}]))
    with pytest.raises(ConfigError, match=r"potential\[0\].path: .*Fe_mm.eam.fs does not exist; Fe_mm.eam.fs is a "
                                          r"file shipped with spinlat: give its path, .*spinlat/data/Fe_mm.eam.fs here"):
        C.build_potential(cfg)


def _params(fn, drop=()):
    return {n for n, p in inspect.signature(fn).parameters.items()
            if n not in ("self", "cls", *drop) and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def test_schemas_match_the_constructors_they_feed():
    for name, schema in C.INTEGRATORS.items():
        assert set(schema) == _params(getattr(integrators, name).__init__), name
    for name, schema in C.POTENTIALS.items():
        if name == "Heisenberg":
            assert set(schema) == {"tb2j", "sites"} and _params(potentials.Heisenberg.from_tb2j) == {"path", "sites"}
        elif name == "MagneticMACE":
            from spinlat.potentials.mmace.potential import MagneticMACE

            assert set(schema) == _params(MagneticMACE.load)
        elif name in ("Spirit", "UppASD", "VAMPIRE"):
            reader = {"Spirit": sl.io.read_spirit_cfg, "UppASD": sl.io.read_uppasd, "VAMPIRE": sl.io.read_vampire}[name]
            assert set(schema) - {"path"} <= _params(reader), name
        else:
            assert set(schema) == _params(getattr(potentials, name).__init__), name
    assert set(C.MINIMIZE) == _params(sl.minimize, ("state", "potential", "return_result"))
    # finished, record: what `spinlat search --restart` passes itself (not config keys)
    assert set(C.SEARCH) - set(C.MINIMIZE) == _params(ground_state, ("state", "potential", "finished", "record"))


def _code_inputs(d):
    """A Spirit config with a dipolar term, an UppASD chain with a dipolar keyword and a
    VAMPIRE chain with a normalised biquadratic section: each also holds exchange and anisotropy."""
    (d / "s.cfg").write_text("n_basis_cells 4 1 1\nboundary_conditions 1 0 0\nmu_s 2.0\nhamiltonian heisenberg_pairs\n"
                             "n_interaction_pairs 1\ni j da db dc Jij\n0 0 1 0 0 3.0\nanisotropy_magnitude 0.5\n"
                             "anisotropy_normal 0 0 1\nddi_method fft\n")
    (d / "inpsd.dat").write_text("ncell 4 1 1\nBC P 0 0\ncell 1 0 0\n0 1 0\n0 0 1\nalat 2.5e-10\nposfile ./posfile\n"
                                 "momfile ./momfile\nexchange ./jfile\nanisotropy ./kfile\ndo_dip 1\n")
    (d / "posfile").write_text("1 1 0 0 0\n")
    (d / "momfile").write_text("1 1 2.0 0 0 1\n")
    (d / "jfile").write_text("1 1 1 0 0 0.5\n1 1 -1 0 0 0.5\n")
    (d / "kfile").write_text("1 1 -0.2 0 0 0 1 0\n")
    (d / "c.UCF").write_text("2.5 5 5\n1 0 0\n0 1 0\n0 0 1\n1 1\n0 0 0 0 0\n2 isotropic\n0 0 0 1 0 0 2e-21\n"
                             "1 0 0 -1 0 0 2e-21\n1 normalised-isotropic\n0 0 0 1 0 0 1e-22\n")
    (d / "c.mat").write_text("material[1]:atomic-spin-moment=2.0\nmaterial[1]:uniaxial-anisotropy-constant=1e-22\n")
    return {"Spirit": (d / "s.cfg", "ddi"), "UppASD": (d / "inpsd.dat", "do_dip"), "VAMPIRE": (d / "c.UCF", "biquadratic")}


@pytest.mark.parametrize("code", ["Spirit", "UppASD", "VAMPIRE"])
def test_spin_code_hamiltonians_as_potential_types(tmp_path, code):
    """A run config had no potential type for the Hamiltonians of Spirit, UppASD and VAMPIRE
    inputs: now {type: Spirit|UppASD|VAMPIRE, path, drop}, the reader's potential; a term
    spinlat lacks is a ConfigError naming the key and the drop to give."""
    path, name = _code_inputs(tmp_path)[code]
    run = _cfg(tmp_path, structure={"file": path.name}, potential=[{"type": code, "path": path.name}])
    with pytest.raises(ConfigError, match=rf"potential\[0\]\.path: .*{path.name}.*line.*drop=\['{name}'\]"):
        C.build_potential(C.load(run))
    run["potential"][0]["drop"] = [name]
    cfg = C.load(run)
    st, pot = C.build_structure(cfg), C.build_potential(cfg)
    reader = {"Spirit": sl.io.read_spirit_cfg, "UppASD": sl.io.read_uppasd, "VAMPIRE": sl.io.read_vampire}[code]
    ref_state, ref = reader(path, drop=[name])
    big = st if code == "VAMPIRE" else ref_state.repeat(getattr(ref, "uppasd_ncell", (1, 1, 1)))
    s = np.random.default_rng(2).normal(size=(len(big), 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    e = pot.compute(big.copy(spins=s)).energy
    assert e == ref.compute(big.copy(spins=s)).energy and e != 0
    assert len(st) == (1 if code == "VAMPIRE" else 4)
    run["potential"][0]["drop"] = ["nonsense"]
    with pytest.raises(ConfigError, match=r"potential\[0\]\.drop: .*unknown term\(s\) \['nonsense'\]"):
        C.build_potential(C.load(run))


def test_spin_code_potential_files_include_the_files_the_input_names(tmp_path):
    """potential_files (the SHA-256s a restart compares) held only the inpsd.dat / .UCF / .cfg: an
    edited jfile, kfile, pairs file or .mat went unnoticed by a restart. Now every file read."""
    paths = _code_inputs(tmp_path)
    (tmp_path / "pairs.txt").write_text("i j da db dc Jij\n0 0 1 0 0 3.0\n")
    (tmp_path / "quads.txt").write_text("i j da_j db_j dc_j k da_k db_k dc_k l da_l db_l dc_l Q\n"
                                        "0 0 1 0 0 0 2 0 0 0 3 0 0 0.5\n")
    (tmp_path / "p.cfg").write_text("n_basis_cells 4 1 1\nmu_s 2.0\nhamiltonian heisenberg_pairs\n"
                                    "interaction_pairs_file pairs.txt\ninteraction_quadruplets_file quads.txt\n")
    run = _cfg(tmp_path, potential=[{"type": "UppASD", "path": "inpsd.dat", "drop": ["do_dip"]},
                                    {"type": "VAMPIRE", "path": "c.UCF", "drop": "all"},
                                    {"type": "Spirit", "path": "p.cfg"}])
    files = C.potential_files(C.load(run))
    names = {k: p.name for k, p in files.items()}
    assert names == {"potential[0].path": "inpsd.dat", "potential[0].path (posfile)": "posfile",
                     "potential[0].path (momfile)": "momfile", "potential[0].path (jfile)": "jfile",
                     "potential[0].path (kfile)": "kfile", "potential[1].path": "c.UCF",
                     "potential[1].path (c.mat)": "c.mat", "potential[2].path": "p.cfg",
                     "potential[2].path (pairs.txt)": "pairs.txt", "potential[2].path (quads.txt)": "quads.txt"}
    assert paths["UppASD"][0] == files["potential[0].path"]


def test_spin_step_and_adiabatic_magnitude_keys(tmp_path):
    cfg = C.load(_cfg(tmp_path, integrator={"type": "SpinLatticeNVE", "dt": 0.5, "spin_step": "explicit_midpoint",
                                            "spin_tolerance": 1e-9, "max_spin_iterations": 5,
                                            "spin_solver": "fixed_point",
                                            "adiabatic_magnitudes": True, "magnitude_tolerance": 1e-7,
                                            "max_magnitude_iterations": 50}))
    integ = C.build_integrator(cfg)
    assert (integ.spin_step, integ.spin_tolerance, integ.max_spin_iterations) == ("explicit_midpoint", 1e-9, 5)
    assert integ.spin_solver == "fixed_point"
    assert (integ.adiabatic_magnitudes, integ.magnitude_tolerance, integ.max_magnitude_iterations) == (True, 1e-7, 50)
    integ = C.build_integrator(C.load(_cfg(tmp_path, integrator={"type": "SpinLatticeNVE", "dt": 0.5})))
    assert (integ.spin_step, integ.spin_solver, integ.adiabatic_magnitudes) == ("implicit_midpoint", "anderson", False)
    integ = C.build_integrator(C.load(_cfg(tmp_path, integrator={"type": "SpinLatticeNVE", "dt": 0.5,
                                                                  "spin_solver": "newton"})))
    assert integ.spin_solver == "newton"
    integ = C.build_integrator(C.load(_cfg(tmp_path, integrator={
        "type": "SpinLatticeLangevin", "dt": 0.5, "temperature": 300, "friction": 0.01, "damping": 0.1,
        "adiabatic_magnitudes": True})))
    assert integ.adiabatic_magnitudes and integ.magnitude_tolerance == 1e-6
    for bad, key in (({"spin_step": "rk4"}, "integrator.spin_step"), ({"spin_tolerance": 0}, "integrator.spin_tolerance"),
                     ({"spin_solver": "broyden"}, "integrator.spin_solver"),
                     ({"adiabatic_magnitudes": "yes"}, "integrator.adiabatic_magnitudes"),
                     ({"max_magnitude_iterations": 0}, "integrator.max_magnitude_iterations")):
        with pytest.raises(ConfigError, match=key):
            C.load(_cfg(tmp_path, integrator={"type": "SpinLatticeNVE", "dt": 0.5, **bad}))


def test_the_seed_reaches_structure_and_integrator(tmp_path):
    cfg = C.load(_cfg(tmp_path, structure={"element": "Fe", "moments": 2.2, "repeat": 2}))
    a, b = C.build_structure(cfg), C.build_structure(cfg)
    np.testing.assert_array_equal(a.spins, b.spins)  # random spins, from the seed
    assert C.build_integrator(cfg).seed == 3
    cfg = C.load(_cfg(tmp_path, integrator={"type": "LLG", "dt": 0.1, "seed": 8}))
    assert C.build_integrator(cfg).seed == 8
    # an integral float counts as an integer, as for steps and every (``seed: 1e3`` was refused)
    cfg = C.load(_cfg(tmp_path, seed=1e3, integrator={"type": "LLG", "dt": 0.1, "seed": 8.0}))
    assert cfg["seed"] == 1000 and type(cfg["seed"]) is int
    integ = C.build_integrator(cfg)
    assert integ.seed == 8 and type(integ.seed) is int


def test_maxwell_boltzmann_velocities(tmp_path):
    """Velocities at T: each component normal with variance k_B T / m, so the measured
    temperature of 3N components scatters by sqrt(2 / 3N) around T."""
    cfg = C.load(_cfg(tmp_path, structure={"element": "Fe", "repeat": 8, "temperature": 300}))
    st = C.build_structure(cfg)
    n = len(st)
    assert abs(st.temperature() / 300 - 1) < 4 * np.sqrt(2 / (3 * n))
    sigma = np.sqrt(sl.units.K_B * 300 / (st.masses[0] * sl.units.AMU_A2_PER_FS2_IN_EV))
    assert abs(np.std(st.velocities) / sigma - 1) < 4 / np.sqrt(2 * 3 * n)
    st0 = C.build_structure(C.load(_cfg(tmp_path, structure={"element": "Fe", "temperature": 0})))
    np.testing.assert_array_equal(st0.velocities, 0.0)


# --------------------------------------------------------------------- structures from files
def _afm(seed=1):
    st = bcc_fe((2, 2, 2), seed=seed)
    spins = np.zeros((len(st), 3))
    spins[:, 0] = np.where(np.arange(len(st)) % 2 == 0, 1.0, -1.0)  # layered AFM along x
    mom = np.where(np.arange(len(st)) % 3 == 0, 1.7, 2.3)
    rng = np.random.default_rng(seed)
    return st.copy(spins=spins, moments=mom, velocities=rng.normal(0, 0.01, (len(st), 3)))


@pytest.mark.parametrize("suffix", ["extxyz", "xyz", "h5"])
def test_a_structure_file_keeps_its_moments_spins_and_velocities(tmp_path, suffix):
    ref = _afm()
    path = tmp_path / f"afm.{suffix}"
    if suffix == "h5":
        with sl.io.TrajectoryWriter(str(path), ref) as w:
            w.write(ref.copy(spins=-ref.spins), 0, 0.0)
            w.write(ref, 10, 1.0)  # the last frame is read by default
    else:
        sl.io.write_extxyz(path, [ref])
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": path.name})))
    for name in ("positions", "numbers", "cell", "pbc", "spins", "moments", "velocities"):
        np.testing.assert_array_equal(getattr(st, name), getattr(ref, name), err_msg=name)
    # repeat tiles them; the config can replace moments (keeping the file's spins) or spins
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": path.name, "repeat": [1, 1, 2],
                                                            "moments": {"Fe": 2.0}})))
    np.testing.assert_array_equal(st.spins, np.tile(ref.spins, (2, 1)))
    np.testing.assert_array_equal(st.moments, 2.0)
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": path.name, "spins": [0, 0, 1]})))
    np.testing.assert_array_equal(st.spins[:, 2], 1.0)
    np.testing.assert_array_equal(st.moments, ref.moments)


def test_file_formats_of_other_codes_keep_their_moments(tmp_path):
    """A VASP-like file read by ASE: collinear initial moments → spins ±z."""
    from ase.build import bulk
    from ase.io import write

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.set_initial_magnetic_moments([2.1, -2.1])
    write(tmp_path / "fe.traj", atoms)
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "fe.traj"})))
    np.testing.assert_array_equal(st.moments, [2.1, 2.1])
    np.testing.assert_array_equal(st.spins[:, 2], [1, -1])
    # a file without moments: random spins by default, 'file' is refused
    del atoms.arrays["initial_magmoms"]
    write(tmp_path / "POSCAR", atoms, format="vasp")
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "POSCAR", "moments": 2.2})))
    assert np.ptp(st.spins[:, 2]) > 0
    with pytest.raises(ConfigError, match="structure.spins: 'file', but POSCAR holds no magnetic moments"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "POSCAR", "spins": "file"})))


def test_structure_file_constraints_are_refused_unless_ignored(tmp_path):
    """A POSCAR with selective dynamics (ASE reads it as FixAtoms / FixScaled): refused by
    default (spinlat's dynamics would move the fixed atoms), structure.constraints: ignore drops it."""
    from ase.build import bulk
    from ase.constraints import FixAtoms
    from ase.io import write

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True).repeat(2)
    atoms.set_constraint(FixAtoms(indices=[0, 1]))
    write(tmp_path / "POSCAR", atoms, format="vasp")
    with pytest.raises(ConfigError, match=r"structure.file: .*POSCAR carries ASE constraints \(Fix.*\).*"
                                          "structure.constraints: ignore"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "POSCAR", "moments": 2.2})))
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "POSCAR", "moments": 2.2,
                                                            "constraints": "ignore"})))
    np.testing.assert_allclose(st.positions, atoms.positions, atol=1e-12)
    with pytest.raises(ConfigError, match="structure.constraints: expected one of 'error', 'ignore'"):
        C.load(_cfg(tmp_path, structure={"file": "POSCAR", "constraints": "yes"}))
    with pytest.raises(ConfigError, match="structure.constraints: only used with structure.file"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"element": "Fe", "moments": 2.2, "constraints": "ignore"})))


def test_lammps_dump_with_its_log_needs_no_columns_nor_elements(tmp_path):
    """A SPIN dump of c_outsp[k] columns and no element column, with the log.lammps of the run
    beside it: the log's compute property/atom and mass commands name them (real LAMMPS output)."""
    import shutil
    from pathlib import Path

    data = Path(__file__).parent / "data" / "lammps" / "spin_styles"
    for name in ("dump.lammpstrj", "log.lammps"):
        shutil.copy(data / name, tmp_path / name)
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "dump.lammpstrj", "index": 2})))
    ref = sl.io.read_lammps_dump(data / "dump.lammpstrj", elements=["Fe"],
                                 columns={"c_outsp[1]": "sp", "c_outsp[2]": "spx", "c_outsp[3]": "spy",
                                          "c_outsp[4]": "spz"}, thermo=None)[2]
    for name in ("positions", "velocities", "spins", "moments", "numbers"):
        np.testing.assert_array_equal(getattr(st, name), getattr(ref, name), err_msg=name)


def test_lammps_files_are_read_with_their_spins_moments_and_units(tmp_path):
    """structure.file: a LAMMPS data file (spinlat's export, or one without its metadata) or a
    spin dump is read by spinlat's LAMMPS readers, not by ASE (which drops the spins and moments
    of atom_style spin): spins, moments, positions and velocities (Å/ps in the file) come back."""
    import shutil

    ref = _afm()
    sl.io.write_lammps(tmp_path / "lmp", ref, sl.potentials.Zeeman([0, 0, 1.0]))
    shutil.copy(tmp_path / "lmp" / "data.spinlat", tmp_path / "plain.data")  # no export metadata beside it
    for name in ("lmp/data.spinlat", "plain.data"):
        st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": name})))
        np.testing.assert_allclose(st.positions, ref.positions, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(st.spins, ref.spins, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(st.moments, ref.moments, rtol=1e-15, err_msg=name)
        np.testing.assert_allclose(st.velocities, ref.velocities, rtol=1e-12, atol=1e-18, err_msg=name)
        assert st.symbols == ref.symbols
    # a dump as LAMMPS writes it (no element column): the elements come from the config
    v_ps = ref.velocities * 1000.0
    rows = "\n".join(f"{i + 1} 1 " + " ".join(repr(float(c)) for c in (*x, *v, *s, m))
                     for i, (x, v, s, m) in enumerate(zip(ref.positions, v_ps, ref.spins, ref.moments)))
    box = "\n".join(f"0 {float(L)!r}" for L in np.diag(ref.cell))
    frame = (f"ITEM: TIMESTEP\n{{step}}\nITEM: NUMBER OF ATOMS\n{len(ref)}\nITEM: BOX BOUNDS pp pp pp\n{box}\n"
             f"ITEM: ATOMS id type x y z vx vy vz spx spy spz sp\n{rows}\n")
    (tmp_path / "spins.dump").write_text(frame.format(step=0) + frame.format(step=10))
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "spins.dump", "elements": ["Fe"]})))
    np.testing.assert_allclose(st.spins, ref.spins, atol=1e-15)
    np.testing.assert_allclose(st.moments, ref.moments, rtol=1e-15)
    np.testing.assert_allclose(st.velocities, ref.velocities, rtol=1e-14)
    with pytest.raises(ConfigError, match="structure.file: cannot read LAMMPS dump file .*structure.elements"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "spins.dump"})))
    # the usual SPIN dump: `compute outsp all spin/property sp spx spy spz` → c_outsp[k] columns
    computed = frame.replace("spx spy spz sp", "c_outsp[2] c_outsp[3] c_outsp[4] c_outsp[1]")
    (tmp_path / "compute.dump").write_text(computed.format(step=0))
    with pytest.raises(ConfigError, match=r"spx spy spz sp .*structure.columns renames dump columns"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "compute.dump", "elements": ["Fe"]})))
    rename = {"c_outsp[1]": "sp", "c_outsp[2]": "spx", "c_outsp[3]": "spy", "c_outsp[4]": "spz"}
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "compute.dump", "elements": ["Fe"],
                                                            "columns": rename})))
    np.testing.assert_allclose(st.spins, ref.spins, atol=1e-15)
    np.testing.assert_allclose(st.moments, ref.moments, rtol=1e-15)
    with pytest.raises(ConfigError, match="structure.columns: only used with LAMMPS dump files, and .*plain.data is a "
                                          "LAMMPS data file"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "plain.data", "columns": rename})))
    with pytest.raises(ConfigError, match="structure.columns: expected a mapping from LAMMPS dump column names"):
        C.load(_cfg(tmp_path, structure={"file": "compute.dump", "columns": ["spx"]}))
    with pytest.raises(ConfigError, match="frame index 5 is out of range .*2 frames"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "spins.dump", "elements": ["Fe"], "index": 5})))
    with pytest.raises(ConfigError, match="structure.elements: only used with LAMMPS"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "lmp/../plain.data", "elements": ["Fe"],
                                                           "format": "vasp"})))
    with pytest.raises(ConfigError, match="structure.elements: expected the element of each LAMMPS atom type"):
        C.load(_cfg(tmp_path, structure={"file": "plain.data", "elements": "Fe"}))
    (tmp_path / "s.ovf").write_text("# OOMMF OVF 2.0\n")
    with pytest.raises(ConfigError, match="s.ovf is an OVF file, which holds spin directions but no atoms"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "s.ovf"})))


@pytest.mark.parametrize("fmt", ["vasp", "cif", "xyz"])
def test_a_structure_without_moments_needs_them_named(tmp_path, fmt):
    """POSCAR, CIF and plain xyz carry no moments: a run is never made non-magnetic silently;
    structure.moments fixes them (0 asks for a non-magnetic run), a spinlat trajectory keeps its zeros."""
    from ase.build import bulk
    from ase.io import write

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.set_initial_magnetic_moments([2.1, -2.1])
    name = {"vasp": "POSCAR", "cif": "fe.cif", "xyz": "fe.xyz"}[fmt]
    write(tmp_path / name, atoms, format=fmt)
    with pytest.raises(ConfigError, match=rf"structure.moments: missing, and {name} holds no magnetic moments"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": name})))
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": name, "moments": 2.1})))
    np.testing.assert_array_equal(st.moments, 2.1)
    np.testing.assert_allclose(st.positions % 2.8665, atoms.positions % 2.8665, atol=1e-6)
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": name, "moments": 0})))
    np.testing.assert_array_equal(st.moments, 0.0)
    # a builder whose element ASE gives no moment, and a trajectory of a non-magnetic run
    with pytest.raises(ConfigError, match="structure.moments: missing, and ase.build.bulk gives Cu no magnetic"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"crystal": "fcc", "element": "Cu"})))
    with sl.io.TrajectoryWriter(str(tmp_path / "cu.h5"), st) as w:
        w.write(st, 0, 0.0)
    np.testing.assert_array_equal(C.build_structure(C.load(_cfg(tmp_path, structure={"file": "cu.h5"}))).moments, 0.0)


@pytest.mark.parametrize("structure, message", [
    ({"file": "missing.extxyz"}, "structure.file: .*missing.extxyz does not exist"),
    ({"file": "."}, "structure.file: .* is a directory, not a file"),
    ({"file": "bad.extxyz"}, "structure.file: cannot read"),
    ({"file": "empty.h5"}, "structure.file: trajectory .*empty.h5 holds no frame"),
    ({"file": "afm.extxyz", "element": "Fe"}, "structure.element: not used with structure.file"),
    ({"file": "afm.extxyz", "index": 5}, "structure.file: frame index 5 is out of range"),
    ({"element": "Fe", "index": 0}, "structure.index: only used with structure.file"),
    ({"crystal": "bcc"}, "structure: give a file"),
    ({"element": "Fe", "spins": "file"}, "structure.spins: 'file' needs structure.file"),
    ({"element": "Qq"}, "structure: ase.build.bulk cannot build"),
])
def test_bad_structure_files_are_named(tmp_path, structure, message):
    sl.io.write_extxyz(tmp_path / "afm.extxyz", [_afm()])
    (tmp_path / "bad.extxyz").write_text("3\nProperties=species:S:1:pos:R:3\nFe 0 0 0\n")
    sl.io.TrajectoryWriter(str(tmp_path / "empty.h5"), _afm()).close()
    with pytest.raises(ConfigError, match=message):
        C.build_structure(C.load(_cfg(tmp_path, structure=structure)))


# ------------------------------------------------------------------------------ train config
def test_train_config_numbers_and_types(tmp_path):
    cfg = C.parse_yaml("""
train: {teacher: {system: Fe, n_configs: 6, seed: 1}}
model: {soc: true, r_max: 4e0, m_max: {Fe: 3e0}}
training: {epochs: 2, lr: 1e-3, max_minutes: 5e-1, E0s: {26: -3.5e0}}
output: m.mmace
""")
    out = C.check_train_config(cfg, tmp_path)
    assert out["model"]["r_max"] == 4.0 and out["model"]["m_max"] == {"Fe": 3.0}
    assert out["training"]["lr"] == 1e-3 and out["training"]["max_minutes"] == 0.5
    assert out["training"]["E0s"] == {"Fe": -3.5}
    assert out["output"] == str(tmp_path / "m.mmace")
    for bad, message in [({"training": {"epochs": True}}, "training.epochs: expected an integer"),
                         ({"training": {"lr": "1e-3"}}, "training.lr: expected a number"),
                         ({"training": {"seed": 1.5}}, "training.seed: expected a non-negative integer"),
                         ({"model": {"soc": "yes"}}, "model.soc: expected true or false"),
                         ({"model": {"radial_MLP": [8, True]}}, "model.radial_MLP: expected a list of integers"),
                         ({"train": {"teacher": {"system": "Fe", "n_configs": "6", "seed": 1}}},
                          "train.teacher.n_configs: expected a positive integer")]:
        with pytest.raises(ConfigError, match=message):
            C.check_train_config({**cfg, **bad}, tmp_path)


def test_config_files_are_read_by_yaml_rules(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"structure": {"element": "Fe"}, "potential": {"type": "Zeeman", "B": [0, 0, 1]},
                                 "steps": 1}) + "seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"c.yaml: line \d+: duplicate key 'seed' \(first on line \d+\)"):
        C.load(p)
    with pytest.raises(ConfigError, match="does not exist"):
        C.load(tmp_path / "none.yaml")
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of keys at the top level, got list"):
        C.load(p)


# ------------------------------------------------------------------------ EAM files in configs
def test_eam_configs_take_what_the_python_api_takes(tmp_path):
    """``path`` as one file or a list of funcfl files (relative to the config file), ``format``
    as EAM takes it (alloy, fs, funcfl and LAMMPS's names): the same potential as EAM(...)."""
    write_funcfl = funcfl_writer()
    write_funcfl(tmp_path / "Fe.eam", "Fe", a=0)
    write_funcfl(tmp_path / "Ni.eam", "Ni", a=1)
    st = bcc_fe((2, 2, 2), rattle=0.05, seed=4)
    numbers = np.where(np.arange(len(st)) % 3 == 0, 28, 26)
    st = sl.State(st.positions, numbers, cell=st.cell, pbc=True, spins=st.spins, moments=st.moments)
    ref = potentials.EAM([tmp_path / "Fe.eam", tmp_path / "Ni.eam"])
    for term in ({"type": "EAM", "path": ["Fe.eam", "Ni.eam"]},
                 {"type": "EAM", "path": ["Fe.eam", "Ni.eam"], "format": "funcfl"},
                 {"type": "EAM", "path": ["Fe.eam", "Ni.eam"], "format": "eam"}):
        pot = C.build_potential(C.load(_cfg(tmp_path, potential=[term])))
        assert pot.format == "funcfl" and pot.path == ref.path
        assert pot.compute(st).energy == ref.compute(st).energy
    one = C.build_potential(C.load(_cfg(tmp_path, potential=[{"type": "EAM", "path": "Fe.eam", "format": "funcfl"}])))
    assert one.format == "funcfl" and one.elements == (26,)
    alloy = C.build_potential(C.load(_cfg(tmp_path, potential=[{"type": "EAM", "path": str(EAM_FE), "format": "FS"}])))
    assert alloy.format == "fs"


@pytest.mark.parametrize("term, message", [
    ({"type": "EAM", "path": ["Fe.eam", 5]}, r"potential\[0\]\.path\[1\]: expected a file path.*got 5"),
    ({"type": "EAM", "path": []}, r"potential\[0\]\.path: expected a file path or a list of them, got an empty list"),
    ({"type": "EAM", "path": ["Fe.eam", "missing.eam"]}, r"potential\[0\]\.path\[1\]: .*missing.eam does not exist"),
    ({"type": "EAM", "path": "."}, r"potential\[0\]\.path: .* is a directory, not a file"),  # said "does not exist"
    ({"type": "EAM", "path": "Fe.eam", "format": "dynamo"}, r"potential\[0\]\.format: expected one of 'alloy'"),
    ({"type": "EAM", "path": "Fe.eam", "format": True}, r"potential\[0\]\.format: expected one of"),
])
def test_bad_eam_files_in_configs_name_the_key(tmp_path, term, message):
    funcfl_writer()(tmp_path / "Fe.eam", "Fe")
    with pytest.raises(ConfigError, match=message):
        C.build_potential(C.load(_cfg(tmp_path, potential=[term])))


def test_heisenberg_sites_keeps_the_coupled_atoms_of_a_tb2j_file(tmp_path):
    """potential: {type: Heisenberg, tb2j: FILE, sites: coupled} → the template of the atoms in a
    pair (here Fe, not the ligand O)."""
    from spinlat.io.tb2j import write_tb2j

    cell = np.eye(3) * 4.0
    pos = [[0, 0, 0], [2.0, 2.0, 0], [2.0, 0, 2.0]]
    ham = potentials.Heisenberg(cell, pos, [26, 26, 8], [0, 0], [1, 0], [[0, 0, 0], [1, 0, 0]], [-0.003, 0.0015])
    write_tb2j(tmp_path / "exchange.out", sl.State(pos, [26, 26, 8], cell=cell, pbc=True, moments=[2.5, 2.5, 0.01]),
               ham)
    cfg = _cfg(tmp_path, potential=[{"type": "Heisenberg", "tb2j": "exchange.out", "sites": "coupled"}])
    pot = C.build_potential(C.load(cfg))
    assert list(pot.numbers) == [26, 26]
    cfg["potential"][0]["sites"] = "all"
    assert list(C.build_potential(C.load(cfg)).numbers) == [26, 26, 8]
    cfg["potential"][0]["sites"] = "some"
    with pytest.raises(ConfigError, match=r"potential\[0\].sites: expected one of 'all', 'coupled'"):
        C.load(cfg)


def test_spin_directions_of_a_file_without_moments_are_kept(tmp_path):
    """An extxyz with a ``spins`` column but no moments: structure.moments gives the moments and
    the spins come from the file (not drawn at random)."""
    from ase.build import bulk
    from ase.io import write

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    del atoms.arrays["initial_magmoms"]
    atoms.arrays["spins"] = np.array([[1.0, 0, 0], [0, -1.0, 0]])
    write(tmp_path / "s.extxyz", atoms)
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "s.extxyz", "moments": 2.2})))
    np.testing.assert_array_equal(st.spins, [[1.0, 0, 0], [0, -1.0, 0]])
    np.testing.assert_array_equal(st.moments, 2.2)
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "s.extxyz", "moments": 2.2, "spins": "file"})))
    np.testing.assert_array_equal(st.spins[:2], [[1.0, 0, 0], [0, -1.0, 0]])
    with pytest.raises(ConfigError, match="structure.moments: missing"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "s.extxyz"})))


def test_dump_column_renames_in_flow_style_need_quotes_and_the_error_says_so(tmp_path):
    # the documented `columns: {c_outsp[1]: spx, ...}` is not YAML: a bracket inside { } opens a list
    line = next(ln for ln in C.__doc__.splitlines() if "# columns: {" in ln)
    example = line.split("# ", 1)[1]
    assert C.parse_yaml(example)["columns"] == {"c_outsp[1]": "spx", "c_outsp[2]": "spy", "c_outsp[3]": "spz",
                                                "c_outsp[4]": "sp"}
    with pytest.raises(ConfigError, match=r"not valid YAML .*; inside \{ \} a name with brackets must be quoted, "
                                          r"e.g. \{\"c_outsp\[1\]\": spx\}"):
        C.parse_yaml("structure: {file: d.lammpstrj, columns: {c_outsp[1]: spx}}", "c.yaml")
    assert C.parse_yaml("columns:\n  c_outsp[1]: spx\n")["columns"] == {"c_outsp[1]": "spx"}  # block style: fine


def _square_layer(tmp_path):
    """A LAMMPS data file of a 2D run (4×4 square layer, 2.5 Å, every atom at z = 0 in a z box
    −1.25..1.25), as `write_data` writes it, with no log.lammps beside it."""
    rows = [f"{k + 1} 1 {2.5 * (k % 4)} {2.5 * (k // 4)} 0 0 0 1 2.2" for k in range(16)]
    data = ["LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = metal", "", "16 atoms",
            "1 atom types", "", "0 10 xlo xhi", "0 10 ylo yhi", "-1.25 1.25 zlo zhi", "", "Masses", "", "1 55.845", "",
            "Atoms # spin", ""] + rows
    (tmp_path / "sq.data").write_text("\n".join(data) + "\n")
    return tmp_path / "sq.data"


def test_structure_pbc_applies_to_every_structure_source(tmp_path):
    """A 2D LAMMPS data file read from a config needed its log.lammps beside it (the data file
    cannot say it is 2D); structure.pbc now says so, for files of any kind and the builder."""
    import warnings

    _square_layer(tmp_path)
    with pytest.warns(UserWarning, match="every atom lies at z = 0"):  # nothing says 2D: read periodic in z
        st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "sq.data"})))
    assert st.pbc.tolist() == [True, True, True]
    layer = {"file": "sq.data", "pbc": [True, True, False], "repeat": [2, 2, 1]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pbc decides: nothing to warn about
        st = C.build_structure(C.load(_cfg(tmp_path, structure=layer)))
    assert st.pbc.tolist() == [True, True, False] and len(st) == 64
    # LAMMPS's energy of that 2D run (test_lammps's 4×4 layer): no images along z
    e = potentials.BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841).compute(st).energy
    assert e == pytest.approx(4 * -0.61031055, abs=4e-8)
    # an extxyz file and the builder
    sl.io.write_extxyz(tmp_path / "layer.extxyz", [st])
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "layer.extxyz", "pbc": True})))
    assert st.pbc.tolist() == [True, True, True]
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"element": "Fe", "repeat": 2, "pbc": [True, False, True]})))
    assert st.pbc.tolist() == [True, False, True]
    # a LAMMPS dump of the same layer: the reader takes pbc (no 2D guess, no warning)
    rows = [f"{k + 1} 1 {2.5 * (k % 4)} {2.5 * (k // 4)} 0 0 0 1 2.2" for k in range(16)]
    dump = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", "16", "ITEM: BOX BOUNDS pp pp pp", "0 10", "0 10",
            "-1.25 1.25", "ITEM: ATOMS id type x y z spx spy spz sp"] + rows
    (tmp_path / "sq.dump").write_text("\n".join(dump) + "\n")
    with pytest.warns(UserWarning, match="every atom lies at z = 0"):
        st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "sq.dump", "elements": ["Fe"]})))
    assert st.pbc.tolist() == [True, True, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "sq.dump", "elements": ["Fe"],
                                                                "pbc": [True, True, False]})))
    assert st.pbc.tolist() == [True, True, False]
    # and a gneb endpoint
    gneb = C.check_gneb_config({"gneb": {"initial": {"file": "sq.data", "pbc": [True, True, False]},
                                         "final": "layer.extxyz"}}, base=tmp_path)
    assert gneb["initial"]["pbc"] == [True, True, False]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = C.read_structure(gneb["initial"]["file"], 0, key="gneb.initial", pbc=gneb["initial"]["pbc"])
    assert st.pbc.tolist() == [True, True, False]


@pytest.mark.parametrize("structure, message", [
    ({"element": "Fe", "pbc": "yes"}, "structure.pbc: expected True/False or three of them"),
    ({"element": "Fe", "pbc": [True, False]}, "structure.pbc: expected True/False or three of them"),
    ({"element": "Fe", "pbc": [1, 1, 0]}, "structure.pbc: expected True/False or three of them"),
])
def test_bad_structure_pbc_is_refused_naming_the_key(tmp_path, structure, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        C.build_structure(C.load(_cfg(tmp_path, structure=structure)))


def test_a_direction_made_periodic_needs_a_cell_vector(tmp_path):
    from ase import Atoms
    from ase.io import write

    write(tmp_path / "dimer.xyz", Atoms("Fe2", positions=[[0, 0, 0], [0, 0, 2.3]]))
    with pytest.raises(ConfigError, match=r"structure.pbc: .*cell"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "dimer.xyz", "moments": 2.2, "pbc": True})))
    with pytest.raises(ConfigError, match=r"gneb.initial.pbc: expected True/False"):
        C.check_gneb_config({"gneb": {"initial": {"file": "dimer.xyz", "pbc": "no"}, "final": "dimer.xyz"}},
                            base=tmp_path)


_PW_IN = """&control
  calculation = 'scf'
/
&system
  ibrav = 0, nat = 2, ntyp = 2, ecutwfc = 40, nspin = 2,
  starting_magnetization(1) = 0.5
  starting_magnetization(2) = -0.5
/
&electrons
/
ATOMIC_SPECIES
Fe1 55.845 Fe.pbe.UPF
Fe2 55.845 Fe.pbe.UPF
CELL_PARAMETERS angstrom
2.8665 0 0
0 2.8665 0
0 0 2.8665
ATOMIC_POSITIONS angstrom
Fe1 0 0 0
Fe2 1.43325 1.43325 1.43325
K_POINTS automatic
8 8 8 0 0 0
"""


def test_quantum_espresso_input_starting_magnetization_is_not_read_as_moments(tmp_path):
    """ASE's pw.x input reader fills the initial magmoms with starting_magnetization (a fraction of
    the valence charge, per species symbol): this antiferromagnet (Fe1 +0.5, Fe2 -0.5) was read as
    two -0.5 μB moments. They are dropped with a warning, and the config asks for the moments."""
    from spinlat.config import read_structure

    (tmp_path / "pw.in").write_text(_PW_IN)
    with pytest.warns(UserWarning, match=r"pw.in: its initial magnetic moments are pw.x's starting_magnetization "
                                         r"\(a fraction of the valence charge"):
        st = read_structure(tmp_path / "pw.in", format="espresso-in")
    np.testing.assert_array_equal(st.moments, 0.0)
    cfg = {"structure": {"file": str(tmp_path / "pw.in"), "format": "espresso-in"},
           "potential": {"type": "Zeeman", "B": [0, 0, 1.0]}, "integrator": {"type": "LLG", "dt": 0.1}, "steps": 1}
    with pytest.warns(UserWarning, match="starting_magnetization"), \
            pytest.raises(ConfigError, match="structure.moments: missing"):
        C.build_structure(C.load(cfg))
    cfg["structure"]["moments"] = 2.2
    with pytest.warns(UserWarning, match="starting_magnetization"):
        np.testing.assert_array_equal(C.build_structure(C.load(cfg)).moments, [2.2, 2.2])
    with pytest.warns(UserWarning, match="starting_magnetization"):
        assert sl.io.convert(tmp_path / "pw.in", tmp_path / "pw.h5", format="espresso-in") == 1
    with sl.io.Trajectory(tmp_path / "pw.h5") as t:
        np.testing.assert_array_equal(t["moments"], 0.0)


def test_repeating_a_film_along_its_vacuum_is_refused(tmp_path):
    """``repeat: 3`` of a film read from a file (15 Å of vacuum along z) stacked three separate
    films, silently: every run, search and Curie sweep of the config then simulated a multilayer.
    Refused naming the key and the vacuum; repeat: [3, 3, 1] grows the film; a builder crystal
    made non-periodic along y still repeats there (its copies touch: a thicker slab)."""
    film = sl.State([[0, 0, 5.0], [1.25, 1.25, 5.0]], ["Fe", "Fe"], cell=np.diag([2.5, 2.5, 20.0]),
                    pbc=[True, True, False], moments=[2.2, 2.2])
    sl.io.write_extxyz(tmp_path / "film.extxyz", [film])
    with pytest.raises(ConfigError, match=r"structure.repeat: \[3, 3, 3\] .* direction 2 \(20\.0 Å of vacuum\).*"
                                          r"repeat: \[3, 3, 1\]"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "film.extxyz", "repeat": 3})))
    st = C.build_structure(C.load(_cfg(tmp_path, structure={"file": "film.extxyz", "repeat": [3, 3, 1]})))
    assert len(st) == 18 and np.ptp(st.positions[:, 2]) == 0
    slab = C.build_structure(C.load(_cfg(tmp_path, structure={"element": "Fe", "repeat": 2,
                                                               "pbc": [True, False, True]})))
    assert slab.pbc.tolist() == [True, False, True] and len(slab) == 16  # cubic bcc cell, 2 atoms, 2³ copies


@pytest.mark.parametrize("code", ["Spirit", "UppASD", "VAMPIRE"])
def test_a_spin_code_input_giving_structure_and_potential_is_read_once(tmp_path, code, monkeypatch):
    """Duplication (round 13): a run config taking its structure and its potential from one Spirit,
    UppASD or VAMPIRE input read and built it twice. Now once (spinlat.io.codes.read_code): the
    structure's read serves the potential, whose drop is still applied (a term it does not name
    refused), the reader's warnings are given again, and an edited file is read again."""
    import functools
    import importlib

    from spinlat.io import codes

    path, name = _code_inputs(tmp_path)[code]
    module, reader = {"Spirit": ("spirit", "read_spirit_cfg"), "UppASD": ("uppasd", "read_uppasd"),
                      "VAMPIRE": ("vampire", "read_vampire")}[code]
    mod = importlib.import_module(f"spinlat.io.{module}")
    calls, real = [], getattr(mod, reader)

    @functools.wraps(real)
    def counting(*args, **kwargs):
        calls.append(kwargs.get("drop"))
        warnings.warn("a warning of the read", UserWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, reader, counting)
    run = _cfg(tmp_path, structure={"file": path.name, "moments": 2.0, "repeat": 1},
               potential=[{"type": code, "path": path.name}])
    cfg = C.load(run)
    with pytest.warns(UserWarning, match="a warning of the read"):
        st = C.build_structure(cfg)
    with pytest.raises(ConfigError, match=rf"potential\[0\]\.path: .*line.*drop=\['{name}'\]"):
        C.build_potential(cfg)
    run["potential"][0]["drop"] = [name]
    cfg = C.load(run)
    with pytest.warns(UserWarning, match="a warning of the read"):
        pot = C.build_potential(cfg)
    assert calls == ["all"]  # one read for the structure and both potentials
    ref_state, ref = real(path, drop=[name])
    s = np.random.default_rng(4).normal(size=(len(st), 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    assert pot.compute(st.copy(spins=s)).energy == ref.compute(st.copy(spins=s)).energy
    with pytest.warns(UserWarning, match="a warning of the read"):
        assert pot is not C.build_potential(cfg)  # a copy each time: a run cannot change another's terms
    with open(path, "a") as f:  # an edited input is read again
        f.write("# edited\n")
    with pytest.warns(UserWarning, match="a warning of the read"):
        C.build_potential(cfg)
    assert calls == ["all", [name]]
    run["potential"][0]["drop"] = ["nonsense"]  # a bad drop is refused on a read kept from before too
    with pytest.raises(ConfigError, match=r"potential\[0\]\.drop: .*unknown term\(s\) \['nonsense'\]"):
        C.build_potential(C.load(run))
    with pytest.raises(InputError, match=r"drop: .*unknown term\(s\) \['nonsense'\]"):
        codes.read_code(code.lower(), path, drop="nonsense")


def test_lammps_hints_follow_the_error_not_its_text(tmp_path):
    """Duplication of the kind "keyed on error text" (round 13): a config's LAMMPS read added the
    structure.elements hint to any error whose text held "element" — a file in a folder named
    "elements_study" with x y z missing got it too. Now the reader marks the errors an option
    resolves (errors.needs_option), and the hints follow that mark."""
    d = tmp_path / "elements_study"
    d.mkdir()
    frame = ("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n0 3.0\n0 3.0\n0 3.0\n"
             "ITEM: ATOMS id type {cols}\n1 1 {vals}\n")
    (d / "nopos.dump").write_text(frame.format(cols="spx spy spz sp", vals="0 0 1 2.2"))
    with pytest.raises(ConfigError, match=r"lacks x y z") as info:
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "elements_study/nopos.dump"})))
    assert "structure.elements names" not in str(info.value) and "structure.columns" not in str(info.value)
    (d / "noel.dump").write_text(frame.format(cols="x y z spx spy spz sp", vals="0 0 0 0 0 1 2.2"))
    with pytest.raises(ConfigError, match=r"no element column.*\(structure.elements names the element of each atom"):
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "elements_study/noel.dump"})))
    (d / "nospin.dump").write_text(frame.format(cols="x y z c_s[1] c_s[2] c_s[3] c_s[4]", vals="0 0 0 0 0 1 2.2"))
    with pytest.raises(ConfigError, match=r"spx spy spz sp .*\(structure.columns renames dump columns") as info:
        C.build_structure(C.load(_cfg(tmp_path, structure={"file": "elements_study/nospin.dump", "elements": ["Fe"]})))
    assert "structure.elements names" not in str(info.value)


def test_a_spin_code_reader_error_names_the_key_that_fixes_it(tmp_path):
    """Every InputError of a Spirit/UppASD/VAMPIRE read was reported under the term's
    ``elements`` (two atoms of an UppASD posfile on one site: "potential[0].elements: ...
    overlapping"); now only the errors the elements option fixes (errors.needs_option) are, the
    others under ``path``."""
    path, _ = _code_inputs(tmp_path)["UppASD"]
    (tmp_path / "posfile").write_text("1 1 0 0 0\n2 1 0 0 0\n")
    (tmp_path / "momfile").write_text("1 1 2.0 0 0 1\n2 1 2.0 0 0 1\n")
    (tmp_path / "kfile").write_text("1 1 -0.2 0 0 0 1 0\n2 1 -0.2 0 0 0 1 0\n")
    run = _cfg(tmp_path, structure={"file": "s.cfg"}, potential=[{"type": "UppASD", "path": path.name,
                                                                   "drop": ["do_dip"]}])
    with pytest.raises(ConfigError, match=r"potential\[0\]\.path: atoms 0 and 1 are 0.0000 Å apart"):
        C.build_potential(C.load(run))
    (tmp_path / "posfile").write_text("1 1 0 0 0\n2 2 0.5 0 0\n")  # two atom types
    run["potential"][0]["elements"] = ["Fe"]  # one element for the two types
    with pytest.raises(ConfigError, match=r"potential\[0\]\.elements: elements: one per atom type"):
        C.build_potential(C.load(run))
