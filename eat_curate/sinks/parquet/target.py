"""Where ``--out`` puts Parquet: one file, or a dataset folder; and the check made before a run.

- ``--out scores.parquet``: one file. While a run writes, its journal and parts
  sit in the hidden sibling folder ``.scores.parquet.parts/``; when the run
  ends they are merged into the file, which is replaced atomically.
- ``--out scores/`` (a trailing slash, or an existing folder): a dataset of
  ``part-*.parquet`` files that any Parquet reader opens as one table; the
  working folder is ``scores/.eat-curate/`` and the run history is
  ``scores/_eat_curate.json`` (readers skip names starting with '.' or '_').
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from eat_curate.records import PARQUET_SCHEMA
from eat_curate.sinks.durable import ensure_writable_folder
from eat_curate.sinks.parquet.footer import read_schema
from eat_curate.errors import StoreError

DATASET_HISTORY = "_eat_curate.json"
DATASET_WORK = ".eat-curate"
_DATASET_PART = re.compile(r"^part-[A-Za-z0-9_-]+-\d+\.parquet$")


@dataclass(frozen=True)
class ParquetTarget:
    path: Path  # the output file, or the dataset folder
    dataset: bool

    @property
    def work(self) -> Path:
        """The folder holding the journal, parts and record of the run not yet merged."""
        if self.dataset:
            return self.path / DATASET_WORK
        return self.path.parent / f".{self.path.name}.parts"

    @property
    def history_file(self) -> Path:
        """The dataset's run history (a single file keeps it in its own Parquet metadata)."""
        return self.path / DATASET_HISTORY

    def dataset_parts(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob("part-*.parquet") if _DATASET_PART.match(p.name))

    def committed_files(self) -> list[Path]:
        """The Parquet files holding the finished rows."""
        if self.dataset:
            return self.dataset_parts()
        return [self.path] if self.path.is_file() else []


def parquet_target(out: str | os.PathLike) -> ParquetTarget:
    text = os.fspath(out)
    if not text.strip():
        raise StoreError("--out is empty: give a .parquet file or a folder ending in '/'")
    if "://" in text:
        raise StoreError(f"--out {text}: only local paths are supported for Parquet output")
    path = Path(text).expanduser().absolute()
    if path.is_symlink():
        # Write where the link points: replacing the link itself with the merged file would leave the
        # file it named stale. Resolved here, so a run and `runs --out` find one working folder and lock.
        try:
            path = path.resolve()
        except (OSError, RuntimeError) as exc:  # a loop of links
            raise StoreError(f"--out {text}: a symbolic link that cannot be followed ({exc})") from None
    return ParquetTarget(path=path, dataset=text.endswith(("/", os.sep)) or path.is_dir())


def check_target(target: ParquetTarget) -> None:
    """Raise StoreError unless a run can write ``target``; creates and changes nothing."""
    if target.dataset:
        _check_dataset(target)
    else:
        _check_file(target)
    _check_work(target)


def _check_work(target: ParquetTarget) -> None:
    """A working folder left by an earlier run must be one this run can lock and write in."""
    work = target.work
    if not os.path.lexists(work):
        return
    if work.is_symlink() or not work.is_dir():
        raise StoreError(
            f"--out {target.path}: {work} (eat-curate's working folder for it) is not a folder; "
            "move it away, or choose another --out"
        )
    ensure_writable_folder(work, f"--out {target.path}")
    lock = work / "lock"
    if os.path.lexists(lock) and not (lock.is_file() and os.access(lock, os.R_OK | os.W_OK)):
        raise StoreError(
            f"--out {target.path}: cannot open the lock file {lock}; move it away, or choose another --out"
        )


def _check_file(target: ParquetTarget) -> None:
    path = target.path
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"--out {path}: the folder {folder} does not exist")
    if path.exists():
        if not path.is_file():
            raise StoreError(f"--out {path} exists and is not a file")
        check_schema(path)
    ensure_writable_folder(folder, f"--out {path}")


def _check_dataset(target: ParquetTarget) -> None:
    folder = target.path
    if not folder.exists():
        if not folder.parent.is_dir():
            raise StoreError(f"--out {folder}/: the folder {folder.parent} does not exist")
        ensure_writable_folder(folder.parent, f"--out {folder}/")
        return
    if not folder.is_dir():
        raise StoreError(f"--out {folder}/ exists and is not a folder")
    # Hidden names ('.eat-curate/', half-written '.part-*.tmp', '.DS_Store') are invisible to readers.
    ours = (DATASET_HISTORY, DATASET_HISTORY + ".tmp")
    foreign = sorted(
        entry.name
        for entry in folder.iterdir()
        if not (entry.name.startswith(".") or entry.name in ours or _DATASET_PART.match(entry.name))
    )
    if foreign:
        raise StoreError(
            f"--out {folder}/ holds files eat-curate did not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}): give a new or empty folder"
        )
    for part in target.dataset_parts():
        check_schema(part)
    ensure_writable_folder(folder, f"--out {folder}/")


def check_schema(path: Path) -> None:
    """Raise StoreError unless ``path`` is a Parquet file with the ScoreRecord schema."""
    problem = schema_problem(path)
    if problem:
        raise StoreError(f"{path} {problem}; choose another --out")


def schema_problem(path: Path) -> str | None:
    """Why ``path`` is not a Parquet file with the ScoreRecord schema, said after its name; None when it is one."""
    try:
        found = read_schema(path)
    except (pa.ArrowException, OSError, ValueError) as exc:  # ValueError: a name in a damaged footer not UTF-8
        return f"cannot be read as Parquet ({exc})"
    if found.remove_metadata().equals(PARQUET_SCHEMA):
        return None
    expected = {field.name: field for field in PARQUET_SCHEMA}
    counts = Counter(found.names)
    differences = [name for name in expected if counts[name] != 1 or found.field(name) != expected[name]]
    differences += [name for name in dict.fromkeys(found.names) if name not in expected]
    if not differences:  # the same columns (once each), in another order: say so rather than list nothing
        return "is not a result of eat-curate score --out (its columns are in another order)"
    listed = ", ".join(differences[:5]) + (", ..." if len(differences) > 5 else "")
    return f"is not a result of eat-curate score --out (columns differ: {listed})"
