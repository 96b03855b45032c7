r"""Recycling dormant units (ReDo): re-initialise what the diagnostics find.

Sokar, Agarwal, Castro and Evci (ICML 2023) call unit $i$ of a layer with
$H$ units *τ-dormant* on a batch when its score

$$
s_i = \frac{\mathbb{E}_x |h_i(x)|}{\frac{1}{H} \sum_k \mathbb{E}_x |h_k(x)|}
\le \tau
$$

($h$ the layer's *output*, after the activation; the expectation over the
batch and, for convolutions, every spatial position). ReDo ("Recycling Dormant
neurons") re-initialises such a unit every $F$ steps: its *incoming*
weights (its kernel column and bias) are drawn again from the layer's
initialiser, its *outgoing* weights (its row of the next layer's kernel) are set
to 0, and the optimiser's moments of those weights are reset. Because the
outgoing weights are 0, the network computes right after recycling what it
computed without those units (for dead ReLU units: exactly what it computed
before); the fresh incoming weights make the unit active again and
gradient descent grows its outgoing weights from 0.

What the official code does (google/dopamine, `labs/redo/weight_recyclers.py`)
and what this module does the same way: the score normalises by the layer mean
plus `1e-9`; the bias of a recycled unit is reset (the code sets it to 0,
which is the flax default `bias_init`); Adam's `mu` and `nu` of recycled
weights are zeroed and its step `count` is kept; the output layer is never
recycled. Where this module differs: it uses the layer's own initialiser
(`kernel_init`; the dopamine networks use `xavier_uniform` for every layer),
zeroes every optimiser-state leaf that mirrors a recycled weight (not only
Adam's), and maps a channels-last `Conv -> flatten -> Dense` connection to the
`flatten` order (channel `c` owns rows `c, c + C, c + 2C, ...`).

Hyper-parameters reported for the paper (Table 1, as read from a published
analysis of the code, not from the paper itself): recycling period
$F = 1000$ gradient steps, $\tau = 0.025$ in the default DQN setting
and $0.1$ otherwise, 64 examples to score; the shipped code defaults to
$\tau = 0$. The default here is $\tau = 0.1$.

Dead units (never positive on the batch, `leakyjax.diagnostics`) can be
recycled too (`criterion="dead"` or `"either"`): for leaky units a dead unit
still has $|h| > 0$, so it need not be τ-dormant.

References:
    Sokar, Agarwal, Castro, Evci. The Dormant Neuron Phenomenon in Deep
    Reinforcement Learning. ICML 2023. arXiv:2302.12902. Code:
    https://github.com/google/dopamine/tree/master/dopamine/labs/redo
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from leakyjax._src import diagnostics as _dg

Array = jax.Array

__all__ = [
    "ContinualBackpropResult",
    "ContinualBackpropState",
    "RecycleResult",
    "continual_backprop",
    "continual_backprop_init",
    "dormancy_score",
    "layer_pairs",
    "recycle_dormant",
    "reset_units",
]

_EPS = 1e-9  # the official code's guard for an entirely silent layer
_CRITERIA = ("dormant", "dead", "either")


class RecycleResult(NamedTuple):
    """What [recycle_dormant][leakyjax.recycle.recycle_dormant] did, per activation layer.

    A pytree of arrays (return it from `jax.jit`).

    Attributes:
        params: the new parameters, same structure as the input (linen variables
            keep their other collections; for an nnx model, its `nnx.Param`
            state, the model itself being updated in place).
        opt_state: the new optimiser state (None if none was given; for an
            `nnx.Optimizer`, updated in place and returned as its state).
        recycled: `{layer: int32}` units re-initialised (0 with
            `count_only=True`).
        dormant: `{layer: int32}` τ-dormant units (score `<= tau`).
        dead: `{layer: int32}` units never positive on the batch.
        units: `{layer: int}` units per layer.
        mask: `{layer: bool (units,)}` the units selected by `criterion`.
        score: `{layer: (units,)}` the dormancy scores $s_i$.
    """

    params: Any
    opt_state: Any
    recycled: dict
    dormant: dict
    dead: dict
    units: dict
    mask: dict
    score: dict


# --------------------------------------------------------------------------- #
# Scores
# --------------------------------------------------------------------------- #
def _as_dict(acts: Any, where: str) -> dict:
    if isinstance(acts, Mapping):
        return dict(acts)
    if isinstance(acts, (tuple, list)):
        return {str(i): a for i, a in enumerate(acts)}
    raise TypeError(
        f"{where}: activations must be a mapping {{layer name: array}} (e.g. from "
        f"leakyjax.diagnostics.capture_linen) or a sequence of arrays, got "
        f"{type(acts).__name__}."
    )


def _score_one(h: Array, axis: int, where: str = "dormancy_score") -> Array:
    h = jnp.asarray(h)
    if not jnp.issubdtype(h.dtype, jnp.floating):
        raise TypeError(f"{where}: activations must be float, got {h.dtype}.")
    if h.ndim == 0:
        raise ValueError(
            f"{where}: activations must have a feature axis, got a 0-d array; "
            "pass a layer's outputs of shape (batch, units) or (batch, ..., units)."
        )
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{where}: feature_axis must be an int, got {axis!r}.")
    if not -h.ndim <= axis < h.ndim:
        raise ValueError(
            f"{where}: feature_axis={axis} is out of range for activations of "
            f"shape {h.shape} ({h.ndim} axes); use -1 for channels last."
        )
    if h.shape[axis] == 0 or h.size == 0:
        raise ValueError(
            f"{where}: activations of shape {h.shape} are empty (0 units on "
            f"feature_axis={axis}, or no examples); give at least one example of "
            "at least one unit."
        )
    h = jnp.moveaxis(h, axis, -1).astype(jnp.promote_types(h.dtype, jnp.float32))
    s = jnp.mean(jnp.abs(h.reshape(-1, h.shape[-1])), axis=0)
    return s / (jnp.mean(s) + _EPS)


def dormancy_score(activations: Any, *, feature_axis: int = -1) -> Any:
    r"""ReDo's normalised activity score of every unit.

    $$
    s_i = \mathbb{E}|h_i| \,/\, \big(\tfrac{1}{H}\textstyle\sum_k
    \mathbb{E}|h_k| + 10^{-9}\big)
    $$

    over every axis but `feature_axis` (batch and spatial positions). A layer
    whose units are equally active has every $s_i = 1$; the scores of a
    layer average to 1 (to the guard `1e-9`).

    Args:
        activations: a layer's outputs (after the activation), or a mapping
            `{layer: array}`.
        feature_axis: the unit axis (-1: Dense and channels-last Conv).

    Returns:
        `(units,)` float32 scores (float64 for float64 input), or a dict.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import recycle
        >>> h = jnp.array([[0.0, 1.0, 2.0], [0.0, 3.0, 0.0]])
        >>> recycle.dormancy_score(h).tolist()
        [0.0, 2.0, 1.0]
    """
    if isinstance(activations, (Mapping, tuple, list)):
        acts = _as_dict(activations, "dormancy_score")
        return {
            k: _score_one(v, feature_axis, f"dormancy_score (layer {k!r})")
            for k, v in acts.items()
        }
    return _score_one(activations, feature_axis)


# --------------------------------------------------------------------------- #
# Parameter trees
# --------------------------------------------------------------------------- #
def _kernel_layers(tree: Any, prefix: tuple = ()) -> list[tuple[str, ...]]:
    """Paths of the mappings holding a `kernel` (ndim >= 2), in insertion
    order (flax's creation order; jax's flatten would sort the names)."""
    out = []
    if isinstance(tree, Mapping):
        k = tree.get("kernel")
        if k is not None and hasattr(k, "ndim") and k.ndim >= 2:
            out.append(prefix)
        for name, sub in tree.items():
            if isinstance(sub, Mapping):
                out.extend(_kernel_layers(sub, (*prefix, str(name))))
    return out


def _get(tree: Mapping, path: Sequence[str]) -> Any:
    node = tree
    for p in path:
        if not isinstance(node, Mapping):
            raise KeyError(p)
        if p in node:
            node = node[p]
        elif p.isdigit() and int(p) in node:  # nnx lists give int keys
            node = node[int(p)]
        else:
            raise KeyError(p)
    return node


def _split(path: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(path, str):
        return tuple(p for p in path.split("/") if p)
    return tuple(str(p) for p in path)


def layer_pairs(params: Any, activations: Any) -> dict[str, tuple[str, str]]:
    """The inferred (incoming, outgoing) layer of every activation layer.

    For a sequential model: the `i`-th activation layer (in the order of
    `activations`) follows the `i`-th layer with a `kernel` (in the order
    of `params`, which for flax is creation order) and feeds the `i+1`-th.
    This needs exactly one more kernel layer than activation layers (the output
    layer, which is never recycled); anything else (skip connections, two
    activations after one layer) needs the pairing given explicitly to
    [recycle_dormant][leakyjax.recycle.recycle_dormant] as `layers=`.

    Args:
        params: a parameter tree (linen `params` or variables, a pure dict of
            an nnx model's `nnx.Param` state, or nested dicts with
            `kernel`/`bias`), or an `nnx.Module`.
        activations: `{layer name: array}` (only the names and order are used).

    Returns:
        `{activation layer: ("Dense_0", "Dense_1"), ...}` with `/`-joined
        parameter paths.

    Raises:
        ValueError: when the counts do not match (the message lists both).

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import recycle
        >>> params = {"l0": {"kernel": jnp.ones((2, 3))},
        ...           "l1": {"kernel": jnp.ones((3, 1))}}
        >>> recycle.layer_pairs(params, {"act0": jnp.ones((5, 3))})
        {'act0': ('l0', 'l1')}
    """
    params, _, _ = _unwrap(params, None)
    names = list(_as_dict(activations, "layer_pairs"))
    kernels = ["/".join(p) for p in _kernel_layers(params)]
    if len(kernels) != len(names) + 1:
        raise ValueError(
            f"layer_pairs: cannot infer a sequential pairing of {len(names)} "
            f"activation layers {names} with {len(kernels)} kernel layers "
            f"{kernels} (a sequential model has one more kernel layer, the "
            "output). Pass layers={activation layer: (incoming layer, outgoing "
            "layer)} to recycle_dormant."
        )
    return {n: (kernels[i], kernels[i + 1]) for i, n in enumerate(names)}


def _is_nnx(obj: Any, kind: str) -> bool:
    if sys.modules.get("flax") is None:
        return False
    from flax import nnx

    return isinstance(obj, getattr(nnx, kind))


def _unwrap(params: Any, opt_state: Any):
    """(pure params dict, rebuild(new_params) -> params, opt kind)."""
    if _is_nnx(params, "Module"):
        from flax import nnx

        state = nnx.state(params, nnx.Param)

        def rebuild_nnx(new):
            state.replace_by_pure_dict(new)
            nnx.update(params, state)
            return state

        return state.to_pure_dict(), rebuild_nnx, "nnx"
    if isinstance(params, Mapping) and isinstance(params.get("params"), Mapping):
        outer = params

        def rebuild(new):
            out = dict(outer)
            out["params"] = new
            kind: Any = type(outer)  # a Mapping type that takes a dict (FrozenDict)
            return kind(out) if kind is not dict else out

        return outer["params"], rebuild, "linen"
    if _is_eqx(params):
        return _unwrap_eqx(params)
    if not isinstance(params, Mapping):
        raise TypeError(
            "recycle_dormant: params must be a mapping of layers with 'kernel' "
            "(and 'bias') arrays -- linen params or variables, an nnx model's "
            "pure state -- an nnx.Module or an equinox model; got "
            f"{type(params).__name__}."
        )
    return params, lambda new: new, "tree"


def _is_eqx(obj: Any) -> bool:
    if sys.modules.get("equinox") is None:
        return False
    import equinox as eqx

    return isinstance(obj, eqx.Module)


def _eqx_linear(node: Any) -> bool:
    import equinox as eqx

    return isinstance(node, eqx.nn.Linear)


def _unwrap_eqx(model: Any):
    """An equinox model's `eqx.nn.Linear` layers as `{path: {kernel, bias}}`.

    equinox keeps `weight` as `(out, in)`; the pure tree holds its transpose,
    flax's `(in, out)` kernel, so one reset serves every framework.
    """
    import equinox as eqx

    flat, treedef = jax.tree_util.tree_flatten_with_path(model, is_leaf=_eqx_linear)
    pure: dict = {}
    where: dict[tuple[str, ...], int] = {}
    for i, (path, node) in enumerate(flat):
        if not _eqx_linear(node):
            continue
        names = tuple(_key_name(k) for k in path) or ("(root)",)
        layer: dict = {"kernel": node.weight.T}
        if node.bias is not None:
            layer["bias"] = node.bias
        sub = pure
        for n in names[:-1]:
            sub = sub.setdefault(n, {})
        sub[names[-1]] = layer
        where[names] = i

    def rebuild(new):
        leaves = [node for _, node in flat]
        for names, i in where.items():
            layer = _get(new, names)
            node = leaves[i]
            leaves[i] = eqx.tree_at(lambda m: m.weight, node, layer["kernel"].T)
            if "bias" in layer:
                leaves[i] = eqx.tree_at(lambda m: m.bias, leaves[i], layer["bias"])
        return jax.tree_util.tree_unflatten(treedef, leaves)

    return pure, rebuild, "equinox"


def _opt_touched(kind: str, touched: dict) -> dict:
    """The touched weights as the optimiser state names them (equinox: weight^T)."""
    if kind != "equinox":
        return touched
    out = {}
    for path, mask in touched.items():
        if path[-1] == "kernel":
            out[(*path[:-1], "weight")] = mask.T
        else:
            out[path] = mask
    return out


def _set(tree: Mapping, path: Sequence[str], value: Any) -> dict:
    """A copy of `tree` with `path` set (parents copied, siblings shared)."""
    out = dict(tree)
    head = path[0]
    key = head if head in out else (int(head) if head.isdigit() else head)
    if len(path) == 1:
        out[key] = value
    else:
        out[key] = _set(out[key], path[1:], value)
    return out


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)  # pragma: no cover


# --------------------------------------------------------------------------- #
# Recycling
# --------------------------------------------------------------------------- #
def _resolve_activation(activation: Any, name: str) -> Callable | None:
    if activation is None:
        return None
    if isinstance(activation, Mapping):
        activation = activation.get(name)
        if activation is None:
            return None
    if isinstance(activation, str):
        from leakyjax._src import registry

        return registry.get(activation)
    if not callable(activation):
        raise TypeError(
            f"recycle_dormant: activation must be a registry spec, a callable or "
            f"a mapping of them, got {activation!r}."
        )
    return activation


def _resolve_init(init: Any, path: str, default: Any) -> Any:
    if isinstance(init, Mapping):
        return init.get(path, default)
    return default if init is None else init


def _out_rows_mask(mask: Array, fan_in: int, units: int, where: str) -> Array:
    """(fan_in,) bool rows of the next kernel fed by the recycled units."""
    if fan_in == units:
        return mask
    if fan_in % units == 0:  # channels-last flatten: row = position * C + c
        return jnp.tile(mask, fan_in // units)
    raise ValueError(
        f"{where}: the outgoing kernel has {fan_in} inputs, which is not a "
        f"multiple of the layer's {units} units; give the right outgoing layer "
        "in layers=."
    )


def recycle_dormant(
    params: Any,
    activations: Any,
    *,
    key: Any = None,
    opt_state: Any = None,
    tau: float = 0.1,
    criterion: Literal["dormant", "dead", "either"] = "dormant",
    activation: Any = None,
    layers: Mapping[str, tuple[Any, Any]] | None = None,
    kernel_init: Any = None,
    bias_init: Any = None,
    feature_axis: int = -1,
    count_only: bool = False,
) -> RecycleResult:
    r"""Finds τ-dormant (or dead) units and recycles them, as ReDo does.

    For every activation layer, units are selected by `criterion` on the
    batch `activations`:

    * `"dormant"` (default): $s_i \le \tau$ (see
      [dormancy_score][leakyjax.recycle.dormancy_score]);
    * `"dead"`: never positive on the batch
      ([result][leakyjax.diagnostics.result]'s `dead`);
    * `"either"`: both sets.

    A selected unit $i$ of a layer between kernels $W$ (incoming)
    and $V$ (outgoing) gets $W_{:, i} \leftarrow$ `kernel_init`,
    $b_i \leftarrow$ `bias_init`, $V_{i, :} \leftarrow 0$, and
    every optimiser-state leaf that mirrors one of these weights (Adam's `mu`
    and `nu`, momentum traces, ...: any leaf whose key path ends with the
    weight's path and has its shape) is zeroed there; counters such as Adam's
    `count` are kept. Nothing else changes. Because $V_{i,:} = 0$, the
    network computes what it computed with the selected units removed: exactly
    the same output for dead ReLU units ($h_i = 0$), a change of at most
    the small contribution $h_i V_{i,:}$ for dormant ones. Works under
    `jax.jit` (`tau` may be traced; `layers`, `criterion` and the
    initialisers are static) and `nnx.jit`.

    Args:
        params: linen `params` or variables (`{"params": ..., ...}`), a
            plain pytree of layers `{"kernel": (..., in, out), "bias": (out,)}`
            (Dense and channels-last Conv, as flax lays them out), an
            `nnx.Module` (updated in place), or an equinox model whose
            `eqx.nn.Linear` layers are the kernel layers (a new model is
            returned; its optax state is the one of `eqx.filter(model,
            eqx.is_array)`).
        activations: `{layer: array}` of the layers' outputs on a batch, or
            their pre-activations with `activation=` (what
            [capture_linen][leakyjax.diagnostics.capture_linen] / `capture_nnx`
            return).
        key: a PRNG key for the new weights (required unless `count_only`).
        opt_state: an optax state for these params (linen / plain trees: the
            state of `tx.init(params["params"])` or `tx.init(params)`), or
            an `nnx.Optimizer` (updated in place). None: no optimiser.
        tau: the dormancy threshold $\tau$ (default 0.1).
        criterion: `"dormant"`, `"dead"` or `"either"`.
        activation: None if `activations` are outputs; else the activation
            (registry spec such as `"relu"`, a callable, or `{layer: ...}`)
            that maps the given pre-activations to outputs.
        layers: `{activation layer: (incoming layer, outgoing layer)}` with
            parameter paths (`"Dense_0"` or `("block", "Dense_0")`); default
            [layer_pairs][leakyjax.recycle.layer_pairs] (sequential models).
        kernel_init: the initialiser of the incoming kernels (a jax
            initializer `init(key, shape, dtype)`, or `{layer path: init}`);
            default `jax.nn.initializers.lecun_normal`, flax's default for
            Dense, Conv and `nnx.Linear`. Pass the one your layers use (e.g.
            [leakyjax.initializers.he_normal][]).
        bias_init: the initialiser of the biases (default zeros, flax's).
        feature_axis: the unit axis of the activations (-1).
        count_only: only count (params and optimiser state are returned
            unchanged, `recycled` is 0).

    Returns:
        A [RecycleResult][leakyjax.recycle.RecycleResult].

    Raises:
        ValueError, TypeError: for a pairing that does not fit the parameters,
            an unknown criterion, a missing key; the message names the argument.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from leakyjax import recycle
        >>> k0, k1 = jax.random.split(jax.random.key(0))
        >>> params = {
        ...     "Dense_0": {"kernel": jax.random.normal(k0, (4, 3)),
        ...                 "bias": jnp.array([0.0, 0.0, -100.0])},  # unit 2 dead
        ...     "Dense_1": {"kernel": jax.random.normal(k1, (3, 1)),
        ...                 "bias": jnp.zeros(1)},
        ... }
        >>> x = jax.random.normal(jax.random.key(1), (64, 4))
        >>> apply = lambda p, x: jax.nn.relu(x @ p["Dense_0"]["kernel"]
        ...                                  + p["Dense_0"]["bias"])
        >>> tx = optax.adam(1e-3)
        >>> res = recycle.recycle_dormant(
        ...     params, {"relu_0": apply(params, x)}, key=jax.random.key(2),
        ...     opt_state=tx.init(params))
        >>> int(res.recycled["relu_0"]), res.params["Dense_1"]["kernel"][2].tolist()
        (1, [0.0])
        >>> float(res.params["Dense_0"]["bias"][2])
        0.0
    """
    if criterion not in _CRITERIA:
        raise ValueError(
            f"recycle_dormant: criterion must be one of {', '.join(_CRITERIA)}, "
            f"got {criterion!r}."
        )
    if not count_only and key is None:
        raise TypeError(
            "recycle_dormant: key is required to draw new weights "
            "(key=jax.random.key(...)), or pass count_only=True."
        )
    if not count_only:
        _check_key(key, "recycle_dormant")
    if not isinstance(tau, jax.core.Tracer):
        t = float(np.asarray(tau))
        if not np.isfinite(t) or t < 0:
            raise ValueError(
                f"recycle_dormant: tau must be finite and >= 0, got {tau}."
            )
    acts = _as_dict(activations, "recycle_dormant")
    if not acts:
        raise ValueError("recycle_dormant: activations is empty.")
    model = params
    pure, rebuild, kind = _unwrap(params, opt_state)
    if layers is None:
        pairs = layer_pairs(pure, acts)
    else:
        if not isinstance(layers, Mapping):
            raise TypeError(
                "recycle_dormant: layers must be a mapping {activation layer: "
                "(incoming layer, outgoing layer)}."
            )
        missing = sorted(set(acts) - set(layers), key=str)
        if missing:
            raise ValueError(
                f"recycle_dormant: layers has no entry for activation layers "
                f"{missing}; give (incoming, outgoing) for each, or drop them "
                "from activations."
            )
        pairs = {n: tuple(layers[n]) for n in acts}

    # outputs and dead units (the diagnostics accumulator on the same batch)
    outputs, pre = {}, {}
    for name, a in acts.items():
        fn = _resolve_activation(activation, name)
        a = jnp.asarray(a)
        pre[name] = a
        outputs[name] = a if fn is None else fn(a)
    state = _dg.init(
        {n: jax.ShapeDtypeStruct(a.shape, a.dtype) for n, a in pre.items()},
        feature_axis=feature_axis,
    )
    stats = _dg.result(_dg.update(state, pre))
    scores = dormancy_score(outputs, feature_axis=feature_axis)

    masks, dormant, dead, units, recycled = {}, {}, {}, {}, {}
    for name in pairs:
        n = int(scores[name].shape[0])
        is_dormant = scores[name] <= tau
        is_dead = stats[name].dead
        sel = {"dormant": is_dormant, "dead": is_dead, "either": is_dormant | is_dead}
        mask = sel[criterion]
        units[name] = n
        masks[name] = mask
        dormant[name] = jnp.sum(is_dormant, dtype=jnp.int32)
        dead[name] = jnp.sum(is_dead, dtype=jnp.int32)
        recycled[name] = jnp.sum(mask, dtype=jnp.int32) * (0 if count_only else 1)
    _check_pairs(pure, pairs, units, "recycle_dormant")
    if count_only:
        return RecycleResult(
            params=model if kind != "nnx" else rebuild(pure),
            opt_state=opt_state,
            recycled=recycled,
            dormant=dormant,
            dead=dead,
            units=units,
            mask=masks,
            score=scores,
        )
    new, touched = reset_units(
        pure,
        pairs,
        masks,
        key=key,
        kernel_init=kernel_init,
        bias_init=bias_init,
        where="recycle_dormant",
    )
    return RecycleResult(
        params=rebuild(new),
        opt_state=_reset_opt_state(opt_state, _opt_touched(kind, touched)),
        recycled=recycled,
        dormant=dormant,
        dead=dead,
        units=units,
        mask=masks,
        score=scores,
    )


def _check_pairs(pure: Any, pairs: Mapping, units: Mapping, where: str) -> None:
    """Every pairing names two kernels, the incoming one with `units` outputs."""
    for name, (inc, outg) in pairs.items():
        w = f"{where} (layer {name!r})"
        inc, outg = _split(inc), _split(outg)
        try:
            w_in = _get(pure, (*inc, "kernel"))
            w_out = _get(pure, (*outg, "kernel"))
        except KeyError as e:
            raise ValueError(
                f"{w}: no kernel at {'/'.join(inc)!r} or {'/'.join(outg)!r} "
                f"(missing {e}); the kernel layers are "
                f"{['/'.join(p) for p in _kernel_layers(pure)]}. Fix layers=."
            ) from None
        if w_in.shape[-1] != units[name]:
            raise ValueError(
                f"{w}: the incoming kernel {'/'.join(inc)!r} has "
                f"{w_in.shape[-1]} outputs but the activations have {units[name]} "
                "units; fix layers= or feature_axis=."
            )
        _out_rows_mask(jnp.zeros(units[name], bool), w_out.shape[-2], units[name], w)


def reset_units(
    params: Any,
    layers: Mapping[str, tuple[Any, Any]],
    masks: Mapping[str, Any],
    *,
    key: Any,
    kernel_init: Any = None,
    bias_init: Any = None,
    where: str = "reset_units",
) -> tuple[Any, dict]:
    r"""Re-initialises the selected units of a parameter tree: the one reset.

    [recycle_dormant][leakyjax.recycle.recycle_dormant] (ReDo) and
    [continual_backprop][leakyjax.recycle.continual_backprop] differ only in how
    they choose units; both act through this function. For unit $i$ of an
    activation layer between kernels $W$ (incoming) and $V$ (outgoing):
    $W_{:, i} \leftarrow$ `kernel_init`, $b_i \leftarrow$ `bias_init`,
    $V_{i, :} \leftarrow 0$ (for a channels-last `Conv -> flatten -> Dense`
    link, rows $i, i + C, i + 2C, \dots$). Nothing else changes.

    Args:
        params: a plain parameter tree `{layer: {"kernel", "bias"}}` (linen's
            `params`).
        layers: `{activation layer: (incoming layer, outgoing layer)}`.
        masks: `{activation layer: (units,) bool}`, the units to reset.
        key: PRNG key for the new weights.
        kernel_init: initialiser (or `{incoming layer path: init}`); default
            lecun normal, flax's default.
        bias_init: initialiser of the biases; default zeros.
        where: the function name used in error messages.

    Returns:
        `(new params, touched)`, `touched` mapping each changed weight's
        path (a tuple) to the bool mask of its changed entries (what an
        optimiser-state reset needs).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from leakyjax import recycle
        >>> p = {"a": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
        ...      "b": {"kernel": jnp.ones((3, 1)), "bias": jnp.ones(1)}}
        >>> new, touched = recycle.reset_units(
        ...     p, {"h": ("a", "b")}, {"h": jnp.array([False, True, False])},
        ...     key=jax.random.key(0))
        >>> new["b"]["kernel"][:, 0].tolist(), new["a"]["bias"].tolist()
        ([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    """
    _check_key(key, where)
    default_kernel_init = jax.nn.initializers.lecun_normal()
    default_bias_init = jax.nn.initializers.zeros
    in_masks: dict[tuple, Array] = {}  # weight path -> bool mask of its shape
    out_masks: dict[tuple, Array] = {}
    new_vals: dict[tuple, Any] = {}
    for i, (name, (inc, outg)) in enumerate(layers.items()):
        w = f"{where} (layer {name!r})"
        inc, outg = _split(inc), _split(outg)
        w_in = _get(params, (*inc, "kernel"))
        w_out = _get(params, (*outg, "kernel"))
        mask = jnp.asarray(masks[name], bool)
        n = int(mask.shape[0])
        k_w, k_b = jax.random.split(jax.random.fold_in(key, i))
        path = "/".join(inc)
        kinit = _resolve_init(kernel_init, path, default_kernel_init)
        binit = _resolve_init(bias_init, path, default_bias_init)
        kpath = (*inc, "kernel")
        m_in = jnp.broadcast_to(mask, w_in.shape)
        in_masks[kpath] = in_masks.get(kpath, False) | m_in
        fresh = kinit(k_w, w_in.shape, w_in.dtype)
        new_vals[kpath] = jnp.where(m_in, fresh, new_vals.get(kpath, w_in))
        try:
            b = _get(params, (*inc, "bias"))
        except KeyError:
            b = None
        if b is not None:
            bpath = (*inc, "bias")
            m_b = jnp.broadcast_to(mask, b.shape)
            in_masks[bpath] = in_masks.get(bpath, False) | m_b
            new_vals[bpath] = jnp.where(
                m_b, binit(k_b, b.shape, b.dtype), new_vals.get(bpath, b)
            )
        rows = _out_rows_mask(mask, w_out.shape[-2], n, w)
        opath = (*outg, "kernel")
        m_out = jnp.broadcast_to(rows[:, None], w_out.shape)
        out_masks[opath] = out_masks.get(opath, False) | m_out
    # outgoing zeros win over a fresh incoming column (output unchanged)
    new = params
    touched = {**in_masks}
    for p, m in out_masks.items():
        touched[p] = touched.get(p, False) | m
    for p in touched:
        val = new_vals.get(p, _get(params, p))
        if p in out_masks:
            val = jnp.where(out_masks[p], jnp.zeros((), val.dtype), val)
        new = _set(new, p, val)
    return new, touched


def _check_key(key: Any, where: str) -> None:
    ok = hasattr(key, "dtype") and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and tuple(key.shape) == (2,))
    )
    if not ok:
        raise TypeError(
            f"{where}: key must be a PRNG key such as jax.random.key(0), got "
            f"{type(key).__name__} {key!r}."
        )


def _mirror_mask(names: tuple[str, ...], shape: tuple, touched: Mapping) -> Any:
    for p, m in touched.items():
        if len(names) >= len(p) and names[-len(p) :] == p and m.shape == shape:
            return m
    return None


def _reset_opt_state(opt_state: Any, touched: Mapping) -> Any:
    """Zeroes every leaf whose key path ends with a touched weight's path."""
    if opt_state is None:
        return None
    if _is_nnx(opt_state, "Optimizer"):
        from flax import nnx

        state = nnx.state(opt_state)
        pure = state.to_pure_dict()
        pure = _reset_opt_state(pure, touched)
        state.replace_by_pure_dict(pure)
        nnx.update(opt_state, state)
        return state

    def fix(path, leaf):
        if not hasattr(leaf, "shape"):
            return leaf
        names = tuple(_key_name(k) for k in path)
        m = _mirror_mask(names, tuple(leaf.shape), touched)
        if m is None:
            return leaf
        return jnp.where(m, jnp.zeros((), leaf.dtype), leaf)

    return jax.tree_util.tree_map_with_path(fix, opt_state)


# --------------------------------------------------------------------------- #
# Continual backprop (Dohare et al. 2024)
# --------------------------------------------------------------------------- #
class ContinualBackpropState(NamedTuple):
    """Per-unit bookkeeping of [continual_backprop][leakyjax.recycle.continual_backprop].

    A pytree of arrays (a jit argument, a scan carry).

    Attributes:
        utility: `{layer: (units,)}` running average of the contribution
            utility $|h_i| \\sum_k |w_{ik}|$.
        age: `{layer: (units,) int32}` steps since the unit was (re)born.
        pending: `{layer: ()}` the fractional number of units due for
            replacement (replacement rate times eligible units, accumulated).
        replaced: `{layer: () int32}` units replaced so far.
    """

    utility: dict
    age: dict
    pending: dict
    replaced: dict


class ContinualBackpropResult(NamedTuple):
    """What one step of [continual_backprop][leakyjax.recycle.continual_backprop] did.

    Attributes:
        params: the new parameters (same structure; an nnx model is updated in
            place and its `nnx.Param` state returned).
        opt_state: the new optimiser state (None if none was given).
        state: the new [ContinualBackpropState][leakyjax.recycle.ContinualBackpropState].
        replaced: `{layer: int32}` units replaced in this step.
        mask: `{layer: (units,) bool}` which.
        utility: `{layer: (units,)}` the bias-corrected utility the choice
            was made on.
    """

    params: Any
    opt_state: Any
    state: ContinualBackpropState
    replaced: dict
    mask: dict
    utility: dict


def continual_backprop_init(activations: Any, *, feature_axis: int = -1) -> Any:
    """Fresh continual-backprop state for the activation layers of a model.

    Args:
        activations: `{layer: array}` of one batch (only the unit counts are
            used; shapes or `jax.ShapeDtypeStruct` work too).
        feature_axis: the unit axis (-1).

    Returns:
        A [ContinualBackpropState][leakyjax.recycle.ContinualBackpropState]:
        utilities 0, ages 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import recycle
        >>> s = recycle.continual_backprop_init({"h": jnp.zeros((8, 3))})
        >>> s.age["h"].tolist()
        [0, 0, 0]
    """
    acts = _as_dict(activations, "continual_backprop_init")
    if not acts:
        raise ValueError("continual_backprop_init: activations is empty.")
    units = {}
    for name, a in acts.items():
        shape = tuple(getattr(a, "shape", a))
        if len(shape) == 0 or not -len(shape) <= feature_axis < len(shape):
            raise ValueError(
                f"continual_backprop_init (layer {name!r}): feature_axis="
                f"{feature_axis} does not fit activations of shape {shape}."
            )
        units[name] = int(shape[feature_axis])
    return ContinualBackpropState(
        utility={n: jnp.zeros(u, jnp.float32) for n, u in units.items()},
        age={n: jnp.zeros(u, jnp.int32) for n, u in units.items()},
        pending={n: jnp.zeros((), jnp.float32) for n in units},
        replaced={n: jnp.zeros((), jnp.int32) for n in units},
    )


def _outgoing_abs(w_out: Array, units: int, where: str) -> Array:
    """(units,) sum of |w| over each unit's outgoing weights."""
    a = jnp.abs(w_out.astype(jnp.float32))
    a = jnp.sum(a.reshape(-1, a.shape[-2], a.shape[-1]), axis=(0, 2))  # (fan_in,)
    if a.shape[0] == units:
        return a
    if a.shape[0] % units == 0:  # channels-last flatten: row = position * C + c
        return jnp.sum(a.reshape(-1, units), axis=0)
    raise ValueError(
        f"{where}: the outgoing kernel has {a.shape[0]} inputs, which is not a "
        f"multiple of the layer's {units} units; give the right outgoing layer "
        "in layers=."
    )


def _default_init(activation: Any, name: str) -> Any:
    spec = activation.get(name) if isinstance(activation, Mapping) else activation
    if isinstance(spec, str):
        from leakyjax._src import initializers

        return initializers.for_activation(spec)
    return jax.nn.initializers.lecun_normal()


def continual_backprop(
    params: Any,
    activations: Any,
    state: ContinualBackpropState,
    *,
    key: Any,
    opt_state: Any = None,
    replacement_rate: Any = 1e-4,
    maturity: Any = 100,
    decay: Any = 0.99,
    activation: Any = None,
    layers: Mapping[str, tuple[Any, Any]] | None = None,
    kernel_init: Any = None,
    bias_init: Any = None,
    feature_axis: int = -1,
) -> ContinualBackpropResult:
    r"""One step of continual backprop: replace the least useful mature units.

    Dohare et al. (Nature 2024) keep a network plastic by generate-and-test.
    At every step, for every unit $i$ of an activation layer with outgoing
    weights $w_{i,:}$,

    $$u_i \leftarrow \eta\, u_i + (1 - \eta)\, \mathbb{E}|h_i| \sum_k |w_{ik}|,
    \qquad \hat u_i = u_i / (1 - \eta^{a_i})$$

    ($\eta$ = `decay`, $a_i$ the unit's age, the expectation over the batch
    and spatial positions); units older than `maturity` are *eligible*; the
    layer accumulates `replacement_rate` times the number of eligible units
    and, whenever that reaches 1, replaces that many (its integer part) of the
    eligible units with the lowest $\hat u_i$. A replaced unit gets fresh
    incoming weights (by default the He initialiser of its activation, i.e. the
    leaky He gain $\sqrt{2/(1+a^2)}$ for `"leaky_relu:a"`), bias 0, zero
    outgoing weights (the new unit adds nothing to the output until it has
    learned; what changes is that the old unit's small contribution is gone),
    utility 0 and age 0, and the optimiser-state entries of those weights (Adam's `mu` and
    `nu`, momentum, ...) are zeroed: the same reset as
    [recycle_dormant][leakyjax.recycle.recycle_dormant] (see
    [reset_units][leakyjax.recycle.reset_units]). optax keeps one step
    `count` per optimiser, not per entry, so the count is left as is; the
    paper's AdamGnT resets a per-entry step instead.

    Call it once per step, after the optimiser update, with the activations
    (outputs) of that step's batch. Works under `jax.jit`.

    Args:
        params: as [recycle_dormant][leakyjax.recycle.recycle_dormant]: linen
            `params` or variables, a plain tree of `kernel`/`bias`
            layers, an `nnx.Module` (updated in place) or an equinox model
            of `eqx.nn.Linear` layers (returned anew).
        activations: `{layer: array}` outputs of the activation layers (or
            pre-activations with `activation=`).
        state: from [continual_backprop_init][leakyjax.recycle.continual_backprop_init].
        key: PRNG key for the new weights.
        opt_state: the optax state of `params` (or an `nnx.Optimizer`);
            None for none.
        replacement_rate: $\rho$, units replaced per eligible unit per step
            (the paper: $10^{-4}$ and below).
        maturity: $m$, steps a unit is protected after (re)birth (100).
        decay: $\eta$, of the running utility (0.99).
        activation: None if `activations` are outputs; else a registry spec, a
            callable or `{layer: ...}`. A registry spec also sets the default
            `kernel_init` (the He initialiser of that activation).
        layers: `{activation layer: (incoming, outgoing layer)}`; default
            [layer_pairs][leakyjax.recycle.layer_pairs].
        kernel_init: initialiser of the incoming kernels (or `{layer path:
            init}`); default as above, else lecun normal.
        bias_init: initialiser of the biases (zeros).
        feature_axis: the unit axis of the activations (-1).

    Returns:
        A [ContinualBackpropResult][leakyjax.recycle.ContinualBackpropResult].

    Raises:
        ValueError, TypeError: for bad rates, a state of other layers, a missing
            or non-key `key`, a pairing that does not fit.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from leakyjax import recycle
        >>> params = {"l0": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
        ...           "l1": {"kernel": jnp.array([[1.0], [0.0], [2.0]]),
        ...                  "bias": jnp.zeros(1)}}
        >>> x = jnp.ones((4, 2))
        >>> h = {"h": jax.nn.relu(x @ params["l0"]["kernel"])}
        >>> tx = optax.adam(1e-3)
        >>> state = recycle.continual_backprop_init(h)
        >>> res = recycle.continual_backprop(
        ...     params, h, state, key=jax.random.key(0), opt_state=tx.init(params),
        ...     replacement_rate=0.5, maturity=0)
        >>> res.mask["h"].tolist(), int(res.state.age["h"][1])
        ([False, True, False], 0)
    """
    where = "continual_backprop"
    _check_key(key, where)
    for nm, v, lo, hi in (
        ("replacement_rate", replacement_rate, 0.0, 1.0),
        ("decay", decay, 0.0, 1.0),
    ):
        if not isinstance(v, jax.core.Tracer):
            f = float(np.asarray(v))
            if not (np.isfinite(f) and lo <= f <= hi):
                raise ValueError(f"{where}: {nm} must be in [{lo}, {hi}], got {v!r}.")
    if not isinstance(maturity, jax.core.Tracer) and not (
        float(np.asarray(maturity)) >= 0
    ):
        raise ValueError(f"{where}: maturity must be >= 0 steps, got {maturity!r}.")
    if not isinstance(state, ContinualBackpropState):
        raise TypeError(
            f"{where}: state must come from continual_backprop_init(), got "
            f"{type(state).__name__}."
        )
    acts = _as_dict(activations, where)
    if set(acts) != set(state.utility):
        raise ValueError(
            f"{where}: the activation layers {sorted(acts)} differ from the "
            f"state's {sorted(state.utility)}; build the state from the same "
            "activations."
        )
    pure, rebuild, kind = _unwrap(params, opt_state)
    if layers is None:
        pairs = layer_pairs(pure, acts)
    else:
        missing = sorted(set(acts) - set(layers), key=str)
        if missing:
            raise ValueError(
                f"{where}: layers has no entry for activation layers {missing}."
            )
        pairs = {n: tuple(layers[n]) for n in acts}
    units = {n: int(state.utility[n].shape[0]) for n in acts}
    _check_pairs(pure, pairs, units, where)
    decay_ = jnp.asarray(decay, jnp.float32)
    util, age, pending, total, masks, corrected, replaced = {}, {}, {}, {}, {}, {}, {}
    inits = {}
    for name, a in acts.items():
        fn = _resolve_activation(activation, name)
        h = jnp.asarray(a)
        h = h if fn is None else fn(h)
        h = jnp.moveaxis(h, feature_axis, -1).astype(jnp.float32)
        n = units[name]
        if h.shape[-1] != n:
            raise ValueError(
                f"{where} (layer {name!r}): activations have {h.shape[-1]} units, "
                f"the state {n}."
            )
        mean_abs = jnp.mean(jnp.abs(h.reshape(-1, n)), axis=0)
        w_out = _get(pure, (*_split(pairs[name][1]), "kernel"))
        contrib = mean_abs * _outgoing_abs(w_out, n, f"{where} (layer {name!r})")
        u = decay_ * state.utility[name] + (1 - decay_) * contrib
        ag = state.age[name] + 1
        u_hat = u / (1 - decay_ ** ag.astype(jnp.float32))
        eligible = ag > maturity
        due = state.pending[name] + replacement_rate * jnp.sum(
            eligible, dtype=jnp.float32
        )
        k = jnp.minimum(jnp.floor(due), jnp.sum(eligible)).astype(jnp.int32)
        order = jnp.argsort(jnp.where(eligible, u_hat, jnp.inf), stable=True)
        rank = jnp.zeros(n, jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
        mask = eligible & (rank < k)
        masks[name] = mask
        corrected[name] = u_hat
        replaced[name] = jnp.sum(mask, dtype=jnp.int32)
        pending[name] = jnp.where(k > 0, due - k.astype(jnp.float32), due)
        util[name] = jnp.where(mask, 0.0, u)
        age[name] = jnp.where(mask, 0, ag)
        total[name] = state.replaced[name] + replaced[name]
        inc_path = "/".join(_split(pairs[name][0]))
        inits[inc_path] = (
            _resolve_init(kernel_init, inc_path, _default_init(activation, name))
            if kernel_init is not None
            else _default_init(activation, name)
        )
    new, touched = reset_units(
        pure,
        pairs,
        masks,
        key=key,
        kernel_init=inits,
        bias_init=bias_init,
        where=where,
    )
    return ContinualBackpropResult(
        params=rebuild(new),
        opt_state=_reset_opt_state(opt_state, _opt_touched(kind, touched)),
        state=ContinualBackpropState(util, age, pending, total),
        replaced=replaced,
        mask=masks,
        utility=corrected,
    )
