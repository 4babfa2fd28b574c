"""Config sweeps: a ``sweep:`` section expands one config into a grid, one resumable sub-run per point.

A sweep file is an ordinary config plus a section mapping dotted field paths to value lists::

    sweep:
      data.n_train: [25, 100]
      kd.temperature: [1.0, 4.0]
      students.hea.options.layers: [1, 5]   # a student entry by label (or index: students.1...)

The grid is the product of the lists (the first path varies slowest). Each point is the base config
with those fields set, validated like any config, and runs with
:func:`~qkd_qiskit.experiments.run_experiment` into ``DIR/points/<point name>/`` (a complete
``qkd run`` folder: resumable, reportable). Every point is validated and its models built before
anything trains (:func:`check_points`). Units that would train identically in several points (a
teacher across temperatures, a KD-off student across ``kd.*``) are trained once and copied
(:mod:`qkd_qiskit.reuse`). ``DIR/results.csv`` combines every point's rows with a ``point`` column
and one column per swept path.

With worker processes (a :class:`~qkd_qiskit.executors.LocalExecutor` with ``workers`` > 1, ``qkd
run --workers N``) several points run at once, each in a thread of this process that feeds the
shared workers, so the workers always find tasks of some point (one point alone may have a single
task, its teacher, at a time). A point that can copy a unit from an earlier point waits for that
point to finish (:func:`point_dependencies`), so it copies exactly what a sequential sweep copies:
each sub-run, and the combined table, holds the same results either way.

Example:
    >>> sw = expand({"name": "s", "students": [{"model": "linear"}],
    ...              "sweep": {"data.n_train": [25, 50], "kd.temperature": [1.0, 4.0]}})
    >>> [p.name for p in sw.points]
    ['n_train=25,temperature=1', 'n_train=25,temperature=4', 'n_train=50,temperature=1', 'n_train=50,temperature=4']
    >>> sw.points[3].config.data.n_train, sw.points[3].config.kd.temperature
    (50, 4.0)
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .atomic import atomic_write_csv, atomic_write_json
from .config import ConfigError, ExperimentConfig, parse_config
from .executors import LocalExecutor, one_line
from .experiments import preflight, run_datasets, run_experiment
from .outdir import check_output_dir, lock_output_dir
from .rundir import RESULT_COLUMNS, finish_manifest, plan_units, run_manifest, training_dir
from .reuse import index_units, reuse_units, unit_identity
from .strict import read_json, read_yaml


@dataclass(frozen=True)
class SweepPoint:
    name: str
    values: dict[str, Any]
    """Swept path -> this point's value."""
    config: ExperimentConfig


@dataclass(frozen=True)
class Sweep:
    base: dict
    """The config without its ``sweep`` section (as written)."""
    grid: dict[str, list]
    points: list[SweepPoint]

    @property
    def columns(self) -> list[str]:
        """Columns of the combined ``results.csv``."""
        return ["point", *self.grid, *RESULT_COLUMNS]


def _child(node: Any, key: str, path: str) -> tuple[Any, Any]:
    """``(container, key)`` of ``key`` in ``node``: list items by index or by student label."""
    if isinstance(node, list):
        if key.isdigit() and int(key) < len(node):
            return node, int(key)
        labels = [item.get("name") or item.get("model") if isinstance(item, dict) else None for item in node]
        if key in labels:
            return node, labels.index(key)
        raise ConfigError(f"sweep.{path}: no entry {key!r} (indices 0..{len(node) - 1} or labels {labels})")
    if isinstance(node, dict):
        return node, key
    raise ConfigError(f"sweep.{path}: {key!r} is inside a value, not a section")


def set_field(raw: dict, path: str, value: Any) -> None:
    """Set the dotted ``path`` of a raw config mapping to ``value`` (missing sections are created).

    Example:
        >>> raw = {"students": [{"model": "hea", "options": {}}]}
        >>> set_field(raw, "students.hea.options.layers", 2); raw["students"][0]["options"]
        {'layers': 2}
    """
    keys = path.split(".")
    node: Any = raw
    for i, key in enumerate(keys):
        container, k = _child(node, key, path)
        if i == len(keys) - 1:
            container[k] = value
            return
        if isinstance(container, dict) and container.get(k) is None:
            container[k] = {}
        node = container[k]


def _short_names(paths: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each path that no other path shares (``data.n_train`` -> ``n_train``)."""
    out = {}
    for p in paths:
        parts = p.split(".")
        for k in range(1, len(parts) + 1):
            suffix = ".".join(parts[-k:])
            if not any(q != p and (q == suffix or q.endswith("." + suffix)) for q in paths):
                break
        out[p] = suffix
    return out


def _label(value: Any, index: int) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.+-]+", value)):
        return str(value)
    return f"#{index}"  # lists, mappings, strings a folder name cannot hold: the value's index


def _grid(section: Any, source: str) -> dict[str, list]:
    if not isinstance(section, dict) or not section:
        raise ConfigError(f"{source}: sweep: must map field paths to lists of values")
    for path, values in section.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: sweep.{path}: must be a non-empty list of values")
        if path == "name" or path.startswith("sweep"):
            raise ConfigError(f"{source}: sweep.{path}: cannot be swept")
    return dict(section)


def _point(base: dict, grid: dict[str, list], combo: tuple, names: dict[str, str], source: str) -> SweepPoint:
    values = {p: v for p, (i, v) in zip(grid, combo)}
    name = ",".join(f"{names[p]}={_label(v, i)}" for p, (i, v) in zip(grid, combo))
    raw = copy.deepcopy(base)
    try:
        for p, v in values.items():
            set_field(raw, p, v)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    try:
        cfg = parse_config(raw, "config")
    except ConfigError as err:
        raise ConfigError(f"{source}: sweep point {name}: {str(err).removeprefix('config: ')}") from None
    return SweepPoint(name, values, cfg)


def expand(raw: dict, source: str = "config") -> Sweep:
    """The grid of a raw config with a ``sweep`` section; every point validated (one line naming the
    point and the field on the first bad one)."""
    base = {k: v for k, v in raw.items() if k != "sweep"}
    grid = _grid(raw.get("sweep"), source)
    names = _short_names(list(grid))
    combos = itertools.product(*(list(enumerate(v)) for v in grid.values()))
    points = [_point(base, grid, combo, names, source) for combo in combos]
    seen: dict[str, int] = {}
    for p in points:
        seen[p.name] = seen.get(p.name, 0) + 1
    dup = [n for n, c in seen.items() if c > 1]
    if dup:
        raise ConfigError(f"{source}: sweep: two points are both named {dup[0]} (repeated values?)")
    return Sweep(base, grid, points)


def load_sweep(path: str | Path) -> Sweep | None:
    """The sweep of a config file, or None when the file has no ``sweep`` section."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    raw = read_yaml(path, ConfigError)
    if not isinstance(raw, dict) or "sweep" not in raw:
        return None
    return expand(raw, str(path))


def check_points(sweep: Sweep) -> None:
    """Load every point's data and build its models once (cached by what they depend on), so a bad
    size or option fails as one line naming the point before anything trains."""
    done: set[str] = set()
    for p in sweep.points:
        key = json.dumps(p.config.model_dump(mode="json", include={"data", "teacher", "students", "dtype",
                                                                     "device"}), sort_keys=True)
        if key in done:
            continue
        try:
            preflight(p.config, run_datasets(p.config)[0])
        except ValueError as err:
            raise ValueError(f"sweep point {p.name}: {err}") from None
        done.add(key)


def point_dir(out: str | Path, point: SweepPoint) -> Path:
    return Path(out) / "points" / point.name


def combined_rows(sweep: Sweep, out: str | Path, finished: dict[str, list[dict]] | None = None) -> list[dict]:
    """Every finished unit of every point, with ``point`` and the swept values as columns.

    ``finished``: point name -> its result rows, for points known to be finished (read once by
    :func:`run_sweep` instead of once per point: the full KD-regimes grid would re-read its
    3,500 result files after each of its 36 points); the other points are read from disk."""
    rows = []
    for p in sweep.points:
        mine = (finished or {}).get(p.name)
        for r in training_dir(point_dir(out, p)).results() if mine is None else mine:
            rows.append({"point": p.name, **p.values, **r})
    return rows


def _manifest(sweep: Sweep, out: Path) -> dict:
    path = out / "sweep.json"
    previous = read_json(path, ValueError, "delete it to start the sweep again") if path.exists() else None
    fields = {"config": sweep.base, "sweep": sweep.grid, "points": [p.name for p in sweep.points]}
    if previous and (previous.get("config"), previous.get("sweep")) != (sweep.base, sweep.grid):
        raise ValueError(f"out: {out} holds a sweep of a different config; choose another --out")
    if previous is None and (out / "manifest.json").exists():
        raise ValueError(f"out: {out} holds a `qkd run` of a single config; choose another --out")
    info = run_manifest(fields, previous, environment=True)
    atomic_write_json(path, info)
    return info


def run_sweep(sweep: Sweep, out: str | Path, progress: bool = True, log: Callable[[str], None] | None = None,
              runner: Callable[..., list[dict]] = run_experiment, **run_options: Any) -> list[dict]:
    """Run every point not yet finished in ``out`` (see module doc); return the combined rows.

    ``runner`` runs one point (default :func:`~qkd_qiskit.experiments.run_experiment`, on the
    executor that ``run_options`` name: ``executor``, ``address``, ``chunk_size``); finished units
    are copied between points with the same :func:`~qkd_qiskit.reuse.unit_identity` first. An
    executor with worker processes runs :func:`parallel_slots` points at once (module doc); a
    point that fails then fails alone, and the sweep raises one ValueError naming every failed
    point once the others have finished."""
    out = check_output_dir(out)
    check_points(sweep)
    say = log or (lambda _m: None)
    with lock_output_dir(out):
        info = _manifest(sweep, out)
        index: dict = {}
        for p in sweep.points:  # what earlier sessions finished, so a resume reuses it too
            index_units(index, p.config, training_dir(point_dir(out, p)), plan_units(p.config))
        slots, finished = parallel_slots(run_options.get("executor")), {}
        if slots > 1:
            _run_points_at_once(sweep, Path(out), index, say, runner, slots, dict(run_options, log=log), finished)
        for k, p in enumerate(sweep.points if slots == 1 else [], 1):
            run, units = training_dir(point_dir(out, p)), plan_units(p.config)
            copied = reuse_units(index, p.config, run, units)
            say(f"point {k}/{len(sweep.points)} {p.name}" + (f" ({copied} units reused)" if copied else ""))
            runner(p.config, run.root, progress=progress, log=log, **run_options)
            index_units(index, p.config, run, units)
            finished[p.name] = run.results()
            write_combined(sweep, out, finished)  # after every point: a partial sweep has its table too
        rows = write_combined(sweep, out, finished)
        finish_manifest(out / "sweep.json", info)
    return rows


def parallel_slots(executor: Any) -> int:
    """How many points run at once on ``executor``: 1 (one after the other) unless it is a local
    executor with worker processes; then twice its workers, so that while some points wait for
    the point they copy from, others keep every worker busy.

    Example:
        >>> parallel_slots("local"), parallel_slots(LocalExecutor(workers=1))
        (1, 1)
    """
    if isinstance(executor, LocalExecutor) and executor.workers > 1:
        return 2 * executor.workers
    return 1


def point_dependencies(sweep: Sweep, index: dict) -> dict[str, set[str]]:
    """For each point, the earlier points it waits for: those that first train a unit it would
    copy (same :func:`~qkd_qiskit.reuse.unit_identity`, finished nowhere yet; ``index`` holds the
    finished ones).

    Example:
        >>> sw = expand({"name": "s", "students": [{"model": "linear"}], "sweep": {"kd.temperature": [1.0, 4.0]}})
        >>> point_dependencies(sw, {})   # the teacher and the KD-off student are the same
        {'temperature=1': set(), 'temperature=4': {'temperature=1'}}
    """
    first: dict[str, str] = {}
    deps: dict[str, set[str]] = {}
    for p in sweep.points:
        deps[p.name] = set()
        for u in plan_units(p.config):
            ident = unit_identity(p.config, u)
            if ident not in index and first.setdefault(ident, p.name) != p.name:
                deps[p.name].add(first[ident])
    return deps


def _run_points_at_once(sweep: Sweep, out: Path, index: dict, say: Callable[[str], None],
                        runner: Callable[..., list[dict]], slots: int, options: dict,
                        finished: dict[str, list[dict]]) -> None:
    """Run the points in up to ``slots`` threads (module doc); one ValueError for the failed ones.
    Per-point progress bars are off (they would interleave): each point logs its start and end."""
    lock, free = threading.Lock(), threading.Semaphore(slots)
    done = {p.name: threading.Event() for p in sweep.points}
    deps, errors = point_dependencies(sweep, index), {}
    n = len(sweep.points)

    def one(k: int, p: SweepPoint) -> None:
        try:
            for name in deps[p.name]:
                done[name].wait()
            run, units = training_dir(point_dir(out, p)), plan_units(p.config)
            with lock:
                copied = reuse_units(index, p.config, run, units)
            say(f"point {k}/{n} {p.name}: started" + (f" ({copied} units reused)" if copied else ""))
            runner(p.config, run.root, **{**options, "progress": False})
            rows = run.results()
            with lock:
                index_units(index, p.config, run, units)
                finished[p.name] = rows
                write_combined(sweep, out, finished)  # a partial sweep has its table too
            say(f"point {k}/{n} {p.name}: finished")
        except Exception as err:  # noqa: BLE001 - this point fails alone; reported once all have finished
            errors[p.name] = (str(err).splitlines() or [""])[0] if isinstance(err, ValueError) else one_line(err)
        finally:
            done[p.name].set()
            free.release()

    threads = []
    for k, p in enumerate(sweep.points, 1):
        free.acquire()
        threads.append(threading.Thread(target=one, args=(k, p), daemon=True, name=f"qkd-point-{k}"))
        threads[-1].start()
    for t in threads:
        t.join()
    if errors:
        raise ValueError(f"{len(errors)} sweep point(s) failed: " + "; ".join(f"{k}: {e}" for k, e in errors.items()))


def write_combined(sweep: Sweep, out: str | Path, finished: dict[str, list[dict]] | None = None) -> list[dict]:
    """Write ``out/results.csv`` (atomically) from every point's finished units; return its rows
    (``finished``: see :func:`combined_rows`)."""
    rows = combined_rows(sweep, out, finished)
    atomic_write_csv(Path(out) / "results.csv", rows, sweep.columns)
    return rows
