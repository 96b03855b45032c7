"""Seeds in one program versus seeds one by one: the timing the issue asks for.

``python -m leakyjax._src.train.timing [--steps N] [--seeds K] [--act SPEC]``
prints a JSON line. Both variants are timed warm (compiled once beforehand, so
the ratio is about execution: one vmapped program over K seeds versus K
programs of one seed), and the cold times (compilation included, a fresh
process's first call) are reported as well.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import NamedTuple

from leakyjax._src.train.data import load_dataset
from leakyjax._src.train.loop import _PROGRAMS, TrainConfig, train


class SeedTiming(NamedTuple):
    """Wall-clock seconds of K seeds trained together versus one by one.

    Attributes:
        seeds: the seeds.
        together_cold: ``train(config, seeds)`` in a fresh cache (compiles).
        one_by_one_cold: ``K`` calls ``train(config, (s,))``, fresh cache.
        together: warm ``train(config, seeds)``, best of ``repeats``.
        one_by_one: warm ``K`` single-seed calls, best of ``repeats``.
        ratio: ``one_by_one / together`` (warm).
        ratio_cold: ``one_by_one_cold / together_cold``.
    """

    seeds: tuple[int, ...]
    together_cold: float
    one_by_one_cold: float
    together: float
    one_by_one: float
    ratio: float
    ratio_cold: float


def time_seeds(
    config: TrainConfig, seeds: Sequence[int] = (0, 1, 2, 3, 4), *, repeats: int = 2
) -> SeedTiming:
    """Time ``train(config, seeds)`` against ``len(seeds)`` single-seed calls.

    Example (``python -m leakyjax._src.train.timing`` runs it; training takes a
    while, so this only shows the result's fields):
        >>> from leakyjax._src.train.timing import SeedTiming
        >>> SeedTiming._fields[-2:]
        ('ratio', 'ratio_cold')
    """
    seeds = tuple(seeds)

    def together():
        t0 = time.perf_counter()
        train(config, seeds)
        return time.perf_counter() - t0

    def one_by_one():
        t0 = time.perf_counter()
        for s in seeds:
            train(config, (s,))
        return time.perf_counter() - t0

    load_dataset(  # generate the data outside the timings
        config.dataset,
        num_train=config.num_train,
        num_test=config.num_test,
        seed=config.data_seed,
    )
    _PROGRAMS.clear()
    t_cold = together()
    _PROGRAMS.clear()
    o_cold = one_by_one()
    t_warm, o_warm = [], []
    for _ in range(repeats):  # interleaved
        t_warm.append(together())
        o_warm.append(one_by_one())
    t, o = min(t_warm), min(o_warm)
    return SeedTiming(seeds, t_cold, o_cold, t, o, o / t, o_cold / t_cold)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--act", default="leaky_relu:0.2")
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args(argv)
    cfg = TrainConfig(activation=a.act, dataset=a.dataset, steps=a.steps)
    t = time_seeds(cfg, tuple(range(a.seeds)), repeats=a.repeats)
    print(json.dumps({"config": cfg._asdict(), **t._asdict()}))


if __name__ == "__main__":  # pragma: no cover
    main()
