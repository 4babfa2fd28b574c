"""Option ``noise`` of the quantum students: one-line errors naming ``options.noise``, before any work."""

import pytest
import torch

from qkd_qiskit.models import NoisyStudent, build_model


@pytest.mark.parametrize("options,message", [
    ({"noise": "no-such-profile"}, "options.noise: no profile 'no-such-profile'"),
    ({"noise": "statevector"}, "options.noise: statevector is not an aer profile"),
    ({"noise": 3}, "options.noise: must be a profile name or file, got 3"),
    ({"noise": "aer-fake-kingston", "backend": "statevector"}, "options.noise: cannot be combined with options.backend"),
    ({"noise_shots": 1024}, "options.noise_shots: only with options.noise"),
    ({"noise": "aer-fake-kingston", "noise_shots": -1}, "options.noise_shots: must be an integer >= 0, got -1"),
])
def test_bad_noise_option_is_one_line(options, message):
    with pytest.raises(ValueError) as err:
        build_model("hea", 64, 3, [torch.Generator()], **options)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_student_wider_than_the_device(tmp_path):
    profile = tmp_path / "five.yaml"
    profile.write_text("kind: aer\ndevice: fake_manila\n")
    with pytest.raises(ValueError, match=r"^options.noise: five: device: fake_manila has 5 qubits, the hea student "
                                         r"needs 6$"):
        build_model("hea", 64, 3, [torch.Generator()], noise=str(profile))


def test_noise_option_builds_a_noisy_student_with_the_engine_state_layout(tmp_path):
    profile = tmp_path / "five.yaml"
    profile.write_text("kind: aer\ndevice: fake_manila\n")
    net = build_model("q2", 8, 3, [torch.Generator()], qubits=3, layers=1, noise=str(profile))
    exact = build_model("q2", 8, 3, [torch.Generator()], qubits=3, layers=1)
    assert isinstance(net, NoisyStudent) and net.state_dict().keys() == exact.state_dict().keys()
    assert "barrier" in net.student.circuit.count_ops()
