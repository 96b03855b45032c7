r"""`born-dead`: deep, narrow ReLU networks are constant at initialisation.

Lu, Shin, Su and Karniadakis (2019/2020), "Dying ReLU and Initialization:
Theory and Numerical Examples", prove that a ReLU network of width $N$
and depth $L$ initialised with symmetric weights is *born dead* (a
constant function on its input domain) with a probability that tends to 1 as
$L \to \infty$. For one input $x$ each hidden layer is entirely
inactive at $x$ with probability $2^{-N}$ (every pre-activation
is a symmetric random variable, independent across units given the layer's
input), so

$$
P(\text{some hidden layer is dead at } x) = 1 - (1 - 2^{-N})^{L-1},
$$

which bounds the probability of being dead on the whole domain from above.

This module estimates, by Monte Carlo vectorised with `jax.vmap`, the
probability that the network's output takes a single value over a dense sample
of the input domain $[-1, 1]^d$, for ReLU and for leaky ReLU with the
*same* weights. Depth $L$ counts the $L-1$ hidden layers of width
$N$ plus the linear output layer. Weights are He-normal,
$w \sim N(0, 2/\text{fan\_in})$; biases are zero (the usual He
initialisation and flax's default) or, as a second setting, also
$N(0, 2/\text{fan\_in})$ (a symmetric bias distribution, covered by the
same theorem). Computation is in float64 so that leaky networks, whose output
range can shrink by the slope in each all-negative layer, are not rounded to a
constant.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from leakyjax._src import activations as A
from leakyjax._src.study import studies as S

NAME = "born-dead"
#: relative output range below which a network counts as numerically flat.
FLAT_RTOL = 1e-6


class BornDeadCell(NamedTuple):
    """Monte Carlo estimate for one (activation, bias, width, depth) cell.

    Attributes:
        p_constant: fraction of networks whose output is exactly constant over
            the sampled inputs.
        p_dead_layer: fraction with some hidden layer whose pre-activations are
            all <= 0 for every sampled input (for leaky units the layer is
            then in its negative regime, not constant).
        p_dead_at_x0: fraction with some hidden layer entirely inactive at the
            single input `x0 = (1, ..., 1)`; its expectation is `bound`.
        bound: `1 - (1 - 2**-width)**(depth - 1)`.
        stderr: binomial standard error of `p_constant`.
        p_flat: fraction whose relative output range
            `(max f - min f) / max |f|` is below `1e-6` (numerically
            constant in float32, even where not exactly constant).
        median_rel_range: median over networks of that relative range.
        trials: number of sampled networks.
    """

    p_constant: float
    p_dead_layer: float
    p_dead_at_x0: float
    bound: float
    stderr: float
    p_flat: float
    median_rel_range: float
    trials: int


def single_input_bound(width: int, depth: int) -> float:
    """`1 - (1 - 2**-width)**(depth - 1)`: P(some hidden layer dead at one x).

    >>> round(single_input_bound(2, 5), 4)
    0.6836
    """
    return 1.0 - (1.0 - 2.0**-width) ** (depth - 1)


def domain_inputs(d_in: int, n_inputs: int, *, rng: np.random.Generator) -> np.ndarray:
    """Dense sample of `[-1, 1]^d_in`; the first row is `x0 = (1, ..., 1)`.

    `d_in == 1` gives a uniform grid including both ends; `d_in > 1` the
    corner `x0`, and uniform random points.
    """
    if d_in == 1:
        return np.linspace(1.0, -1.0, n_inputs)[:, None]
    rest = rng.uniform(-1.0, 1.0, (n_inputs - 1, d_in))
    return np.concatenate([np.ones((1, d_in)), rest])


def _activation(name: str, slope: float):
    if name == "relu":
        return A.relu
    if name == "leaky_relu":
        return lambda z: A.leaky_relu(z, slope)
    raise ValueError(f"born-dead: activation must be 'relu' or 'leaky_relu': {name!r}")


def _weights(rng: np.random.Generator, trials, d_in, width, n_hidden, bias_scale):
    """He-normal weights, stacked over `trials` (numpy: no compile per shape)."""

    def normal(shape, fan_in):
        return rng.standard_normal((trials, *shape)) * np.sqrt(2.0 / fan_in)

    return dict(
        w1=normal((d_in, width), d_in),
        b1=bias_scale * normal((width,), d_in),
        wh=normal((n_hidden - 1, width, width), width),
        bh=bias_scale * normal((n_hidden - 1, width), width),
        wo=normal((width, 1), width),
        bo=bias_scale * normal((1,), width),
    )


@partial(jax.jit, static_argnames=("act", "slope"))
def _forward(x, p, *, act, slope):
    """Per network and per depth: constant?, dead layer?, dead at x0?, range.

    The network of depth `L` is the first `L - 1` hidden layers of the
    deepest one followed by the (shared) output layer, so one forward pass
    scores every depth. Entry `j` of each output is depth `j + 2`.
    """
    fn = _activation(act, slope)

    def one(p):
        def stats(h, dead_dom, dead_x0):
            f = (h @ p["wo"] + p["bo"])[:, 0]
            rng = jnp.max(f) - jnp.min(f)
            scale = jnp.max(jnp.abs(f))
            rel = jnp.where(scale > 0, rng / jnp.where(scale > 0, scale, 1.0), 0.0)
            return rng == 0, dead_dom, dead_x0, rel

        z = x @ p["w1"] + p["b1"]
        dead_dom, dead_x0 = jnp.all(z <= 0), jnp.all(z[0] <= 0)
        h = fn(z)
        first = stats(h, dead_dom, dead_x0)

        def layer(carry, wb):
            h, dead_dom, dead_x0 = carry
            z = h @ wb[0] + wb[1]
            h = fn(z)
            dead_dom = dead_dom | jnp.all(z <= 0)
            dead_x0 = dead_x0 | jnp.all(z[0] <= 0)
            return (h, dead_dom, dead_x0), stats(h, dead_dom, dead_x0)

        _, rest = jax.lax.scan(layer, (h, dead_dom, dead_x0), (p["wh"], p["bh"]))
        return tuple(jnp.concatenate([a[None], b]) for a, b in zip(first, rest))

    return jax.vmap(one)(p)


def estimate_width(
    key: jax.Array,
    *,
    width: int,
    depths: tuple[int, ...] = (5, 10, 20, 50),
    activation: str = "relu",
    negative_slope: float = 0.01,
    bias: str = "zero",
    d_in: int = 1,
    trials: int = 1000,
    n_inputs: int = 257,
    chunk: int = 250,
) -> dict[int, BornDeadCell]:
    """Monte Carlo estimate of the born-dead probability for one width.

    The same `key` gives the same weights for every `activation`, so ReLU
    and leaky ReLU are compared on identical networks.

    Args:
        key: a jax PRNG key (seeds a numpy generator for the weights).
        width: hidden width `N` (>= 1).
        depths: depths `L` (hidden layers + 1, each >= 2) to score.
        activation: `"relu"` or `"leaky_relu"`.
        negative_slope: slope of `leaky_relu`.
        bias: `"zero"` or `"normal"` (`N(0, 2/fan_in)` like the weights).
        d_in: input dimension; the domain is `[-1, 1]^d_in`.
        trials: number of random networks.
        n_inputs: number of sampled inputs.
        chunk: networks per vmapped batch (bounds memory).

    Returns:
        `{depth: BornDeadCell}`.

    Raises:
        ValueError: for out-of-range sizes or an unknown `bias`/`activation`.

    >>> cells = estimate_width(jax.random.key(0), width=2, depths=(3, 10), trials=200)
    >>> cells[3].p_constant < cells[10].p_constant
    True
    """
    for name, val, lo in (
        ("width", width, 1),
        ("d_in", d_in, 1),
        ("trials", trials, 1),
        ("n_inputs", n_inputs, 2),
        ("chunk", chunk, 1),
    ):
        if not isinstance(val, (int, np.integer)) or val < lo:
            raise ValueError(f"born-dead: {name} must be an int >= {lo}, got {val!r}.")
    depths = tuple(int(d) for d in depths)
    if not depths or min(depths) < 2:
        raise ValueError(f"born-dead: depths must be ints >= 2, got {depths!r}.")
    if bias not in ("zero", "normal"):
        raise ValueError(f"born-dead: bias must be 'zero' or 'normal', got {bias!r}.")
    _activation(activation, negative_slope)
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    rng = np.random.default_rng(seed)
    n_hidden = max(max(depths) - 1, 2)
    x = np.asarray(domain_inputs(d_in, n_inputs, rng=rng), np.float64)
    outs = []
    with jax.enable_x64(True):
        done = 0
        while done < trials:
            n = min(chunk, trials - done)
            p = _weights(
                rng, n, d_in, width, n_hidden, 1.0 if bias == "normal" else 0.0
            )
            outs.append(
                jax.device_get(
                    _forward(x, p, act=activation, slope=float(negative_slope))
                )
            )
            done += n
    const, dead_dom, dead_x0, rel = (np.concatenate(c) for c in zip(*outs))
    cells = {}
    for d in depths:
        j = d - 2
        p_c = float(const[:, j].mean())
        cells[d] = BornDeadCell(
            p_constant=p_c,
            p_dead_layer=float(dead_dom[:, j].mean()),
            p_dead_at_x0=float(dead_x0[:, j].mean()),
            bound=single_input_bound(width, d),
            stderr=float(np.sqrt(p_c * (1 - p_c) / trials)),
            p_flat=float((rel[:, j] < FLAT_RTOL).mean()),
            median_rel_range=float(np.median(rel[:, j])),
            trials=int(trials),
        )
    return cells


def _config(quick: bool, seed: int) -> dict:
    if quick:
        return dict(
            version=2,
            widths=[2, 5],
            depths=[5, 20, 50],
            trials=400,
            n_inputs=65,
            d_in=1,
            biases=["zero"],
            activations=["relu", "leaky_relu"],
            negative_slope=0.01,
            seed=seed,
        )
    return dict(
        version=2,
        widths=[2, 3, 5, 10],
        depths=[5, 10, 20, 50],
        trials=4000,
        n_inputs=513,
        d_in=1,
        biases=["zero", "normal"],
        activations=["relu", "leaky_relu"],
        negative_slope=0.01,
        seed=seed,
    )


def _figure(path: Path, cfg: dict, cells: dict) -> Path:
    plt = S.pyplot()
    biases = cfg["biases"]
    fig, axes = plt.subplots(
        1, len(biases), figsize=(5.2 * len(biases), 4.2), squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    depths = np.array(cfg["depths"])
    dense = np.arange(depths.min(), depths.max() + 1)
    for ax, bias in zip(axes[0], biases):
        for i, w in enumerate(cfg["widths"]):
            c = colors[i % len(colors)]
            relu = [cells[("relu", bias, w, d)] for d in cfg["depths"]]
            leaky = [cells[("leaky_relu", bias, w, d)] for d in cfg["depths"]]
            ax.plot(
                dense,
                [single_input_bound(w, d) for d in dense],
                "--",
                color=c,
                lw=1,
            )
            ax.errorbar(
                depths,
                [r["p_constant"] for r in relu],
                yerr=[2 * r["stderr"] for r in relu],
                fmt="o-",
                color=c,
                label=f"ReLU, N={w}",
            )
            ax.plot(
                depths,
                [r["p_constant"] for r in leaky],
                "x:",
                color=c,
                label=f"leaky 0.01, N={w}",
            )
            ax.plot(
                depths,
                [r["p_flat"] for r in leaky],
                "^",
                color=c,
                mfc="none",
                ms=5,
            )
        ax.set_xlabel("depth L (L-1 hidden layers of width N)")
        ax.set_ylabel("P(network constant on [-1, 1])")
        ax.set_title(f"He-normal weights, {bias} biases")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].plot([], [], "k--", lw=1, label="1-(1-2^-N)^(L-1)")
    axes[0][0].plot([], [], "k^", mfc="none", label="leaky: rel. range < 1e-6")
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("born-dead (Lu et al. 2019): Monte Carlo, float64", fontsize=10)
    return S.save_figure(fig, path)


def _key(act: str, bias: str, width: int) -> str:
    return f"{act}_{bias}_N{width}"


def _parts(cfg: dict, seed: int) -> dict:
    def part(act: str, bias: str, w: int) -> dict:
        # the same networks for every activation: the key depends on (bias, width)
        key = jax.random.key(seed * 100_003 + 1000 * cfg["biases"].index(bias) + w)
        cells = estimate_width(
            key,
            width=w,
            depths=tuple(cfg["depths"]),
            activation=act,
            negative_slope=cfg["negative_slope"],
            bias=bias,
            d_in=cfg["d_in"],
            trials=cfg["trials"],
            n_inputs=cfg["n_inputs"],
        )
        return {str(d): c._asdict() for d, c in cells.items()}

    return {
        _key(act, bias, w): partial(part, act, bias, w)
        for bias in cfg["biases"]
        for w in cfg["widths"]
        for act in cfg["activations"]
    }


def _cells(cfg: dict, values: dict) -> dict:
    """`{(activation, bias, width, depth): cell}` from the parts' values."""
    return {
        (act, bias, w, d): values[_key(act, bias, w)][str(d)]
        for bias in cfg["biases"]
        for w in cfg["widths"]
        for act in cfg["activations"]
        for d in cfg["depths"]
    }


def _summarise(cfg: dict, values: dict) -> tuple[dict, dict]:
    cells = _cells(cfg, values)
    rows = [
        dict(activation=k[0], bias=k[1], width=k[2], depth=k[3], **v)
        for k, v in cells.items()
    ]
    lines = []
    for bias in cfg["biases"]:
        for act in cfg["activations"]:
            lines.append(f"{act}, {bias} biases: P(constant) [width x depth]")
            for w in cfg["widths"]:
                ps = " ".join(
                    f"L={d}:{cells[(act, bias, w, d)]['p_constant']:.3f}"
                    for d in cfg["depths"]
                )
                lines.append(f"  N={w}: {ps}")
            if act != "relu":
                lines.append(f"  numerically flat (relative range < {FLAT_RTOL:g}):")
                for w in cfg["widths"]:
                    ps = " ".join(
                        f"L={d}:{cells[(act, bias, w, d)]['p_flat']:.3f}"
                        for d in cfg["depths"]
                    )
                    lines.append(f"  N={w}: {ps}")
    leaky_flat_max = max(
        (v["p_flat"] for k, v in cells.items() if k[0] == "leaky_relu"), default=0.0
    )
    leaky_max = max(
        (v["p_constant"] for k, v in cells.items() if k[0] == "leaky_relu"), default=0.0
    )
    summary = dict(
        max_p_constant_leaky=leaky_max,
        max_p_flat_leaky=leaky_flat_max,
        p_constant_relu={
            f"{bias}/N{w}/L{d}": cells[("relu", bias, w, d)]["p_constant"]
            for bias in cfg["biases"]
            for w in cfg["widths"]
            for d in cfg["depths"]
        },
        lines=lines,
    )
    return summary, dict(cells=rows)


def _p(x: float) -> str:
    return "0" if x == 0 else f"{x:.3f}"


def render_markdown(res: dict) -> str:
    """The tables of docs/STUDY.md's `born-dead` section, from the results JSON."""
    cfg = res["config"]
    cells = {
        (c["activation"], c["bias"], c["width"], c["depth"]): c for c in res["cells"]
    }
    se = max(c["stderr"] for c in res["cells"])
    out = [
        "P(ReLU net constant on [−1, 1]) / bound 1 − (1 − 2^−N)^(L−1) / Monte Carlo "
        f"P(dead at x0) / P(leaky {cfg['negative_slope']:g} net constant) / P(leaky "
        f"net numerically flat); {cfg['trials']} networks per cell (binomial standard "
        f"error ≤ {se:.3f}):",
    ]
    title = {"zero": "zero biases", "normal": "biases N(0, 2/fan_in)"}
    for bias in cfg["biases"]:
        out += [
            "",
            f"*{title.get(bias, bias)}*",
            "",
            "| N | " + " | ".join(f"L={d}" for d in cfg["depths"]) + " |",
            "|---|" + "---|" * len(cfg["depths"]),
        ]
        for w in cfg["widths"]:
            row = []
            for d in cfg["depths"]:
                r, lk = cells[("relu", bias, w, d)], cells[("leaky_relu", bias, w, d)]
                row.append(
                    " / ".join(
                        [
                            f"{r['p_constant']:.3f}",
                            f"{r['bound']:.3f}",
                            f"{r['p_dead_at_x0']:.3f}",
                            _p(lk["p_constant"]),
                            _p(lk["p_flat"]),
                        ]
                    )
                )
            out.append(f"| {w} | " + " | ".join(row) + " |")
    relu = [c for c in res["cells"] if c["activation"] == "relu"]
    over = [c["p_constant"] - c["bound"] for c in relu if c["p_constant"] > c["bound"]]
    z = max(
        (
            abs(c["p_dead_at_x0"] - c["bound"])
            / np.sqrt(c["bound"] * (1 - c["bound"]) / c["trials"])
            for c in relu
            if 0 < c["bound"] < 1
        ),
        default=0.0,
    )
    out += [
        "",
        f"ReLU: P(constant) is above the bound in {len(over)} of {len(relu)} cells"
        + (f", by at most {max(over):.1g}" if over else "")
        + f"; the Monte Carlo P(dead at x0) is at most {z:.1f} binomial standard "
        "errors from the formula.",
    ]
    for bias in cfg["biases"]:
        lk = [
            c
            for c in res["cells"]
            if c["activation"] == "leaky_relu" and c["bias"] == bias
        ]
        out.append(
            f"Leaky, {title.get(bias, bias)}: share exactly constant at most "
            f"{_p(max(c['p_constant'] for c in lk))}, numerically flat at most "
            f"{_p(max(c['p_flat'] for c in lk))}."
        )
    return "\n".join(out)


def _plot(path: Path, cfg: dict, values: dict) -> Path:
    return _figure(path, cfg, _cells(cfg, values))


STUDY = S.Study(NAME, _config, _parts, _summarise, _plot, render_markdown)
