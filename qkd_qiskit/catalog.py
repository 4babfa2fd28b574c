"""Names of every model a config may ask for: the one list shared by configs, the model registry
and the circuit library (kept free of torch, so validating a config imports no torch).

Example:
    >>> "q2" in QUANTUM_STUDENT_MODELS, "linear" in MODEL_NAMES
    (True, True)
"""

from __future__ import annotations

ARCHITECTURES = ("hea", "universal", "universal_h", "q2", "q3", "q4", "q5")
"""Student circuit architectures of the Piperno study for 6 qubits (``q_nd`` for 2 <= n_d < n)."""

CLASSICAL_MODELS = ("teacher_mlp", "linear")
"""Ensembles of MLPs: the Piperno teacher (64-16-8-3) and the linear student."""

IMAGE_MODELS = ("lenet5", "hasan")
"""Image models: the LeNet-5 teacher and the Hasan & Mahdy student (reduction + circuit + head)."""

QUANTUM_STUDENT_MODELS = (*ARCHITECTURES, "hasan")
"""Every model whose core is a circuit."""

MODEL_NAMES = (*CLASSICAL_MODELS, *ARCHITECTURES, *IMAGE_MODELS)
"""Every model name a config may use, in registry order."""
