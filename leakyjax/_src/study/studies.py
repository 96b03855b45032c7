"""`leakyjax study NAME`: reproductions of published results about rectifiers.

Each study is a module in `leakyjax._src.study` that declares one
`Study`: its configuration, its parts (name -> compute function), how
to summarise them, how to plot them and how to render its section of
docs/STUDY.md. One runner, `execute`, does the rest for all of them: it
stores every finished part (one Monte Carlo cell, one training run) under
`out/parts/<study>/` and reads it back on the next call unless its
configuration changed or `force=True` (so an interrupted run resumes), shows
progress with tqdm, writes the JSON record `out/<study>.json` and the PNG
figure, and returns a [`StudyResult`][leakyjax.study.StudyResult].

`add_study_parser(subparsers)` adds the `study` subcommand to the
`leakyjax` console script; [`run_study`][leakyjax.study.run_study] is the same from Python;
`markdown` renders a results file as docs/STUDY.md shows it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from leakyjax._src import io as _io

#: name -> (module, one-line description); the order is the order of docs/STUDY.md.
STUDIES: dict[str, tuple[str, str]] = {
    "born-dead": (
        "leakyjax._src.study.born_dead",
        "Lu et al. 2019: P(deep narrow ReLU net is constant at init) vs depth/width",
    ),
    "init-depth": (
        "leakyjax._src.study.init_depth",
        "He et al. 2015 Fig. 3: variance through 30 layers, He vs Xavier; training",
    ),
    "slope-sweep": (
        "leakyjax._src.study.slope_sweep",
        "Xu et al. 2015: ReLU/leaky/PReLU/RReLU/ELU train and test error, 5 seeds",
    ),
    "prelu-profile": (
        "leakyjax._src.study.prelu_profile",
        "He et al. 2015 Table 1: learned PReLU slopes per layer of a CNN",
    ),
    "dead-vs-lr": (
        "leakyjax._src.study.dead_vs_lr",
        "dead-unit fraction per layer vs learning rate, ReLU vs leaky ReLU",
    ),
    "rai": (
        "leakyjax._src.study.rai",
        "Lu et al. 2020: born dead and collapse, He vs randomized asymmetric init",
    ),
    "redo": (
        "leakyjax._src.study.redo",
        "Sokar et al. 2023: dormant units under shifting targets, ReLU/ReDo/leaky/RAI",
    ),
    "plasticity": (
        "leakyjax._src.study.plasticity",
        "Dohare et al. 2024: loss of plasticity over re-permuted tasks, plain/ReDo/CBP",
    ),
}

_TRAIN_EXTRA = 'pip install "leakyjax[train]"'


class StudyResult(NamedTuple):
    """What a study run produced.

    Attributes:
        name: the study name, e.g. `"born-dead"`.
        out: the output directory.
        results: path of the JSON file with all numbers.
        figures: paths of the PNG figures.
        summary: the headline numbers (also in the JSON file under `"summary"`).
    """

    name: str
    out: Path
    results: Path
    figures: tuple[Path, ...]
    summary: dict


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(
            f"leakyjax study needs {module.split('.')[0]!r}: {_TRAIN_EXTRA}"
        ) from err


pyplot = _io.pyplot
to_jsonable = _io.to_jsonable


def mnist1d_loader(cfg: dict) -> Callable[[], Any]:
    """The study's mnist1d split (`cfg["num_train"]`, `cfg["num_test"]`),
    generated on first call and reused after."""
    cache: dict = {}

    def load():
        if "ds" not in cache:
            from leakyjax._src.train import load_dataset

            cache["ds"] = load_dataset(
                "mnist1d", num_train=cfg["num_train"], num_test=cfg["num_test"]
            )
        return cache["ds"]

    return load


class Study(NamedTuple):
    """A study, as `execute` runs it.

    Attributes:
        name: the CLI name, e.g. `"born-dead"`; files are named after
            `name.replace("-", "_")`.
        config: `(quick, seed) -> dict`: the settings every part depends on
            (JSON-able; a stored part is reused only under the same config).
        parts: `(config, seed) -> {part name: compute()}`, in the order to
            compute them; each `compute()` returns JSON-able numbers.
        summarise: `(config, values) -> (summary, data)` from the parts'
            values (`{part name: value}`): the headline numbers (with
            `"lines"`, printed by the CLI) and the other fields of the JSON
            record.
        plot: `(path, config, values) -> path`: writes the PNG figure.
        render_markdown: `(record) -> str`: the study's tables in
            docs/STUDY.md, from the JSON record (see `markdown`).
    """

    name: str
    config: Callable[[bool, int], dict]
    parts: Callable[[dict, int], Mapping[str, Callable[[], Any]]]
    summarise: Callable[[dict, dict], tuple[dict, dict]]
    plot: Callable[[Path, dict, dict], Path]
    render_markdown: Callable[[dict], str]


def execute(
    study: Study,
    out: Path,
    *,
    quick: bool = False,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> StudyResult:
    """Runs `study` in `out` (which [`run_study`][leakyjax.study.run_study] has checked and locked).

    Computes the parts not stored yet (with a progress bar), then writes
    `out/<stem>.json` -- `study`, `config`, the study's data fields,
    `summary`, `seconds_this_call`, `seconds_all_parts` (the compute
    time of every part, whichever call computed it; None if unknown),
    `parts_reused`, `parts_computed` -- and the figure `out/<stem>.png`.
    """
    cfg = study.config(quick, seed)
    store = PartStore(out, study.name, config=cfg, force=force)
    todo = study.parts(cfg, seed)
    t0 = time.perf_counter()
    values = {
        key: store.get(key, fn)
        for key, fn in _io.progress(
            todo.items(), desc=study.name, total=len(todo), enable=progress, leave=False
        )
    }
    seconds = time.perf_counter() - t0
    stem = study.name.replace("-", "_")

    def finish() -> tuple[dict, dict, Path]:
        summary, data = study.summarise(cfg, values)
        return summary, data, study.plot(Path(out) / f"{stem}.png", cfg, values)

    try:
        summary, data, fig = finish()
    except (OSError, ImportError):  # the disk, the installation: not the parts
        raise
    except Exception as err:
        # Parts read back that the study cannot use (hand-edited values, a file
        # of an older leakyjax without a checksum): compute them again, once.
        reused = store.reused_keys
        if not reused:
            raise
        import warnings

        warnings.warn(
            f"{store.dir}: {len(reused)} stored part(s) do not fit the study "
            f"({type(err).__name__}: {err}); they are computed again",
            _io.RecordWarning,
            stacklevel=2,
        )
        for key in _io.progress(
            reused, desc=study.name, total=len(reused), enable=progress, leave=False
        ):
            values[key] = store.get(key, todo[key], recompute=True)
        seconds = time.perf_counter() - t0
        summary, data, fig = finish()
    path = write_json(
        Path(out) / f"{stem}.json",
        dict(
            study=study.name,
            config=cfg,
            **data,
            summary=summary,
            seconds_this_call=seconds,
            seconds_all_parts=store.seconds,
            parts_reused=store.reused,
            parts_computed=store.computed,
        ),
    )
    return StudyResult(study.name, Path(out), path, (fig,), summary)


def load(name: str) -> Study:
    """The `Study` registered as `name` in [`STUDIES`][leakyjax.study.STUDIES]."""
    return importlib.import_module(STUDIES[name][0]).STUDY


def _duration(seconds: float) -> str:
    if seconds < 100:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def markdown(record: dict) -> str:
    """A study's section of docs/STUDY.md from its JSON record.

    The study's `render_markdown(record)`, then the compute time and the
    configuration, both read from the record.
    """
    text = load(record["study"]).render_markdown(record).rstrip()
    n = record["parts_reused"] + record["parts_computed"]
    secs = record.get("seconds_all_parts")
    when = (
        f"computed in {_duration(secs)} (the sum over its {n} parts)"
        if secs is not None
        else f"{n} parts; this call took {_duration(record['seconds_this_call'])}"
    )
    cfg = ", ".join(
        f"{k} = {json.dumps(v, ensure_ascii=False)}"
        for k, v in record["config"].items()
    )
    return f"{text}\n\nWall time: {when}. Configuration: `{cfg}`."


def save_figure(fig: Any, path: Path) -> Path:
    """Lays out, writes atomically (PNG, 120 dpi) and closes a matplotlib figure."""
    fig.tight_layout()
    return _io.save_figure(fig, path, dpi=120)


def write_json(path: Path, obj: Any) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _io.write_json(path, obj)


class PartStore:
    """Resumable store of finished parts of one study, one JSON file per part.

    A part is read back when its file exists and was written with the same
    `config` (so a `--quick` run never feeds a full run); otherwise it is
    computed by `fn()` and written. A part file that is damaged (not UTF-8,
    not JSON, not an object, another part's key, a value that does not match
    its checksum) is skipped with one
    [RecordWarning][leakyjax._src.io.RecordWarning] naming the file, and the
    part is computed again; a part file that is a directory or unreadable is
    an `OSError` naming it.

    Args:
        out: the study's output directory.
        study: the study name (subdirectory of `out/parts`).
        config: the settings that the parts depend on (JSON-able).
        force: recompute every part.
    """

    def __init__(self, out: Path, study: str, *, config: dict, force: bool = False):
        self.dir = Path(out) / "parts" / study
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = to_jsonable(config)
        self.force = force
        #: part key -> (read back?, seconds its computation took or None)
        self._got: dict[str, tuple[bool, float | None]] = {}

    @property
    def reused(self) -> int:
        """How many parts were read back."""
        return sum(back for back, _ in self._got.values())

    @property
    def computed(self) -> int:
        """How many parts were computed (and stored)."""
        return len(self._got) - self.reused

    @property
    def reused_keys(self) -> list[str]:
        """The keys of the parts read back, in the order they were got."""
        return [k for k, (back, _) in self._got.items() if back]

    @property
    def seconds(self) -> float | None:
        """Seconds spent computing the parts got so far (None if one is unknown)."""
        secs = [s for _, s in self._got.values()]
        return None if None in secs else float(sum(s for s in secs if s is not None))

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", key)
        if len(safe) > 100:
            safe = safe[:80] + hashlib.sha1(key.encode()).hexdigest()[:12]
        return self.dir / f"{safe}.json"

    def has(self, key: str) -> bool:
        return self._load(key) is not None

    def _load(self, key: str) -> dict | None:
        """The stored part `key`, or None (missing, another config, damaged)."""
        path = self._path(key)
        if self.force:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:  # a directory, no permission: say which file
            raise _io._oserror(e, path, "read", replace=True) from None
        blob, reason = _parse_part(data, key)
        if reason is not None:
            import warnings

            warnings.warn(
                f"{path}: skipped ({reason}); the part is computed again",
                _io.RecordWarning,
                stacklevel=3,
            )
            return None
        if blob is None or blob.get("config") != self.config:
            return None  # written under another configuration: recompute
        return blob

    def get(self, key: str, fn: Callable[[], Any], *, recompute: bool = False) -> Any:
        """The stored value of part `key`, or `fn()` (then stored).

        `recompute`: ignore the stored value (as `force` does for all).
        """
        blob = None if recompute else self._load(key)
        if blob is not None:
            secs = blob.get("seconds")
            if isinstance(secs, bool) or not isinstance(secs, (int, float)):
                secs = None  # unknown (a hand edit, an older file)
            self._got[key] = (
                True,
                float(secs) if secs is not None and secs >= 0 else None,
            )
            return blob["value"]
        t0 = time.perf_counter()
        value = to_jsonable(fn())
        seconds = time.perf_counter() - t0
        write_json(
            self._path(key),
            {
                "key": key,
                "config": self.config,
                "value": value,
                "seconds": seconds,
                "digest": _digest(value),
            },
        )
        self._got[key] = (False, seconds)
        return value


def _digest(value: Any) -> str:
    """A checksum of a part's value (its canonical JSON), stored beside it."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_part(data: bytes, key: str) -> tuple[dict | None, str | None]:
    """`(part, None)`, `(None, None)` for a part with no value (computed
    again, silently), or `(None, why it is damaged)`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start}"
    try:
        blob = json.loads(text, parse_constant=_io._reject_constant)
    except json.JSONDecodeError as e:
        if not text.strip() or len(text.rstrip()) - e.pos <= 4:
            return None, "an unfinished file (a killed write)"
        return None, f"not JSON: {e.msg}, line {e.lineno} column {e.colno}"
    except ValueError as e:
        return None, str(e)
    if not isinstance(blob, dict):
        return None, f"not a JSON object but {type(blob).__name__}"
    if blob.get("key") != key:
        return None, f"it holds part {blob.get('key')!r}, not {key!r}"
    if "value" not in blob:
        return None, "missing field 'value'"
    if blob["value"] is None:
        return None, None
    digest = blob.get("digest")
    if digest is not None and digest != _digest(blob["value"]):
        return None, "its value does not match its checksum: edited or damaged"
    return blob, None


def run_study(
    name: str,
    *,
    out: str | Path,
    quick: bool = False,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
) -> StudyResult:
    """Runs one study and writes its JSON results and PNG figures into `out`.

    Args:
        name: one of `born-dead`, `init-depth`, `slope-sweep`,
            `prelu-profile`, `dead-vs-lr`, `rai`, `redo`.
        out: output directory (created). Finished parts found there are reused.
        quick: small sizes (seconds to a minute on a laptop CPU; used in tests).
        seed: base random seed.
        force: recompute parts that are already stored in `out`.
        progress: show tqdm progress bars.

    Returns:
        A [`StudyResult`][leakyjax.study.StudyResult].

    Example (about 15 s on a 2-core CPU)::

        >>> from leakyjax.study import run_study
        >>> r = run_study("born-dead", out="runs/bd", quick=True)  # doctest: +SKIP
        >>> r.summary["max_p_constant_leaky"]  # doctest: +SKIP
        0.0

    Raises:
        ValueError: for an unknown study name, a bad seed or an unusable
            `out` (a file, not writable).
        RuntimeError: another process is working in `out` (it holds the
            folder's lock).
        ImportError: when the `train` extra (flax, optax, matplotlib, ...) is
            missing; install it with `pip install "leakyjax[train]"`.
    """
    if name not in STUDIES:
        import difflib

        close = difflib.get_close_matches(str(name), list(STUDIES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"study: unknown name {name!r}; choose one of {', '.join(STUDIES)}.{hint}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"study: seed must be a non-negative int, got {seed!r}.")
    study = load(name)
    out = _io.output_dir(out)  # ValueError naming the path if unusable
    with _io.lock(out):  # one process per directory (re-entrant)
        return execute(
            study, out, quick=quick, seed=seed, force=force, progress=progress
        )


def _print_summary(result: StudyResult) -> None:
    print(f"leakyjax study {result.name}: results in {result.results}")
    for fig in result.figures:
        print(f"  figure: {fig}")
    for line in result.summary.get("lines", []):
        print(f"  {line}")


def _main(args: argparse.Namespace) -> int:
    from leakyjax._src._cli_common import enable_compile_cache

    enable_compile_cache(args)
    result = run_study(
        args.name,
        out=args.out,
        quick=args.quick,
        seed=args.seed,
        force=args.force,
        progress=not args.no_progress,
    )
    _print_summary(result)
    return 0


def add_study_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds `study NAME [--quick] --out DIR` to a CLI's subparsers.

    The new parser's `func` default is a callable `func(args) -> int` that
    runs the study and prints where the results are.

    Args:
        subparsers: the object returned by `ArgumentParser.add_subparsers()`.

    Returns:
        The `study` parser.

    Example:
        >>> import argparse
        >>> from leakyjax._src.study.studies import add_study_parser
        >>> cli = argparse.ArgumentParser(prog="leakyjax")
        >>> _ = add_study_parser(cli.add_subparsers(dest="command"))
        >>> args = cli.parse_args(["study", "born-dead", "--quick", "--out", "runs/bd"])
        >>> args.name, args.quick, callable(args.func)
        ('born-dead', True, True)
    """
    listing = "\n".join(f"  {k:<14} {v[1]}" for k, v in STUDIES.items())
    parser = subparsers.add_parser(
        "study",
        help="reproduce a published result about rectifiers (JSON + PNG)",
        description="Reproduce a published result about rectifiers. Studies:\n"
        + listing
        + "\n\nSee docs/STUDY.md for the claims, our numbers and verdicts.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=list(STUDIES), help="which study to run")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes (what the test suite runs); default: the full study",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output directory (resumable)"
    )
    from leakyjax._src._cli_common import int_arg

    parser.add_argument(
        "--seed", type=int_arg(0), default=0, help="base seed, >= 0 (default 0)"
    )
    parser.add_argument(
        "--force", action="store_true", help="recompute parts already stored in --out"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no tqdm progress bars"
    )
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use JAX's persistent compilation cache "
        "(also: LEAKYJAX_NO_COMPILE_CACHE=1)",
    )
    parser.set_defaults(func=_main)
    return parser


def train_curves(
    model: Any,
    dataset: Any,
    *,
    tx: Any,
    seeds: tuple[int, ...],
    steps: int,
    batch_size: int,
    eval_every: int,
    on_eval: Callable[[int, Any], dict] | None = None,
) -> tuple[dict, Any]:
    """Trains a study's own linen classifier on the one training loop.

    [`leakyjax.train.train`][] with `model` (a linen module), the optax
    transformation `tx`, no validation split, all seeds vmapped in one
    program (and CPU convolutions in a host loop over one jitted step).

    Returns:
        `(curves, params)`: `curves` has `step`, `train_loss` (whole
        training set, evaluation mode) and `test_acc` as `(seeds, evals)`
        arrays, their final values, and the `on_eval` records under
        `extra`; `params` are the final parameters with a leading seed axis.
    """
    from leakyjax._src.train import TrainConfig, train

    config = TrainConfig(
        dataset=dataset.name,
        model=type(model).__name__,
        steps=steps,
        batch_size=batch_size,
        eval_every=eval_every,
        val_fraction=0.0,
    )
    res = train(
        config,
        seeds=tuple(seeds),
        model=model,
        dataset=dataset,
        optimizer=tx,
        on_eval=None
        if on_eval is None
        else (lambda step, params: to_jsonable(on_eval(step, params))),
    )
    loss = np.stack([r.history.train_eval_loss for r in res.runs])
    acc = np.stack([r.history.test_acc for r in res.runs])
    curves = dict(
        step=res.runs[0].history.step.tolist(),
        train_loss=loss,
        test_acc=acc,
        final_train_loss=loss[:, -1],
        final_test_acc=acc[:, -1],
        extra=list(res.evals),
    )
    return curves, res.variables["params"]
