"""Models: ensembles of M independent models (one per seed) mapping ``(M, B, F)`` to logits ``(M, B, C)``.

* :mod:`.ensemble` - the ensemble convention, MLPs, parameter counts, per-model states;
* :mod:`.hybrid` - the engine-backed quantum student (circuit + head);
* :mod:`.readout_norm` - read-out normalisation between circuit and head (option ``readout_norm``);
* :mod:`.embedding_fit` - the approximate amplitude embedding fitted on the training split (``embedding_cx``);
* :mod:`.qnn_student` - the same student over any backend through Qiskit QNNs;
* :mod:`.noisy_student` - the engine student trained through a device's noise (option ``noise``);
* :mod:`.lenet`, :mod:`.reductions`, :mod:`.image_student` - the Hasan & Mahdy image models;
* :mod:`.registry` - model name -> builder (names listed in :mod:`qkd_qiskit.catalog`).
"""

from __future__ import annotations

from ..catalog import ARCHITECTURES as QUANTUM_MODELS
from ..catalog import IMAGE_MODELS as IMAGE_MODEL_NAMES
from ..catalog import QUANTUM_STUDENT_MODELS
from .embedding_fit import saved_terms
from .ensemble import (EnsembleLinear, EnsembleMLP, count_params, load_model_states, model_state, n_models,
                       narrow_models, narrowable, restore_models)
from .hybrid import HybridStudent
from .image_student import ImageStudent, build_hasan
from .lenet import EnsembleLeNet5, build_lenet5
from .noisy_student import NoisyStudent
from .qnn_student import QNNStudent
from .readout_norm import READOUT_NORMS, ReadoutNorm, readout_statistics
from .reductions import REDUCTIONS, Reduction
from .registry import MODELS, NEEDS_IMAGE_SHAPE, build_model

__all__ = ["EnsembleLeNet5", "EnsembleLinear", "EnsembleMLP", "HybridStudent", "IMAGE_MODEL_NAMES", "ImageStudent",
           "MODELS", "NEEDS_IMAGE_SHAPE", "NoisyStudent", "QNNStudent", "QUANTUM_MODELS", "QUANTUM_STUDENT_MODELS",
           "READOUT_NORMS",
           "REDUCTIONS", "ReadoutNorm", "Reduction", "build_hasan", "build_lenet5", "build_model", "count_params",
           "load_model_states", "model_state", "n_models", "narrow_models", "narrowable", "restore_models", "readout_statistics", "saved_terms"]
