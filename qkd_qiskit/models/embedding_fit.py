"""The student option ``embedding_cx``: an approximate amplitude embedding with at most that many CX
gates, its Walsh terms chosen on the training features
(:func:`~qkd_qiskit.circuits.approx_embedding.select_terms`).

The choice needs the training split, so the builder gets it as the hidden option ``train_features``
(passed by ``trained.build_for_units``, like ``image_shape`` for image models). A trained student
keeps its terms in its checkpoint (the ``embedding_terms`` buffer of ``HybridStudent``); a rebuild
passes them back as the hidden option ``embedding_terms``, so it builds the very circuit that was
trained, whatever data it is given.

Example:
    >>> import numpy as np
    >>> choice = take_embedding({"embedding_cx": 2, "train_features": np.eye(4) + 0.1})
    >>> choice.terms(n_qubits=2, n_features=4)          # 2 CX: the exact 2-qubit embedding
    (0, 1, 2)
    >>> take_embedding({}).terms(2, 4) is None          # no option: the exact embedding
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..circuits import full_cx, select_terms, terms_cx


@dataclass(frozen=True)
class EmbeddingChoice:
    """The popped ``embedding_cx`` / ``embedding_terms`` / ``train_features`` options of a builder."""

    kept_cx: int | None = None
    saved_terms: Any = None
    train_features: Any = None

    def terms(self, n_qubits: int, n_features: int) -> tuple[int, ...] | None:
        """The kept terms (``None``: the exact embedding); one-line errors name the option."""
        if self.kept_cx is None:
            return None
        full = full_cx(n_qubits)
        if self.kept_cx > full:
            raise ValueError(f"options.embedding_cx: must be at most {full} (the exact embedding on {n_qubits} "
                             f"qubits), got {self.kept_cx}")
        if self.saved_terms is not None:
            return _checked_terms(self.saved_terms, n_qubits, self.kept_cx)
        if self.train_features is None:
            raise ValueError("options.embedding_cx: the approximate embedding is fitted on the training features; "
                             "build the model through qkd_qiskit.trained.build_for_units")
        return select_terms(self.train_features, n_qubits, self.kept_cx, max_features=n_features)


def take_embedding(options: dict) -> EmbeddingChoice:
    """Pop the embedding options of a quantum student (``embedding_cx``: an integer >= 0)."""
    kept_cx = options.pop("embedding_cx", None)
    saved = options.pop("embedding_terms", None)
    x = options.pop("train_features", None)
    if kept_cx is not None and (isinstance(kept_cx, bool) or not isinstance(kept_cx, int) or kept_cx < 0):
        raise ValueError(f"options.embedding_cx: must be an integer >= 0 (CX gates kept of the amplitude "
                         f"embedding), got {kept_cx!r}")
    if kept_cx is None and saved is not None:
        raise ValueError("options.embedding_terms: only with options.embedding_cx")
    return EmbeddingChoice(kept_cx, saved, x)


def _checked_terms(terms: Any, n_qubits: int, kept_cx: int) -> tuple[int, ...]:
    values = np.asarray(terms).ravel()
    n_terms = 2**n_qubits - 1
    if values.size == 0 or not np.issubdtype(values.dtype, np.integer) or values.min() < 0 \
            or values.max() >= n_terms:
        raise ValueError(f"options.embedding_terms: must be term numbers in [0, {n_terms}), got {terms!r}")
    out = tuple(sorted({int(t) for t in values}))
    if terms_cx(out, n_qubits) > kept_cx:
        raise ValueError(f"options.embedding_terms: these terms need {terms_cx(out, n_qubits)} CX, more than "
                         f"options.embedding_cx = {kept_cx}")
    return out


def attach_embedding_terms(module: Any, student: Any, n_models: int) -> None:
    """Give ``module`` the buffer ``embedding_terms`` ``(M, 2^n - 1)`` (bool: term kept) of a student
    with an approximate embedding (nothing otherwise), so checkpoints carry the terms; loading a
    state whose terms differ from the circuit's is an error (the weights belong to another circuit)."""
    if student.embedding_terms is None:
        return
    import torch

    mask = torch.zeros(n_models, 2**student.n_qubits - 1, dtype=torch.bool)
    mask[:, list(student.embedding_terms)] = True
    module.register_buffer("embedding_terms", mask.clone())  # loading copies into the buffer, not into mask

    def check(mod: Any, _incompatible: Any) -> None:
        if not bool((mod.embedding_terms == mask.to(mod.embedding_terms.device)).all()):
            raise ValueError("embedding_terms: the checkpoint was trained with other approximate-embedding "
                             "terms than this circuit's")

    module.register_load_state_dict_post_hook(check)


def saved_terms(state: dict) -> list[int] | None:
    """The kept terms recorded in one model's saved state (``None`` without an approximate embedding)."""
    mask = state.get("embedding_terms")
    return None if mask is None else [int(t) for t in np.flatnonzero(np.asarray(mask.cpu()))]
