"""The SQL DDL of ``schema.py`` as text, per dialect: what ``eat-curate db ddl`` prints and ``sql/`` keeps."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from eat_curate.sinks.sql import schema

DIALECTS = {"sqlite": sqlite.dialect, "postgresql": postgresql.dialect}
_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _statement(clause: sa.schema.ExecutableDDLElement | sa.Insert, dialect: sa.Dialect) -> str:
    text = str(clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True})).strip()
    return "\n".join(line.rstrip() for line in text.splitlines()) + ";"


def generate_ddl(dialect_name: str) -> str:
    """CREATE TABLE and CREATE INDEX statements, then the schema version row, for ``dialect_name``."""
    if dialect_name not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect_name!r}; expected one of {', '.join(DIALECTS)}")
    dialect = DIALECTS[dialect_name]()
    blocks = [
        f"-- eat-curate schema version {schema.SCHEMA_VERSION} for {_TITLES[dialect_name]}.\n"
        f"-- Generated from eat_curate/sinks/sql/schema.py by `eat-curate db ddl --dialect {dialect_name}`. "
        "Do not edit by hand.\n"
        "-- `eat-curate db init --db URL` creates the same tables (and upgrades older databases)."
    ]
    for table in schema.metadata.sorted_tables:
        statements = [_statement(sa.schema.CreateTable(table), dialect)]
        statements += [
            _statement(sa.schema.CreateIndex(index), dialect) for index in sorted(table.indexes, key=lambda i: i.name)
        ]
        blocks.append("\n".join(statements))
    version = schema.eat_meta.insert().values(key="schema_version", value=str(schema.SCHEMA_VERSION))
    blocks.append(_statement(version, dialect))
    return "\n\n".join(blocks) + "\n"
