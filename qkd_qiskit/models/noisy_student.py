"""The hybrid student trained through a device's noise (student option ``noise: <aer profile>``).

Same parameters and ``state_dict`` keys as :class:`~qkd_qiskit.models.hybrid.HybridStudent` (the
circuit weights live in its exact :class:`~qkd_qiskit.engine.QuantumLayer`), but ``forward`` gives
the head the *noisy* read-outs of the student's ISA circuit on the profile's device, exact
expectation values without shot noise (:class:`~qkd_qiskit.noisy.NoisySimulator`): density-matrix
simulation with the device's gate and read-out errors, differentiable in the weights. ``encode``
returns the noisy states after the embedding (Pauli vectors ``(..., 4^k)``), so the trainer
simulates each data split's embedding once, as it does for the exact engine.

The circuit carries a barrier between embedding and ansatz (:func:`~qkd_qiskit.noisy.barrier_student`),
so the transpiled circuit splits into an input and a weight part; :meth:`NoisyStudent.exact` is the
same trained student on the exact engine with that same circuit, which is what ``qkd evaluate``,
``qkd calibrate`` and hardware jobs rebuild (:mod:`qkd_qiskit.trained`): they transpile the same
circuit to the same ISA, so evaluation runs on the qubits training saw. Transpilation and the noisy
simulator are built on first use (the option is checked when the model is built).

Example:
    >>> from qkd_qiskit.backends import AerProfile
    >>> from qkd_qiskit.circuits import build_student
    >>> gens = [torch.Generator().manual_seed(s) for s in range(2)]
    >>> manila = AerProfile(kind="aer", device="fake_manila", name="manila")   # or "aer-fake-kingston"
    >>> net = NoisyStudent(build_student("hea", n_qubits=2, layers=1), 3, gens, torch.float64, noise=manila)
    >>> states = net.encode(torch.rand(5, 4, dtype=torch.float64))
    >>> states.shape, net(encoded=states.expand(2, -1, -1)).shape, type(net.exact()).__name__
    (torch.Size([5, 16]), torch.Size([2, 5, 3]), 'HybridStudent')
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..backends import AerBackend, Backend, Profile, ProfileError, get_backend
from ..noisy import NoisySimulator, barrier_student
from .hybrid import HybridStudent
from .options import take_int, take_name


def noise_backend(noise: str | Profile | Backend, student: Any) -> AerBackend:
    """The ``aer`` backend of option ``noise``; a profile of another kind or a device too small for
    the student is a one-line ValueError naming ``options.noise``."""
    try:
        backend = noise if isinstance(noise, Backend) else get_backend(noise)
        if backend.kind != "aer":
            raise ProfileError(f"{backend.name} is not an aer profile (kind {backend.kind}); noise-aware training "
                               "needs a device noise model, e.g. aer-fake-kingston")
        backend.check_fits(student)
    except ProfileError as err:
        raise ValueError(f"options.noise: {str(err).removeprefix('backend: ')}") from None
    return backend


def take_noise(options: dict) -> tuple[str | None, int]:
    """Pop a quantum student's ``noise`` (an aer profile, or absent) and ``noise_shots`` (>= 0, only
    with ``noise``) options; one-line errors name the option."""
    noise = take_name(options, "noise")
    shots = take_int(options, "noise_shots", 0, minimum=0)
    if shots and noise is None:
        raise ValueError("options.noise_shots: only with options.noise (shot noise on the noisy read-outs)")
    return noise, shots


def shot_noise(readouts: torch.Tensor, kind: str, shots: int, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Gaussian noise with the covariance of ``shots`` measurements of each read-out ``(M, B, n_out)``
    (model ``m`` draws from ``generators[m]``): ``(1 - z^2) / shots`` per ``<Z>`` (correlations between
    qubits left out), ``(diag(p) - p p^T) / shots`` for outcome probabilities (exact second moments)."""
    values = readouts.detach().clamp(-1.0, 1.0) if kind == "z" else readouts.detach().clamp(min=0.0)
    g = torch.stack([torch.randn(readouts.shape[1:], generator=gen, dtype=readouts.dtype)
                     for gen in generators]).to(readouts.device)
    if kind == "z":
        return readouts + g * ((1.0 - values**2) / shots).sqrt()
    y = values.sqrt() * g
    return readouts + (y - values * y.sum(-1, keepdim=True)) / math.sqrt(shots)


class NoisyStudent(HybridStudent):
    """``HybridStudent`` whose forward runs through the device noise of an ``aer`` profile;
    ``shots`` (option ``noise_shots``, default 0 = off): in training mode, add the shot noise of that
    many shots to the read-outs (:func:`shot_noise`; the read-outs are then computed unfolded, ~2x
    the step cost), so the head learns margins that survive sampling."""

    def __init__(self, student: Any, n_classes: int, generators: Sequence[torch.Generator],
                 dtype: torch.dtype = torch.float32, head_hidden: Sequence[int] = (), readout_norm: str = "none",
                 noise: str | Profile | Backend = "aer-fake-kingston", shots: int = 0):
        student = barrier_student(student)
        super().__init__(student, n_classes, generators, dtype, head_hidden, readout_norm)
        self.backend = noise_backend(noise, student)
        self.shots, self.generators, self.all_generators = shots, list(generators), list(generators)
        self.sizes = (n_classes, tuple(head_hidden), readout_norm)
        self.simulator: NoisySimulator | None = None
        self.cache: dict[str, torch.Tensor] = {}

    def noisy(self) -> NoisySimulator:
        """The noisy simulator, built (transpiled) on first use for the weights' dtype and device."""
        w = self.quantum.weights
        if self.simulator is None or self.simulator.dtype != w.dtype:
            self.simulator = NoisySimulator(self.student, self.backend, w.dtype, w.device)
        return self.simulator

    def select_models(self, ids: Sequence[int]) -> None:
        """The trainer kept models ``ids`` of the ensemble (:func:`~.ensemble.narrow_models`): their
        shot-noise generators stay with them."""
        self.generators = [self.all_generators[i] for i in ids]

    @property
    def encode(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Noisy embedded states ``(..., 4^k)`` of features ``(..., F)`` (cached per feature array): the
        circuit embeds ``circuit_features(x)`` (the features themselves; image students reduce them first)."""
        return self.noisy_states

    def noisy_states(self, x: torch.Tensor) -> torch.Tensor:
        w = self.quantum.weights
        x = self.circuit_features(torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x))
        lead, f = x.shape[:-1], x.shape[-1]
        angles = self.student.input_angles(x.reshape(-1, f).detach().cpu().double())
        a = np.ascontiguousarray(np.asarray(angles, dtype=np.float64))
        key = hashlib.sha1(a.tobytes()).hexdigest() + str(a.shape)
        if key not in self.cache:
            self.cache[key] = torch.as_tensor(self.noisy().states(a), dtype=w.dtype, device=w.device)
        return self.cache[key].reshape(*lead, -1)

    def forward(self, x: torch.Tensor | None = None, *, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(M, B, C)`` of features ``x (M, B, F)`` or of ``encoded`` noisy states, through noise."""
        states = self.noisy_states(x) if encoded is None else encoded
        sim, layers = self.noisy(), self.head.layers
        inject = self.training and self.shots > 0
        if self.readout_norm is None and len(layers) == 1 and not inject:  # linear head: folded into the observables
            return sim.linear(states, self.quantum.weights, layers[0].weight, layers[0].bias)
        readouts = sim.readouts(states, self.quantum.weights)
        if inject:
            readouts = shot_noise(readouts, self.student.readout, self.shots, self.generators)
        return self.readout_logits(readouts)

    def exact(self) -> HybridStudent:
        """The same student (circuit with its barrier, weights, head) on the exact engine."""
        n_classes, head_hidden, readout_norm = self.sizes
        m = self.quantum.weights.shape[0]
        net = self.exact_twin(n_classes, [torch.Generator() for _ in range(m)], self.quantum.weights.dtype,
                              head_hidden, readout_norm)
        net.load_state_dict(self.state_dict())
        return net.to(self.quantum.weights.device)

    def exact_twin(self, n_classes: int, generators: Sequence[torch.Generator], dtype: torch.dtype,
                   head_hidden: Sequence[int], readout_norm: str) -> HybridStudent:
        """An exact-engine student of this one's circuit with the same ``state_dict`` keys, untrained
        (:meth:`exact` loads the weights); subclasses with more modules in front of the circuit
        (the image students' reduction) return their exact class."""
        return HybridStudent(self.student, n_classes, generators, dtype, head_hidden, readout_norm)
