r"""Recycling dormant units (ReDo): re-initialise what the diagnostics find.

Sokar, Agarwal, Castro and Evci (ICML 2023) call unit :math:`i` of a layer with
:math:`H` units *τ-dormant* on a batch when its score

.. math::
    s_i = \frac{\mathbb{E}_x |h_i(x)|}{\frac{1}{H} \sum_k \mathbb{E}_x |h_k(x)|}
    \le \tau

(:math:`h` the layer's *output*, after the activation; the expectation over the
batch and, for convolutions, every spatial position). ReDo ("Recycling Dormant
neurons") re-initialises such a unit every :math:`F` steps: its *incoming*
weights (its kernel column and bias) are drawn again from the layer's
initialiser, its *outgoing* weights (its row of the next layer's kernel) are set
to 0, and the optimiser's moments of those weights are reset. Because the
outgoing weights are 0, the network computes right after recycling what it
computed without those units (for dead ReLU units: exactly what it computed
before); the fresh incoming weights make the unit active again and
gradient descent grows its outgoing weights from 0.

What the official code does (google/dopamine, ``labs/redo/weight_recyclers.py``)
and what this module does the same way: the score normalises by the layer mean
plus ``1e-9``; the bias of a recycled unit is reset (the code sets it to 0,
which is the flax default ``bias_init``); Adam's ``mu`` and ``nu`` of recycled
weights are zeroed and its step ``count`` is kept; the output layer is never
recycled. Where this module differs: it uses the layer's own initialiser
(``kernel_init``; the dopamine networks use ``xavier_uniform`` for every layer),
zeroes every optimiser-state leaf that mirrors a recycled weight (not only
Adam's), and maps a channels-last ``Conv -> flatten -> Dense`` connection to the
``flatten`` order (channel ``c`` owns rows ``c, c + C, c + 2C, ...``).

Hyper-parameters reported for the paper (Table 1, as read from a published
analysis of the code, not from the paper itself): recycling period
:math:`F = 1000` gradient steps, :math:`\tau = 0.025` in the default DQN setting
and :math:`0.1` otherwise, 64 examples to score; the shipped code defaults to
:math:`\tau = 0`. The default here is :math:`\tau = 0.1`.

Dead units (never positive on the batch, :mod:`leakyjax.diagnostics`) can be
recycled too (``criterion="dead"`` or ``"either"``): for leaky units a dead unit
still has :math:`|h| > 0`, so it need not be τ-dormant.

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

__all__ = ["RecycleResult", "dormancy_score", "layer_pairs", "recycle_dormant"]

_EPS = 1e-9  # the official code's guard for an entirely silent layer
_CRITERIA = ("dormant", "dead", "either")


class RecycleResult(NamedTuple):
    """What :func:`recycle_dormant` did, per activation layer.

    A pytree of arrays (return it from :func:`jax.jit`).

    Attributes:
        params: the new parameters, same structure as the input (linen variables
            keep their other collections; for an nnx model, its ``nnx.Param``
            state, the model itself being updated in place).
        opt_state: the new optimiser state (None if none was given; for an
            ``nnx.Optimizer``, updated in place and returned as its state).
        recycled: ``{layer: int32}`` units re-initialised (0 with
            ``count_only=True``).
        dormant: ``{layer: int32}`` τ-dormant units (score ``<= tau``).
        dead: ``{layer: int32}`` units never positive on the batch.
        units: ``{layer: int}`` units per layer.
        mask: ``{layer: bool (units,)}`` the units selected by ``criterion``.
        score: ``{layer: (units,)}`` the dormancy scores :math:`s_i`.
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


def _score_one(h: Array, axis: int) -> Array:
    h = jnp.asarray(h)
    if not jnp.issubdtype(h.dtype, jnp.floating):
        raise TypeError(f"dormancy_score: activations must be float, got {h.dtype}.")
    h = jnp.moveaxis(h, axis, -1).astype(jnp.promote_types(h.dtype, jnp.float32))
    s = jnp.mean(jnp.abs(h.reshape(-1, h.shape[-1])), axis=0)
    return s / (jnp.mean(s) + _EPS)


def dormancy_score(activations: Any, *, feature_axis: int = -1) -> Any:
    r"""ReDo's normalised activity score of every unit.

    .. math:: s_i = \mathbb{E}|h_i| \,/\, \big(\tfrac{1}{H}\textstyle\sum_k
        \mathbb{E}|h_k| + 10^{-9}\big)

    over every axis but ``feature_axis`` (batch and spatial positions). A layer
    whose units are equally active has every :math:`s_i = 1`; the scores of a
    layer average to 1 (to the guard ``1e-9``).

    Args:
        activations: a layer's outputs (after the activation), or a mapping
            ``{layer: array}``.
        feature_axis: the unit axis (-1: Dense and channels-last Conv).

    Returns:
        ``(units,)`` float32 scores (float64 for float64 input), or a dict.

    Example:
        >>> import jax.numpy as jnp
        >>> from leakyjax import recycle
        >>> h = jnp.array([[0.0, 1.0, 2.0], [0.0, 3.0, 0.0]])
        >>> recycle.dormancy_score(h).tolist()
        [0.0, 2.0, 1.0]
    """
    if isinstance(activations, (Mapping, tuple, list)):
        acts = _as_dict(activations, "dormancy_score")
        return {k: _score_one(v, feature_axis) for k, v in acts.items()}
    return _score_one(activations, feature_axis)


# --------------------------------------------------------------------------- #
# Parameter trees
# --------------------------------------------------------------------------- #
def _kernel_layers(tree: Any, prefix: tuple = ()) -> list[tuple[str, ...]]:
    """Paths of the mappings holding a ``kernel`` (ndim >= 2), in insertion
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

    For a sequential model: the ``i``-th activation layer (in the order of
    ``activations``) follows the ``i``-th layer with a ``kernel`` (in the order
    of ``params``, which for flax is creation order) and feeds the ``i+1``-th.
    This needs exactly one more kernel layer than activation layers (the output
    layer, which is never recycled); anything else (skip connections, two
    activations after one layer) needs the pairing given explicitly to
    :func:`recycle_dormant` as ``layers=``.

    Args:
        params: a parameter tree (linen ``params`` or variables, a pure dict of
            an nnx model's ``nnx.Param`` state, or nested dicts with
            ``kernel``/``bias``), or an ``nnx.Module``.
        activations: ``{layer name: array}`` (only the names and order are used).

    Returns:
        ``{activation layer: ("Dense_0", "Dense_1"), ...}`` with ``/``-joined
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
    if not isinstance(params, Mapping):
        raise TypeError(
            "recycle_dormant: params must be a mapping of layers with 'kernel' "
            "(and 'bias') arrays -- linen params or variables, an nnx model's "
            f"pure state -- or an nnx.Module; got {type(params).__name__}."
        )
    return params, lambda new: new, "tree"


def _set(tree: Mapping, path: Sequence[str], value: Any) -> dict:
    """A copy of ``tree`` with ``path`` set (parents copied, siblings shared)."""
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

    For every activation layer, units are selected by ``criterion`` on the
    batch ``activations``:

    * ``"dormant"`` (default): :math:`s_i \le \tau` (see
      :func:`dormancy_score`);
    * ``"dead"``: never positive on the batch
      (:func:`leakyjax.diagnostics.result`'s ``dead``);
    * ``"either"``: both sets.

    A selected unit :math:`i` of a layer between kernels :math:`W` (incoming)
    and :math:`V` (outgoing) gets :math:`W_{:, i} \leftarrow` ``kernel_init``,
    :math:`b_i \leftarrow` ``bias_init``, :math:`V_{i, :} \leftarrow 0`, and
    every optimiser-state leaf that mirrors one of these weights (Adam's ``mu``
    and ``nu``, momentum traces, ...: any leaf whose key path ends with the
    weight's path and has its shape) is zeroed there; counters such as Adam's
    ``count`` are kept. Nothing else changes. Because :math:`V_{i,:} = 0`, the
    network computes what it computed with the selected units removed: exactly
    the same output for dead ReLU units (:math:`h_i = 0`), a change of at most
    the small contribution :math:`h_i V_{i,:}` for dormant ones. Works under
    :func:`jax.jit` (``tau`` may be traced; ``layers``, ``criterion`` and the
    initialisers are static) and ``nnx.jit``.

    Args:
        params: linen ``params`` or variables (``{"params": ..., ...}``), a
            plain pytree of layers ``{"kernel": (..., in, out), "bias": (out,)}``
            (Dense and channels-last Conv, as flax lays them out), or an
            ``nnx.Module`` (updated in place).
        activations: ``{layer: array}`` of the layers' outputs on a batch, or
            their pre-activations with ``activation=`` (what
            :func:`leakyjax.diagnostics.capture_linen` / ``capture_nnx``
            return).
        key: a PRNG key for the new weights (required unless ``count_only``).
        opt_state: an optax state for these params (linen / plain trees: the
            state of ``tx.init(params["params"])`` or ``tx.init(params)``), or
            an ``nnx.Optimizer`` (updated in place). None: no optimiser.
        tau: the dormancy threshold :math:`\tau` (default 0.1).
        criterion: ``"dormant"``, ``"dead"`` or ``"either"``.
        activation: None if ``activations`` are outputs; else the activation
            (registry spec such as ``"relu"``, a callable, or ``{layer: ...}``)
            that maps the given pre-activations to outputs.
        layers: ``{activation layer: (incoming layer, outgoing layer)}`` with
            parameter paths (``"Dense_0"`` or ``("block", "Dense_0")``); default
            :func:`layer_pairs` (sequential models).
        kernel_init: the initialiser of the incoming kernels (a jax
            initializer ``init(key, shape, dtype)``, or ``{layer path: init}``);
            default :func:`jax.nn.initializers.lecun_normal`, flax's default for
            Dense, Conv and ``nnx.Linear``. Pass the one your layers use (e.g.
            :func:`leakyjax.initializers.he_normal`).
        bias_init: the initialiser of the biases (default zeros, flax's).
        feature_axis: the unit axis of the activations (-1).
        count_only: only count (params and optimiser state are returned
            unchanged, ``recycled`` is 0).

    Returns:
        A :class:`RecycleResult`.

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

    default_kernel_init = jax.nn.initializers.lecun_normal()
    default_bias_init = jax.nn.initializers.zeros
    masks, dormant, dead, units, recycled = {}, {}, {}, {}, {}
    in_masks: dict[tuple, Array] = {}  # weight path -> bool mask of its shape
    out_masks: dict[tuple, Array] = {}
    new_vals: dict[tuple, Any] = {}
    for i, (name, (inc, outg)) in enumerate(pairs.items()):
        where = f"recycle_dormant (layer {name!r})"
        inc, outg = _split(inc), _split(outg)
        try:
            w_in = _get(pure, (*inc, "kernel"))
            w_out = _get(pure, (*outg, "kernel"))
        except KeyError as e:
            raise ValueError(
                f"{where}: no kernel at {'/'.join(inc)!r} or {'/'.join(outg)!r} "
                f"(missing {e}); the kernel layers are "
                f"{['/'.join(p) for p in _kernel_layers(pure)]}."
            ) from None
        n = int(scores[name].shape[0])
        if w_in.shape[-1] != n:
            raise ValueError(
                f"{where}: the incoming kernel {'/'.join(inc)!r} has "
                f"{w_in.shape[-1]} outputs but the activations have {n} units; "
                "fix layers= or feature_axis=."
            )
        is_dormant = scores[name] <= tau
        is_dead = stats[name].dead
        sel = {"dormant": is_dormant, "dead": is_dead, "either": is_dormant | is_dead}
        mask = sel[criterion]
        units[name] = n
        masks[name] = mask
        dormant[name] = jnp.sum(is_dormant, dtype=jnp.int32)
        dead[name] = jnp.sum(is_dead, dtype=jnp.int32)
        recycled[name] = jnp.sum(mask, dtype=jnp.int32) * (0 if count_only else 1)
        if count_only:
            continue
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
            b = _get(pure, (*inc, "bias"))
        except KeyError:
            b = None
        if b is not None:
            bpath = (*inc, "bias")
            m_b = jnp.broadcast_to(mask, b.shape)
            in_masks[bpath] = in_masks.get(bpath, False) | m_b
            new_vals[bpath] = jnp.where(
                m_b, binit(k_b, b.shape, b.dtype), new_vals.get(bpath, b)
            )
        rows = _out_rows_mask(mask, w_out.shape[-2], n, where)
        opath = (*outg, "kernel")
        m_out = jnp.broadcast_to(rows[:, None], w_out.shape)
        out_masks[opath] = out_masks.get(opath, False) | m_out

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

    # outgoing zeros win over a fresh incoming column (output unchanged)
    new = pure
    touched = {**in_masks}
    for p, m in out_masks.items():
        touched[p] = touched.get(p, False) | m
    for p in touched:
        val = new_vals.get(p, _get(pure, p))
        if p in out_masks:
            val = jnp.where(out_masks[p], jnp.zeros((), val.dtype), val)
        new = _set(new, p, val)
    new_params = rebuild(new)
    new_opt = _reset_opt_state(opt_state, touched)
    return RecycleResult(
        params=new_params,
        opt_state=new_opt,
        recycled=recycled,
        dormant=dormant,
        dead=dead,
        units=units,
        mask=masks,
        score=scores,
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
