"""One compiled program for activations that differ only in parameters.

``train`` shares the training and evaluation programs of ``leaky_relu:a`` for
every slope ``a`` (and of PReLU for every initial slope), with the slope a
traced input; the results must be bit-identical to a program compiled for
each activation alone.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import pytest

from leakyjax._src.train import loop
from leakyjax.train import TrainConfig, train

ACTS = ("leaky_relu:0.01", "leaky_relu:0.2", "prelu", "prelu:0.1", "relu")


def _cfg(act: str) -> TrainConfig:
    return TrainConfig(
        activation=act,
        dataset="digits",
        steps=12,
        eval_every=6,
        num_train=120,
        num_test=60,
        batch_size=16,
        width=16,
    )


def _compact(act):
    class M(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = act()(nn.Dense(8)(x.reshape(x.shape[0], -1)))
            return nn.Dense(10)(x)

    return M()


class _Prebuilt(nn.Module):
    act_module: nn.Module

    @nn.compact
    def __call__(self, x):
        x = self.act_module(nn.Dense(8)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def _prebuilt(act):  # the activation module is made before any trace: not shared
    return _Prebuilt(act())


def _runs(monkeypatch, shared: bool, model):
    loop._PROGRAMS.clear()
    with monkeypatch.context() as m:
        if not shared:
            m.setattr(loop, "_TRACED_PARAMS", {})
        out = {a: train(_cfg(a), seeds=(0, 1), model=model) for a in ACTS}
    loop._PROGRAMS.clear()
    return out


def _same(a, b):
    for ra, rb in zip(a.runs, b.runs, strict=True):
        for f in ra.history._fields:
            np.testing.assert_array_equal(
                getattr(ra.history, f), getattr(rb.history, f), err_msg=f
            )
    for la, lb in zip(
        jax.tree.leaves(a.variables), jax.tree.leaves(b.variables), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(la), np.asarray(lb))


@pytest.mark.parametrize("model", [None, _compact], ids=["mlp", "user-linen"])
def test_shared_program_bit_identical(monkeypatch, model):
    shared = _runs(monkeypatch, True, model)
    alone = _runs(monkeypatch, False, model)
    for a in ACTS:
        _same(shared[a], alone[a])
    # the second slope and the second PReLU compile only their init
    assert shared["leaky_relu:0.2"].compiles == 1
    assert shared["prelu:0.1"].compiles == 1
    assert alone["leaky_relu:0.2"].compiles > 1
    # relu keeps its own program (relu'(0) = 0, leaky_relu'(0) = 1)
    assert shared["relu"].compiles > 1
    # the slopes do differ: the shared program reads them
    h1 = shared["leaky_relu:0.01"].runs[0].history
    h2 = shared["leaky_relu:0.2"].runs[0].history
    assert not np.array_equal(h1.train_loss[1:], h2.train_loss[1:])


def test_modules_made_before_the_trace_are_not_shared(monkeypatch):
    shared = _runs(monkeypatch, True, _prebuilt)
    alone = _runs(monkeypatch, False, _prebuilt)
    for a in ACTS:
        _same(shared[a], alone[a])
    assert shared["leaky_relu:0.2"].compiles > 1
