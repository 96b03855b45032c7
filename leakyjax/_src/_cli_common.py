"""What the `leakyjax` commands share: argument types and the compile cache.

Below `leakyjax._src.cli` and the studies' parser (`leakyjax._src.study.studies`),
so that neither imports the other.
Imports nothing heavier than the standard library until a cache is turned on.
"""

from __future__ import annotations

import argparse
import math
import os


def int_arg(lo: int, hi: int | None = None):
    """argparse type: an integer in `[lo, hi]`."""

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
    """argparse type: a finite number `>= lo` (`> lo` if `strict`), `< hi`."""

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


def cache_dir() -> str:
    """Where the CLI keeps JAX's persistent compilation cache.

    `$LEAKYJAX_CACHE_DIR` if set, else `$XDG_CACHE_HOME/leakyjax/jax`,
    else `~/.cache/leakyjax/jax`.
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
    when off (`--no-compile-cache` or `LEAKYJAX_NO_COMPILE_CACHE` set to a
    non-empty value other than `0`).
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
