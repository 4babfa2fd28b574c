"""Fast noisy evaluation: a trained student's sampled read-outs on an ``aer`` profile, from the PTM
simulator instead of Aer's density-matrix simulator.

``qkd evaluate`` / ``qkd calibrate`` on an ``aer`` profile compute, per unit, the exact noisy
read-out distribution of the compact ISA circuit (:class:`~qkd_qiskit.backends.Compacted`: active
qubits, restricted noise model, read-out errors applied classically), then draw the profile's shots
with a seeded multinomial. :class:`PtmSampler` computes the *same* distribution (same ISA circuit,
physical qubits and noise; agreement with Aer ~1e-9, tests/noisy) with the Pauli-transfer-matrix
machinery of noise-aware training, then draws the same shots with the same seed
(:func:`~qkd_qiskit.backends.sample_probs`), so the read-outs are the Aer path's.

Two ways, chosen per circuit:

* **split** (noise-aware students, whose circuit has the embedding barrier, :mod:`.split`): the
  input part is simulated once per set of input angles (shared by the models of an ensemble) and
  the ``2^k - 1`` Z-strings of the read-out qubits are pulled back through the weight part once per
  model (Heisenberg, :mod:`.program`);
* **whole** (every other circuit, e.g. exact-trained students, whose ISA circuit mixes input and
  weight gates): the whole circuit per sample in the Schrödinger picture, weights and input angles
  as one parameter row (:class:`~.embedding.Embedding`).

:func:`sampled_readouts` is the switch used by ``qkd evaluate`` and ``qkd calibrate``: this path
where it applies (an ``aer`` profile with ``fast_eval``, a circuit the density-matrix path accepts,
at most 2-qubit ISA gates, rotation-form trainable gates), else the backend's own ``readouts``.

Example:
    >>> from qkd_qiskit.backends import AerProfile, get_backend
    >>> from qkd_qiskit.circuits import build_student
    >>> manila = get_backend(AerProfile(kind="aer", device="fake_manila", name="manila", shots=100))
    >>> st = build_student("hea", n_qubits=2, layers=1, n_features=4)
    >>> w, a = np.zeros(len(st.weight_params)), st.input_angles(np.eye(4)[:3])
    >>> r = sampled_readouts(manila, st, w, a, seed=7)
    >>> r.shape, bool(np.allclose(r, manila.readouts(st, w, a, seed=7)))    # the same shots as Aer's path
    ((3, 2), True)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from ..backends import Backend, check_batch, memo_key, memoised, readout_matrix
from ..backends.fastpath import circuit_digest
from .assignment import ReadoutMap
from .blocks import BlockTables, fuse_blocks
from .channels import ErrorTable, circuit_channels
from .embedding import Embedding, ground_state
from .program import BlockProgram, z_string_index
from .split import split_circuit


def select_blocks(tables: BlockTables, keep: np.ndarray) -> BlockTables:
    """The tables of blocks ``keep`` only (their units and segments, renumbered)."""
    units = sorted({int(u) for u in tables.chains[keep].ravel() if u < len(tables.mid)})
    unit_of = {u: i for i, u in enumerate(units)}
    segs = sorted({int(v) for u in units for v in (*tables.pre[u], *tables.post[u])})
    seg_of = {v: i for i, v in enumerate(segs)}
    remap = np.vectorize(lambda v: seg_of[int(v)], otypes=[np.int64])
    chains = np.vectorize(lambda u: unit_of.get(int(u), len(units)), otypes=[np.int64])(tables.chains[keep])
    return dataclasses.replace(tables, segments=[tables.segments[v] for v in segs], pairs=tables.pairs[keep],
                               pre=remap(tables.pre[units]).reshape(-1, 2), post=remap(tables.post[units]).reshape(-1, 2),
                               mid=tables.mid[units], chains=chains.reshape(len(keep), -1))


def sample_dependent_blocks(tables: BlockTables, n_weights: int) -> np.ndarray:
    """Indices of the blocks with a gate whose angle reads a parameter after the first ``n_weights``."""
    moving = np.flatnonzero(np.abs(tables.coef[:, n_weights:]).sum(1) > 0)
    hit = lambda rows: np.isin(rows, moving)
    seg_hit = np.array([hit(tables.one_angle[s]).any() for s in tables.segments] + [False])
    unit_hit = seg_hit[tables.pre].any(1) | seg_hit[tables.post].any(1) | hit(tables.two_angle[tables.mid])
    unit_hit = np.append(unit_hit, False)
    return np.flatnonzero(unit_hit[tables.chains].any(1))


class WholeCircuit:
    """A whole circuit (weights and inputs mixed) simulated per sample in the Schrödinger picture. The
    blocks that read no input angle are built once per weight vector and shared by every sample; only
    the others are built per sample (building blocks, not applying them, dominates: ~3x fewer
    per-sample blocks' work for hea on FakeKingston)."""

    def __init__(self, circuit: Any, errors: ErrorTable, weight_params: Any, input_params: Any, chunk: int = 128):
        params = [*weight_params, *input_params]
        self.n_weights, self.n_qubits, self.chunk = len(weight_params), circuit.num_qubits, chunk
        tables = fuse_blocks(circuit_channels(circuit, params, errors), self.n_qubits)
        self.moving = sample_dependent_blocks(tables, self.n_weights)
        self.all = BlockProgram(tables, self.n_qubits, [], torch.float64)
        self.per_sample = BlockProgram(select_blocks(tables, self.moving), self.n_qubits, [], torch.float64)

    @torch.no_grad()
    def states(self, weights: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Pauli vectors ``(N, 4^k)`` of the noisy final states, one per row of ``angles``."""
        params = torch.as_tensor(np.concatenate([np.broadcast_to(weights, (len(angles), len(weights))), angles], 1))
        shared = self.all.blocks(params[:1])
        start = torch.as_tensor(ground_state(self.n_qubits, 1))
        out = []
        for i in range(0, len(params), self.chunk):
            part = params[i:i + self.chunk]
            blocks = shared.expand(len(part), -1, -1, -1).clone()
            blocks[:, self.moving] = self.per_sample.blocks(part)
            out.append(self.all.apply(start.expand(len(part), 1, -1), blocks)[:, 0].numpy())
        return np.concatenate(out)


class PtmSampler:
    """Exact noisy read-out distributions of one student circuit on one ``aer`` backend (float64);
    a ValueError when the PTM path cannot simulate it (see the module docstring). ``whole``: the
    whole-circuit way even where the circuit splits (``mode`` says which way is used)."""

    def __init__(self, student: Any, backend: Backend, whole: bool = False):
        cmp = backend.compacted(student)
        if not cmp.fast_path_ok:
            raise ValueError(f"{backend.name}: not on the density-matrix path")
        self.student, self.n_qubits = student, cmp.unitary.num_qubits
        errors = ErrorTable(cmp.noise_model)
        positions = cmp.readout_positions(student)
        self.readout = ReadoutMap.build("probs", positions, [readout_matrix(cmp.noise_model, q) for q in positions])
        self.columns = [z_string_index(o) for o in self.readout.observables]
        self._states: "OrderedDict[bytes, np.ndarray]" = OrderedDict()
        self.memo_name = (f"ptm|{whole}|{cmp.noise_key}|{circuit_digest(cmp.unitary)}|{positions}|"
                          f"{[p.name for p in student.input_params]}|{[p.name for p in student.weight_params]}"
                          if cmp.noise_key else "")
        try:
            if whole:
                raise ValueError("whole circuit asked for")
            inputs, weights = split_circuit(cmp.unitary, student.input_params, student.weight_params)
        except ValueError:  # input and weight gates mixed by the transpiler: the whole circuit per sample
            self.mode, self.program = "whole", None
            self.whole = WholeCircuit(cmp.unitary, errors, student.weight_params, student.input_params)
            return
        self.mode = "split"
        self.embedding = Embedding(inputs, errors, student.input_params)
        channels = circuit_channels(weights, student.weight_params, errors)
        self.program = BlockProgram(fuse_blocks(channels, self.n_qubits), self.n_qubits, self.readout.observables,
                                    torch.float64) if channels else None

    def _input_states(self, angles: np.ndarray) -> np.ndarray:
        """Pauli vectors after the input part, memoised for the last few sets of angles (the models
        of an ensemble usually share them; calibration alternates a training and a validation set)."""
        key = hashlib.sha256(np.ascontiguousarray(angles).tobytes()).digest() + str(angles.shape).encode()
        if key not in self._states:
            self._states[key] = self.embedding.states(angles)
            while len(self._states) > 4:
                self._states.popitem(last=False)
        self._states.move_to_end(key)
        return self._states[key]

    @torch.no_grad()
    def z_strings(self, weights: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """``<Z_S>`` ``(N, 2^k - 1)`` of every non-empty subset of read-out qubits, before read-out errors."""
        if self.mode == "whole":
            return self.whole.states(weights, angles)[:, self.columns]
        states = self._input_states(angles)
        if self.program is None:
            return states[:, self.columns]
        w = torch.as_tensor(weights, dtype=torch.float64)[None]
        return self.program(torch.as_tensor(states)[None], w)[0].numpy()

    def probabilities(self, weights: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Noisy read-out distribution ``(N, 2^k)``, read-out errors applied (as ``Compacted.probabilities``);
        memoised by content in the process's memo of noisy probabilities
        (:func:`~qkd_qiskit.backends.memoised`) when the noise model is named."""
        def compute() -> np.ndarray:
            return self.z_strings(weights, angles) @ self.readout.matrix.T + self.readout.bias

        if not self.memo_name:
            return compute()
        return memoised(memo_key(self.memo_name, weights, angles), compute)


_SAMPLERS: "OrderedDict[str, PtmSampler | None]" = OrderedDict()
"""Samplers of the last few (noise model, compact ISA circuit) pairs of this process, shared by
profiles that differ only in shots, seed or mitigation; None: the PTM path does not apply."""


def ptm_sampler(backend: Backend, student: Any) -> PtmSampler | None:
    """The :class:`PtmSampler` of ``student`` on ``backend`` (kept per process), or None where the
    PTM path does not apply: not an ``aer`` profile with ``fast_eval``, or a circuit it cannot simulate."""
    if backend.kind != "aer" or not getattr(backend.profile, "fast_eval", False):
        return None
    cmp = backend.compacted(student)
    key = (f"{cmp.noise_key}|{circuit_digest(cmp.unitary)}|{cmp.physical}|{cmp.readout_positions(student)}|"
           f"{student.readout}|{[p.name for p in student.input_params]}|{[p.name for p in student.weight_params]}")
    if key not in _SAMPLERS:
        try:
            _SAMPLERS[key] = PtmSampler(student, backend)
        except ValueError:
            _SAMPLERS[key] = None
        while len(_SAMPLERS) > 16:
            _SAMPLERS.popitem(last=False)
    return _SAMPLERS[key]


def sampled_readouts(backend: Backend, student: Any, weights: Any, angles: Any, seed: int | None = None
                     ) -> np.ndarray:
    """``backend.readouts(student, weights, angles, seed)``, through the PTM path where it applies:
    the same distribution, the same seeded shots, the profile's read-out mitigation."""
    sampler = ptm_sampler(backend, student)
    if sampler is None:
        return backend.readouts(student, weights, angles, seed=seed)
    w, a = check_batch(student, weights, angles)
    return backend.sampled_from(student, sampler.probabilities(w, a), seed)
