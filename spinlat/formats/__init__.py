"""Text formats that spinlat reads, below every other layer: grammars and parsers that turn a file
into plain arrays, with no State, potential or integrator in them.

- :mod:`.number_syntax`: the number grammars of EAM tables and TB2J files (whole-token matching,
  LAMMPS's decimal forms, Fortran ``D`` exponents);
- :mod:`.tb2j`: TB2J ``exchange.out`` files and their Hamiltonian convention.

Potentials build on them (``EAM`` reads its tables, ``Heisenberg.from_tb2j`` its pairs) and so
does :mod:`spinlat.io`, which turns files into spinlat objects and back; neither imports the
other for a file format.
"""
