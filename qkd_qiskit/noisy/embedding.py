"""The noisy states left by the input part, computed once per data split.

The input part (:mod:`.split`) depends on the data only, so its output is the same for every model
and every step: like the exact engine's ``encode``, it is computed once per data split and the
trainer indexes it. It is simulated in the Schrödinger picture with the same fused blocks as the
weight part (:class:`~qkd_qiskit.noisy.program.BlockProgram`, one set of block matrices per sample,
float64, chunked over samples) and kept as Pauli vectors. No gradient flows here: the embedded
features are data.

Aer's own density-matrix simulation of the same part (``save_density_matrix``, one run over all
bindings) is the test oracle, not the implementation: for the 6-qubit hea on FakeKingston it took
96 s for 800 samples on the shared 2-core machine, this path ~2 s.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qiskit_aer.noise import NoiseModel
    >>> x = Parameter("x"); qc = QuantumCircuit(2); _ = qc.rx(x, 0)
    >>> states = Embedding(qc, ErrorTable(NoiseModel()), [x]).states(np.array([[0.0], [np.pi]]))
    >>> states.shape, states[:, 3].round(6).tolist()     # <Z_0> of RX(0)|0> and RX(pi)|0>
    ((2, 16), [1.0, -1.0])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from qiskit import QuantumCircuit

from .blocks import fuse_blocks
from .channels import ErrorTable, circuit_channels
from .program import BlockProgram


def ground_state(n_qubits: int, n: int) -> np.ndarray:
    """Pauli vectors of ``|0..0>`` (``r_P = 1`` for every Z-string, 0 otherwise), ``(n, 4^k)``."""
    one = np.array([1.0, 0.0, 0.0, 1.0])
    v = np.ones(1)
    for _ in range(n_qubits):
        v = np.kron(one, v)
    return np.broadcast_to(v, (n, v.size)).copy()


class Embedding:
    """The input part of a compact circuit as a per-sample :class:`BlockProgram`."""

    def __init__(self, circuit: QuantumCircuit, errors: ErrorTable, input_params: Sequence[Any], chunk: int = 128):
        self.n_qubits, self.chunk = circuit.num_qubits, chunk
        self.n_inputs = len(input_params)
        channels = circuit_channels(circuit, input_params, errors)
        self.program = BlockProgram(fuse_blocks(channels, self.n_qubits), self.n_qubits, [], torch.float64) \
            if channels else None

    @torch.no_grad()
    def states(self, angles: Any) -> np.ndarray:
        """Pauli vectors ``(N, 4^k)`` of the noisy states prepared from ``|0..0>`` for each row of
        input ``angles (N, n_inputs)``."""
        a = torch.as_tensor(np.asarray(angles, dtype=np.float64)).reshape(-1, self.n_inputs)
        start = ground_state(self.n_qubits, 1)
        if self.program is None:
            return np.repeat(start, len(a), axis=0)
        out = []
        for i in range(0, len(a), self.chunk):
            part = a[i:i + self.chunk]
            r0 = torch.as_tensor(start).expand(len(part), 1, -1)
            out.append(self.program.evolve(r0, part)[:, 0].numpy())
        return np.concatenate(out) if out else np.zeros((0, 4**self.n_qubits))
