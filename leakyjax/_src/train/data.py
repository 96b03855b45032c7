"""Data sets that need no download: mnist1d (generated), sklearn digits, regression.

Every loader returns a `Dataset` of numpy arrays (float32 inputs; int32
labels for classification, float32 targets for regression). Nothing is cached
on disk; each process keeps the arrays it generated in memory.
"""

from __future__ import annotations

import functools
import os
import random
from typing import Any, NamedTuple

import numpy as np

DATASETS = ("mnist1d", "digits", "regression")


class Dataset(NamedTuple):
    """A train/test split held in memory.

    Attributes:
        name: the data set's name (one of `DATASETS`).
        x_train: inputs, `(num_train, *input_shape)` float32.
        y_train: int32 class labels `(num_train,)` or float32 targets
            `(num_train, num_outputs)` for regression.
        x_test: test inputs.
        y_test: test labels / targets.
        task: `"classification"` or `"regression"`.
        num_outputs: number of classes, or of regression targets.
        metric: the score reported as `*_acc`: `"accuracy"` for
            classification, `"r2"` (coefficient of determination) for regression.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    num_outputs: int
    metric: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _check_sizes(name: str, num_train: int, num_test: int, limit: int | None) -> None:
    for arg, v in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(
                f"load_dataset({name!r}): {arg} must be an int >= 1, got {v!r}."
            )
    if limit is not None and num_train + num_test > limit:
        raise ValueError(
            f"load_dataset({name!r}): num_train + num_test = {num_train + num_test} "
            f"exceeds the {limit} examples of the data set; ask for fewer."
        )


@functools.lru_cache(maxsize=8)
def _mnist1d(num_train: int, num_test: int, seed: int) -> Dataset:
    try:
        import mnist1d.data as mdata
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the mnist1d data set needs the mnist1d package: pip install "leakyjax[train]"'
        ) from e
    args: Any = mdata.get_dataset_args()  # an ObjectView; its stub says dict
    args.num_samples = num_train + num_test
    args.train_split = num_train / (num_train + num_test)
    args.seed = seed
    # make_dataset reseeds the global numpy / random generators: restore them.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        d = mdata.make_dataset(args)  # generated locally; never get_dataset (downloads)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    # make_dataset draws num_samples // 10 per class, so the total can be < asked.
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int32)
    if len(y) < num_train + num_test:
        raise ValueError(
            f"load_dataset('mnist1d'): num_train + num_test must be a multiple of 10 "
            f"(10 classes), got {num_train + num_test}."
        )
    return Dataset(
        "mnist1d",
        x[:num_train],
        y[:num_train],
        x[num_train:],
        y[num_train:],
        "classification",
        10,
        "accuracy",
    )


@functools.lru_cache(maxsize=8)
def _digits(num_train: int, num_test: int, seed: int) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the digits data set needs scikit-learn: pip install "leakyjax[train]"'
        ) from e
    x, y = load_digits(return_X_y=True)  # ships with scikit-learn, 1797 examples
    perm = np.random.default_rng(seed).permutation(len(y))
    x = (x[perm] / 16.0).reshape(-1, 8, 8).astype(np.float32)
    y = y[perm].astype(np.int32)
    mean, std = x[:num_train].mean(), x[:num_train].std()
    x = (x - mean) / std
    return Dataset(
        "digits",
        x[:num_train],
        y[:num_train],
        x[num_train : num_train + num_test],
        y[num_train : num_train + num_test],
        "classification",
        10,
        "accuracy",
    )


@functools.lru_cache(maxsize=8)
def _regression(num_train: int, num_test: int, seed: int) -> Dataset:
    # y = sin(x W1) W2 + 0.5 (x W3)^2 + noise: smooth, nonlinear, 8 inputs.
    rng = np.random.default_rng(seed)
    dim, hidden = 8, 16
    w1 = rng.normal(size=(dim, hidden)) / np.sqrt(dim)
    w2 = rng.normal(size=(hidden, 1)) / np.sqrt(hidden)
    w3 = rng.normal(size=(dim, 1)) / np.sqrt(dim)
    x = rng.normal(size=(num_train + num_test, dim))
    y = np.sin(x @ w1) @ w2 + 0.5 * (x @ w3) ** 2
    y = y + 0.05 * rng.normal(size=y.shape)
    y = (y - y[:num_train].mean()) / y[:num_train].std()
    x, y = x.astype(np.float32), y.astype(np.float32)
    return Dataset(
        "regression",
        x[:num_train],
        y[:num_train],
        x[num_train:],
        y[num_train:],
        "regression",
        1,
        "r2",
    )


_DEFAULT_SIZES = {
    "mnist1d": (4000, 1000),
    "digits": (1437, 360),
    "regression": (2000, 500),
}
_LIMITS = {"mnist1d": None, "digits": 1797, "regression": None}
_DEFAULT_SEED = {"mnist1d": 42, "digits": 0, "regression": 0}


def load_dataset(
    name: str,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    seed: int | None = None,
) -> Dataset:
    """Load (generate) a data set in memory; nothing is downloaded or written.

    * `"mnist1d"`: Greydanus' MNIST-1D, 40-sample 1-D signals, 10 classes,
      generated with `mnist1d.data.make_dataset` (default 4000 train / 1000
      test, data seed 42 as in the paper).
    * `"digits"`: scikit-learn's 8x8 handwritten digits (1797 images, 10
      classes), shuffled with `seed`, default 1437 train / 360 test, shape
      `(8, 8)`, standardised with the training mean and std.
    * `"regression"`: a synthetic smooth regression task,
      $y = \\sin(x W_1) W_2 + 0.5 (x W_3)^2 + \\epsilon$, 8 inputs,
      1 standardised target, default 2000 train / 500 test.

    Args:
        name: one of `DATASETS`.
        num_train: number of training examples (the default depends on the set).
        num_test: number of test examples.
        seed: the data seed (defaults: mnist1d 42, others 0). The training seeds
            do not change the data, only initialisation and data order.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones) or
            sizes the data set cannot give.

    Example:
        >>> from leakyjax.train import load_dataset
        >>> ds = load_dataset("digits", num_train=100, num_test=50)
        >>> ds.x_train.shape, ds.y_test.shape, ds.num_outputs
        ((100, 8, 8), (50,), 10)
    """
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}."
        )
    default_train, default_test = _DEFAULT_SIZES[name]
    num_train = default_train if num_train is None else num_train
    num_test = default_test if num_test is None else num_test
    _check_sizes(name, num_train, num_test, _LIMITS[name])
    seed = _DEFAULT_SEED[name] if seed is None else int(seed)
    loader = {"mnist1d": _mnist1d, "digits": _digits, "regression": _regression}[name]
    return loader(int(num_train), int(num_test), seed)


DATA_KEYS = ("x_train", "y_train", "x_test", "y_test")
TASKS = ("classification", "regression")


def _load_object(ref: str, what: str) -> Any:
    """`package.module:attribute` -> the attribute (imported)."""
    import importlib

    mod, sep, attr = ref.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"{what}: expected package.module:function, got {ref!r}.")
    try:
        obj = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing and (mod == missing or mod.startswith(missing + ".")):
            where = missing.replace(".", "/")
            raise ValueError(
                f"{what}: cannot import {mod!r}: no module {missing!r} on the Python "
                f"path. Run leakyjax from the folder that holds {where}.py (or the "
                f"package folder {where}/), or add that folder to PYTHONPATH; "
                f"{ref!r} is imported as `from {mod} import {attr}` would be."
            ) from e
        raise ValueError(
            f"{what}: importing {mod!r} failed: it imports {missing!r}, which is "
            f"not installed ({e}); install it in this environment."
        ) from e
    except ImportError as e:
        raise ValueError(f"{what}: cannot import {mod!r} ({e}).") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what}: {mod!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    return obj


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` file; a ValueError naming the file otherwise."""
    import zipfile

    fix = (
        "give an .npz written by numpy.savez(path, x_train=..., y_train=..., "
        "x_test=..., y_test=...) (compare's data= / --data)"
    )
    if os.path.isdir(path):
        raise ValueError(f"data: {path!r} is a folder, not an .npz file; {fix}.")
    try:
        if os.path.getsize(path) == 0:
            raise ValueError(f"data: {path!r} is empty (0 bytes); {fix}.")
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:
        if str(e).startswith("data: "):
            raise
        raise ValueError(
            f"data: {path!r} is not an .npz archive (numpy cannot read it as one); "
            f"{fix}."
        ) from None
    except (EOFError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"data: cannot read {path!r} as an .npz ({e}); {fix}."
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a single .npy array
        raise ValueError(
            f"data: {path!r} holds one array (an .npy), not the four arrays of an "
            f".npz; {fix}."
        )
    try:
        with loaded as f:
            return {k: f[k] for k in f.files}
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"data: cannot read the arrays of {path!r} ({e}); {fix}."
        ) from None


def as_dataset(
    data: Any, *, task: str | None = None, name: str | None = None
) -> Dataset:
    """A user's data as a `Dataset`, checked.

    Args:
        data: a `Dataset`; a mapping with `x_train`, `y_train`,
            `x_test`, `y_test` (a dict, or a loaded `.npz`); a 4-tuple in
            that order; a path to an `.npz` with those keys; or
            `"package.module:function"` naming a function that returns one of
            the former.
        task: `"classification"` or `"regression"`; None infers it from
            the labels (integer `y` of shape `(n,)`: classification; float
            `y`: regression).
        name: the data set's name in records (default: the path or reference,
            else `"user"`).

    Returns:
        A `Dataset`: inputs float32; labels int32 `(n,)` with
        `num_outputs = max label + 1`, or targets float32 `(n, k)`.

    Raises:
        ValueError: naming the missing key, or the array whose shape, length or
            dtype does not fit.

    Example:
        >>> import numpy as np
        >>> from leakyjax.train import as_dataset
        >>> x = np.zeros((6, 3), np.float32)
        >>> ds = as_dataset({"x_train": x, "y_train": np.arange(6) % 3,
        ...                  "x_test": x[:2], "y_test": np.array([0, 2])})
        >>> ds.task, ds.num_outputs, ds.input_shape
        ('classification', 3, (3,))
    """
    import os

    if task is not None and task not in TASKS:
        raise ValueError(f"data: task must be one of {', '.join(TASKS)}, got {task!r}.")
    if isinstance(data, Dataset):
        if task is None or task == data.task:
            return data
        data = data._asdict()
    if isinstance(data, (str, os.PathLike)):
        ref = os.fspath(data)
        name = name or ref
        if ref.endswith(".npz") or os.path.exists(ref):
            if not os.path.exists(ref):
                raise ValueError(f"data: no such file {ref!r}.")
            data = _read_npz(ref)
        else:
            fn = _load_object(ref, "data")
            data = fn() if callable(fn) else fn
            if isinstance(data, Dataset):
                return as_dataset(data, task=task)
    if isinstance(data, (tuple, list)):
        if len(data) != 4:
            raise ValueError(
                f"data: a sequence must be (x_train, y_train, x_test, y_test), got "
                f"{len(data)} items."
            )
        data = dict(zip(DATA_KEYS, data))
    if not hasattr(data, "keys"):
        raise ValueError(
            f"data: expected arrays x_train, y_train, x_test, y_test (a dict, a "
            f"4-tuple, an .npz or package.module:function), got {type(data).__name__}."
        )
    missing = [k for k in DATA_KEYS if k not in data]
    if missing:
        raise ValueError(
            f"data: missing {', '.join(missing)} (have {', '.join(map(str, data))}); "
            f"give all of {', '.join(DATA_KEYS)}."
        )
    arrs = {k: np.asarray(data[k]) for k in DATA_KEYS}
    for k in ("x_train", "x_test"):
        a = arrs[k]
        if a.dtype.kind not in "fiub" or a.ndim < 2:
            raise ValueError(
                f"data: {k} must be a numeric array (examples, features...), got "
                f"dtype {a.dtype} shape {a.shape}."
            )
    if arrs["x_train"].shape[1:] != arrs["x_test"].shape[1:]:
        raise ValueError(
            f"data: x_train examples have shape {arrs['x_train'].shape[1:]} but "
            f"x_test examples {arrs['x_test'].shape[1:]}."
        )
    for split in ("train", "test"):
        nx, ny = len(arrs[f"x_{split}"]), len(arrs[f"y_{split}"])
        if nx != ny or nx == 0:
            raise ValueError(
                f"data: x_{split} has {nx} examples and y_{split} {ny}; they must "
                "match and be non-empty."
            )
    ytr, yte = arrs["y_train"], arrs["y_test"]
    for k, y in (("y_train", ytr), ("y_test", yte)):
        if y.dtype.kind not in "fiub":
            raise ValueError(f"data: {k} must be numeric, got dtype {y.dtype}.")
    if task is None:
        task = (
            "classification"
            if ytr.dtype.kind in "iub" and ytr.ndim == 1
            else "regression"
        )
    if task == "classification":
        for k, y in (("y_train", ytr), ("y_test", yte)):
            if y.ndim != 1 or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
                raise ValueError(
                    f"data: classification needs integer labels of shape (n,); {k} "
                    f"has dtype {y.dtype} shape {y.shape} (give task='regression' "
                    "for real targets)."
                )
            if y.min() < 0:
                raise ValueError(f"data: {k} has a negative label {y.min()}.")
        ytr, yte = ytr.astype(np.int32), yte.astype(np.int32)
        num_outputs = int(max(ytr.max(), yte.max())) + 1
        metric = "accuracy"
    else:
        ytr = ytr.astype(np.float32).reshape(len(ytr), -1)
        yte = yte.astype(np.float32).reshape(len(yte), -1)
        if ytr.shape[1] != yte.shape[1]:
            raise ValueError(
                f"data: y_train has {ytr.shape[1]} targets, y_test {yte.shape[1]}."
            )
        num_outputs, metric = ytr.shape[1], "r2"
    return Dataset(
        name or "user",
        arrs["x_train"].astype(np.float32),
        ytr,
        arrs["x_test"].astype(np.float32),
        yte,
        task,
        num_outputs,
        metric,
    )


def fingerprint(ds: Dataset) -> str:
    """A short hash of a data set's arrays (part of the resume key)."""
    import hashlib

    h = hashlib.sha1()
    for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
