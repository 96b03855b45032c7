"""Which training results are the same bits on another x86-64 host.

One small training run per function (a 13-64-64-3 MLP, 300 full-batch SGD
steps in one `lax.scan`, float32), for every leakyjax function and its jax.nn
counterpart, on this machine and on other x86-64 CPUs emulated by QEMU's user
mode (`qemu-x86_64 -cpu MODEL`, when installed: `apt install qemu-user`). Each
run is summarised by a digest of its final parameters, so two hosts agree on
a function exactly when its digests are equal.

    python -m benchmarks.reproducibility --out results.json
    python -m benchmarks.reproducibility --hosts native        # no QEMU

The emulated CPUs report the vector instructions of their model (AVX2 and FMA
for Haswell and EPYC-Rome; QEMU does not emulate AVX-512), so XLA:CPU and its
matmul kernels take the same code paths they take on such a machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

#: (leakyjax name, its jax.nn counterpart) -- jax.nn names, called with the
#: same parameters.
PAIRS = (
    ("relu", "relu", {}),
    ("leaky_relu", "leaky_relu", {"negative_slope": 0.01}),
    ("leaky_relu:0.2", "leaky_relu", {"negative_slope": 0.2}),
    ("relu6", "relu6", {}),
    ("hard_tanh", "hard_tanh", {}),
    ("hard_sigmoid", "hard_sigmoid", {}),
    ("elu", "elu", {}),
    ("celu", "celu", {}),
    ("selu", "selu", {}),
)
#: QEMU CPU models run by default: an Intel and an AMD design with AVX2.
QEMU_MODELS = ("Haswell-noTSX", "EPYC-Rome")
STEPS = 300


def _worker() -> dict:
    """Train every function (and tanh) here; `{label: digest}`."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import leakyjax as lj

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(256, 13)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 256))
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params0 = [
        jax.random.normal(k1, (13, 64)) * 0.4,
        jnp.zeros(64),
        jax.random.normal(k2, (64, 64)) * 0.18,
        jnp.zeros(64),
        jax.random.normal(k3, (64, 3)) * 0.18,
        jnp.zeros(3),
    ]

    def digest(f) -> str:
        def loss(p):
            h = f(x @ p[0] + p[1])
            h = f(h @ p[2] + p[3])
            o = h @ p[4] + p[5]
            return -jnp.mean(jax.nn.log_softmax(o)[jnp.arange(256), y])

        @jax.jit
        def run(p):
            def body(p, _):
                g = jax.grad(loss)(p)
                return [a - 0.1 * b for a, b in zip(p, g)], None

            return jax.lax.scan(body, p, None, length=STEPS)[0]

        out = run(params0)
        h = hashlib.sha256()
        for a in out:
            h.update(np.asarray(a).tobytes())
        return h.hexdigest()[:12]

    res = {"jax.nn.tanh": digest(jnp.tanh)}
    for spec, jnn, kw in PAIRS:
        lj_f = lj.get(spec)
        jnn_f = getattr(jax.nn, jnn)
        res[f"leakyjax.{spec}"] = digest(lj_f)
        res[f"jax.nn.{jnn}{':0.2' if kw.get('negative_slope') == 0.2 else ''}"] = (
            digest(lambda v, f=jnn_f, kw=kw: f(v, **kw))
        )
    return res


def _isa(flags: str) -> str:
    return (
        "AVX-512"
        if "avx512f" in flags.split()
        else "AVX2"
        if "avx2" in flags
        else "SSE"
    )


def native_isa() -> str:
    """The widest x86 vector extension of this host's CPU (`/proc/cpuinfo`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return _isa(line)
    except OSError:
        pass
    return "unknown"


def _run(prefix: list[str]) -> dict:
    cmd = [*prefix, sys.executable, "-m", "benchmarks.reproducibility", "--worker"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the results JSON here")
    ap.add_argument(
        "--hosts",
        default="native," + ",".join(QEMU_MODELS),
        help="comma-separated: native and/or QEMU CPU models",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker()))
        return 0
    qemu = shutil.which("qemu-x86_64")
    hosts = []
    for h in args.hosts.split(","):
        if h == "native":
            hosts.append({"host": "native", "isa": native_isa(), "prefix": []})
        elif qemu:
            hosts.append(
                {"host": f"qemu {h}", "isa": "AVX2", "prefix": [qemu, "-cpu", h]}
            )
        else:
            print(f"skipping {h}: qemu-x86_64 not installed", file=sys.stderr)
    for h in hosts:
        print(f"training on {h['host']} ...", file=sys.stderr, flush=True)
        h["digests"] = _run(h.pop("prefix"))
    data = {
        "benchmark": "reproducibility",
        "steps": STEPS,
        "pairs": [
            [
                f"leakyjax.{s}",
                f"jax.nn.{j}{':0.2' if k.get('negative_slope') == 0.2 else ''}",
            ]
            for s, j, k in PAIRS
        ],
        "hosts": hosts,
    }
    text = json.dumps(data, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(markdown(data))
    return 0


def markdown(data: dict) -> str:
    """The table: per function, whether leakyjax's digest equals jax.nn's on
    each host, and whether each host agrees with the first of its ISA."""
    hosts = data["hosts"]
    header = ["function", *(f"{h['host']} ({h['isa']})" for h in hosts)]
    rows = []
    first_of = {}
    for i, h in enumerate(hosts):
        first_of.setdefault(h["isa"], i)

    def cell(h, i, name, other=None):
        d = h["digests"][name]
        same = hosts[first_of[h["isa"]]]["digests"][name] == d
        parts = [f"`{d[:8]}`"]
        if other is not None:
            parts.append("= jax.nn" if h["digests"][other] == d else "≠ jax.nn")
        if first_of[h["isa"]] != i:
            parts.append("same bits" if same else "**differs**")
        return " ".join(parts)

    for lj_name, jnn in data["pairs"]:
        rows.append([lj_name, *(cell(h, i, lj_name, jnn) for i, h in enumerate(hosts))])
    rows.append(
        ["jax.nn.tanh", *(cell(h, i, "jax.nn.tanh") for i, h in enumerate(hosts))]
    )
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
