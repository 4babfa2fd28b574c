"""One student circuit on one noisy device, ready for training: :class:`NoisySimulator`.

Built from a student (with its embedding barrier, :func:`~qkd_qiskit.noisy.barrier_student`) and
an ``aer`` backend: the ISA circuit and the restricted noise model are exactly those of ``qkd
evaluate``'s density-matrix path (``AerBackend.compacted(student)``), cut into input and weight
parts (:mod:`.split`); the input part runs once per data split (:mod:`.embedding`), the
weight part in torch per step (:mod:`.program`), the read-out errors are an affine map
(:mod:`.assignment`).

Example:
    >>> from qkd_qiskit.backends import AerProfile, get_backend
    >>> from qkd_qiskit.circuits import build_student
    >>> st = barrier_student(build_student("hea", n_qubits=2, layers=1, n_features=4))
    >>> manila = get_backend(AerProfile(kind="aer", device="fake_manila", name="manila"))
    >>> sim = NoisySimulator(st, manila, torch.float64)
    >>> states = sim.states(st.input_angles(np.array([[1.0, 0.0, 0.0, 0.0]])))
    >>> out = sim.readouts(torch.as_tensor(states)[None], torch.zeros(1, 8, dtype=torch.float64))
    >>> out.shape, bool((out.abs() < 1).all())      # <Z> of |00>, shrunk by noise and read-out errors
    (torch.Size([1, 1, 2]), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..backends import readout_matrix
from .assignment import ReadoutMap
from .barrier import barrier_student
from .blocks import fuse_blocks
from .channels import ErrorTable, circuit_channels
from .embedding import Embedding
from .program import BlockProgram
from .split import split_circuit

__all__ = ["NoisySimulator", "barrier_student"]


class NoisySimulator:
    """Exact noisy read-outs of ``student`` on an ``aer`` backend (see the module docstring)."""

    def __init__(self, student: Any, backend: Any, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None):
        cmp = backend.compacted(student)
        if not cmp.fast_path_ok:
            raise ValueError(f"options.noise: {backend.name}: its noise model has quantum measurement errors, "
                             "correlated read-out errors or idle-delay relaxation; noise-aware training needs "
                             "the density-matrix path of qkd evaluate")
        self.student, self.dtype, self.device = student, dtype, device
        self.noise_model = cmp.noise_model
        self.physical = cmp.physical
        self.input_part, self.weight_part = split_circuit(cmp.unitary, student.input_params, student.weight_params)
        self.n_qubits = cmp.unitary.num_qubits
        self.errors = ErrorTable(cmp.noise_model)
        self.embedding = Embedding(self.input_part, self.errors, student.input_params)
        channels = circuit_channels(self.weight_part, student.weight_params, self.errors)
        positions = cmp.readout_positions(student)
        self.readout = ReadoutMap.build(student.readout, positions,
                                        [readout_matrix(cmp.noise_model, q) for q in positions])
        self.program = BlockProgram(fuse_blocks(channels, self.n_qubits), self.n_qubits,
                                         self.readout.observables, dtype, device)
        self.matrix = torch.as_tensor(self.readout.matrix, dtype=dtype, device=device)
        self.bias = torch.as_tensor(self.readout.bias, dtype=dtype, device=device)

    def states(self, angles: Any) -> np.ndarray:
        """Pauli vectors ``(N, 4^k)`` after the (noisy) input part, for input angles ``(N, n_inputs)``."""
        a = angles.detach().cpu().double().numpy() if isinstance(angles, torch.Tensor) else np.asarray(angles)
        return self.embedding.states(a)

    def readouts(self, states: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Noisy student outputs ``(M, B, n_outputs)`` (no shot noise) of states ``(M, B, 4^k)``."""
        return self.program(states, weights) @ self.matrix.T + self.bias

    def linear(self, states: torch.Tensor, weights: torch.Tensor, w_out: torch.Tensor, b_out: torch.Tensor
               ) -> torch.Tensor:
        """``readouts @ w_out + b_out`` (a linear head: ``w_out (M, n_outputs, C)``, ``b_out (M, C)``),
        with the head folded into the observables: ``C`` class observables are propagated instead of
        ``K`` read-out ones (3 instead of 6 for hea, 31 for q5), since expectation values are linear."""
        g = self.matrix.T @ w_out  # (M, K, C)
        o = self.program.propagate(weights, g.transpose(1, 2) @ self.program.observables)
        return states @ o.transpose(1, 2) + (self.bias @ w_out + b_out).unsqueeze(1)
