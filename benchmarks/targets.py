"""Compile for a device this machine does not have: the H100 and TPU v5e targets.

JAX compiles ahead of time for a topology it is not running on
(`jax.experimental.topologies`): the train step is lowered with abstract
arguments placed on the target's devices and compiled by that target's XLA, so
`memory_analysis()` and `as_text()` are what the real chip would run. A target
is data: a GPU device-description file (`benchmarks/devices/*.txtpb`) or a TPU
topology name.

Each target needs its compiler in the running Python:

- `cpu`: jax alone (the default backend; nothing deviceless about it).
- `h100`: `pip install jax-cuda12-plugin==<jax> jax-cuda12-pjrt==<jax>
  nvidia-cuda-nvcc-cu12` and, when no GPU driver is present,
  `JAX_PLATFORMS=cpu JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1`.
- `tpu-v5e`: `pip install "jax[tpu]==<jax>"` (libtpu).

`python -m benchmarks.targets venv TARGET DIR` makes such a virtual
environment (the jax version of this one, the project installed editable), and
`python -m benchmarks.targets run TARGET -- ARGS...` runs `python ARGS...` with
the target's compiler: here when this Python has it, else in the venv
`.target-venvs/TARGET` (made on first use), with the environment variables the
target needs, e.g.
`python -m benchmarks.targets run h100 -- -m benchmarks.zoo --target h100`.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
TARGET_FILES = HERE / "devices"


class Target(NamedTuple):
    """A compilation target: ``name``, the XLA ``platform`` it compiles with,
    and ``description`` (what the results files record)."""

    name: str
    platform: str
    description: str


TARGETS = {
    "cpu": Target("cpu", "cpu", "XLA:CPU, this machine"),
    "h100": Target(
        "h100", "cuda", "NVIDIA H100 SXM 80GB (XLA:GPU, compiled without a device)"
    ),
    "tpu-v5e": Target(
        "tpu-v5e", "tpu", "TPU v5e, one chip (XLA:TPU, compiled without a device)"
    ),
}

#: What each target needs installed besides jax, for `venv` and error messages.
REQUIREMENTS = {
    "cpu": [],
    "h100": [
        "jax-cuda12-plugin=={jax}",
        "jax-cuda12-pjrt=={jax}",
        "nvidia-cuda-nvcc-cu12",
    ],
    "tpu-v5e": ["jax[tpu]=={jax}"],
}


def _gpu_devices(n: int, name: str = "h100_sxm") -> list:
    from jax.experimental import topologies

    text = (TARGET_FILES / f"{name}.txtpb").read_text()
    config = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    )
    topo = topologies.get_topology_desc(
        "leakyjax-h100", "cuda", target_config=config, topology=f"1x1x{n}"
    )
    return list(topo.devices)


def _tpu_devices(n: int) -> list:
    from jax.experimental import topologies

    shapes = {1: ("v5e:1x1", (1, 1, 1)), 4: ("v5e:2x2", (2, 2, 1))}
    if n not in shapes:
        raise ValueError(f"tpu-v5e: {n} chips not supported; use 1 or 4")
    name, bounds = shapes[n]
    topo = topologies.get_topology_desc(
        platform="tpu",
        topology_name=name,
        chip_config_name="default",
        chips_per_host_bounds=bounds,
        num_slices=1,
    )
    return list(topo.devices)


@functools.cache
def devices(target: str, n: int = 1) -> tuple:
    """``n`` devices of ``target`` (abstract ones for h100 and tpu-v5e).

    Raises:
        RuntimeError: when this Python lacks the target's compiler; the message
            says what to install.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {sorted(TARGETS)}")
    if target == "cpu":
        devs = jax.devices("cpu")
        if len(devs) < n:
            raise RuntimeError(
                f"target cpu: {n} devices wanted, {len(devs)} present; set "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={n}"
            )
        return tuple(devs[:n])
    try:
        devs = _gpu_devices(n) if target == "h100" else _tpu_devices(n)
    except Exception as e:  # the plugins raise their own error types
        need = " ".join(r.format(jax=jax.__version__) for r in REQUIREMENTS[target])
        raise RuntimeError(
            f"target {target}: cannot make its devices here ({type(e).__name__}: "
            f"{str(e)[:200]}). Install its compiler: pip install {need}"
            + (
                " and run with JAX_PLATFORMS=cpu JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1"
                if target == "h100"
                else ""
            )
            + f", or make a venv with: python -m benchmarks.targets venv {target} DIR"
        ) from e
    return tuple(devs[:n])


def abstract(tree: Any, target: str, *, n: int = 1, batch_axis: bool = False) -> Any:
    """``tree`` as ``jax.ShapeDtypeStruct``s placed on ``target``'s devices.

    Replicated over ``n`` devices, or with ``batch_axis`` sharded on its leading
    axis over a mesh axis ``"data"`` of ``n`` devices.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices(target, n)), ("data",))
    spec = PartitionSpec("data") if batch_axis else PartitionSpec()

    def one(a):
        return jax.ShapeDtypeStruct(
            np.shape(a), a.dtype, sharding=NamedSharding(mesh, spec)
        )

    return jax.tree.map(one, tree)


def compile_step(step, params, x, y, target: str, *, n: int = 1):
    """``step`` compiled for ``target``: params replicated, the batch sharded
    over ``n`` devices (data parallel when ``n > 1``)."""
    if target == "cpu" and n == 1:
        return step.lower(params, x, y).compile()
    args = (
        abstract(params, target, n=n),
        abstract(x, target, n=n, batch_axis=n > 1),
        abstract(y, target, n=n, batch_axis=n > 1),
    )
    return step.lower(*args).compile()


def make_venv(target: str, path: str) -> None:
    """A virtual environment at ``path`` with ``target``'s compiler, this jax
    version and the project (editable, with its test extras)."""
    reqs = [r.format(jax=jax.__version__) for r in REQUIREMENTS[target]]
    root = HERE.parent
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    pip = [os.path.join(path, "bin", "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, f"jax=={jax.__version__}", f"jaxlib=={jax.__version__}", *reqs],
        check=True,
    )
    subprocess.run([*pip, "-e", f"{root}[test]"], check=True)


#: Environment of a deviceless compile: no driver is needed or looked for.
ENV = {
    "cpu": {},
    "h100": {"JAX_PLATFORMS": "cpu", "JAX_SKIP_CUDA_CONSTRAINTS_CHECK": "1"},
    "tpu-v5e": {"JAX_PLATFORMS": "cpu"},
}


def _has_compiler(python: str, target: str) -> bool:
    env = {**os.environ, **ENV[target]}
    code = f"from benchmarks.targets import devices; devices({target!r})"
    done = subprocess.run(
        [python, "-c", code], cwd=HERE.parent, env=env, capture_output=True
    )
    return done.returncode == 0


def run_with(target: str, args: list[str], venv: str | None = None) -> int:
    """``python *args`` with ``target``'s compiler (see the module docstring)."""
    python = sys.executable
    if not _has_compiler(python, target):
        path = Path(venv or HERE.parent / ".target-venvs" / target)
        python = str(path / "bin" / "python")
        if not _has_compiler(python, target):
            print(f"making {path} (the {target} compiler; once)", file=sys.stderr)
            make_venv(target, str(path))
    env = {**os.environ, **ENV[target]}
    return subprocess.run([python, *args], cwd=HERE.parent, env=env).returncode


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.targets", description=__doc__
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("venv", help="make a venv with a target's compiler")
    v.add_argument("target", choices=sorted(TARGETS))
    v.add_argument("dir")
    c = sub.add_parser("check", help="print a target's devices (is it usable here?)")
    c.add_argument("target", choices=sorted(TARGETS))
    r = sub.add_parser("run", help="run python ARGS with a target's compiler")
    r.add_argument("target", choices=sorted(TARGETS))
    r.add_argument("--venv", default=None, help="default: .target-venvs/TARGET")
    r.add_argument("args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.cmd == "venv":
        make_venv(args.target, args.dir)
    elif args.cmd == "run":
        rest = args.args[1:] if args.args[:1] == ["--"] else args.args
        sys.exit(run_with(args.target, rest, args.venv))
    else:
        print(devices(args.target))


if __name__ == "__main__":
    main()
