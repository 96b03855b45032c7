"""Sharded inputs on 4 (forced host) devices: every activation's gradient
equals jax.nn's; data parallel training equals 1 device."""

from __future__ import annotations

import json
import textwrap

import pytest

from leakyjax._src._bits import _pack_axis
from tests.helpers import run_on_host_devices

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
    pytest.importorskip("flax")
    pytest.importorskip("optax")
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


# Every function's gradient, sharded, against jax.nn's (or the plain formula at
# the same slopes for rrelu with a key) computed on one device: bitwise for the
# piecewise-linear family and the x-gradients of the learnable slopes. Shapes
# whose rows / 8 do not split over the devices (8, 16, 48 rows) once raised
# ShardingTypeError with explicit axes; rrelu with a key raised on every one.
# Contexts: explicit axes (jax.make_mesh's default; reshard and device_put),
# automatic axes, and inside jax.shard_map (each device its own block).
GRADS = textwrap.dedent(
    r"""
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import leakyjax as lj

assert jax.device_count() == 4, jax.devices()
EXPLICIT = jax.make_mesh((4,), ("d",))
AUTO = jax.make_mesh((4,), ("d",), axis_types=(AxisType.Auto,))
TWO = jax.make_mesh((2,), ("d",), devices=jax.devices()[:2])
KEY = jax.random.key(3)


def rrelu_ref(x, key):  # the plain formula at leakyjax's own unsharded slopes
    s = -lj.rrelu(-jnp.ones(x.shape, x.dtype), key)
    return jnp.where(x >= 0, x, s * x)


PWL = {  # name: (leakyjax, jax.nn / formula), both of x only
    "relu": (lj.relu, jax.nn.relu),
    "leaky_relu": (lambda x: lj.leaky_relu(x, 0.1), lambda x: jax.nn.leaky_relu(x, 0.1)),
    "leaky_relu_neg": (lambda x: lj.leaky_relu(x, -0.3), lambda x: jax.nn.leaky_relu(x, -0.3)),
    "prelu_const": (lambda x: lj.prelu(x, 0.25), lambda x: jax.nn.leaky_relu(x, 0.25)),
    "rrelu_eval": (lj.rrelu, lambda x: jax.nn.leaky_relu(x, (1 / 8 + 1 / 3) / 2)),
    "rrelu_key": (lambda x: lj.rrelu(x, KEY), lambda x: rrelu_ref(x, KEY)),
    "rrelu_key_xu": (lambda x: lj.rrelu(x, KEY, convention="xu"),
                     lambda x: jnp.where(x >= 0, x, -lj.rrelu(-jnp.ones(x.shape), KEY, convention="xu") * x)),
    "relu6": (lj.relu6, jax.nn.relu6),
    "hard_tanh": (lj.hard_tanh, jax.nn.hard_tanh),
    "hard_sigmoid": (lj.hard_sigmoid, jax.nn.hard_sigmoid),
}
EXP = {
    "elu": (lj.elu, jax.nn.elu),
    "celu": (lambda x: lj.celu(x, 0.7), lambda x: jax.nn.celu(x, 0.7)),
    "selu": (lj.selu, jax.nn.selu),
}
SLOPED = {  # (x, a) with a traced: grads in x and in a
    "leaky_relu_traced": (lj.leaky_relu, jax.nn.leaky_relu),
    "prelu": (lj.prelu, jax.nn.leaky_relu),
}

# (name, shape, mesh, spec): rows 8..96 batch-sharded; 6 and 13 rows do not split
# over 4 devices: 6 on 2 devices, both with the features sharded instead.
CASES = [(f"rows{r}", (r, 5), P("d")) for r in (8, 16, 32, 48, 64, 96)]
CASES += [(f"rows{r}_cols", (r, 8), P(None, "d")) for r in (6, 13)]
CASES += [
    ("long1d_packed", (1 << 16,), P("d")),
    ("long1d_mask", (70004,), P("d")),
    ("short1d", (100,), P("d")),
    ("nhwc_N", (8, 6, 6, 3), P("d")),
    ("btd_B", (4, 12, 16), P("d")),
    ("btd_T", (2, 12, 16), P(None, "d")),
    ("btd_T64", (2, 64, 16), P(None, "d")),
    ("btd_T_D1", (8, 12, 1), P(None, "d")),
]
rs = np.random.RandomState(0)
out = {"fail": [], "checked": 0, "spec_kept": []}


def data(shape):
    x = rs.randn(*shape).astype(np.float32)
    x.flat[: min(3, x.size)] = (0.0, -0.0, 1.0)[: min(3, x.size)]  # the kinks
    return jnp.asarray(x), jnp.asarray(rs.randn(*shape).astype(np.float32))


def vjp(f, x, w):
    return jax.vjp(f, x)[1](w)[0]


def check(tag, got, want, exact):
    # exact: bitwise; else the exp family (a few ulp) and the slope gradients
    # (sums over the batch, added in another order on 4 devices)
    got, want = np.asarray(got), np.asarray(want)
    out["checked"] += 1
    tol = 1e-5 if tag.endswith("/da") else 1e-6
    ok = got.shape == want.shape and (
        np.array_equal(got, want) if exact else np.allclose(got, want, rtol=tol, atol=tol)
    )
    if not ok:
        out["fail"].append(tag)


def all_grads(fns, sloped):
    # One program: every function's x-gradient (vjp with cotangent w), and
    # the sloped ones' (dx, da) for a shared and a per-channel slope.
    def go(x, w, a_shared, a_chan):
        res = {n: vjp(f, x, w) for n, f in fns.items()}
        for n, f in sloped.items():
            for an, a in (("shared", a_shared), ("chan", a_chan)):
                res[f"{n}/{an}/dx"], res[f"{n}/{an}/da"] = jax.vjp(f, x, a)[1](w)
        return res
    return go


OURS = all_grads({n: f for n, (f, _) in {**PWL, **EXP}.items()}, {n: f for n, (f, _) in SLOPED.items()})
THEIRS = jax.jit(all_grads({n: g for n, (_, g) in {**PWL, **EXP}.items()}, {n: g for n, (_, g) in SLOPED.items()}))


def exact(n):
    return n.split("/")[0] in PWL or n.endswith("/dx")


def compare(tag, got, want):
    for n in want:
        check(f"{tag}/{n}", got[n], want[n], exact(n))


def run_case(ctx, name, shape, spec, place, mesh):
    x, w = data(shape)
    a_shared = jnp.float32(0.2)
    a_chan = jnp.asarray(rs.uniform(-0.5, 0.5, size=(shape[-1],)).astype(np.float32))
    want = THEIRS(x, w, a_shared, a_chan)
    with jax.set_mesh(mesh):
        xs, ws = place(x, spec), place(w, spec)
        got = jax.jit(OURS)(xs, ws, a_shared, a_chan)
        if ctx == "explicit":
            out["spec_kept"].append(all(jax.typeof(got[n]).sharding.spec == jax.typeof(xs).sharding.spec
                                        for n in got if not n.endswith("/da")))
    compare(f"{ctx}/{name}", got, want)


def by_reshard(x, spec):
    return jax.sharding.reshard(x, spec)


for name, shape, spec in CASES:
    run_case("explicit", name, shape, spec, by_reshard, EXPLICIT)
    run_case("auto", name, shape, spec, lambda x, s: jax.device_put(x, NamedSharding(AUTO, s)), AUTO)
for name, shape, spec in CASES[:1] + CASES[-2:-1]:
    run_case("explicit_put", name, shape, spec,
             lambda x, s: jax.device_put(x, NamedSharding(EXPLICIT, s)), EXPLICIT)
run_case("explicit2", "rows6", (6, 5), P("d"), by_reshard, TWO)


def run_shard_map(name, shape, spec):  # each device differentiates its own block
    x, w = data(shape)
    a_shared = jnp.float32(0.2)
    a_chan = jnp.asarray(rs.uniform(-0.5, 0.5, size=(shape[-1],)).astype(np.float32))
    axis = [p is not None for p in spec].index(True)
    keys = [n for n in jax.eval_shape(OURS, x, w, a_shared, a_chan) if not n.endswith("/da")]
    body = lambda x, w, a: {n: v for n, v in OURS(x, w, a_shared, a).items() if n in keys}
    last = axis == len(shape) - 1  # the channels are sharded too
    with jax.set_mesh(EXPLICIT):
        xs, ws = jax.sharding.reshard(x, spec), jax.sharding.reshard(w, spec)
        specs = (spec, spec, P("d") if last else P())
        ac = jax.sharding.reshard(a_chan, specs[2])
        got = jax.jit(jax.shard_map(body, in_specs=specs, out_specs=spec))(xs, ws, ac)
    chans = jnp.split(a_chan, 4) if last else [a_chan] * 4
    parts = [THEIRS(xb, wb, a_shared, ab) for xb, wb, ab in
             zip(jnp.split(x, 4, axis=axis), jnp.split(w, 4, axis=axis), chans)]
    want = {n: jnp.concatenate([p[n] for p in parts], axis=axis) for n in keys}
    compare(f"shard_map/{name}", got, want)


for name, shape, spec in CASES:
    if name not in ("rows6_cols", "rows13_cols"):
        run_shard_map(name, shape, spec)

# rrelu's sharded draw: the same slopes as unsharded, which are jax.random.uniform's
n = (96, 5)
with jax.set_mesh(EXPLICIT):
    neg = jax.sharding.reshard(-jnp.ones(n), P("d"))
    sharded = -jax.jit(lambda v: lj.rrelu(v, KEY))(neg)
plain = -lj.rrelu(-jnp.ones(n), KEY)
uniform = jax.random.uniform(KEY, n, jnp.float32, 1 / 8, 1 / 3)
out["draw_equal"] = bool(np.array_equal(np.asarray(sharded), np.asarray(plain)))
out["draw_ulps"] = float(np.max(np.abs(np.asarray(plain) - np.asarray(uniform))) / np.spacing(np.float32(1 / 3)))
print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_sharded_gradients_equal_jax_nn():
    proc = run_on_host_devices(GRADS, 4, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["fail"] == [], out["fail"]
    # 16 shapes x (2 contexts) + 2 device_put + 1 two-device, and 14 under
    # shard_map: every one of them checked
    assert out["checked"] > 900, out["checked"]
    assert all(out["spec_kept"]), out  # the gradient is sharded as its input
    assert out["draw_equal"], out  # rrelu's sharded slopes are the unsharded ones
    assert out["draw_ulps"] <= 1, out  # ... and jax.random.uniform's (to an ulp)


@pytest.mark.parametrize(
    ("shape", "shards", "axis"),
    [
        ((16, 5), None, -2),  # unsharded: as before (2 * 5 bytes)
        ((16, 5), (4, 1), -1),  # 2 bytes of rows over 4 devices: along the 5
        ((32, 5), (4, 1), -2),  # 4 bytes of rows, one per device
        ((6, 8), (1, 4), -2),  # the rows are not split
        ((100,), (4,), None),  # 25 per device: a bool mask
        ((1 << 16,), (4,), -1),
        ((8, 6, 6, 3), (4, 1, 1, 1), -2),  # NHWC sharded on N: along W
        ((2, 12, 16), (1, 4, 1), -1),  # (B, T, D) sharded on T: along D
        ((2, 64, 1), (1, 4, 1), -2),  # 64 = 8 * 2 per device: along T
        ((8, 12, 1), (1, 4, 1), -3),  # T not splittable, D of 1: along B
        ((6, 1), (2, 1), None),
    ],
)
def test_pack_axis_never_splits_a_byte_over_shards(shape, shards, axis):
    assert _pack_axis(shape, shards) == axis
