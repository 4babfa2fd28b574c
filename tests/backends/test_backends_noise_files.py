"""A noise-model file that is not one is a one-line error naming the file, not a JSON traceback
(and never an empty, noise-free model)."""

import pytest

from qkd_qiskit.backends.noise import load_noise_model


@pytest.mark.parametrize("text, message", [
    ("<html>", "damaged JSON (Expecting value: line 1 column 1)"),
    ('{"errors": [', "damaged JSON ("),
    ("[]", "expected a JSON object, got list"),
    ('{"a": 1}', "not an Aer noise model (no 'errors' list; write one with save_noise_model)"),
])
def test_noise_model_files_that_are_not_noise_models(tmp_path, text, message):
    path = tmp_path / "noise.json"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_noise_model(str(path))
    assert str(err.value).startswith(f"{path}: {message}") and "\n" not in str(err.value)
