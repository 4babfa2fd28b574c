"""Circuit library of the quantum students: amplitude embedding, ansatzes, student circuits.

Everything here is a plain function returning Qiskit objects, in the style of Qiskit 2.x's circuit
library, so the same circuit runs on ``Statevector``, Aer, IBM fake devices and Runtime.

Conventions (little-endian throughout, as in Qiskit):

* Basis index ``i = sum_q bit_q * 2**q``; the embedding prepares ``amplitude[i] = x[i] / ||x||``.
* The embedding's input parameters ``x[0..2**n - 2]`` are angles computed classically by
  :func:`amplitude_angles`, level by level of a Mottonen RY tree (level-major, control-state minor).
* Trainable weights are one ``ParameterVector`` named ``"w"``.
* ``q_nd`` students measure qubit 0 first, then qubit 1, ...; the kept (read-out) qubits are
  ``n - n_d .. n - 1``. Mid-circuit and final measurements of qubit ``q`` go to ``meas[q]``.

Example:
    >>> import numpy as np
    >>> from qiskit.quantum_info import Statevector
    >>> st = build_student("q2")
    >>> len(st.input_params), len(st.weight_params), st.head_params(3)
    (63, 59, 15)
    >>> x = np.arange(1.0, 5.0)[None, :]            # padded to 4 amplitudes on 2 qubits
    >>> emb = amplitude_embedding(2)
    >>> psi = Statevector(emb.assign_parameters(amplitude_angles(x, 2)[0]))
    >>> np.allclose(psi.data.real, x[0] / np.linalg.norm(x[0]))
    True
"""

from __future__ import annotations

from ..catalog import ARCHITECTURES
from ..readout import MEAS_REGISTER
from .ansatzes import hea, q_nd, q_nd_active_qubits, rot_layers, universal, universal_layer_size
from .approx_embedding import (approx_amplitude_angles, approx_amplitude_embedding, embedding_fidelity, full_cx,
                               select_terms, terms_cx)
from .embeddings import (ENCODINGS, amplitude_angles, amplitude_embedding, angle_angles, angle_embedding,
                         dense_angle_embedding, encoding_capacity)
from .mux import MuxRYGate
from .redundancy import idle_weights
from .student import StudentCircuit, build_student, initial_weights, readout_distribution, without_measurements
from .walsh import TruncatedMuxRYGate

__all__ = ["ARCHITECTURES", "ENCODINGS", "MEAS_REGISTER", "MuxRYGate", "StudentCircuit", "TruncatedMuxRYGate",
           "amplitude_angles", "amplitude_embedding", "approx_amplitude_angles", "approx_amplitude_embedding",
           "embedding_fidelity", "full_cx", "select_terms", "terms_cx", "angle_angles", "angle_embedding", "build_student", "dense_angle_embedding",
           "encoding_capacity", "hea", "idle_weights", "initial_weights", "q_nd", "q_nd_active_qubits", "readout_distribution",
           "rot_layers", "universal", "universal_layer_size", "without_measurements"]
