"""The ``leakyjax`` console script (also ``python -m leakyjax``).

``leakyjax compare`` trains activations side by side and writes a report; a
bare ``leakyjax compare`` is the demo (mnist1d MLP, 7 activations, 5 seeds).

Exit status: 0 success; 2 a usage error (a bad flag value, an unusable
``--out``), reported as one line naming the flag and the fix; 1 a runtime
failure (a write that failed, e.g. a full disk; ``--out`` in use by another
leakyjax process; a missing extra), one line naming the path; 130 interrupted.
Finished runs are kept in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
import textwrap
from collections.abc import Sequence

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


def int_arg(lo: int, hi: int | None = None):
    """argparse type: an integer in ``[lo, hi]``."""

    def conv(s: str) -> int:
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer {rng}, got {s!r}"
            ) from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected an integer {rng}, got {v}")
        return v

    return conv


def float_arg(lo: float, hi: float | None = None, *, strict: bool = False):
    """argparse type: a finite number ``>= lo`` (``> lo`` if ``strict``), ``< hi``."""

    def conv(s: str) -> float:
        rel = ">" if strict else ">="
        rng = f"{rel} {lo}" if hi is None else f"in {'(' if strict else '['}{lo}, {hi})"
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number {rng}, got {s!r}"
            ) from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(
                f"expected a finite number {rng}, got {s!r}"
            )
        if v < lo or (strict and v == lo) or (hi is not None and v >= hi):
            raise argparse.ArgumentTypeError(f"expected a number {rng}, got {v}")
        return v

    return conv


_int, _float = int_arg, float_arg


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
    if min(vals) < 0:
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {s!r}")
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


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` except where the help already says it or the flag
    is a switch (default off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def _model_defaults() -> list:
    """``[(model, depth, width), ...]``, read from the models themselves."""
    from leakyjax._src.train.models import MODELS, make_model

    parts = []
    for m in MODELS:
        mod = make_model(m, "relu", 1)
        parts.append((m, mod.depth, mod.width))
    return parts


def _data_defaults() -> list:
    from leakyjax._src.train import data as _data

    return [(k, *v) for k, v in _data._DEFAULT_SIZES.items()]


def _add_common(p) -> None:
    """Flags of every command that writes into ``--out``."""
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another leakyjax process is using --out, wait for it to finish "
        "(default: exit at once with status 1)",
    )


def _add_compare(sub) -> None:
    from leakyjax._src.study.compare import DEFAULT_ACTS, OUTPUT_FILES
    from leakyjax._src.train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES

    md = _model_defaults()
    dd = _data_defaults()
    p = sub.add_parser(
        "compare",
        help="train activations side by side and write a report (the demo)",
        description=(
            "Train activations side by side on the same task and seeds (the seeds "
            "of each activation in one compiled program, data parallel over local "
            "devices) and write results.jsonl, report.md and PNG plots to --out. "
            "Re-running the same command resumes: finished runs are read back."
        ),
        epilog=EXIT_CODES,
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "--acts",
        default=",".join(DEFAULT_ACTS),
        help="comma-separated activation specs of the registry (leakyjax.get); "
        "the same activation spelled twice (elu, ELU) trains once",
    )
    p.add_argument("--dataset", default="mnist1d", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--model", default="mlp", help=f"one of {', '.join(MODELS)}")
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
        help="hidden layers (default: " + ", ".join(f"{m} {d}" for m, d, _ in md) + ")",
    )
    p.add_argument(
        "--width",
        type=_int(1),
        default=None,
        help="units (mlp) / channels (cnn) per layer (default: "
        + ", ".join(f"{m} {w}" for m, _, w in md)
        + ")",
    )
    p.add_argument(
        "--batch-size", type=_int(1), default=100, help="examples per optimiser step"
    )
    p.add_argument(
        "--optimizer", default="adamw", help=f"one of {', '.join(OPTIMIZERS)}"
    )
    p.add_argument(
        "--lr", type=_float(0.0, strict=True), default=1e-2, help="peak learning rate"
    )
    p.add_argument(
        "--schedule", default="warmup_cosine", help=f"one of {', '.join(SCHEDULES)}"
    )
    p.add_argument(
        "--warmup", type=_int(0), default=100, help="linear warmup steps (< --steps)"
    )
    p.add_argument(
        "--weight-decay",
        type=_float(0.0),
        default=1e-4,
        help="AdamW decoupled weight decay (PReLU slopes excluded)",
    )
    p.add_argument(
        "--clip", type=_float(0.0), default=1.0, help="global-norm clip (0: off)"
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
        help="training examples, validation share included (default: "
        + ", ".join(f"{k} {n}" for k, n, _ in dd)
        + ")",
    )
    p.add_argument(
        "--num-test",
        type=_int(1),
        default=None,
        help="test examples (default: " + ", ".join(f"{k} {n}" for k, _, n in dd) + ")",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="delete --out/results.jsonl first instead of resuming",
    )
    _add_common(p)
    p.set_defaults(func=_run_compare, out_files=OUTPUT_FILES)


def _run_compare(args, argv: Sequence[str]) -> int:
    from leakyjax._src.registry import available
    from leakyjax._src.study.compare import RESULTS, compare
    from leakyjax._src.train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES, TrainConfig
    from leakyjax._src.train.models import validate_activation as validate

    for flag, value, valid in (
        ("--dataset", args.dataset, DATASETS),
        ("--model", args.model, MODELS),
        ("--optimizer", args.optimizer, OPTIMIZERS),
        ("--schedule", args.schedule, SCHEDULES),
    ):
        if value not in valid:
            raise UsageError(
                f"{flag}: unknown value {value!r}; valid: {', '.join(valid)}"
            )
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

    n = args.num_train or _data._DEFAULT_SIZES[args.dataset][0]
    n_val = round(args.val_fraction * n)
    n_val = max(n_val, 1) if args.val_fraction > 0 else 0
    if n - n_val < 1:
        raise UsageError(
            f"--num-train {n} leaves no training example once --val-fraction "
            f"{args.val_fraction} holds out {n_val}; give a larger --num-train or "
            "--val-fraction 0"
        )
    base = TrainConfig(
        dataset=args.dataset,
        model=args.model,
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
        init=args.init,
        recycle_every=args.recycle or None,
        recycle_tau=args.recycle_tau,
    )
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
    try:
        compare(
            acts,
            seeds=args.seeds,
            out=args.out,
            base=base,
            progress=not args.no_progress,
            command=command,
            plots=not args.no_plots,
            echo=True,
            wait=args.wait,
        )
    except ValueError as e:  # invalid combination found while building configs
        raise UsageError(str(e)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``leakyjax`` argument parser (subcommands ``compare``, ``study``)."""
    parser = _Parser(prog="leakyjax", description=DESCRIPTION, epilog=EXIT_CODES)
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
    """``warnings.showwarning`` printing leakyjax's warnings as one line."""
    import warnings

    from leakyjax._src.io import RecordWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RecordWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def _run(args, argv: Sequence[str], prog: str) -> int:
    """Checks and locks ``--out`` (when the command has one), then runs."""
    import warnings

    from leakyjax._src import io as _io

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
        with lock:
            if args.func is _run_compare:
                return int(args.func(args, argv) or 0)
            return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leakyjax`` console script; returns the exit status
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
    except ImportError as e:  # a missing extra found late
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished runs are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
