"""A finished Parquet result, as readers and ``db import`` see it: its files and its history.

``score --out`` leaves one ``.parquet`` file or a dataset folder (see
``target.py``). A folder may also be one that a cluster job or a copy from a
bucket filled: every visible ``*.parquet`` directly inside it counts (names
starting with '.' or '_' are skipped, as Parquet readers skip them; the
working folder of a run in progress is one of those). Every file must have
the ScoreRecord schema.

Finding a result reads file footers only and creates nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eat_curate.errors import StoreError
from eat_curate.sinks.parquet.footer import parquet_file
from eat_curate.sinks.parquet.history import History, committed_history, read_history
from eat_curate.sinks.parquet.target import ParquetTarget, schema_problem

NO_SCORES = "no scores in {where}; run eat-curate score first (eat-curate score PHOTOS --out scores.parquet)"


@dataclass(frozen=True)
class ParquetResult:
    path: Path  # the file, or the folder
    files: tuple[Path, ...]  # the Parquet files holding the rows, in name order

    @property
    def dataset(self) -> bool:
        return self.path.is_dir()

    @property
    def where(self) -> str:
        """The result for messages: a folder ends with '/'."""
        return f"{self.path}/" if self.dataset else str(self.path)

    @property
    def target(self) -> ParquetTarget:
        return ParquetTarget(path=self.path, dataset=self.dataset)

    def committed_history(self) -> History:
        """Runs and model cards of the merged runs: the ones whose rows are in ``files``."""
        return committed_history(self.target)

    def history(self) -> History:
        """Every recorded run, the one still writing (or cut short) included, as ``runs --out`` lists them."""
        return read_history(self.target)

    def rows(self) -> int:
        return sum(parquet_file(path).metadata.num_rows for path in self.files)


def _visible_parquet_files(folder: Path) -> list[Path]:
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.suffix.lower() == ".parquet" and not entry.name.startswith((".", "_")) and entry.is_file()
    )


def check_result_schema(path: Path) -> None:
    """Raise StoreError unless ``path`` is a readable Parquet file with the ScoreRecord schema."""
    problem = schema_problem(path)
    if problem:
        raise StoreError(f"{path} {problem}")


def open_parquet_result(location: str | os.PathLike) -> ParquetResult:
    """The Parquet result at ``location`` (a file or a folder), its files checked; StoreError if there is none."""
    path = Path(location).expanduser().absolute()
    if path.is_dir():
        files = _visible_parquet_files(path)
        if not files:
            raise StoreError(NO_SCORES.format(where=f"{path}/ (no Parquet files in the folder)"))
    elif path.is_file():
        files = [path]
    else:
        raise StoreError(NO_SCORES.format(where=f"{path} (no such file or folder)"))
    for file in files:
        check_result_schema(file)
    return ParquetResult(path=path, files=tuple(files))
