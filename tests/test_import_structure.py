"""The package's layering, read from the source: every ``import`` statement of every module
(function-local ones included, since a lazy import is still a dependency).

- nothing under ``spinlat/potentials/`` imports ``spinlat.io``, ``spinlat.datasets`` or
  ``spinlat.training`` (those sit above the potentials: files, data sets, the optimiser;
  ``MagneticMACE.train`` reaches the training through ``spinlat.potentials.mmace.trainer``, which
  ``spinlat.training`` fills in when imported);
- the top-level parts of the package (``spinlat.state``, ``spinlat.io``, ``spinlat.potentials``,
  ``spinlat.training``, ...) import each other without a cycle.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "spinlat"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(line, imported module) of every import in ``path``, relative imports made absolute; for
    ``from m import x`` both ``m`` and ``m.x`` (x may be a submodule)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _modules():
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _part(module: str) -> str:
    """The top-level part a module belongs to: ``spinlat.potentials.mmace.model`` → ``spinlat.potentials``."""
    return ".".join(module.split(".")[:2])


def test_potentials_import_nothing_above_them():
    above = ("spinlat.io", "spinlat.datasets", "spinlat.training")
    bad = []
    for path in sorted((PACKAGE / "potentials").rglob("*.py")):
        for line, module in _imports(path):
            if any(module == a or module.startswith(a + ".") for a in above):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def _part_graph():
    """{part: {imported part: [(file:line, module), ...]}} between distinct top-level parts
    (the package root ``spinlat`` itself, which only re-exports, is left out)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        src = _part(name)
        if src == "spinlat":
            continue
        for line, module in _imports(path):
            if module not in modules or not module.startswith("spinlat."):
                continue
            dst = _part(module)
            if dst not in (src, "spinlat"):
                graph.setdefault(src, {}).setdefault(dst, []).append((f"{path.relative_to(PACKAGE.parent)}:{line}",
                                                                        module))
    return graph


def _cycle(graph):
    """One cycle of parts as a list [a, b, ..., a], or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_between_top_level_parts():
    graph = _part_graph()
    cycle = _cycle(graph)
    if cycle:
        where = [f"{a} -> {b}: " + ", ".join(f"{loc} ({m})" for loc, m in graph[a][b][:3])
                 for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle between parts of spinlat:\n" + "\n".join(where))


def test_the_cycle_check_finds_cycles():
    """The check itself: a graph with a cycle is reported, one without is not."""
    assert _cycle({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": [], "c": []}, "b": {"c": []}}) is None
    # and the parser sees relative, function-local imports
    found = dict((m, line) for line, m in _imports(PACKAGE / "potentials" / "heisenberg.py"))
    assert "spinlat.formats.tb2j" in found and "spinlat.potentials.base" in found


def test_the_training_is_installed_behind_magnetic_mace_train():
    """A fresh interpreter that imports only the potential finds the trainer (``import spinlat``,
    which any ``spinlat.*`` import runs first, imports the light ``spinlat.training``)."""
    import subprocess
    import sys

    code = ("from spinlat.potentials import mmace\n"
            "import spinlat.training\n"
            "assert mmace.trainer is spinlat.training.train, mmace.trainer\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(PACKAGE.parent))
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- private names
def _defined_names(tree) -> set:
    """Names a module defines itself: functions, classes, assigned variables and attributes
    (``x._y = ...``, ``setattr(x, "_y", ...)``)."""
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            names.add(n.attr)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            names.add(n.id)
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setattr"
              and len(n.args) > 1 and isinstance(n.args[1], ast.Constant)):
            names.add(n.args[1].value)
    return names


def _private_reads(source: str, filename: str = "<source>"):
    """(line, text) of every read of another module's private name in ``source``: an attribute
    ``obj._name`` or ``getattr/hasattr(obj, "_name")`` (``obj`` not ``self``/``cls``) whose
    ``_name`` the module does not define itself, and ``from spinlat… import _name``. Dunder
    names are public protocol and not counted."""
    tree = ast.parse(source, filename)
    mine = _defined_names(tree)
    out = []
    for n in ast.walk(tree):
        name = obj = None
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
            name, obj = n.attr, n.value
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")
              and len(n.args) > 1 and isinstance(n.args[1], ast.Constant) and isinstance(n.args[1].value, str)):
            name, obj = n.args[1].value, n.args[0]
        elif isinstance(n, ast.ImportFrom) and (n.level > 0 or (n.module or "").startswith("spinlat")):
            for alias in n.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    out.append((n.lineno, f"from {'.' * n.level}{n.module or ''} import {alias.name}"))
            continue
        if not name or not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(obj, ast.Name) and obj.id in ("self", "cls"):
            continue                       # a class's own (or inherited, protected) members
        if name not in mine:
            out.append((n.lineno, ast.unparse(n)))
    return out


def test_no_module_reads_another_modules_private_names():
    """One module never reads another's private attributes or functions: each consumer goes
    through a public seam (e.g. ``NeighborList.reference_positions``, ``State.from_trusted_arrays``,
    ``validation.atomic_numbers``)."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _private_reads(path.read_text(encoding="utf-8"), str(path)):
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text}")
    assert not bad, "private names read across modules:\n" + "\n".join(bad)


def test_the_private_read_check_finds_reads():
    """The check itself, on small sources: foreign reads are found, own ones are not."""
    src = ("from .state import _numbers\n"
           "def f(nl, st):\n"
           "    a = nl._ref_positions\n"
           "    b = getattr(nl, '_cache', None)\n"
           "    return self._x, nl.__class__\n")
    assert [line for line, _ in _private_reads(src)] == [1, 3, 4]
    own = "class A:\n    def __init__(self):\n        self._x = 1\ndef g(a):\n    return a._x\n"
    assert _private_reads(own) == []


#: scripts allowed to import private names, with the reason (each one a debt to pay)
_SCRIPTS_READING_PRIVATE_NAMES = {
    "bench_pair_search.py": "times the private pair-list kernels of spinlat/potentials/exchange.py",
}


def test_no_benchmark_or_example_imports_private_names_of_spinlat():
    """bench_mmace_batched.py imported ``_edge_groups`` from spinlat.potentials.mmace.potential
    (now the public, documented ``edge_groups``): benchmarks and examples are consumers too and
    import only public names of spinlat (the listed exceptions aside)."""
    root = PACKAGE.parent
    bad = []
    for path in sorted(list((root / "benchmarks").glob("*.py")) + list((root / "examples").glob("*.py"))):
        if path.name in _SCRIPTS_READING_PRIVATE_NAMES:
            continue
        for line, text in _private_reads(path.read_text(encoding="utf-8"), str(path)):
            if text.startswith("from "):
                bad.append(f"{path.relative_to(root)}:{line}: {text}")
    assert not bad, "private names of spinlat imported:\n" + "\n".join(bad)
