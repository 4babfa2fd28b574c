"""What the package ships besides code: the experiment configs and the backend profiles, and its version.

The single copy of these files is the repository's top-level ``configs/`` (``*.yaml``) and
``backends/`` (``*.yaml``, the noise-model ``*.json`` files a profile may reference, ``README.md``)
folders. ``pyproject.toml`` maps the data packages ``qkd_qiskit.shipped.configs`` and
``qkd_qiskit.shipped.backends`` onto those folders, so a wheel (``pip install .``) carries them as
package data inside ``qkd_qiskit/shipped/`` and they are found through :mod:`importlib.resources`
from any working directory. An editable install (``pip install -e .``, what ``scripts/setup.sh``
does) or a plain checkout has no copy inside the package: there the folders are read in place, next
to the ``qkd_qiskit`` source folder.

Example:
    >>> shipped_dir("configs").name, (shipped_dir("backends") / "statevector.yaml").is_file()
    ('configs', True)
    >>> "piperno2024_xor" in shipped_names("configs") and "aer-fake-kingston" in shipped_names("backends")
    True
    >>> shipped_file("backends", "no-such-profile") is None
    True
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

KINDS = ("configs", "backends")
"""The shipped folders: experiment configs and backend profiles."""
DISTRIBUTION = "qkd-qiskit"
"""The name ``pip`` knows the package by."""


def shipped_dir(kind: str) -> Path:
    """The folder of shipped ``kind`` files (``"configs"`` or ``"backends"``) as a real directory.

    An installed wheel: ``qkd_qiskit/shipped/<kind>/`` (package data, via :mod:`importlib.resources`).
    An editable install or a checkout: the repository's top-level ``<kind>/`` folder.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of shipped files {kind!r} (one of {', '.join(KINDS)})")
    packaged = resources.files(__name__).joinpath(kind)
    if packaged.is_dir():  # a wheel install keeps package data on the file system
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / kind
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"the shipped {kind} are missing: neither {packaged} (installed package) nor "
                            f"{checkout} (source checkout) exists; reinstall qkd-qiskit")


def shipped_names(kind: str) -> list[str]:
    """Names (file stems) of the shipped ``*.yaml`` files of ``kind``, sorted."""
    return sorted(p.stem for p in shipped_dir(kind).glob("*.yaml"))


def shipped_file(kind: str, name: str) -> Path | None:
    """The shipped ``<name>.yaml`` of ``kind`` (a name or a file name), or None if there is none."""
    stem = name[:-5] if name.endswith(".yaml") else name
    if not stem or "/" in stem or "\\" in stem:
        return None
    path = shipped_dir(kind) / f"{stem}.yaml"
    return path if path.is_file() else None


def package_version() -> str:
    """The installed distribution's version (``importlib.metadata``); ``qkd_qiskit.__version__`` (the
    source of the version in ``pyproject.toml``) when the package runs from a checkout never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from .. import __version__

        return __version__
