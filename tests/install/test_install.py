"""The package installs anywhere: a real non-editable install, run from another directory, finds the
shipped configs and backend profiles (package data, :mod:`qkd_qiskit.shipped`), knows its version,
and records no git commit in a run manifest."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 600  # only against a hang; never a speed requirement


def test_pyproject_lists_every_package_and_maps_the_shipped_folders():
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    source = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "qkd_qiskit").rglob("__init__.py")}
    mapped = {"qkd_qiskit.shipped.configs": "configs", "qkd_qiskit.shipped.backends": "backends"}
    assert set(setuptools["packages"]) == source | set(mapped), "pyproject.toml [tool.setuptools] packages"
    assert setuptools["package-dir"] == mapped
    assert "*.yaml" in setuptools["package-data"]["qkd_qiskit.shipped.configs"]
    assert {"*.yaml", "*.json"} <= set(setuptools["package-data"]["qkd_qiskit.shipped.backends"])


def test_checkout_reads_the_repository_folders():
    from qkd_qiskit.backends import PROFILE_DIR
    from qkd_qiskit.shipped import shipped_dir
    from qkd_qiskit.studies import config_dir

    assert shipped_dir("configs") == config_dir() == ROOT / "configs"
    assert shipped_dir("backends") == PROFILE_DIR == ROOT / "backends"


CHECKS = """
import json, sys
import qkd_qiskit
from qkd_qiskit.backends import PROFILE_DIR, load_profile
from qkd_qiskit.rundir import git_commit, run_manifest
from qkd_qiskit.shipped import shipped_dir
from qkd_qiskit.studies import study_config
cfg = study_config("piperno2024", quick=True)
profile = load_profile("aer-fake-kingston")
manifest = run_manifest({}, None, environment=True)
print(json.dumps({"file": qkd_qiskit.__file__, "configs": str(shipped_dir("configs")), "profiles": str(PROFILE_DIR),
                  "config": cfg.name, "device": profile.device, "version": manifest["qkd_qiskit_version"],
                  "versions": manifest["versions"]["qkd-qiskit"], "git_commit": manifest["git_commit"]}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A non-editable ``pip install`` (no network: no dependencies, no build isolation) of a copy of
    the source into a folder of a fresh git repository, as a wheel install inside a project's
    ``.venv`` would be; returns (site folder, working directory elsewhere)."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("qkd_qiskit", "configs", "backends"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    project = base / "project"
    project.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run(git + ["init", "-q"], cwd=project, check=True)
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "x"], cwd=project, check=True)
    site = project / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(src)  # nothing may come from the copy of the source
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return site, elsewhere


def run_installed(installed, *args):
    site, cwd = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=HANG_GUARD_S)


def test_installed_package_finds_its_shipped_files_and_version(installed):
    site, _ = installed
    assert sorted(p.name for p in (site / "qkd_qiskit" / "shipped" / "configs").glob("*.yaml")) == \
        sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert {p.name for p in (ROOT / "backends").glob("*.yaml")} <= \
        {p.name for p in (site / "qkd_qiskit" / "shipped" / "backends").iterdir()}
    proc = run_installed(installed, "-c", CHECKS)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(site), out["file"]  # not the source checkout
    assert Path(out["configs"]) == site / "qkd_qiskit" / "shipped" / "configs"
    assert Path(out["profiles"]) == site / "qkd_qiskit" / "shipped" / "backends"
    assert out["config"] == "piperno2024_xor_quick" and out["device"] == "fake_kingston"
    from qkd_qiskit import __version__

    assert out["version"] == out["versions"] == __version__
    assert out["git_commit"] is None  # inside a git repository, but the package is not tracked in it


def test_installed_cli_lists_configs_and_backends(installed):
    proc = run_installed(installed, "-m", "qkd_qiskit.cli", "--version")
    from qkd_qiskit import __version__

    assert proc.returncode == 0 and proc.stdout.strip() == f"qkd-qiskit {__version__}"
    proc = run_installed(installed, "-m", "qkd_qiskit.cli", "configs")
    assert proc.returncode == 0, proc.stderr
    assert "piperno2024_xor" in proc.stdout and "qkd reproduce piperno2024" in proc.stdout
    proc = run_installed(installed, "-m", "qkd_qiskit.cli", "backends", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"aer-fake-kingston", "aer-fake-sherbrooke", "statevector"} <= set(rows)
    assert rows["aer-fake-kingston"]["qubits"] == 156 and Path(rows["aer-fake-kingston"]["file"]).is_relative_to(
        installed[0])


def test_shipped_config_names_resolve_from_any_directory(tmp_path, monkeypatch):
    from qkd_qiskit.shipped import shipped_dir
    from qkd_qiskit.studies import resolve_config_path

    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    shipped = shipped_dir("configs") / "xor_classical.yaml"
    for spec in ("xor_classical", "xor_classical.yaml", "configs/xor_classical.yaml"):
        assert resolve_config_path(spec) == shipped
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "xor_classical.yaml").write_text("name: mine\n")
    assert resolve_config_path("configs/xor_classical.yaml") == Path("configs/xor_classical.yaml")  # a file wins
    for spec in ("nope.yaml", "elsewhere/xor_classical.yaml"):
        assert resolve_config_path(spec) == Path(spec)  # unchanged: load_config reports it
