"""A noise-trained run end to end: ``qkd run`` trains through the noise, ``qkd evaluate`` rebuilds the
same circuit (barrier included) and reports its noisy macro-F1 next to the exact one."""

import csv
import json
import subprocess

import numpy as np
from conftest import HANG_GUARD_S, qkd_cmd, train_run
from qiskit.quantum_info import Statevector
from sklearn.metrics import f1_score

from qkd_qiskit.trained import head_logits, load_group, load_run, quantum_groups


def statevector_f1(net, m: int, x: np.ndarray, y: np.ndarray) -> float:
    """Test macro-F1 of model ``m`` with read-outs from Qiskit's ``Statevector`` (the exact oracle)."""
    st = net.quantum.student
    weights = net.quantum.weights[m].detach().double().numpy()
    readouts = []
    for angles in np.asarray(st.input_angles(x)):
        bound = st.circuit.assign_parameters({**dict(zip(st.input_params, angles)),
                                              **dict(zip(st.weight_params, weights))})
        readouts.append([Statevector(bound).expectation_value(o).real for o in st.observables()])
    pred = head_logits(net, m, np.array(readouts)).argmax(-1)
    return float(f1_score(y, pred, average="macro", labels=range(3), zero_division=0))


def test_noise_trained_run_evaluates_on_the_circuit_it_trained_on(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profiles")
    profile = folder / "manila_exact.yaml"  # so many shots that sampling cannot change a prediction here
    profile.write_text("kind: aer\ndevice: fake_manila\nshots: 100000000\n")
    config = {
        "name": "tiny_noise",
        "data": {"name": "xor", "n_samples": 120, "n_bits": 8, "seed": 0},  # 12 test samples
        "seeds": 2,
        "teacher": {"model": "teacher_mlp", "train": {"lr": 0.01, "max_epochs": 5, "patience": 5}},
        "students": [{"model": "hea", "kd": [False], "options": {"layers": 2, "noise": str(profile)}}],
        "student_train": {"lr": 0.1, "max_epochs": 6, "patience": 6, "batch_size": 16},  # F1 0.91 and 0.65
    }
    run = train_run(tmp_path_factory, config)
    r, cfg, data = load_run(run)
    net = load_group(r, cfg, data, quantum_groups(r, cfg)[0])
    assert type(net).__name__ == "HybridStudent" and "barrier" in net.quantum.student.circuit.count_ops()

    out = run.parent / "eval"
    done = subprocess.run(qkd_cmd("evaluate", str(run), "--backend", str(profile), "--out", str(out)),
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"f1_macro_exact", "f1_macro_backend"} <= rows[0].keys()
    # the run scored its students through the noise (no shots): the backend's F1 at 1e8 shots is the same
    for seed in (0, 1):
        unit = f"hea-nokd-seed{seed}"
        trained = json.loads((run / "units" / unit / "result.json").read_text())
        evaluated = json.loads((out / "units" / unit / "result.json").read_text())
        assert abs(evaluated["f1_macro_backend"] - trained["f1_macro"]) < 1e-9
        assert evaluated["confusion_matrix_backend"] == trained["confusion_matrix"]
        # and f1_macro_exact is the noiseless circuit's (the rebuilt student is the exact one)
        assert abs(evaluated["f1_macro_exact"] - statevector_f1(net, seed, data.x_test, data.y_test)) < 1e-9
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["transpilation"]["hea"]["active_qubits"]
