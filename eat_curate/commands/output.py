"""Output shared by every read command: aligned tables for people, JSON for programs."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import click


# Control characters in a name (legal in file names and album names) would break a table's line, or be
# taken by the terminal as a command (ESC starts one): people see them spelled out instead.
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def printable_text(text: str) -> str:
    """``text`` with control characters written out (a newline as ``\\n``, ESC as ``\\x1b``): one line, inert."""
    return text.translate(_CONTROL_ESCAPES)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else value.isoformat()
    return printable_text(str(value))


# Columns are padded to at most this many characters: a longer cell (an album name of 3,000 bytes) is
# written whole and pushes its own line out of line, instead of padding every other line to its length.
MAX_ALIGNED_WIDTH = 120


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned text table; numbers right-aligned, floats with 3 decimals.

    Every cell is written whole; columns align up to ``MAX_ALIGNED_WIDTH`` characters, so one very
    long name costs its own line, not as many spaces on every other one.
    """
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(column), (int, float)) or row.get(column) is None for row in rows) for column in columns
    ]
    widths = [
        max(len(column), min(MAX_ALIGNED_WIDTH, max(len(line[i]) for line in cells)))
        for i, column in enumerate(columns)
    ]

    def render(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    lines = [render(columns), render(["-" * w for w in widths])]
    lines.extend(render(line) for line in cells)
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False)


def emit(rows: Iterable[dict], as_json: bool, columns: Sequence[str] | None = None) -> None:
    """Print ``rows`` as JSON (a list) or as an aligned table."""
    rows = list(rows)
    click.echo(to_json(rows) if as_json else format_table(rows, columns))
