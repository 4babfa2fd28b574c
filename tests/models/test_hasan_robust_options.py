"""The robustness options of the Hasan & Mahdy image student (``hasan``): ``readout_norm``, ``noise``
(+ ``noise_shots``) and ``embedding_cx``. Oracles: Qiskit Statevector (exact read-outs), Aer's
density-matrix simulation of the same compact ISA circuit (noisy read-outs), scikit-learn's PCA (the
reduced features the approximate embedding's terms are chosen on).

Noise profiles are a temporary ``fake_manila`` profile with one transpiler trial, so the tests stay fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from qiskit import transpile
from qiskit.quantum_info import Statevector
from sklearn.decomposition import PCA
from sklearn.metrics import f1_score

from conftest import train_run
from qkd_qiskit.backends import get_backend, probs_to_readouts
from qkd_qiskit.calibrate import calibrate_run
from qkd_qiskit.circuits import select_terms
from qkd_qiskit.data import load_dataset
from qkd_qiskit.evaluate import evaluate_run
from qkd_qiskit.models import ImageStudent, NoisyStudent, build_model
from qkd_qiskit.trained import circuit_angles, group_student, head_logits, load_group, load_run, quantum_groups

Q4 = {"qubits": 4, "layers": 1, "reduction": "pca", "encoding": "amplitude"}


@pytest.fixture(scope="module")
def manila(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "manila.yaml"
    path.write_text("kind: aer\ndevice: fake_manila\nshots: 1024\ntranspile_trials: 1\noptimization_levels: [1]\n")
    return str(path)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, per_class=12, test_per_class=3)


@pytest.mark.parametrize("options,message", [
    ({"reduction": "fc", "noise": "aer-fake-kingston"}, "options.noise: noise-aware training simulates the embedding"),
    ({"reduction": "pool", "encoding": "dense_angle", "noise": "aer-fake-kingston"},
     "options.noise: not with encoding dense_angle"),
    ({"reduction": "pca", "noise": "statevector"}, "options.noise: statevector is not an aer profile"),
    ({"reduction": "pca", "noise_shots": 100}, "options.noise_shots: only with options.noise"),
    ({"reduction": "fc", "embedding_cx": 4}, "options.embedding_cx: its Walsh terms are chosen on the reduced"),
    ({"reduction": "pool", "encoding": "angle", "embedding_cx": 2},
     "options.embedding_cx: the approximate embedding is an amplitude embedding, not angle"),
    ({"reduction": "pca", "embedding_cx": 15, "train_features": np.eye(64)},
     "options.embedding_cx: must be at most 14"),
    ({"reduction": "pca", "readout_norm": "layer"}, "options.readout_norm: must be none, batch or affine"),
    ({"reduction": "pca", "noise_level": 1}, "options: unknown option(s) ['noise_level'] for hasan"),
])
def test_bad_option_is_one_line(options, message):
    with pytest.raises(ValueError) as err:
        build_model("hasan", 64, 10, [torch.Generator()], image_shape=(1, 8, 8), qubits=4, **options)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_noisy_readouts_match_aer_density_matrix(manila, digits):
    """The noisy image student's logits are its head applied to Aer's noisy read-outs of the reduced features."""
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    net = build_model("hasan", 64, 10, gens, torch.float64, image_shape=(1, 8, 8), noise=manila, **Q4)
    exact = build_model("hasan", 64, 10, gens, torch.float64, image_shape=(1, 8, 8), **Q4)
    assert isinstance(net, NoisyStudent) and net.state_dict().keys() == exact.state_dict().keys()
    net.fit_reduction(digits.x_train)
    x = torch.as_tensor(digits.x_test[:4])
    logits = net(x.unsqueeze(0).expand(2, -1, -1)).detach()
    st, backend = net.student, get_backend(manila)
    angles = np.asarray(st.input_angles(net.circuit_features(x).numpy()))
    cmp = backend.compacted(st)
    for m in range(2):
        r = probs_to_readouts(st, cmp.probabilities(st, net.quantum.weights[m].detach().numpy(), angles))
        ref = net.head.layers[0].bias[m] + torch.as_tensor(r) @ net.head.layers[0].weight[m]
        assert torch.allclose(logits[m], ref.detach(), atol=1e-6)
    twin = net.exact()  # what evaluate / calibrate rebuild: the same barrier circuit and reduction, exact engine
    assert isinstance(twin, ImageStudent) and "barrier" in twin.student.circuit.count_ops()
    assert torch.equal(twin.circuit_features(x), net.circuit_features(x))


def hasan_entry(name: str, kd: bool, **options) -> dict:
    return {"name": name, "model": "hasan", "kd": [kd], "options": {**Q4, **options}}


@pytest.fixture(scope="module")
def hasan_run(tmp_path_factory, manila):
    """Two seeds of a read-out-normalised, an approximate-embedding (KD) and a noise-aware q4 student."""
    students = [hasan_entry("q4_norm", False, readout_norm="batch"), hasan_entry("q4_approx", True, embedding_cx=6),
                hasan_entry("q4_nm", False, noise=manila, noise_shots=256)]
    return train_run(tmp_path_factory, {
        "name": "tiny_hasan_robust", "seeds": 2, "students": students,
        "data": {"name": "digits", "seed": 0, "per_class": 12, "test_per_class": 3},
        "teacher": {"model": "linear", "train": {"lr": 0.01, "max_epochs": 2, "patience": 2}},
        "student_train": {"lr": 0.05, "max_epochs": 3, "patience": 3, "batch_size": 16}})


def statevector_readouts(student, weights, angles):
    circuit = transpile(student.circuit.remove_final_measurements(inplace=False),
                        basis_gates=["ry", "rz", "sx", "x", "cx"], optimization_level=0)
    params = student.input_params + student.weight_params
    states = [Statevector(circuit.assign_parameters(dict(zip(params, [*a, *weights])))) for a in angles]
    return np.array([[psi.expectation_value(o).real for o in student.observables()] for psi in states])


def test_rebuilt_students_are_the_trained_ones(hasan_run):
    run, cfg, data = load_run(hasan_run)
    groups = {g.label: g for g in quantum_groups(run, cfg)}
    for label in ("q4_norm", "q4_approx"):
        group = groups[label]
        net, student = load_group(run, cfg, data, group), group_student(cfg, data, group)
        angles = circuit_angles(net, data.x_test)
        with torch.no_grad():
            engine = net(torch.as_tensor(data.x_test, dtype=torch.float32).expand(2, -1, -1)).numpy()
        for m, unit in enumerate(group.units):
            readouts = statevector_readouts(student, net.quantum.weights[m].detach().double().numpy(), angles[m])
            assert np.allclose(head_logits(net, m, readouts), engine[m], atol=1e-4)
            recorded = json.loads((run.unit_dir(unit) / "result.json").read_text())["f1_macro"]
            assert f1_score(data.y_test, engine[m].argmax(1), average="macro") == pytest.approx(recorded, abs=1e-12)
    noisy = load_group(run, cfg, data, groups["q4_nm"])
    assert type(noisy) is ImageStudent and "barrier" in noisy.student.circuit.count_ops()


def test_embedding_terms_are_chosen_on_the_pca_output_and_saved(hasan_run):
    run, cfg, data = load_run(hasan_run)
    group = next(g for g in quantum_groups(run, cfg) if g.label == "q4_approx")
    saved = run.load_checkpoint(group.units[0])["state"]["embedding_terms"]
    # oracle: scikit-learn's PCA of the training split (our sign convention: largest loading positive),
    # min-max scaled on the training split, as the circuit embeds it
    pca = PCA(n_components=16, svd_solver="full").fit(data.x_train)
    comps = pca.components_.T * np.sign(pca.components_.T[np.abs(pca.components_.T).argmax(0), range(16)])
    z = (data.x_train - pca.mean_) @ comps
    z = (z - z.min(0)) / (z.max(0) - z.min(0)) + 1e-6
    expected = select_terms(z, 4, 6)
    assert tuple(np.flatnonzero(saved.numpy())) == expected == group_student(cfg, data, group).embedding_terms


def test_renormalised_readout_of_an_image_student(hasan_run, manila, tmp_path):
    calibrate_run(hasan_run, manila, samples=20, val_samples=10, students=["q4_norm"], progress=False)
    rows = evaluate_run(hasan_run, manila, tmp_path / "eval", progress=False, students=["q4_norm"], max_samples=10)
    assert len(rows) == 2 and all(0.0 <= r["f1_macro_renormalised"] <= 1.0 for r in rows)
