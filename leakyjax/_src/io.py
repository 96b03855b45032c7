"""The one I/O helper of leakyjax: output directories, atomic files, a record store.

Everything that `leakyjax compare`, the studies and the benchmarks write goes
through this module, so that a killed process, a full disk, a second process on
the same directory or a damaged results file never costs a finished result:

* `output_dir` checks (and creates) an output directory and says in one
  line what is wrong with it (a file, a path under a file, not writable, an
  expected file that is a directory): a `ValueError` (a usage error).
* `lock` holds an exclusive `fcntl.flock` on `DIR/.leakyjax.lock`; a
  second process, or a second thread of this one, fails at once with `Locked`
  (or waits with `wait=True`). The kernel drops the lock when its process
  dies, SIGKILL included; re-entering it in the thread that holds it is
  allowed. Taking it removes the temporary files of atomic writes that a
  killed holder left behind, in `DIR` and its subdirectories.
* `write_text`, `write_json`, `write_bytes` and
  `save_figure` write a temporary file in the same directory (mode 0666 less
  the umask, as `open()` creates files), fsync it and `os.replace` it over
  the target: readers see the old file or the new one, never half of one.
* `append_records` appends JSON lines with one `os.write` on an
  `O_APPEND` descriptor (so lines of two writers cannot interleave), then
  fsyncs; if the write fails (a full disk) the partial tail is cut off again,
  so every line already in the file stays whole.
* `read_records` reads them back, validating each line against a
  schema: a line that is not UTF-8, not JSON, not an object, misses a field,
  has a field of the wrong type, or repeats an earlier record's identity is
  skipped with a `RecordWarning` naming `file:line` (its run is then
  simply missing, so the caller recomputes it); a bad line already superseded
  is not reported again, and the warnings are capped with a summary; the file
  is never rewritten.
* `terminate_as_interrupt` turns SIGTERM (a job scheduler's stop) into
  `KeyboardInterrupt`, so it unwinds like Ctrl-C.
* `progress` is a tqdm bar, or a silent stand-in when disabled;
  `pyplot` is matplotlib's pyplot, headless for scripts.

Errors from the operating system stay `OSError` with the path as
`filename`; `describe` turns any of them into the one-line message the
CLI prints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import secrets
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

LOCK_NAME = ".leakyjax.lock"

#: JSON types a schema may name: `int` excludes `bool`; `float` accepts ints.
Schema = Mapping[str, Any]


class RecordWarning(UserWarning):
    """A stored result was skipped: a line of a record file (the message names
    `file:line`) or a study part (the message names its file)."""


class Locked(RuntimeError):
    """The output directory is locked by another process (or thread)."""


# ---------------------------------------------------------------- messages


def describe(err: OSError) -> str:
    """One line for an `OSError`: what failed, on which path, and why.

    Example:
        >>> import errno
        >>> describe(OSError(errno.ENOSPC, "No space left on device", "out/r.jsonl"))
        "cannot write 'out/r.jsonl': No space left on device (disk full?)"
    """
    path = err.filename
    why = err.strerror or str(err)
    hint = {
        errno.ENOSPC: " (disk full?)",
        errno.EDQUOT: " (disk quota exceeded)",
        errno.EACCES: " (check the permissions, or choose another directory)",
        errno.EPERM: " (check the permissions, or choose another directory)",
        errno.EROFS: " (read-only file system; choose another directory)",
        errno.EISDIR: " (remove or rename that directory)",
    }.get(err.errno or 0, "")
    if path is None:
        return f"{why}{hint}"
    verb = getattr(err, "leakyjax_action", "write")
    return f"cannot {verb} {os.fspath(path)!r}: {why}{hint}"


def _oserror(
    err: OSError,
    path: os.PathLike | str,
    action: str = "write",
    *,
    replace: bool = False,
) -> OSError:
    """`err` with `path` as its filename and what failed (for `describe`).

    `replace`: name `path` even when `err` names another file (the
    temporary of an atomic write, which the user never asked for).
    """
    new = err
    if err.filename is None or (replace and err.filename != os.fspath(path)):
        new = OSError(err.errno, err.strerror or str(err), os.fspath(path))
        new.__cause__ = err
    new.leakyjax_action = action  # type: ignore[attr-defined]
    return new


# ---------------------------------------------------------------- directories


def output_dir(path: str | os.PathLike, *, files: Sequence[str] = ()) -> Path:
    """Creates `path` if needed and checks that results can be written there.

    Args:
        path: the output directory.
        files: names of the files that will be written in it; each must not be
            a directory.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ValueError: one line naming the path and the fix, when `path` is a
            file, lies under a file, cannot be created, is not writable, or one
            of `files` is a directory.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> output_dir(os.path.join(d, "a", "b")).is_dir()
        True
        >>> open(os.path.join(d, "f"), "w").close()
        >>> output_dir(os.path.join(d, "f"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ... is a file, not a directory; choose another directory.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(
            f"{os.fspath(p)!r} is a file, not a directory; choose another directory."
        )
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        parent = next((q for q in p.parents if q.exists() and not q.is_dir()), None)
        where = f" ({os.fspath(parent)!r} is a file)" if parent else ""
        raise ValueError(
            f"cannot create {os.fspath(p)!r}: a part of the path is a file{where}; "
            "choose another directory."
        ) from None
    except OSError as e:
        raise ValueError(
            f"cannot create {os.fspath(p)!r}: {e.strerror or e}; choose another "
            "directory."
        ) from None
    try:  # os.access lies for root and on some file systems: really try
        fd, probe = tempfile.mkstemp(dir=p, prefix=".leakyjax-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(
            f"cannot write in {os.fspath(p)!r}: {e.strerror or e}; choose another "
            "directory."
        ) from None
    for name in files:
        f = p / name
        if f.is_dir():
            raise ValueError(
                f"{os.fspath(f)!r} is a directory, but leakyjax writes a file there; "
                "rename or remove it, or choose another directory."
            )
    return p


#: (realpath, thread id) -> re-entry depth: the lock is re-entrant in the thread
#: that holds it; another thread opens its own descriptor, and flock refuses a
#: second open file description in one process as in two, so it waits or fails.
_HELD: dict[tuple[str, int], int] = {}
_GUARD = threading.Lock()


@contextlib.contextmanager
def lock(
    directory: str | os.PathLike, *, wait: bool = False, poll: float = 0.2
) -> Iterator[Path]:
    """Holds an exclusive lock on `directory` (`directory/.leakyjax.lock`).

    The lock belongs to the thread that took it: that thread may take it again
    (re-entrant); another thread of the same process is refused or waits, as
    another process is.

    Args:
        directory: an existing directory (see `output_dir`).
        wait: block until the other process (or thread) finishes instead of
            failing.
        poll: seconds between attempts while waiting.

    Yields:
        The lock file's path.

    Raises:
        Locked: when another process or thread holds the lock and `wait` is
            False; the message names the directory and the holder.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> with lock(d):
        ...     with lock(d):  # re-entrant in the thread that holds it
        ...         pass
    """
    path = Path(directory) / LOCK_NAME
    me = (os.path.realpath(path), threading.get_ident())
    if me in _HELD:  # re-entered by the thread that holds it
        _HELD[me] += 1
        try:
            yield path
        finally:
            _HELD[me] -= 1
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise _oserror(e, path) from None
    held = False
    holder = "another leakyjax process"
    try:
        while True:
            with _GUARD:  # flock and _HELD change together, for _holder
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    _HELD[me] = 1
                    held = True
                except BlockingIOError:
                    holder = _holder(fd, me[0])
            if held:
                break
            if not wait:
                raise Locked(
                    f"{os.fspath(directory)!r} is in use by {holder}; wait for it "
                    "to finish, pass --wait (wait=True), or choose another "
                    "directory."
                )
            time.sleep(poll)
        with contextlib.suppress(OSError):  # the pid is a courtesy: a full disk
            os.ftruncate(fd, 0)  # must fail on the first result, naming its path
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _remove_stale_temporaries(Path(directory))
        yield path
    finally:
        with _GUARD:
            if held:
                del _HELD[me]
            os.close(fd)  # closing the descriptor releases the lock


_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # what _atomic's mkstemp makes


_SWEEP_DEPTH = 4  # out/parts/<study>/ is two levels down


def _remove_stale_temporaries(directory: Path, depth: int = _SWEEP_DEPTH) -> None:
    """Removes the temporary files of atomic writes killed half-way, in
    `directory` and its subdirectories (`parts/<study>/`), `depth`
    levels down. Only the lock holder writes here, so none of them is in use;
    a subdirectory with a lock file of its own is another store (another
    process may be writing there) and is left alone, as are symbolic links.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                sub = Path(entry.path)
                if depth > 1 and not (sub / LOCK_NAME).exists():
                    _remove_stale_temporaries(sub, depth - 1)
            elif _TEMP.match(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)


def _holder(fd: int, real: str) -> str:
    """Who holds the lock of `fd` (the file `real`), as `Locked` says."""
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    if pid == str(os.getpid()) or any(path == real for path, _ in _HELD):
        return f"another thread of this process (pid {os.getpid()})"
    return (
        f"another leakyjax process (pid {pid})"
        if pid.isdigit()
        else ("another leakyjax process")
    )


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM raises `KeyboardInterrupt`, as SIGINT (Ctrl-C) does.

    Job schedulers (SLURM, Kubernetes, systemd) stop a job with SIGTERM, whose
    default action ends the process at once, without a word and without
    running `finally` blocks. Inside this context it unwinds like Ctrl-C
    instead: the runs already written stay, the lock is released and the CLI
    says `interrupted; finished runs are kept.`. The previous handler is
    restored on exit. Outside the main thread (where Python cannot install
    signal handlers) it does nothing.

    Example:
        >>> import signal
        >>> before = signal.getsignal(signal.SIGTERM)
        >>> with terminate_as_interrupt():
        ...     signal.getsignal(signal.SIGTERM) is before
        False
        >>> signal.getsignal(signal.SIGTERM) is before
        True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- atomic files


def _temporary(path: Path) -> tuple[int, str]:
    """A new file `.NAME.XXXXXXXX.tmp` beside `path`, opened for writing.

    Unlike `tempfile.mkstemp` (mode 0600, which `os.replace` would
    keep), it is created with mode 0666 less the umask, as `open()` creates
    files, so a report is as readable as `results.jsonl` beside it.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", os.fspath(path))


def _atomic(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    path = Path(path)
    try:
        fd, tmp = _temporary(path)
    except OSError as e:
        raise _oserror(e, path, replace=True) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _oserror(e, path, replace=True) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically (temporary file, fsync, rename).

    Raises:
        OSError: with `path` as its filename (see `describe`); the old
            file, if any, is unchanged.
    """
    return _atomic(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` atomically; see `write_bytes`.

    Example:
        >>> import tempfile, os
        >>> p = write_text(os.path.join(tempfile.mkdtemp(), "report.md"), "# hi\\n")
        >>> p.read_text()
        '# hi\\n'
    """
    return write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Numpy/jax scalars and arrays and NamedTuples to plain Python; nan/inf to None.

    Example:
        >>> import numpy as np
        >>> to_jsonable({"a": np.float32(0.5), "b": [float("nan"), np.int64(2)]})
        {'a': 0.5, 'b': [None, 2]}
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "_asdict"):
        return to_jsonable(obj._asdict())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):  # numpy / jax
        import numpy as np

        arr = np.asarray(obj)
        if arr.dtype == bool:
            return arr.tolist()
        return to_jsonable(arr.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, int):
        return int(obj)
    if type(obj).__module__ == "numpy":  # numpy scalars without shape
        return to_jsonable(obj.item())
    return obj


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """Writes `to_jsonable(obj)` as JSON to `path` atomically.

    Example:
        >>> import tempfile, os, json
        >>> p = write_json(os.path.join(tempfile.mkdtemp(), "r.json"), {"x": 1.0})
        >>> json.loads(p.read_text())
        {'x': 1.0}
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n"
    return write_text(path, text)


def pyplot() -> Any:
    """`matplotlib.pyplot`, headless unless an interactive session is in use.

    Switches to the Agg backend when the current backend is interactive and no
    figure is open (a script, a test, a server), so figures are only written;
    raises an ImportError naming the extra when matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(
            'leakyjax plots need matplotlib: pip install "leakyjax[train]"'
        ) from e
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        if not plt.get_fignums():
            plt.switch_backend("Agg")
    return plt


def save_figure(
    fig: Any, path: str | os.PathLike, *, dpi: int = 120, **kw: Any
) -> Path:
    """Saves a matplotlib figure atomically (format from the suffix) and closes it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    try:
        return _atomic(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, **kw))
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


# ---------------------------------------------------------------- record store


def _type_ok(value: Any, types: Any) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    for t in types:
        if t is None and value is None:
            return True
        if t is bool and isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if (
            t is float
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            return True
        if t not in (None, bool, int, float) and isinstance(value, t):
            return True
    return False


def _type_name(types: Any) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {None: "null", bool: "bool", int: "int", float: "number", str: "string"}
    names.update({list: "list", dict: "object"})
    return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in types)


def check_record(record: Any, schema: Schema) -> str | None:
    """Why `record` does not match `schema`, or None when it does.

    `schema` maps each required field to a type or a tuple of types among
    `str`, `int` (not `bool`), `float` (ints accepted), `bool`,
    `list`, `dict` and `None` (JSON null).

    Example:
        >>> check_record({"seed": 0, "acc": "high"}, {"seed": int, "acc": (float, None)})
        "field 'acc' is a string, expected number or null"
        >>> check_record({"seed": 0}, {"seed": int, "acc": float})
        "missing field 'acc'"
    """
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    for field, types in schema.items():
        if field not in record:
            return f"missing field {field!r}"
        value = record[field]
        if not _type_ok(value, types):
            got = _type_name(type(value) if value is not None else None)
            return f"field {field!r} is a {got}, expected {_type_name(types)}"
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (records store nan/inf as null)")


#: How many skipped lines `read_records` reports one by one; the rest
#: are summed up in one more warning.
MAX_WARNINGS = 10


def read_records(
    path: str | os.PathLike,
    schema: Schema,
    *,
    identity: Callable[[dict], Any] | None = None,
    check: Callable[[dict], str | None] | None = None,
    max_warnings: int = MAX_WARNINGS,
) -> list[dict]:
    """The valid records of a JSON-lines file, in file order.

    Each non-blank line must be UTF-8 JSON, an object matching `schema`
    (`check_record`) and pass `check`; when
    `identity` is given, a record whose identity was already read is a
    duplicate. Every other line is skipped with a
    `RecordWarning`
    `"FILE:LINE: skipped (reason)"`, except a line that is already
    superseded: a bad record whose identity a later valid line holds (its run
    was redone), or a torn write of a killed process followed by later valid
    lines (the damage is old: the run after the kill wrote after it). At most
    `max_warnings` lines are reported one by one; one more warning counts
    the rest. The file is never modified.

    Args:
        path: the file; a missing file has no records.
        schema: required fields and their types.
        identity: `record -> hashable` (e.g. `(r["key"], r["seed"])`).
        check: extra validation, `record -> reason or None`.
        max_warnings: how many skipped lines to report one by one.

    Returns:
        The records (dicts).

    Raises:
        OSError: when the file exists but cannot be read (a directory, no
            permission), with `path` as its filename.

    Example:
        >>> import tempfile, os, warnings
        >>> p = os.path.join(tempfile.mkdtemp(), "r.jsonl")
        >>> _ = append_records(p, [{"seed": 0}, {"seed": 0}])
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     read_records(p, {"seed": int}, identity=lambda r: r["seed"])
        [{'seed': 0}]
        >>> "r.jsonl:2: skipped (duplicate of line 1)" in str(w[0].message)
        True
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise _oserror(e, path, "read") from None
    out: list[dict] = []
    seen: dict[Any, int] = {}  # identity -> line of its first valid record
    bad: list[tuple[int, str, Any, bool]] = []  # line, reason, identity, a run?
    last_valid = 0
    lines = data.split(b"\n")
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        reason = None
        torn = False
        rec: Any = None
        text = ""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            reason = f"not UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1}"
        if reason is None:
            try:
                rec = json.loads(text, parse_constant=_reject_constant)
            except json.JSONDecodeError as e:
                torn = _torn(text, e)
                if i == len(lines) and not data.endswith(b"\n"):
                    reason = "an unfinished last line (a killed write)"
                    torn = True
                elif torn:
                    reason = "an unfinished line (a killed write)"
                else:
                    reason = f"not JSON: {e.msg}, column {e.colno}"
            except ValueError as e:
                reason = str(e)
        if reason is None:
            reason = check_record(rec, schema)
        ident = None
        if reason is None and identity is not None:  # typed right: its identity
            ident = identity(rec)  # is the run's, even if `check` rejects it
        if reason is None and check is not None:
            reason = check(rec)
        if reason is None and ident is not None:
            if ident in seen:
                reason = f"duplicate of line {seen[ident]}"
            else:
                seen[ident] = i
        if reason is not None:  # a record (or a torn one) stands for a run
            bad.append((i, reason, ident, torn or isinstance(rec, dict)))
            continue
        last_valid = i
        out.append(rec)
    report = []
    for i, reason, ident, run in bad:
        if reason.startswith("duplicate"):
            report.append(f"{os.fspath(path)}:{i}: skipped ({reason})")
            continue
        if ident is not None and seen.get(ident, 0) > i:
            continue  # superseded: a later line holds its run
        if reason.startswith("an unfinished") and last_valid > i:
            continue  # an old kill: the run after it has written since
        redo = "; its run will be redone" if run else ""
        report.append(f"{os.fspath(path)}:{i}: skipped ({reason}){redo}")
    for message in report[:max_warnings]:
        warnings.warn(message, RecordWarning, stacklevel=2)
    hidden = report[max(max_warnings, 0) :]
    if hidden:
        first = hidden[0][len(os.fspath(path)) + 1 :].split(":", 1)[0]
        warnings.warn(
            f"{os.fspath(path)}: {len(hidden)} more bad line(s) skipped, from line "
            f"{first} on (not shown one by one); remove them to silence these "
            "warnings",
            RecordWarning,
            stacklevel=2,
        )
    return out


def _torn(text: str, err: json.JSONDecodeError) -> bool:
    """Whether `text` looks like the start of a JSON object cut off: the
    decoder ran out of text (or stopped in a cut number or literal, such as
    `0.` or `tru`), not into a wrong character."""
    if not text.startswith("{"):
        return False
    return len(text.rstrip()) - err.pos <= 4 or err.msg.startswith(
        "Unterminated string"
    )


def append_records(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Appends `records` as JSON lines, in one write, and fsyncs.

    If the file ends in a torn line (a killed earlier write), a newline is
    written first so the torn line stays a line of its own. The bytes go out
    with one `os.write` on an `O_APPEND` descriptor, so lines of concurrent
    writers cannot interleave. If the write fails (e.g. a full disk) the file
    is cut back to its previous length, so the records before stay whole, and
    the `OSError` is raised with `path` as its filename.

    Args:
        path: the JSON-lines file (created if missing).
        records: JSON-serialisable dicts (no nan/inf: store them as None).

    Returns:
        `path` as a `pathlib.Path`.
    """
    path = Path(path)
    blob = b"".join(
        (json.dumps(r, allow_nan=False) + "\n").encode("utf-8") for r in records
    )
    if not blob:
        return path
    created = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        raise _oserror(e, path) from None
    try:
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            blob = b"\n" + blob
        try:
            n = os.write(fd, blob)
            while n < len(blob):  # only on a full disk or a signal
                n += os.write(fd, blob[n:])
            os.fsync(fd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise _oserror(e, path) from None
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- progress


class _NoBar:
    """The parts of tqdm's interface leakyjax uses, doing nothing."""

    def __init__(self, iterable: Iterable | None = None):
        self._it = iterable

    def __iter__(self):
        return iter(self._it if self._it is not None else ())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str | None = None) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass

    def write(self, s: str) -> None:
        import sys

        print(s, file=sys.stderr)

    def close(self) -> None:
        pass


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enable: bool = True,
    leave: bool = True,
) -> Any:
    """A tqdm progress bar on stderr, or a silent stand-in when `enable` is False.

    The stand-in (also used when tqdm is not installed) iterates `iterable`
    and accepts `update`, `set_description`, `set_postfix_str`, `write`
    (to stderr) and `close`, so callers need no `if`.

    Example:
        >>> sum(progress(range(3), desc="x", enable=False))
        3
    """
    if not enable:
        return _NoBar(iterable)
    import sys

    try:
        from tqdm.auto import tqdm
    except ImportError:  # a jax-only install: no bar (tqdm is in the extras)
        return _NoBar(iterable)

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        file=sys.stderr,
        dynamic_ncols=True,
    )


__all__ = [
    "LOCK_NAME",
    "Locked",
    "RecordWarning",
    "append_records",
    "check_record",
    "describe",
    "lock",
    "output_dir",
    "progress",
    "pyplot",
    "read_records",
    "save_figure",
    "terminate_as_interrupt",
    "to_jsonable",
    "write_bytes",
    "write_json",
    "write_text",
]
