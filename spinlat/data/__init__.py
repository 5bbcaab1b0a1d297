"""Example data shipped with spinlat, so the README, the demo and the examples run in any clone
or installation. Sources, what each file is and what to cite: ``spinlat/data/README.md``.

- ``Fe_mm.eam.fs``: EAM (Finnis-Sinclair format) potential for Fe by Mendelev et al., Phil. Mag.
  83, 3977 (2003), as distributed with LAMMPS;
- ``bccFe_TB2J_exchange.out``: exchange parameters of bcc Fe computed with TB2J 0.2.5 from a
  collinear SIESTA calculation (TB2J's own bcc Fe example; He et al., Comput. Phys. Commun. 264,
  107938 (2021)).

Use :func:`path` to get a file: ``EAM(spinlat.data.path("Fe_mm.eam.fs"))``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

_HERE = Path(__file__).resolve().parent

#: the shipped files and a one-line description of each
FILES = {
    "Fe_mm.eam.fs": "EAM/FS potential for Fe, Mendelev et al., Phil. Mag. 83, 3977 (2003)",
    "bccFe_TB2J_exchange.out": "TB2J 0.2.5 exchange parameters of bcc Fe (SIESTA), He et al., CPC 264, 107938 (2021)",
}


def path(name: str) -> Path:
    """Absolute path of the shipped data file ``name`` (one of :data:`FILES`); raises InputError
    naming the files that exist when ``name`` is not one of them."""
    if not isinstance(name, str) or name not in FILES:
        raise InputError(f"spinlat.data has no file {name!r}; shipped files: {sorted(FILES)}")
    return _HERE / name


def files() -> dict:
    """The shipped data files: {name: description}."""
    return dict(FILES)


__all__ = ["FILES", "path", "files"]
