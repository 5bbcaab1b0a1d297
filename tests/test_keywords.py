"""Keywords of one entry point given to another: refused with a spinlat error naming the right one.

sl.minimize(max_iterations=...) was a bare TypeError (minimize's limit is max_steps; gneb's,
named by DESIGN.md, max_iterations), sl.gneb(fmax=...) too, and the same names in a config
section only listed the keys."""

import inspect
import warnings

import numpy as np
import pytest

import spinlat as sl
from spinlat.config import MINIMIZE, SEARCH, check_gneb_config, check_section
from spinlat.errors import ConfigError, ConvergenceWarning, InputError
from spinlat.minimization import minimize_starts
from spinlat.potentials import Zeeman
from spinlat.workflows.curie import curie_sweep


@pytest.fixture
def spin():
    st = sl.State([[0, 0, 0]], ["Fe"], moments=[2.2], spins=[[1, 0, 0.2]])
    return st, Zeeman([0, 0, 1.0])


@pytest.mark.parametrize("call, keyword, message", [
    ("minimize", "max_iterations", "minimize: unknown keyword 'max_iterations'; here the step / iteration limit is "
                                   "max_steps"),
    ("minimize", "maxiter", "here the step / iteration limit is max_steps"),
    ("minimize", "tol", "here the convergence tolerance is tmax / fmax / smax / hmax"),
    ("minimize", "tmx", "did you mean 'tmax'"),
    ("gneb", "max_steps", "gneb: unknown keyword 'max_steps'; here the step / iteration limit is max_iterations"),
    ("gneb", "fmax", "here the convergence tolerance is tol"),
    ("gneb", "n_images", "here the number of images is images"),
    ("gneb", "random_state", "here the random seed is seed"),
    ("ground_state", "max_iterations", "ground_state: unknown keyword 'max_iterations'; here the step / iteration "
                                       "limit is max_steps"),
    ("ground_state", "n_starts", "here the number of random starts is starts"),
    ("ground_state", "n_jobs", "here the number of worker processes is workers"),
    ("minimize_starts", "max_iterations", "minimize_starts: unknown keyword 'max_iterations'; here the step / "
                                          "iteration limit is max_steps"),
    ("curie_sweep", "T", "here the temperature is temperatures"),
])
def test_a_keyword_of_another_entry_point_names_the_right_one(spin, call, keyword, message):
    st, pot = spin
    calls = {"minimize": lambda **kw: sl.minimize(st, pot, **kw),
             "gneb": lambda **kw: sl.gneb(st, st.copy(spins=[[0, 0, -1]]), pot, **kw),
             "ground_state": lambda **kw: sl.search.ground_state(st, pot, starts=2, **kw),
             "minimize_starts": lambda **kw: minimize_starts(st, pot, st.spins[None], **kw),
             "curie_sweep": lambda **kw: curie_sweep(st, pot, [1.0], [2], 10, **kw)}
    with pytest.raises(InputError) as info:
        calls[call](**{keyword: 3})
    assert message in str(info.value)


def test_the_entry_points_keep_their_signatures_and_run(spin):
    st, pot = spin
    assert "max_steps" in inspect.signature(sl.minimize).parameters
    assert "max_iterations" in inspect.signature(sl.gneb).parameters
    out = sl.minimize(st, pot, max_steps=500, tmax=1e-10)
    assert np.allclose(out.spins, [[0, 0, 1]], atol=1e-8)  # along the field
    minima = sl.search.ground_state(st, pot, starts=2, max_steps=500, tmax=1e-10)  # passed on to minimize
    assert minima[0].state.spins[0, 2] == pytest.approx(1.0, abs=1e-8)


def test_a_convergence_warning_still_points_at_the_callers_line(spin):
    """The keyword check is a wrapper (one more frame): the warning must still name this file."""
    st, pot = spin
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sl.minimize(st, pot, max_steps=1, tmax=1e-12)
        sl.search.ground_state(st, pot, starts=2, max_steps=1, tmax=1e-12)
    ours = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(ours) == 2 and all(w.filename == __file__ for w in ours)


@pytest.mark.parametrize("section, schema, key, message", [
    ("minimize", MINIMIZE, "max_iterations", "minimize.max_iterations: unknown key; here the step / iteration limit is "
                                             "max_steps"),
    ("search", SEARCH, "tol", "here the convergence tolerance is tmax / fmax / smax / hmax / energy_tol / angle_tol"),
    ("search", SEARCH, "n_starts", "here the number of random starts is starts"),
])
def test_a_config_key_of_another_command_names_the_right_one(section, schema, key, message):
    with pytest.raises(ConfigError, match=message):
        check_section({key: 1}, section, schema)


def test_a_gneb_config_key_of_minimize_names_max_iterations():
    with pytest.raises(ConfigError, match="here the step / iteration limit is max_iterations"):
        check_gneb_config({"gneb": {"initial": "a.extxyz", "final": "b.extxyz", "max_steps": 10}})


@pytest.mark.parametrize("anneal, message", [
    ({"T_start": 500.0}, "ground_state: anneal: unknown keyword 'T_start' (did you mean 't_start'?)"),
    ({"n_sweeps": 5}, "here the number of Monte Carlo sweeps is sweeps"),
    ({"t_end": -1.0}, "anneal['t_end'] (K) must be a positive number"),
    ({"stages": 0}, "anneal['stages'] must be an integer ≥ 1"),
    ([100.0, 1.0], "anneal must be None or a dict"),
])
def test_a_misspelt_anneal_key_is_refused_not_left_at_its_default(spin, anneal, message):
    """ground_state(anneal={"T_start": 500}) annealed from the default 100 K without a word."""
    st, pot = spin
    with pytest.raises(InputError) as info:
        sl.search.ground_state(st, pot, starts=1, anneal=anneal)
    assert message in str(info.value)


@pytest.mark.parametrize("change, message", [
    ({"integrator": {"type": "LLG", "dt": 1.0, "damping": 0.1, "T": 10}},
     "integrator.T: unknown key for LLG; here the temperature is temperature"),
    ({"integrator": {"type": "MonteCarlo", "temperature": 10, "random_state": 3}}, "here the random seed is seed"),
    ({"n_steps": 10}, "n_steps: unknown key for a run config; here the step / iteration limit is steps"),
    ({"save_every": 10}, "save_every: unknown key for a run config; here the frame interval is every"),
])
def test_a_run_config_key_of_another_code_names_the_right_one(change, message):
    from spinlat.config import load

    cfg = {"structure": {"crystal": "bcc", "element": "Fe", "a": 2.87, "repeat": 2, "moments": 2.2},
           "potential": [{"type": "Zeeman", "B": [0, 0, 1]}], "steps": 10,
           "integrator": {"type": "MonteCarlo", "temperature": 10}, **change}
    with pytest.raises(ConfigError, match=message):
        load(cfg)


@pytest.mark.parametrize("key, message", [
    ("learning_rate", "training.learning_rate: unknown training option or hyperparameter; here the learning rate is lr"),
    ("max_epochs", "here the number of epochs is epochs"),
    ("random_state", "here the random seed is seed"),
    ("cutoff", "here the cutoff radius is r_max"),  # mace-torch's name (DESIGN.md)
    ("epoch", "(did you mean 'epochs'?)"),
])
def test_a_training_option_of_another_code_names_spinlats(key, message):
    from spinlat.training.options import split_options

    with pytest.raises(ConfigError) as info:
        split_options({key: 1}, "training.")
    assert message in str(info.value)


def test_a_hyperparameter_of_another_code_names_mace_torchs():
    from spinlat.potentials.mmace.hyperparameters import Hyperparameters

    with pytest.raises(ConfigError, match="model.cutoff: unknown key for options; here the cutoff radius is r_max"):
        Hyperparameters.check_values({"cutoff": 5.0}, "model.")


def test_an_empty_anneal_dict_anneals_with_the_defaults(spin, monkeypatch):
    """anneal={} (``anneal: {}`` in a config: "anneal, with the defaults") did not anneal at all."""
    from spinlat import search
    from spinlat.integrators import MonteCarlo

    st, pot = spin
    temperatures = []
    real = MonteCarlo.run

    def run(self, state, potential, sweeps):
        temperatures.append(self.temperature)
        return real(self, state, potential, sweeps)

    monkeypatch.setattr(MonteCarlo, "run", run)
    search.ground_state(st, pot, starts=1, anneal={})
    d = search.ANNEAL_DEFAULTS
    assert sorted(set(temperatures), reverse=True) == pytest.approx(np.geomspace(d["t_start"], d["t_end"], d["stages"]))


# --------------------------------------------------------------- misspelt keywords everywhere
#: the public namespaces a user calls into (DESIGN.md, README, the examples)
_NAMESPACES = ("spinlat", "spinlat.integrators", "spinlat.potentials", "spinlat.io", "spinlat.search",
               "spinlat.analysis", "spinlat.datasets", "spinlat.ase", "spinlat.training", "spinlat.transitions",
               "spinlat.workflows.bain", "spinlat.workflows.curie", "spinlat.workflows.lswt",
               "spinlat.workflows.magnons", "spinlat.workflows.mn3pt", "spinlat.workflows.skyrmion")
_TOP = ("State", "Simulation", "minimize", "gneb", "sweep", "bain_path")


#: callables left to Python's own TypeError, and why
_EXEMPT = {
    **dict.fromkeys(("Evaluation", "Minimum", "GNEBResult", "CurieResult"), "a result record spinlat builds"),
    **dict.fromkeys(("DynamicsState.evaluation_for", "Integrator.evaluation_at", "SpinFieldEngine.magnetic_forces",
                     "LinearSpinCouplings.evaluate", "Translations.same", "Translations.matches", "collate", "evaluate_graphs", "graphs_of"),
                    "an inner call of integrators, searches or training, made by spinlat itself"),
    "SpinLatticeCalculator.calculate": "ASE calls it, with ASE's signature",
    **dict.fromkeys(("ReferenceMagneticMACE.create", "ReferenceMagneticMACE.train"),
                    "refuses every call, naming what to use instead"),
}


def _takes_many_keywords(func) -> bool:
    """A callable with ``**kwargs`` or at least two keywords that have defaults: a misspelt one
    (``tmestep``, ``stpes``) would otherwise go unnoticed or give Python's bare TypeError."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD for p in params) or sum(
        p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params) >= 2


def _public_callables():
    import importlib

    seen, out = set(), []
    for name in _NAMESPACES:
        mod = importlib.import_module(name)
        names = _TOP if name == "spinlat" else getattr(mod, "__all__", None) or [
            n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == name]
        for n in names:
            obj = getattr(mod, n)
            if id(obj) in seen or not callable(obj) or not getattr(obj, "__module__", "").startswith("spinlat"):
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                if "__init__" in vars(obj) and _takes_many_keywords(obj):
                    out.append((f"{n}", obj, False))
                for m, attr in vars(obj).items():
                    if m.startswith("_") or not isinstance(attr, (staticmethod, classmethod)) and not inspect.isfunction(attr):
                        continue
                    func = getattr(obj, m)
                    if _takes_many_keywords(func):
                        out.append((f"{n}.{m}", func, inspect.isfunction(attr)))
            elif inspect.isfunction(obj) and _takes_many_keywords(obj):
                out.append((n, obj, False))
    return out


def test_a_misspelt_keyword_of_any_public_callable_names_the_close_matches():
    """sl.Simulation(..., evrey=10), sim.run(stpes=10), and the same slip in every public function,
    method or class of the user's namespaces with **kwargs or several optional keywords: a
    KeywordError (an InputError and a TypeError) naming the callable, the keyword and what it takes,
    raised before anything runs (the call here gives no other argument)."""
    from spinlat.errors import KeywordError

    wrong = []
    found = _public_callables()
    assert len(found) > 60  # the namespaces were read
    for label, func, unbound in found:
        if label in _EXEMPT:
            continue
        params = [p for p in inspect.signature(func).parameters.values()
                  if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        key = (params[-1].name + "x") if params else "tmestep"  # a slip of its own last keyword
        try:
            func(None, **{key: 1}) if unbound else func(**{key: 1})
        except KeywordError as exc:
            text = str(exc)
            if key not in text or (params and f"did you mean {params[-1].name!r}" not in text):
                wrong.append(f"{label}: {text}")
        except BaseException as exc:  # noqa: BLE001 - listed below
            wrong.append(f"{label}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{label}: accepted {key}")
    assert not wrong, "\n".join(wrong)


def test_simulation_and_its_run_name_the_misspelt_keyword(spin):
    from spinlat.errors import KeywordError
    from spinlat.integrators import LLG

    st, pot = spin
    with pytest.raises(KeywordError, match=r"Simulation: unknown keyword 'evrey' \(did you mean 'every'\?\)"):
        sl.Simulation(st, pot, LLG(1.0), evrey=10)
    with pytest.raises(TypeError, match="unknown keyword 'tmestep'"):  # still a TypeError for code catching that
        sl.Simulation(st, pot, LLG(1.0), tmestep=1)
    sim = sl.Simulation(st, pot, LLG(1.0), progress=False)
    with pytest.raises(KeywordError, match=r"Simulation.run: unknown keyword 'stpes' \(did you mean 'steps'\?\)"):
        sim.run(stpes=10)
    assert sim.step == 0
    sim.run(steps=2)
    assert sim.step == 2
    with pytest.raises(KeywordError, match=r"Simulation.restart: unknown keyword 'evry' \(did you mean 'every'\?\)"):
        sl.Simulation.restart("x.h5", pot, LLG(1.0), evry=10)


def test_warnings_of_decorated_entry_points_still_point_at_the_caller():
    """The keyword check is one more frame: warnings given by State.from_ase (directly and through
    its helpers) and Simulation still name this file, not spinlat/keywords.py."""
    from ase.build import bulk

    at = bulk("Fe", "bcc", a=2.87, cubic=True)
    at.arrays["vel"] = np.zeros((2, 3))  # velocities under a name spinlat does not read
    at.set_initial_magnetic_moments([2.2, 2.2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sl.State.from_ase(at)
    assert caught and all(w.filename == __file__ for w in caught), [(w.filename, str(w.message)) for w in caught]
