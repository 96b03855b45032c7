"""`leakyjax compare`: train activations side by side and write a report.

For every activation the seeds train together in one compiled program
(`train`); each finished activation appends one JSON
line per seed to `results.jsonl` (flushed and fsynced), so a killed run loses
nothing that had finished and re-running the same command reads finished runs
back instead of training them again.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from leakyjax._src import io as _io
from leakyjax._src.train import TrainConfig, TrainResult, check_config, train
from leakyjax._src.train import report as _report
from leakyjax._src.train.data import DATASETS, as_dataset, fingerprint, load_dataset
from leakyjax._src.train.data import _load_object as load_object
from leakyjax._src.train.loop import BatchWarning
from leakyjax._src.train.models import MODELS

DEFAULT_ACTS = (
    "relu",
    "leaky_relu:0.01",
    "leaky_relu:0.2",
    "prelu",
    "rrelu",
    "elu",
    "tanh",
)
RESULTS = "results.jsonl"
PLOTS = ("curves.png", "final_accuracy.png", "dead_fraction.png")
OUTPUT_FILES = (RESULTS, "report.md", *PLOTS)


class Summary(NamedTuple):
    """Per-activation statistics over seeds (diverged seeds excluded).

    Attributes:
        activation: the registry spec.
        seeds: seeds finished (diverged ones included).
        diverged: how many seeds diverged.
        final_acc_mean: mean final test accuracy (R² for regression).
        final_acc_std: its standard deviation over seeds (ddof=0).
        best_acc_mean: mean test accuracy at the best validation evaluation.
        best_acc_std: its standard deviation.
        final_loss_mean: mean final test loss.
        final_loss_std: its standard deviation.
        dead_fraction: per layer, mean dead-unit fraction (None if unmeasured).
        seconds_per_seed: training wall time per seed (program time / seeds).
        step_time: seconds per training step of the activation's program (all
            its seeds together; compilation and evaluation excluded).
        step_memory: temporary bytes of its compiled training program (None
            where unmeasured).
    """

    activation: str
    seeds: int
    diverged: int
    final_acc_mean: float
    final_acc_std: float
    best_acc_mean: float
    best_acc_std: float
    final_loss_mean: float
    final_loss_std: float
    dead_fraction: tuple[float, ...] | None
    seconds_per_seed: float
    step_time: float = math.nan
    step_memory: float | None = None


class CompareResult(NamedTuple):
    """What `compare` produced.

    Attributes:
        out: the output directory.
        summaries: one `Summary` per activation, ranked best first.
        records: every result line (dicts, as in `results.jsonl`) of this
            comparison, including those read back.
        trained: activations trained by this call (the others were read back).
        report: path of `report.md`.
        plots: paths of the PNG plots.
        decision: the answer to "which activation?" at the margin
            (`decision.sentence` leads `report.md`).

    In a notebook the result renders as the decision and the ranked table
    (`_repr_markdown_`); `str(result)` is the same as plain text.
    """

    out: Path
    summaries: tuple[Summary, ...]
    records: tuple[dict, ...]
    trained: tuple[str, ...]
    report: Path
    plots: tuple[Path, ...]
    decision: Any = None

    def _metric(self) -> str:
        return self.records[0]["metric"] if self.records else "accuracy"

    def __str__(self) -> str:
        from leakyjax._src.train import report as _report

        lines = [
            _report.format_table(self.summaries, metric=self._metric(), costs=True)
        ]
        if self.decision is not None:
            lines += ["", self.decision.sentence.replace("**", "")]
        lines += ["", f"report: {self.report}"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        from leakyjax._src.train import report as _report

        lines = []
        if self.decision is not None:
            lines += [self.decision.sentence, ""]
        lines += [
            _report.markdown_table(self.summaries, metric=self._metric(), costs=True)
        ]
        lines += ["", f"Report: `{self.report}`"]
        return "\n".join(lines)


def config_key(config: TrainConfig, data: str | None = None) -> str:
    """A canonical string identifying `config` and the data (the resume key).

    The activation is in the registry's canonical form, so `ELU` resumes
    `elu`; `data` is the data set's
    `fingerprint` (a hash of its arrays), so
    changed data never resumes old runs.
    """
    fields = config._asdict()
    fields["activation"] = canonical(config.activation)
    if data is not None:
        fields["data_fingerprint"] = data
    return json.dumps(fields, sort_keys=True)


def records_of(result: TrainResult, data: str | None = None) -> list[dict]:
    """One JSON-ready dict per seed of a `TrainResult`."""
    n = len(result.runs)
    out = []
    for run in result.runs:
        out.append(
            _io.to_jsonable(
                {
                    "key": config_key(result.config, data),
                    "activation": result.config.activation,
                    "seed": run.seed,
                    "config": result.config._asdict(),
                    "metric": result.metric,
                    "final_test_acc": run.final_test_acc,
                    "final_test_loss": run.final_test_loss,
                    "best_test_acc": run.best_test_acc,
                    "best_test_loss": run.best_test_loss,
                    "best_step": run.best_step,
                    "steps": run.steps,
                    "diverged": run.diverged,
                    "stopped_early": run.stopped_early,
                    "dead_fraction": run.dead_fraction,
                    "recycled_units": run.recycled,
                    "wall_time": result.wall_time,
                    "wall_time_per_seed": result.wall_time / n,
                    "compile_time": result.compile_time,
                    "train_time": result.wall_time - result.compile_time,
                    "chunking": result.chunking,
                    "data_fingerprint": data,
                    "seeds_in_program": n,
                    "num_devices": result.num_devices,
                    "compiles": result.compiles,
                    "step_time": result.step_time,
                    "step_memory": result.step_memory,
                    "history": run.history._asdict(),
                }
            )
        )
    return out


#: The fields every `results.jsonl` line must have, and their JSON types.
RECORD_SCHEMA = {
    "key": str,
    "activation": str,
    "seed": int,
    "config": dict,
    "metric": str,
    "final_test_acc": (float, None),
    "final_test_loss": (float, None),
    "best_test_acc": (float, None),
    "best_test_loss": (float, None),
    "best_step": int,
    "steps": int,
    "diverged": bool,
    "stopped_early": bool,
    "dead_fraction": (list, None),
    "wall_time": float,
    "wall_time_per_seed": float,
    "compile_time": float,
    "seeds_in_program": int,
    "num_devices": int,
    "history": dict,
}
_HISTORY = ("step", "train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_record(rec: dict) -> str | None:
    """Deeper checks than the schema: the history, the ranges of the numbers
    and the configuration against the key."""
    hist = rec["history"]
    lengths = set()
    for k in _HISTORY:
        v = hist.get(k)
        if not isinstance(v, list) or not all(x is None or _number(x) for x in v):
            return f"history field {k!r} is not a list of numbers"
        lengths.add(len(v))
    if len(lengths) != 1:
        return "history fields have different lengths"
    dead = rec["dead_fraction"]
    if dead is not None and not all(_number(x) for x in dead):
        return "dead_fraction is not a list of numbers"
    return _check_ranges(rec) or _check_key(rec)


def _outside(field: str, value: Any, low: float, high: float, why: str = "") -> str:
    lo = "-inf" if low == -math.inf else f"{low:g}"
    hi = "inf" if high == math.inf else f"{high:g}"
    return f"{field} is {value!r}, outside [{lo}, {hi}]{why}"


def _check_ranges(rec: dict) -> str | None:
    """Why a number of `rec` is impossible (an accuracy of 5, a negative
    loss, a best step after the last one), or None."""
    metric = rec["metric"]
    if metric not in ("accuracy", "r2"):
        return f"field 'metric' is {metric!r}, expected 'accuracy' or 'r2'"
    on = f" for metric {metric!r}"
    acc = (0.0 if metric == "accuracy" else -math.inf, 1.0, on)  # R² <= 1
    pos = (0.0, math.inf, "")
    hist = rec["history"]
    ranges: list[tuple[str, list, tuple[float, float, str]]] = [
        ("field 'final_test_acc'", [rec["final_test_acc"]], acc),
        ("field 'best_test_acc'", [rec["best_test_acc"]], acc),
        ("field 'final_test_loss'", [rec["final_test_loss"]], pos),
        ("field 'best_test_loss'", [rec["best_test_loss"]], pos),
        ("field 'dead_fraction'", list(rec["dead_fraction"] or ()), (0.0, 1.0, "")),
        ("history 'val_acc'", hist["val_acc"], acc),
        ("history 'test_acc'", hist["test_acc"], acc),
        ("history 'train_loss'", hist["train_loss"], pos),
        ("history 'val_loss'", hist["val_loss"], pos),
        ("history 'test_loss'", hist["test_loss"], pos),
    ]
    for f in ("wall_time", "wall_time_per_seed", "compile_time"):
        ranges.append((f"field {f!r}", [rec[f]], pos))
    for field, values, (low, high, why) in ranges:
        for v in values:
            if v is not None and not low <= v <= high:
                return _outside(field, v, low, high, why)
    planned = rec["config"].get("steps")
    if not _number(planned):
        return "field 'config' has no number of 'steps'"
    if not 0 <= rec["steps"] <= planned:
        return _outside("field 'steps'", rec["steps"], 0, planned, " (config steps)")
    if not 0 <= rec["best_step"] <= rec["steps"]:
        steps = rec["steps"]
        return _outside("field 'best_step'", rec["best_step"], 0, steps, " (steps run)")
    for f in ("seeds_in_program", "num_devices"):
        if rec[f] < 1:
            return f"field {f!r} is {rec[f]!r}, expected >= 1"
    return None


def _check_key(rec: dict) -> str | None:
    """Why the record's `config` (and data fingerprint) is not what its
    `key` says, or None: the key is what resume looks up, so a hand-edited
    config must not pass for the configuration that trained it."""
    try:
        key = json.loads(rec["key"])
    except ValueError:
        return "key is not a configuration (not JSON)"
    if not isinstance(key, dict):
        return "key is not a configuration (not a JSON object)"
    cfg = dict(rec["config"])
    if cfg.get("activation") != rec["activation"]:
        return (
            f"activation is {rec['activation']!r} but its config says "
            f"{cfg.get('activation')!r}"
        )
    try:
        cfg["activation"] = canonical(str(cfg.get("activation")))
    except (TypeError, ValueError) as e:
        return f"config activation is not valid: {e}"
    if rec.get("data_fingerprint") is not None:
        cfg["data_fingerprint"] = rec["data_fingerprint"]
    for field in sorted(set(key) | set(cfg)):
        if key.get(field, "<missing>") != cfg.get(field, "<missing>"):
            return (
                f"config does not match its key: {field} is "
                f"{cfg.get(field, '<missing>')!r} in config, "
                f"{key.get(field, '<missing>')!r} in key"
            )
    return None


def read_results(path: str | os.PathLike) -> list[dict]:
    """The valid records of a `results.jsonl`, in file order.

    A line that is not UTF-8 JSON matching `RECORD_SCHEMA` (a torn last
    line of a killed write, a hand edit, `"final_test_acc": "high"`), or that
    repeats an earlier (configuration, seed), is skipped with a
    `RecordWarning` naming `file:line`; its run counts
    as not finished and trains again. The file itself is never rewritten.
    """
    return _io.read_records(
        path,
        RECORD_SCHEMA,
        identity=lambda r: (r["key"], r["seed"]),
        check=_check_record,
    )


def canonical(spec: str) -> str:
    """The registry's canonical form of an activation spec, used to drop
    duplicates and as the resume identity.

    Example:
        >>> canonical("ELU"), canonical("leaky_relu") == canonical("leaky_relu:0.01")
        ('elu:alpha=1.0', True)
    """
    from leakyjax._src.train.models import activation_factory

    return activation_factory(spec).canonical


def _stats(values: list) -> tuple[float, float]:
    v = np.array([x for x in values if x is not None], np.float64)
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def summarize(records: Sequence[dict], activations: Sequence[str]) -> list[Summary]:
    """Per-activation `Summary`, ranked by mean final test accuracy."""
    out = []
    for act in activations:
        recs = [r for r in records if r["activation"] == act]
        ok = [r for r in recs if not r["diverged"]]
        fa, fs = _stats([r["final_test_acc"] for r in ok])
        ba, bs = _stats([r["best_test_acc"] for r in ok])
        la, ls = _stats([r["final_test_loss"] for r in ok])
        dead = [r["dead_fraction"] for r in ok if r.get("dead_fraction")]
        dead_mean = (
            tuple(float(x) for x in np.mean(np.array(dead, np.float64), 0))
            if dead and len({len(d) for d in dead}) == 1
            else None
        )
        secs = [r["wall_time_per_seed"] for r in recs]
        cost = _report.costs_of(recs).get(act, _report.Cost(math.nan, None))
        out.append(
            Summary(
                act,
                len(recs),
                len(recs) - len(ok),
                fa,
                fs,
                ba,
                bs,
                la,
                ls,
                dead_mean,
                float(np.mean(secs)) if secs else float("nan"),
                cost.step_time,
                cost.step_memory,
            )
        )
    return sorted(
        out,
        key=lambda s: -s.final_acc_mean if math.isfinite(s.final_acc_mean) else 1e9,
    )


def _name_of(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or "?"
    return f"{mod}:{getattr(obj, '__qualname__', type(obj).__name__)}"


def resolve_model(model: Any) -> tuple[str, Any]:
    """`(name in records, model or None)` for `compare`'s `model`.

    A built-in name (`"mlp"`, `"cnn"`) gives `(name, None)`;
    `"package.module:function"` imports the factory.
    """
    if model is None:
        return "", None
    if isinstance(model, str):
        if model in MODELS:
            return model, None
        if ":" not in model:
            raise ValueError(
                f"compare: unknown model {model!r}; valid: {', '.join(MODELS)} or "
                "package.module:function (a factory f(act) -> flax module)."
            )
        factory = load_object(model, "model")
        if not callable(factory):
            raise ValueError(f"model: {model!r} is not callable.")
        return model, factory
    if not callable(model):
        raise ValueError(
            f"compare: model must be a name, package.module:function or a factory "
            f"f(act) -> flax module, got {type(model).__name__}."
        )
    return _name_of(model), model


def resolve_data(base: TrainConfig, data: Any, task: str | None):
    """`(name in records, Dataset)` for `compare`'s `data`."""
    if data is None:
        if task is not None:
            raise ValueError("compare: task= needs your own data (data=...).")
        return base.dataset, load_dataset(
            base.dataset,
            num_train=base.num_train,
            num_test=base.num_test,
            seed=base.data_seed,
        )
    if isinstance(data, str) and data in DATASETS:
        return resolve_data(base._replace(dataset=data), None, task)
    name = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "user"
    return name, as_dataset(data, task=task, name=name)


def compare(
    activations: Sequence[str] = DEFAULT_ACTS,
    *,
    seeds: int | Sequence[int] = 5,
    out: str | os.PathLike = "runs/compare",
    base: TrainConfig | None = None,
    model: str | Callable | None = None,
    data: Any = None,
    task: str | None = None,
    progress: bool = True,
    command: str | None = None,
    plots: bool = True,
    echo: bool = False,
    wait: bool = False,
    margin: float = 0.01,
) -> CompareResult:
    """Train `activations` side by side on the same task and seeds; report.

    Each activation is `base` with its `activation` replaced; its seeds train
    together in one compiled program. Finished (activation, seed) runs already
    in `out/results.jsonl` with the same configuration and data are read
    back, not trained again. Writes `results.jsonl`, `report.md` (with
    compile and train time) and PNG plots into `out`.

    Args:
        activations: registry specs (`"leaky_relu:0.2"`); duplicates are
            dropped.
        seeds: a count `n` (seeds `0..n-1`) or explicit seeds.
        out: output directory (created).
        base: the shared configuration (default `TrainConfig`).
        model: None (`base.model`), a built-in name, or your model: a factory
            `f(act) -> flax.linen.Module` or `f(act, *, rngs) ->
            flax.nnx.Module`, or `"package.module:function"` naming one.
            `act` is the parsed activation; call `act(train=train)` once
            per layer for a fresh module. The model maps a batch of inputs to
            `(batch, classes)` logits (`(batch, targets)` for regression).
        data: None (`base.dataset`), a built-in name, or your data: arrays
            (a dict or 4-tuple of `x_train, y_train, x_test, y_test`), an
            `.npz` path with those keys, or `"package.module:function"`
            returning them (see [`leakyjax.train.as_dataset`][leakyjax.train.as_dataset]).
        task: `"classification"` or `"regression"` for your data (None:
            inferred from the labels).
        progress: show a tqdm progress bar.
        command: the command line recorded in the report.
        plots: write the PNG plots.
        echo: print the final table.
        wait: when another process is working in `out`, wait for it instead
            of raising `Locked`.
        margin: the smallest difference of the final test score that matters
            (0.01: one point of accuracy, or 0.01 of R²): the report calls an
            activation better only by more than this, and equivalent within it.

    Returns:
        A `CompareResult`.

    Raises:
        ValueError: for an unknown activation, an invalid configuration, a
            model or data that do not fit (shapes, dtypes, missing keys) or an
            unusable `out` (a file, not writable), before anything trains.
        `Locked`: another process holds `out` (see `wait`).
        OSError: writing failed (e.g. a full disk); finished runs stay in
            `results.jsonl`.

    Example:
        >>> import tempfile
        >>> from leakyjax.train import TrainConfig, compare
        >>> base = TrainConfig(dataset="digits", steps=4, eval_every=4, batch_size=30,
        ...                    num_train=100, num_test=50, width=8)
        >>> with tempfile.TemporaryDirectory() as out:
        ...     res = compare(["relu", "prelu"], seeds=2, out=out, base=base,
        ...                   progress=False, plots=False)
        ...     [s.seeds for s in res.summaries], res.report.name
        ([2, 2], 'report.md')
    """
    base = TrainConfig() if base is None else base
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(
            f"compare: margin must be a finite number > 0 (0.01 = one point of "
            f"accuracy), got {margin!r}."
        )
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                'compare plots need matplotlib: pip install "leakyjax[train]" '
                "(or plots=False, --no-plots)"
            ) from e
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"compare: seeds must be >= 1, got {seeds}.")
        seeds = tuple(range(int(seeds)))
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"compare: seeds must be distinct and non-empty: {seeds!r}.")
    acts = _unique_activations(activations)
    if not acts:
        raise ValueError("compare: give at least one activation.")
    model_name, user_model = resolve_model(model)
    if model_name:
        base = base._replace(model=model_name)
    data_name, ds = resolve_data(base, data, task)
    base = base._replace(dataset=data_name)
    own_data = data is not None
    configs = {
        a: check_config(
            base._replace(activation=a), model=user_model is not None, dataset=own_data
        )
        for a in acts
    }
    from leakyjax._src.train.loop import check_batch, split_sizes

    check_batch(configs[acts[0]], ds, stacklevel=2)  # once, not per activation
    sizes = split_sizes(ds, base.val_fraction)
    if user_model is not None:  # does the model fit the data? before any training
        from leakyjax._src.train.loop import _check_output, _model_and_key

        net, _ = _model_and_key(configs[acts[0]], user_model, ds)
        import jax.numpy as jnp

        _check_output(net, jnp.asarray(ds.x_train[:1]), ds)
    fp = fingerprint(ds)

    out = _io.output_dir(out, files=OUTPUT_FILES)
    with _io.lock(out, wait=wait):
        return _compare_locked(
            out, acts, configs, seeds, base, progress, command, plots, echo,
            user_model=user_model, ds=ds, fp=fp, margin=margin, sizes=sizes,
        )  # fmt: skip


def _unique_activations(activations: Sequence[Any]) -> list[str]:
    """`activations` (specs or `ActivationFactory`s) as stripped spec strings,
    duplicates (in canonical form) dropped; the first spelling is kept as the
    label."""
    from leakyjax._src.train.models import ActivationFactory, activation_factory

    seen: dict[str, str] = {}
    for a in activations:
        if isinstance(a, ActivationFactory):
            seen.setdefault(a.canonical, a.spec)
            continue
        if not isinstance(a, str):
            raise ValueError(
                f"compare: an activation must be a spec string, got {a!r}."
            )
        a = a.strip()
        try:
            key = activation_factory(a).canonical
        except ValueError:
            key = a  # check_config names the error
        seen.setdefault(key, a)
    return list(seen.values())


def _compare_locked(
    out, acts, configs, seeds, base, progress, command, plots, echo, *,
    user_model, ds, fp, margin, sizes,
):  # fmt: skip
    path = out / RESULTS
    previous = read_results(path)
    done = {(r["key"], r["seed"]): r for r in previous}
    todo = {}
    for act, cfg in configs.items():
        missing = [s for s in seeds if (config_key(cfg, fp), s) not in done]
        if missing:
            todo[act] = missing
    n_read = sum(len(seeds) for _ in configs) - sum(len(m) for m in todo.values())
    if progress and not todo:
        print(
            f"nothing to train: {n_read} finished run(s) read back from {path}",
            file=sys.stderr,
        )
    bar = _io.progress(
        total=sum(configs[a].steps for a in todo),
        unit="step",
        desc="compare",
        enable=progress and bool(todo),
    )
    if progress and n_read and todo:
        bar.write(f"resuming: {n_read} finished run(s) read back from {path}")
    try:
        for act, missing in todo.items():
            bar.set_description(f"{act} ({len(missing)} seeds)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BatchWarning)  # said once above
                res = train(
                    configs[act],
                    seeds=missing,
                    model=user_model,
                    dataset=ds,
                    progress=bar.update,
                )
            recs = records_of(res, fp)
            _io.append_records(path, recs)
            for r in recs:
                done[(r["key"], r["seed"])] = r
    finally:
        bar.close()

    records = tuple(  # labelled as asked now (a resume may spell it differently)
        {**done[(config_key(cfg, fp), s)], "activation": act}
        for act, cfg in configs.items()
        for s in seeds
    )
    summaries = tuple(summarize(records, acts))
    plot_paths = _report.write_plots(out, records, summaries) if plots else ()
    report = _report.write_report(
        out,
        records,
        summaries,
        base=base,
        seeds=seeds,
        command=command,
        plots=plot_paths,
        margin=margin,
        sizes=sizes,
    )
    decision = _report.decide(records, summaries, margin=margin)
    result = CompareResult(
        out, summaries, records, tuple(todo), report, plot_paths, decision
    )
    if echo:
        print(result)
    return result
