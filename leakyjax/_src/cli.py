"""The `leakyjax` console script (also `python -m leakyjax`).

`leakyjax compare` trains activations side by side and writes a report; a
bare `leakyjax compare` is the demo (mnist1d MLP, 7 activations, 5 seeds).

Exit status: 0 success; 2 a usage error (a bad flag value, an unusable
`--out`), reported as one line naming the flag and the fix; 1 a runtime
failure (a write that failed, e.g. a full disk; `--out` in use by another
leakyjax process; a missing extra), one line naming the path; 130 interrupted.
Finished runs are kept in every case.

Building the parser needs no extra (flax, optax, ...): `leakyjax --help`,
`--version` and the jax-only study `born-dead` work on a jax-only install;
commands that need an extra name it. Training commands turn on JAX's persistent
compilation cache (`~/.cache/leakyjax/jax`, or `$LEAKYJAX_CACHE_DIR`; off
with `--no-compile-cache` or `LEAKYJAX_NO_COMPILE_CACHE=1`), so a rerun or
a resume compiles nothing new.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from leakyjax._src._cli_common import cache_dir as cache_dir
from leakyjax._src._cli_common import enable_compile_cache as enable_compile_cache
from leakyjax._src._cli_common import float_arg as float_arg
from leakyjax._src._cli_common import int_arg as int_arg

DESCRIPTION = "leakyjax: the leaky rectifier family for JAX and Flax."
EXIT_CODES = (
    "exit status: 0 success; 2 usage error (bad flag value, unusable --out); "
    "1 runtime failure (a failed write such as a full disk, --out in use by "
    "another leakyjax process, a missing extra); 130 interrupted. Finished runs "
    "are kept in every case."
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block, no traceback)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """A bad command-line value: reported as one line, exit status 2."""


_int, _float = int_arg, float_arg


def _seeds(s: str) -> tuple[int, ...]:
    """`5` -> seeds 0..4; `3,7,11` -> those seeds."""
    parts = [p.strip() for p in s.split(",") if p.strip()]
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count (5) or a list of seeds (0,1,2), got {s!r}"
        ) from None
    if len(vals) == 1 and "," not in s:
        if vals[0] < 1:
            raise argparse.ArgumentTypeError(f"need at least 1 seed, got {s!r}")
        return tuple(range(vals[0]))
    if not vals or len(set(vals)) != len(vals):
        raise argparse.ArgumentTypeError(f"seeds must be distinct, got {s!r}")
    if min(vals) < 0:
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {s!r}")
    return tuple(vals)


def _is_arg(piece: str) -> bool:
    """`upper=0.3` or `0.3`: an argument continuing the previous spec."""
    if "=" in piece:
        return True
    try:
        float(piece)
    except ValueError:
        return False
    return True


def split_activations(text: str) -> list[str]:
    """Split `--acts` on commas, keeping multi-argument specs together.

    `"relu,rrelu:lower=0.1,upper=0.3"` -> `["relu", "rrelu:lower=0.1,upper=0.3"]`:
    a piece that is an argument (`upper=0.3`, `0.3`) continues the
    previous spec.
    """
    from leakyjax._src.registry import available

    names = set(available())
    out: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        head = piece.split(":")[0].strip()
        if out and head not in names and ":" not in piece and _is_arg(piece):
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` except where the help already says it or the flag
    is a switch (default off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


_DEMO_ACTS = ("relu", "leaky_relu:0.01", "leaky_relu:0.2", "prelu", "rrelu", "elu")
_DEMO_ACTS += ("tanh",)
#: what --quick changes (unless the flag is given): a seconds-long smoke run
_QUICK = dict(
    acts="relu,leaky_relu:0.2",
    seeds=(0, 1),
    steps=100,
    warmup_steps=10,
    eval_every=50,
    num_train=500,
    num_test=200,
)


#: Defaults and choices of the training stack, for the help texts. Written out
#: here so that `--help` and `--version` import neither the training stack
#: (flax, optax) nor jax beyond `import leakyjax`; a test checks they equal
#: the stack's own (`train_meta()`).
HELP_META: dict[str, Any] = dict(
    acts=_DEMO_ACTS,
    files=(
        "results.jsonl",
        "report.md",
        "curves.png",
        "final_accuracy.png",
        "dead_fraction.png",
    ),
    datasets=("mnist1d", "digits", "regression"),
    models=("mlp", "cnn"),
    optimizers=("adamw", "adam", "sgd"),
    schedules=("warmup_cosine", "constant"),
    md=[("mlp", 2, 100), ("cnn", 3, 25)],
    dd=[("mnist1d", 4000, 1000), ("digits", 1437, 360), ("regression", 2000, 500)],
)


def train_meta() -> dict:
    """[HELP_META][] as read from the training stack itself (needs flax)."""
    from leakyjax._src.train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES
    from leakyjax._src.train import data as _data
    from leakyjax._src.train.compare import DEFAULT_ACTS, OUTPUT_FILES
    from leakyjax._src.train.models import _DEFAULTS

    return dict(
        acts=DEFAULT_ACTS,
        files=OUTPUT_FILES,
        datasets=DATASETS,
        models=MODELS,
        optimizers=OPTIMIZERS,
        schedules=SCHEDULES,
        md=[(m, *_DEFAULTS[m]) for m in MODELS],
        dd=[(k, *v) for k, v in _data._DEFAULT_SIZES.items()],
    )


def _show(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _add_cache_flag(p) -> None:
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use JAX's persistent compilation cache "
        "(also: LEAKYJAX_NO_COMPILE_CACHE=1)",
    )


def _add_common(p) -> None:
    """Flags of every command that writes into `--out`."""
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another leakyjax process is using --out, wait for it to finish "
        "(default: exit at once with status 1)",
    )


def _defaults(rows, column: int, fallback: str) -> str:
    """`(default: name value, ...)` from `(name, value1, value2)` rows."""
    return (
        "(default: "
        + (", ".join(f"{r[0]} {r[column]}" for r in rows) or fallback)
        + ")"
    )


def _add_compare(sub) -> None:
    meta = HELP_META
    md, dd = meta["md"], meta["dd"]
    p = sub.add_parser(
        "compare",
        help="train activations side by side and write a report (the demo)",
        description=(
            "Train activations side by side on the same task and seeds (the seeds "
            "of each activation in one compiled program, data parallel over local "
            "devices) and write results.jsonl, report.md and PNG plots to --out. "
            "Re-running the same command resumes: finished runs are read back. "
            "Bring your own model (--model package.module:function, a factory "
            "f(act) -> flax module) and data (--data file.npz with x_train, "
            "y_train, x_test, y_test, or package.module:function)."
        ),
        epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "--acts",
        default=",".join(meta["acts"]),
        help="comma-separated activation specs of the registry (leakyjax.get); "
        "the same activation spelled twice (elu, ELU) trains once",
    )
    p.add_argument(
        "--dataset", default="mnist1d", help=f"one of {', '.join(meta['datasets'])}"
    )
    p.add_argument(
        "--data",
        default=None,
        help="your data instead of --dataset: an .npz with x_train, y_train, "
        "x_test, y_test, or package.module:function returning them",
    )
    p.add_argument(
        "--task",
        default=None,
        choices=("classification", "regression"),
        help="the task of --data (default: inferred from the labels)",
    )
    p.add_argument(
        "--model",
        default="mlp",
        help=f"one of {', '.join(meta['models'])}, or package.module:function (your "
        "factory f(act) -> flax.linen module, or f(act, *, rngs) -> nnx module)",
    )
    p.add_argument(
        "--seeds",
        type=_seeds,
        default="5",
        help="a count N (seeds 0..N-1) or a list of distinct seeds >= 0 (3,7,11)",
    )
    p.add_argument("--steps", type=_int(1), default=3000, help="optimiser steps")
    p.add_argument(
        "--out",
        default=os.path.join("runs", "compare"),
        help="output directory (created; resumable; one process at a time)",
    )
    p.add_argument(
        "--depth",
        type=_int(1),
        default=None,
        help="hidden layers " + _defaults(md, 1, "per model"),
    )
    p.add_argument(
        "--width",
        type=_int(1),
        default=None,
        help="units (mlp) / channels (cnn) per layer " + _defaults(md, 2, "per model"),
    )
    p.add_argument(
        "--batch-size", type=_int(1), default=100, help="examples per optimiser step"
    )
    p.add_argument(
        "--optimizer", default="adamw", help=f"one of {', '.join(meta['optimizers'])}"
    )
    p.add_argument(
        "--lr",
        dest="learning_rate",
        type=_float(0.0, strict=True),
        default=1e-2,
        help="peak learning rate",
    )
    p.add_argument(
        "--schedule",
        default="warmup_cosine",
        help=f"one of {', '.join(meta['schedules'])}",
    )
    p.add_argument(
        "--warmup",
        dest="warmup_steps",
        type=_int(0),
        default=100,
        help="linear warmup steps (< --steps)",
    )
    p.add_argument(
        "--weight-decay",
        type=_float(0.0),
        default=1e-4,
        help="AdamW decoupled weight decay (PReLU slopes excluded)",
    )
    p.add_argument(
        "--clip",
        dest="clip_norm",
        type=_float(0.0),
        default=1.0,
        help="global-norm clip (0: off)",
    )
    p.add_argument(
        "--dropout", type=_float(0.0, 1.0), default=0.0, help="dropout rate in [0, 1)"
    )
    p.add_argument(
        "--batch-norm", action="store_true", help="BatchNorm before each activation"
    )
    p.add_argument(
        "--val-fraction",
        type=_float(0.0, 1.0),
        default=0.1,
        help="share of the training set held out for validation, in [0, 1)",
    )
    p.add_argument(
        "--eval-every", type=_int(1), default=100, help="steps between evaluations"
    )
    p.add_argument(
        "--patience",
        type=_int(0),
        default=0,
        help="early stopping after this many evaluations without a better "
        "validation score (0: off)",
    )
    p.add_argument(
        "--init",
        default="he",
        choices=("he", "rai"),
        help="hidden-layer initialisation: He with the activation's gain, or the "
        "randomized asymmetric initialisation of Lu et al. 2020",
    )
    p.add_argument(
        "--recycle",
        dest="recycle_every",
        type=_int(0),
        default=0,
        metavar="F",
        help="recycle tau-dormant units every F steps (ReDo, Sokar et al. 2023; "
        "0: off); results.jsonl records the units recycled per layer",
    )
    p.add_argument(
        "--recycle-tau",
        type=_float(0.0),
        default=0.1,
        help="dormancy threshold tau of --recycle",
    )
    p.add_argument(
        "--num-train",
        type=_int(1),
        default=None,
        help="training examples, validation share included "
        + _defaults(dd, 1, "per data set"),
    )
    p.add_argument(
        "--num-test",
        type=_int(1),
        default=None,
        help="test examples " + _defaults(dd, 2, "per data set"),
    )
    p.add_argument(
        "--margin",
        type=_float(0.0, strict=True),
        default=1.0,
        help="the smallest difference of the final test score that matters, in "
        "points (hundredths: of accuracy, or of R²): the report names a best "
        "activation only when it wins by more, and calls activations equivalent "
        "within it",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (also off when stderr is not a terminal)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="delete --out/results.jsonl first instead of resuming",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run: "
        + ", ".join(f"--{k.replace('_', '-')} {_show(v)}" for k, v in _QUICK.items())
        + " (flags you give win)",
    )
    _add_cache_flag(p)
    _add_common(p)
    p.set_defaults(func=_run_compare, out_files=meta["files"], parser=p)


#: TrainConfig fields whose flag value 0 means "off" (None in the config)
_ZERO_IS_OFF = ("clip_norm", "patience", "recycle_every")


def config_from_args(args: argparse.Namespace):
    """The [TrainConfig][leakyjax.train.TrainConfig] of parsed `compare` flags.

    Every flag whose `dest` is a `TrainConfig` field is taken as given
    (`--lr` is `learning_rate`, `--warmup` `warmup_steps`, ...); a 0
    of `--clip`, `--patience` or `--recycle` is None (off). The activation
    is the config's default: `compare` replaces it per activation.
    """
    from leakyjax._src.train import TrainConfig

    fields = {f: getattr(args, f) for f in TrainConfig._fields if hasattr(args, f)}
    for f in _ZERO_IS_OFF:
        fields[f] = fields[f] or None
    if ":" in args.model:  # the user's model: compare records its reference
        fields["model"] = TrainConfig._field_defaults["model"]
    return TrainConfig(**fields)


def _cwd_on_path() -> None:
    """Puts the working directory first on `sys.path`, as `python -m` does,
    so `--model mymodels:f` finds `./mymodels.py` from the console script."""
    cwd = os.getcwd()
    if not any(p in ("", os.curdir, cwd) for p in sys.path):
        sys.path.insert(0, cwd)


def _run_compare(args, argv: Sequence[str]) -> int:
    from leakyjax._src.registry import available
    from leakyjax._src.train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES
    from leakyjax._src.train.compare import RESULTS, compare
    from leakyjax._src.train.models import validate_activation as validate

    if args.quick:
        for name, value in _QUICK.items():
            if getattr(args, name) == args.parser.get_default(name) or (
                name == "seeds" and getattr(args, name) == _seeds("5")
            ):
                setattr(args, name, value)
    own_model = ":" in args.model
    if own_model or (args.data is not None and ":" in args.data):
        _cwd_on_path()
    checks = [
        ("--optimizer", args.optimizer, OPTIMIZERS),
        ("--schedule", args.schedule, SCHEDULES),
    ]
    if args.data is None:
        checks.append(("--dataset", args.dataset, DATASETS))
    if not own_model:
        checks.append(("--model", args.model, MODELS))
    for flag, value, valid in checks:
        if value not in valid:
            raise UsageError(
                f"{flag}: unknown value {value!r}; valid: {', '.join(valid)}"
                + (" or package.module:function" if flag == "--model" else "")
            )
    if args.task is not None and args.data is None:
        raise UsageError("--task needs --data (your own data)")
    acts = split_activations(args.acts)
    if not acts:
        raise UsageError(
            f"--acts: no activation given; valid: {', '.join(available())}"
        )
    for a in acts:
        try:
            validate(a)
        except ValueError as e:
            raise UsageError(f"--acts: {e}") from None
    if not args.dropout < 1:
        raise UsageError(f"--dropout: must be in [0, 1), got {args.dropout}")
    if not args.val_fraction < 1:
        raise UsageError(f"--val-fraction: must be in [0, 1), got {args.val_fraction}")
    if args.patience and args.val_fraction == 0:
        raise UsageError("--patience needs a validation split: set --val-fraction > 0")
    from leakyjax._src.train import data as _data

    n = args.num_train or _data._DEFAULT_SIZES.get(args.dataset, (2,))[0]
    n_val = round(args.val_fraction * n)
    n_val = max(n_val, 1) if args.val_fraction > 0 else 0
    if args.data is None and n - n_val < 1:
        raise UsageError(
            f"--num-train {n} leaves no training example once --val-fraction "
            f"{args.val_fraction} holds out {n_val}; give a larger --num-train or "
            "--val-fraction 0"
        )
    base = config_from_args(args)
    if args.fresh:  # main() holds the lock on --out already
        try:
            os.remove(os.path.join(args.out, RESULTS))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise UsageError(
                f"--fresh: cannot remove {e.filename!r}: {e.strerror}"
            ) from None
    command = "leakyjax " + " ".join(shlex.quote(a) for a in argv)
    enable_compile_cache(args)
    try:
        compare(
            acts,
            seeds=args.seeds,
            out=args.out,
            base=base,
            model=args.model if own_model else None,
            data=args.data,
            task=args.task,
            progress=not args.no_progress,
            command=command,
            plots=not args.no_plots,
            echo=True,
            wait=args.wait,
            margin=args.margin / 100,
        )
    except (ValueError, TypeError) as e:  # a bad combination, model or data
        raise UsageError(str(e)) from None
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("leakyjax")
    except PackageNotFoundError:  # pragma: no cover - a source checkout
        return "unknown"


_EXTRAS = {"flax": "train", "optax": "train", "matplotlib": "train", "tqdm": "train"}
_EXTRAS.update(sklearn="train", mnist1d="train", equinox="equinox")


def _extra_hint(err: ImportError) -> str:
    """The message of a missing-package error, naming the extra to install."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    if isinstance(err, ModuleNotFoundError) and name in _EXTRAS:
        return f'this command needs {name}: pip install "leakyjax[{_EXTRAS[name]}]"'
    return str(err)


def build_parser() -> argparse.ArgumentParser:
    """The `leakyjax` argument parser (subcommands `compare`, `study`)."""
    parser = _Parser(prog="leakyjax", description=DESCRIPTION, epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"leakyjax {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_compare(sub)
    try:
        from leakyjax._src.study.studies import add_study_parser
    except ModuleNotFoundError as e:  # the studies module has not landed yet
        if e.name != "leakyjax._src.study.studies":
            raise
    else:
        study = add_study_parser(sub)
        study.epilog = (study.epilog or "") + textwrap.fill(EXIT_CODES, 79)
        if "--wait" not in study._option_string_actions:
            _add_common(study)
    return parser


def _warning_line(prog: str):
    """`warnings.showwarning` printing leakyjax's warnings as one line."""
    import warnings

    from leakyjax._src.io import RecordWarning

    default = warnings.showwarning
    ours: tuple[type[Warning], ...] = (RecordWarning,)
    try:
        from leakyjax._src.train.loop import BatchWarning
    except ImportError:  # no training extra: no training warnings either
        pass
    else:
        ours += (BatchWarning,)

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ours):
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _run(args, argv: Sequence[str], prog: str) -> int:
    """Checks and locks `--out` (when the command has one), then runs."""
    import warnings

    from leakyjax._src import io as _io

    if hasattr(args, "no_progress") and not _is_terminal(sys.stderr):
        args.no_progress = True  # quiet in a log: no bars, no carriage returns
    out = getattr(args, "out", None)
    lock = contextlib.nullcontext()
    if out is not None:
        try:
            out = _io.output_dir(out, files=getattr(args, "out_files", ()))
        except ValueError as e:
            raise UsageError(f"--out: {e}") from None
        lock = _io.lock(out, wait=getattr(args, "wait", False))
    with warnings.catch_warnings():
        warnings.simplefilter("always", _io.RecordWarning)
        warnings.showwarning = _warning_line(prog)
        with lock, _io.terminate_as_interrupt():  # SIGTERM: as Ctrl-C
            if args.func is _run_compare:
                return int(args.func(args, argv) or 0)
            return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `leakyjax` console script; returns the exit status
    (0 success, 2 usage error, 1 runtime failure, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
    except ImportError as e:  # a missing extra: say which one, no traceback
        print(f"leakyjax: error: {e}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    prog = f"leakyjax {args.command}"
    from leakyjax._src import io as _io

    try:
        return _run(args, argv, prog)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except _io.Locked as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(
            f"{prog}: error: {_io.describe(e)}; finished runs are kept.",
            file=sys.stderr,
        )
        return 1
    except ImportError as e:  # a missing extra: say which one, no traceback
        print(f"{prog}: error: {_extra_hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished runs are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
