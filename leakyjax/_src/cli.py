"""The ``leakyjax`` console script (also ``python -m leakyjax``).

``leakyjax compare`` trains activations side by side and writes a report; a
bare ``leakyjax compare`` is the demo (mnist1d MLP, 7 activations, 5 seeds).
Errors in the command line exit with status 2 and one line naming the bad
value and the valid ones.

Building the parser imports nothing beyond the standard library, so
``leakyjax --help``, ``--version`` and the jax-only study ``born-dead`` work on
a jax-only install; commands that need an extra name it. Training commands turn
on JAX's persistent compilation cache (``~/.cache/leakyjax/jax``, or
``$LEAKYJAX_CACHE_DIR``; off with ``--no-compile-cache`` or
``LEAKYJAX_NO_COMPILE_CACHE=1``), so a rerun or a resume compiles nothing new.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

DESCRIPTION = "leakyjax: the leaky rectifier family for JAX and Flax."


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block, no traceback)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """A bad command-line value: reported as one line, exit status 2."""


def _int(lo: int):
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {lo}, got {s!r}"
            ) from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {v}")
        return v

    return conv


def _float(lo: float | None = None, *, strict: bool = False):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        if lo is not None and (v < lo or (strict and v == lo)):
            rel = ">" if strict else ">="
            raise argparse.ArgumentTypeError(f"expected a number {rel} {lo}, got {v}")
        return v

    return conv


def _seeds(s: str) -> tuple[int, ...]:
    """``5`` -> seeds 0..4; ``3,7,11`` -> those seeds."""
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
    return tuple(vals)


def _is_arg(piece: str) -> bool:
    """``upper=0.3`` or ``0.3``: an argument continuing the previous spec."""
    if "=" in piece:
        return True
    try:
        float(piece)
    except ValueError:
        return False
    return True


def split_activations(text: str) -> list[str]:
    """Split ``--acts`` on commas, keeping multi-argument specs together.

    ``"relu,rrelu:lower=0.1,upper=0.3"`` -> ``["relu", "rrelu:lower=0.1,upper=0.3"]``:
    a piece that is an argument (``upper=0.3``, ``0.3``) continues the
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


_DEMO_ACTS = "relu,leaky_relu:0.01,leaky_relu:0.2,prelu,rrelu,elu,tanh"
#: what --quick changes (unless the flag is given): a seconds-long smoke run
_QUICK = dict(
    acts="relu,leaky_relu:0.2",
    seeds=(0, 1),
    steps=100,
    warmup=10,
    eval_every=50,
    num_train=500,
    num_test=200,
)


def _add_compare(sub) -> None:
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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--acts",
        default=_DEMO_ACTS,
        help="comma-separated activation specs of the registry (leakyjax.get)",
    )
    p.add_argument(
        "--dataset",
        default="mnist1d",
        help="mnist1d, digits or regression",
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
        help="mlp, cnn, or package.module:function (your factory f(act) -> "
        "flax.linen module, or f(act, *, rngs) -> nnx module)",
    )
    p.add_argument("--seeds", type=_seeds, default="5", help="a count or seed list")
    p.add_argument("--steps", type=_int(1), default=3000, help="optimiser steps")
    p.add_argument("--out", default=os.path.join("runs", "compare"), help="output dir")
    p.add_argument("--depth", type=_int(1), default=None, help="hidden layers")
    p.add_argument("--width", type=_int(1), default=None, help="units / channels")
    p.add_argument("--batch-size", type=_int(1), default=100)
    p.add_argument("--optimizer", default="adamw", help="adamw, adam or sgd")
    p.add_argument("--lr", type=_float(0.0, strict=True), default=1e-2)
    p.add_argument(
        "--schedule", default="warmup_cosine", help="warmup_cosine or constant"
    )
    p.add_argument("--warmup", type=_int(0), default=100, help="warmup steps")
    p.add_argument("--weight-decay", type=_float(0.0), default=1e-4)
    p.add_argument(
        "--clip", type=_float(0.0), default=1.0, help="global-norm clip (0: off)"
    )
    p.add_argument("--dropout", type=_float(0.0), default=0.0)
    p.add_argument("--batch-norm", action="store_true", help="BatchNorm layers")
    p.add_argument(
        "--val-fraction", type=_float(0.0), default=0.1, help="validation share"
    )
    p.add_argument("--eval-every", type=_int(1), default=100)
    p.add_argument(
        "--patience",
        type=_int(0),
        default=0,
        help="early stopping after this many evaluations without a better "
        "validation score (0: off)",
    )
    p.add_argument("--num-train", type=_int(1), default=None)
    p.add_argument("--num-test", type=_int(1), default=None)
    p.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run: "
        + ", ".join(f"--{k.replace('_', '-')} {_show(v)}" for k, v in _QUICK.items())
        + " (flags you give win)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="delete --out/results.jsonl first instead of resuming",
    )
    _add_cache_flag(p)
    p.set_defaults(func=_run_compare, parser=p)


def _show(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _add_cache_flag(p) -> None:
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not use JAX's persistent compilation cache "
        "(also: LEAKYJAX_NO_COMPILE_CACHE=1)",
    )


def cache_dir() -> str:
    """Where the CLI keeps JAX's persistent compilation cache.

    ``$LEAKYJAX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/leakyjax/jax``,
    else ``~/.cache/leakyjax/jax``.
    """
    explicit = os.environ.get("LEAKYJAX_CACHE_DIR")
    if explicit:
        return explicit
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(root, "leakyjax", "jax")


def enable_compile_cache(args) -> str | None:
    """Turns on JAX's persistent compilation cache unless switched off.

    Every program is cached, however fast it compiled, so a rerun or a resume
    of the same command compiles nothing new. Returns the directory, or None
    when off (``--no-compile-cache`` or ``LEAKYJAX_NO_COMPILE_CACHE`` set to a
    non-empty value other than ``0``).
    """
    off = os.environ.get("LEAKYJAX_NO_COMPILE_CACHE", "")
    if getattr(args, "no_compile_cache", False) or off not in ("", "0"):
        return None
    import jax

    path = cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:  # an unwritable home: run without the cache
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def _run_compare(args, argv: Sequence[str]) -> int:
    from leakyjax._src.registry import available
    from leakyjax._src.study.compare import RESULTS, compare
    from leakyjax._src.train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES, TrainConfig
    from leakyjax._src.train.models import validate_activation as validate

    if args.quick:
        for name, value in _QUICK.items():
            if getattr(args, name) == args.parser.get_default(name) or (
                name == "seeds" and getattr(args, name) == _seeds("5")
            ):
                setattr(args, name, value)
    checks = [
        ("--optimizer", args.optimizer, OPTIMIZERS),
        ("--schedule", args.schedule, SCHEDULES),
    ]
    if args.data is None:
        checks.append(("--dataset", args.dataset, DATASETS))
    if ":" not in args.model:
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
    base = TrainConfig(
        dataset=args.dataset,
        model=args.model if ":" not in args.model else "mlp",
        depth=args.depth,
        width=args.width,
        dropout=args.dropout,
        batch_norm=args.batch_norm,
        steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        schedule=args.schedule,
        warmup_steps=args.warmup,
        weight_decay=args.weight_decay,
        clip_norm=args.clip or None,
        val_fraction=args.val_fraction,
        eval_every=args.eval_every,
        patience=args.patience or None,
        num_train=args.num_train,
        num_test=args.num_test,
    )
    if args.fresh:
        try:
            os.remove(os.path.join(args.out, RESULTS))
        except FileNotFoundError:
            pass
    command = "leakyjax " + " ".join(shlex.quote(a) for a in argv)
    enable_compile_cache(args)
    try:
        compare(
            acts,
            seeds=args.seeds,
            out=args.out,
            base=base,
            model=args.model if ":" in args.model else None,
            data=args.data,
            task=args.task,
            progress=not args.no_progress,
            command=command,
            plots=not args.no_plots,
            echo=True,
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


_EXTRAS = {"flax": "flax", "optax": "train", "matplotlib": "train", "tqdm": "train"}
_EXTRAS.update(sklearn="train", mnist1d="train", equinox="equinox")


def _extra_hint(err: ImportError) -> str:
    """The message of a missing-package error, naming the extra to install."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    if isinstance(err, ModuleNotFoundError) and name in _EXTRAS:
        extra = "train" if name == "flax" else _EXTRAS[name]
        return f'this command needs {name}: pip install "leakyjax[{extra}]"'
    return str(err)


def build_parser() -> argparse.ArgumentParser:
    """The ``leakyjax`` argument parser (subcommands ``compare``, ``study``)."""
    parser = _Parser(prog="leakyjax", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"leakyjax {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_compare(sub)
    try:
        from leakyjax._src.study.studies import add_study_parser
    except ModuleNotFoundError as e:  # the studies module has not landed yet
        if e.name != "leakyjax._src.study.studies":
            raise
    else:
        add_study_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leakyjax`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    prog = f"leakyjax {args.command}"
    try:
        if args.func is _run_compare:
            return int(args.func(args, argv) or 0)
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # a missing extra: say which one, no traceback
        print(f"{prog}: error: {_extra_hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished runs are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
