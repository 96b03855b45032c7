"""The ``leakyjax`` console script (also ``python -m leakyjax``).

``leakyjax compare`` trains activations side by side and writes a report; a
bare ``leakyjax compare`` is the demo (mnist1d MLP, 7 activations, 5 seeds).
Errors in the command line exit with status 2 and one line naming the bad
value and the valid ones.
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


def _add_compare(sub) -> None:
    from leakyjax._src.study.compare import DEFAULT_ACTS
    from leakyjax._src.train import DATASETS, MODELS, OPTIMIZERS, SCHEDULES

    p = sub.add_parser(
        "compare",
        help="train activations side by side and write a report (the demo)",
        description=(
            "Train activations side by side on the same task and seeds (the seeds "
            "of each activation in one compiled program, data parallel over local "
            "devices) and write results.jsonl, report.md and PNG plots to --out. "
            "Re-running the same command resumes: finished runs are read back."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--acts",
        default=",".join(DEFAULT_ACTS),
        help="comma-separated activation specs of the registry (leakyjax.get)",
    )
    p.add_argument("--dataset", default="mnist1d", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--model", default="mlp", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--seeds", type=_seeds, default="5", help="a count or seed list")
    p.add_argument("--steps", type=_int(1), default=3000, help="optimiser steps")
    p.add_argument("--out", default=os.path.join("runs", "compare"), help="output dir")
    p.add_argument("--depth", type=_int(1), default=None, help="hidden layers")
    p.add_argument("--width", type=_int(1), default=None, help="units / channels")
    p.add_argument("--batch-size", type=_int(1), default=100)
    p.add_argument(
        "--optimizer", default="adamw", help=f"one of {', '.join(OPTIMIZERS)}"
    )
    p.add_argument("--lr", type=_float(0.0, strict=True), default=1e-2)
    p.add_argument(
        "--schedule", default="warmup_cosine", help=f"one of {', '.join(SCHEDULES)}"
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
    p.add_argument("--num-train", type=_int(1), default=None)
    p.add_argument("--num-test", type=_int(1), default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="delete --out/results.jsonl first instead of resuming",
    )
    p.set_defaults(func=_run_compare)


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
    if args.fresh:
        try:
            os.remove(os.path.join(args.out, RESULTS))
        except FileNotFoundError:
            pass
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
        )
    except ValueError as e:  # invalid combination found while building configs
        raise UsageError(str(e)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``leakyjax`` argument parser (subcommands ``compare``, ``study``)."""
    parser = _Parser(prog="leakyjax", description=DESCRIPTION)
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
    try:
        if args.func is _run_compare:
            return int(args.func(args, argv) or 0)
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished runs are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
