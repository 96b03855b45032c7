"""What the code computes, and what the code is, as short digests for results freshness.

Two digests decide whether a committed results file still describes the code
(tools/results.py):

- `behaviour()`: a numeric fingerprint of the library's numerics. The outputs and
  gradients of every registry activation (defaults and one other value of each float
  parameter; float32 and bfloat16; on a grid, at each kink, at +0.0 and -0.0, just
  either side of each kink), the same with traced parameters (`jax.vmap` over slopes,
  gradients in the slope), rrelu with a key, the modules of every installed API
  (linen, nnx, equinox: initial parameters, outputs, input and parameter gradients)
  and every initialiser on a fixed key. A docstring, a comment, a renamed helper or a
  moved function leaves it unchanged; a changed value, derivative, dtype, shape or
  random draw changes it. Results made by training read this.
- `code_digest_ast(files)`: sha256 over the files' Python syntax trees with docstrings
  dropped (comments and formatting never reach the tree); a non-Python file counts
  byte for byte. Results that depend on how XLA compiles the code (compiled memory)
  and benchmark timings read this.

    python -m tools.fingerprint    # print the behaviour fingerprint
"""

from __future__ import annotations

import ast
import functools
import hashlib
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Bumped when the probe itself changes (its inputs or what it records): results
#: stamped with another version are judged by their code digest instead.
PROBE_VERSION = 1

#: The files whose behaviour `behaviour()` captures: their edits are judged by it, not
#: by their text (git pathspecs, globs allowed).
BEHAVIOUR_CODE = (
    "leakyjax/_src/activations.py",
    "leakyjax/_src/_*.py",
    "leakyjax/_src/initializers.py",
    "leakyjax/_src/registry.py",
    "leakyjax/_src/table.py",
    "leakyjax/_src/modules.py",
    "leakyjax/_src/linen.py",
    "leakyjax/_src/nnx.py",
    "leakyjax/_src/equinox.py",
)


# --------------------------------------------------------------------------- #
# Code without docstrings and comments
# --------------------------------------------------------------------------- #


def tracked(paths: Sequence[str]) -> list[str]:
    """The tracked files under ``paths`` (git pathspecs), sorted."""
    if not paths:
        return []
    try:
        r = subprocess.run(
            ["git", "ls-files", "-z", "--", *paths],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted(f for f in r.stdout.split("\0") if f)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_form(path: Path) -> bytes:
    """A file as the digest sees it: a Python file's syntax tree without docstrings."""
    data = path.read_bytes()
    if path.suffix != ".py":
        return data
    try:
        tree = ast.parse(data, filename=str(path))
    except SyntaxError:
        return data
    return ast.dump(_strip_docstrings(tree), include_attributes=False).encode()


def code_digest_ast(paths: Sequence[str]) -> str:
    """sha256 (16 hex digits) over the tracked files under ``paths``, docstrings and
    comments left out; a deleted file counts as deleted."""
    h = hashlib.sha256()
    for f in tracked(paths):
        p = ROOT / f
        h.update(f.encode() + b"\0")
        h.update(source_form(p) if p.is_file() else b"<deleted>")
        h.update(b"\0")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- #
# What the code computes
# --------------------------------------------------------------------------- #


def _probes() -> Iterator[tuple[str, Callable[[], Any]]]:
    """``(label, thunk)`` pairs; each thunk returns a pytree of arrays."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import leakyjax as lj
    from leakyjax import initializers as li
    from leakyjax._src import table as T

    dtypes = (jnp.float32, jnp.bfloat16)
    grid = np.linspace(-6.5, 6.5, 27)

    def points(e: T.Entry, kw: dict) -> np.ndarray:
        pts = [0.0, -0.0, 1e-3, -1e-3]
        for x0, _ in e.kinks(**kw):
            pts += [x0, x0 + 1e-2, x0 - 1e-2]
        return np.concatenate([grid, np.asarray(pts, np.float64)])

    def samples(e: T.Entry) -> list[dict]:
        out = [e.defaults()]
        for p in e.params:
            if p.kind is float and p.default is not None:
                out.append({**e.defaults(), p.name: 0.5 * p.default + 0.05})
        return out

    for e in T.TABLE:
        for i, kw in enumerate(samples(e)):
            for dt in dtypes:
                x = jnp.asarray(points(e, kw), dt)
                f = e.bind(**kw)

                @jax.jit
                def value_and_grad(x, f=f):
                    g = jax.vmap(jax.grad(f))(x)  # scalar by scalar
                    vjp = jax.grad(lambda v: jnp.sum(f(v) * jnp.arange(v.size)))(x)
                    return f(x), g, vjp

                yield (
                    f"{e.name}[{i}] {jnp.dtype(dt).name}",
                    functools.partial(value_and_grad, x),
                )
        floats = [p for p in e.params if p.kind is float and p.default is not None]
        for p in floats:
            x = jnp.asarray(points(e, e.defaults()), jnp.float32)
            slopes = jnp.asarray([0.5 * p.default + 0.05, p.default, 0.3], jnp.float32)

            @jax.jit
            def traced(x, slopes, e=e, p=p):
                def at(a):
                    return e.function(x, **{**e.defaults(), p.name: a})

                def dslope(a):
                    return jax.grad(lambda a: jnp.sum(at(a) * jnp.arange(x.size)))(a)

                return jax.vmap(at)(slopes), jax.vmap(dslope)(slopes)

            yield f"{e.name} traced {p.name}", functools.partial(traced, x, slopes)

    x = jnp.asarray(grid, jnp.float32)
    for dt in dtypes:
        xd = x.astype(dt)

        @jax.jit
        def rrelu_key(xd, key):
            g = jax.grad(lambda v: jnp.sum(lj.rrelu(v, key) * jnp.arange(v.size)))(xd)
            return lj.rrelu(xd, key), g

        yield (
            f"rrelu key {jnp.dtype(dt).name}",
            functools.partial(rrelu_key, xd, jax.random.key(3)),
        )

    xp = jax.random.normal(jax.random.key(5), (6, 3), jnp.float32) * 2
    alpha = jnp.asarray([0.25, -0.1, 1.5], jnp.float32)

    @jax.jit
    def prelu_grads(xp, alpha):
        return jax.grad(lambda v, a: jnp.sum(lj.prelu(v, a) ** 2), argnums=(0, 1))(
            xp, alpha
        )

    yield "prelu per channel", functools.partial(prelu_grads, xp, alpha)

    key = jax.random.key(7)
    inits = {
        "he_normal": li.he_normal(negative_slope=0.2),
        "he_uniform": li.he_uniform(negative_slope=0.01),
        "he_truncated_normal": li.he_truncated_normal(mode="fan_out"),
        "for_activation": li.for_activation("prelu"),
        "rai": li.rai(),
        "rai_bias": li.rai_bias(16),
    }
    for name, init in inits.items():
        shape = (16,) if name == "rai_bias" else (16, 8)
        draw = jax.jit(functools.partial(init, shape=shape, dtype=jnp.float32))
        yield f"init {name}", functools.partial(draw, key)

    yield from _module_probes()


def _module_probes() -> Iterator[tuple[str, Callable[[], Any]]]:
    """The modules of each installed API for every registry name (evaluation mode,
    then training mode with a key where a module is random)."""
    import jax
    import jax.numpy as jnp

    import leakyjax as lj

    x = jax.random.normal(jax.random.key(11), (5, 4), jnp.float32) * 3
    w = jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape)
    try:
        from flax import nnx

        from leakyjax import linen as L
        from leakyjax import nnx as N
    except ImportError:
        pass
    else:
        for name in lj.available():

            def linen(name=name):
                m = L.get(name)()
                kw = {"deterministic": True} if name == "rrelu" else {}
                v = m.init(jax.random.key(0), x, **kw)

                def loss(v, xx):
                    return jnp.sum(m.apply(v, xx, **kw) * w)

                out = [v, m.apply(v, x, **kw), jax.grad(loss, argnums=(0, 1))(v, x)]
                if name == "rrelu":
                    out.append(
                        m.apply(
                            v, x, deterministic=False, rngs={"rrelu": jax.random.key(1)}
                        )
                    )
                return out

            def nnx_(name=name):
                m = N.get(name)(rngs=nnx.Rngs(0))
                m.eval()
                y = m(x)
                g = nnx.grad(lambda m, xx: jnp.sum(m(xx) * w), argnums=(0, 1))(m, x)
                return [nnx.state(m), y, g]

            yield f"linen {name}", linen
            yield f"nnx {name}", nnx_
    try:
        import equinox as eqx

        from leakyjax import equinox as E
    except ImportError:
        return
    for name in lj.available():

        def equinox(name=name):
            m = eqx.nn.inference_mode(E.get(name)())
            params = eqx.filter(m, eqx.is_inexact_array)
            g = eqx.filter_grad(lambda m, xx: jnp.sum(m(xx) * w))(m, x)
            return [params, m(x), g]

        yield f"equinox {name}", equinox


def _quantize(leaf: Any) -> bytes:
    """An array's dtype, shape and values, rounded to 16 significant bits (so that a
    last-bit difference of a transcendental between CPUs does not count)."""
    import jax
    import numpy as np

    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key
    ):
        leaf = jax.random.key_data(leaf)
    a = np.asarray(leaf)
    head = f"{a.dtype.name}{a.shape}".encode()
    if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
        v = a.astype(np.float64)
        finite = np.isfinite(v)
        m, ex = np.frexp(np.where(finite, v, 0.0))
        q = np.ldexp(np.round(m * 2.0**16), ex - 16)
        q = np.where(finite, q, np.where(np.isnan(v), np.nan, v))  # one NaN
        # the sign of zero is behaviour too (a derivative at -0.0)
        return head + q.tobytes() + np.signbit(v).tobytes()
    return head + a.tobytes()


def behaviour_items(prefix: str = "") -> dict[str, str]:
    """Each probe's label and digest (the parts of `behaviour`), for finding what moved;
    ``prefix``: only the probes whose label starts with it."""
    import jax

    out = {}
    for label, thunk in _probes():
        if not label.startswith(prefix):
            continue
        try:
            tree = thunk()
        except Exception as err:  # a probe that raises is behaviour too
            out[label] = f"raises {type(err).__name__}"
            continue
        h = hashlib.sha256()
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            h.update(jax.tree_util.keystr(path).encode() + b"\0")
            h.update(_quantize(leaf))
        out[label] = h.hexdigest()[:16]
    return out


@functools.cache
def behaviour() -> str:
    """The numeric fingerprint of the activations, modules and initialisers (16 hex
    digits, cached per process)."""
    h = hashlib.sha256(f"probe v{PROBE_VERSION}\0".encode())
    for label, digest in sorted(behaviour_items().items()):
        h.update(f"{label}\0{digest}\0".encode())
    return h.hexdigest()[:16]


if __name__ == "__main__":
    print(behaviour())
