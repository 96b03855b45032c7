"""Data parallel training over 4 (forced host) devices equals 1 device."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.helpers import run_on_host_devices

pytest.importorskip("flax")
pytest.importorskip("optax")

SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np
    from leakyjax._src.train import TrainConfig, train
    from leakyjax._src.train import loop

    assert jax.device_count() == 4, jax.devices()
    base = TrainConfig(activation="prelu", dataset="digits", num_train=300,
                       num_test=100, width=32, steps=20, eval_every=10,
                       batch_size=40)
    # AdamW; and SGD with BatchNorm (batch statistics across the shards). AdamW
    # with BatchNorm is left out: BN zeroes the gradient of constant input
    # pixels up to rounding, and Adam normalises that rounding noise to +-lr.
    # BatchNorm with elu, whose derivative is continuous at 0: with a kinked
    # activation a pre-activation within rounding of 0 may land on either side
    # in 4 shards and in 1 (the BN statistics are reduced in another order),
    # and that one-element jump grows over the steps.
    configs = [base, base._replace(activation="elu", optimizer="sgd",
                                   learning_rate=0.05, batch_norm=True)]
    out = dict(devices=[], param_diff=[], hist_diff=[], replicated=[])

    def diff(a, b):  # nan where exactly one of them is nan
        return float(np.max(np.where(np.isnan(a) & np.isnan(b), 0, np.abs(a - b))))

    for cfg in configs:
        many = train(cfg, seeds=(0, 1))
        one = train(cfg, seeds=(0, 1), devices=jax.devices()[:1])
        out["devices"].append([many.num_devices, one.num_devices])
        out["param_diff"].append(max(
            float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
            for a, b in zip(jax.tree_util.tree_leaves(many.variables),
                            jax.tree_util.tree_leaves(one.variables))
        ))
        out["hist_diff"].append(max(
            diff(getattr(a.history, f), getattr(b.history, f))
            for a, b in zip(many.runs, one.runs)
            for f in ("train_loss", "test_loss", "test_acc")
        ))
        out["replicated"].append(all(
            leaf.sharding.is_fully_replicated
            for leaf in jax.tree_util.tree_leaves(many.variables)
        ))
    out["all_reduce"] = sorted(
        "all-reduce" in c.as_text()
        for p in loop._PROGRAMS.values()
        for sig, c in p.compiled.items() if sig[0] == "chunk"
    )
    out["mesh_30"] = loop._mesh(30, None).size  # largest count dividing 30
    print(json.dumps(out))
    """
)


def test_four_devices_match_one_device():
    proc = run_on_host_devices(SCRIPT, 4, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == [[4, 1], [4, 1]], out
    assert out["mesh_30"] == 3, out
    assert all(out["replicated"]), out  # parameters stay replicated
    # gradients are all-reduced in the two 4-device programs only
    assert out["all_reduce"] == [False, False, True, True], out
    assert max(out["param_diff"]) < 1e-5, out
    assert max(out["hist_diff"]) < 1e-5, out  # also False if nan
