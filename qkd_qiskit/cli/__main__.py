"""``python -m qkd_qiskit.cli``: the ``qkd`` command."""

from . import main

main()
