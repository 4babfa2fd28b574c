"""Independent references for the engine tests: Qiskit ``Statevector`` read-outs, parameter-shift
Jacobians, and a random circuit generator covering the engine's whole gate vocabulary."""

from __future__ import annotations

from functools import cache

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from qkd_qiskit.circuits import MuxRYGate, build_student, without_measurements

TOL = 1e-6


@cache
def student(name: str, **kwargs):
    """One student circuit per name (built once per test session)."""
    return build_student(name, **kwargs)


def features(n_features: int = 64) -> np.ndarray:
    """Three samples: two Gaussian, one binary (zero sub-blocks in the amplitude-embedding tree)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, n_features))
    x[1] = (rng.random(n_features) > 0.5).astype(float)
    return x


def bind(st, angles: np.ndarray, weights: np.ndarray) -> dict:
    return {**dict(zip(st.input_params, angles)), **dict(zip(st.weight_params, weights))}


def reference_readout(st, angles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Statevector of the circuit without its (mid-circuit) measurements, reduced to the readout."""
    psi = Statevector(without_measurements(st.circuit).assign_parameters(bind(st, angles, weights)))
    return _readout(st, psi)


def _readout(st, psi: Statevector) -> np.ndarray:
    if st.readout == "z":
        return np.array([psi.expectation_value(o).real for o in st.observables()])
    return psi.probabilities(list(st.readout_qubits))


def shift_jacobian(st, angles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``d readout_k / d weight_j`` (k, j) of one sample by the +-pi/2 parameter-shift rule on
    ``Statevector`` (exact: each student weight sits in one RX/RY/RZ/RZZ gate with coefficient 1)."""
    qc = without_measurements(st.circuit).assign_parameters(dict(zip(st.input_params, angles)))
    shifted = []
    for j in range(len(weights)):
        for sign in (1, -1):
            wj = weights.copy()
            wj[j] += sign * np.pi / 2
            shifted.append(_readout(st, Statevector(qc.assign_parameters(dict(zip(st.weight_params, wj))))))
    shifted = np.array(shifted).reshape(len(weights), 2, -1)
    return (shifted[:, 0] - shifted[:, 1]).T / 2


def spy_split_factors(monkeypatch) -> list[bool]:
    """Record, per call of the engine's ``kron_factors``, whether a half was split in two factors."""
    from qkd_qiskit.engine import stage_matrices

    calls: list[bool] = []
    original = stage_matrices.kron_factors

    def spy(u, start, stop):
        out = original(u, start, stop)
        calls.append(isinstance(out, tuple))
        return out

    monkeypatch.setattr(stage_matrices, "kron_factors", spy)
    return calls


def assert_layer_matches_statevector(layer, out, x, atol: float = 1e-10) -> None:
    """Read-outs ``out`` (M, B, n_out) of ``layer`` on features ``x`` (M, B, F), model by model."""
    angles = layer.angles(x).detach().numpy()
    for m in range(layer.n_models):
        weights = layer.weights[m].detach().numpy()
        ref = np.stack([reference_readout(layer.student, a, weights) for a in angles[m]])
        assert np.abs(out[m].detach().numpy() - ref).max() < atol, m


def statevector(qc: QuantumCircuit, values: dict) -> Statevector:
    """``Statevector`` of ``qc`` with its parameters bound from ``values`` (extra keys ignored)."""
    return Statevector(qc.assign_parameters({p: values[p] for p in qc.parameters}))


def random_circuit(rng: np.random.Generator, n: int, xs, ws, depth: int = 24) -> QuantumCircuit:
    """Random mix of every gate kind the engine reads (native, constant, monomial, via definition),
    with affine angle expressions of inputs ``xs`` and weights ``ws``."""
    qc = QuantumCircuit(n)
    pool = list(xs) + list(ws)

    def ang():
        p, q = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
        return [p, 2 * p + 0.3, p - q, 0.7, -p][rng.integers(5)]

    for _ in range(depth):
        a, b, c = (int(v) for v in rng.choice(n, 3, replace=False))
        g = rng.integers(20)
        [lambda: qc.rx(ang(), a), lambda: qc.ry(ang(), a), lambda: qc.rz(ang(), a), lambda: qc.h(a),
         lambda: qc.cx(a, b), lambda: qc.cz(a, b), lambda: qc.swap(a, b), lambda: qc.ccx(a, b, c),
         lambda: (qc.s(a), qc.t(b), qc.sdg(c)), lambda: (qc.x(a), qc.y(b), qc.z(c)),
         lambda: qc.u(ang(), ang(), ang(), a), lambda: qc.p(ang(), a), lambda: qc.crz(ang(), a, b),
         lambda: qc.cp(ang(), a, b), lambda: qc.rzz(ang(), a, b), lambda: qc.rxx(ang(), a, b),
         lambda: qc.cry(ang(), a, b), lambda: qc.append(MuxRYGate(2, [ang() for _ in range(4)]), [a, b, c]),
         lambda: qc.sx(a), lambda: qc.r(ang(), ang(), a)][g]()
    return qc
