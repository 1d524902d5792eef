"""SQL views of the read side, rendered from the same definitions the commands run.

- ``eat_ranked_images``: every score with its image's path and capture time
  and its ``rank`` inside (model, album) — 1 is the best mean, ties broken by
  image id byte by byte;
- ``eat_album_stats``: per (model, album): images, mean, median, top-10 mean,
  share scoring >= 5 (``threshold``), best score, best image and its path.

``sql/views_sqlite.sql`` and ``sql/views_postgresql.sql`` hold
:func:`generate_views_sql` (a test keeps them in sync); apply them with
``sqlite3 photos.db < sql/views_sqlite.sql`` or ``psql -f``, or call
:func:`create_views`. The commands do not need the views.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from eat_curate.library.queries import DEFAULT_THRESHOLD, album_stats_select, selected_images_select

DIALECTS = {"sqlite": sqlite.dialect, "postgresql": postgresql.dialect}
_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def view_definitions() -> dict[str, sa.Select]:
    """View name -> its SELECT, over every model."""
    return {
        "eat_ranked_images": selected_images_select(None).order_by(None),
        "eat_album_stats": album_stats_select(None, DEFAULT_THRESHOLD),
    }


def _select_sql(query: sa.Select, dialect: sa.Dialect) -> str:
    text = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def view_statements(dialect_name: str) -> list[str]:
    """DROP VIEW IF EXISTS + CREATE VIEW for every view: re-running them replaces the views."""
    if dialect_name not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect_name!r}; expected one of {', '.join(DIALECTS)}")
    dialect = DIALECTS[dialect_name]()
    statements = []
    for name, query in view_definitions().items():
        statements.append(f"DROP VIEW IF EXISTS {name}")
        statements.append(f"CREATE VIEW {name} AS\n{_select_sql(query, dialect)}")
    return statements


def generate_views_sql(dialect_name: str) -> str:
    """The content of ``sql/views_<dialect>.sql``."""
    statements = view_statements(dialect_name)
    header = (
        f"-- eat-curate read-side views for {_TITLES[dialect_name]}.\n"
        "-- Generated from eat_curate/library/queries.py by eat_curate/library/sql_views.py; do not edit by hand.\n"
        f"-- Regenerate: python -m eat_curate.library.sql_views {dialect_name} > sql/views_{dialect_name}.sql\n"
        "-- Filter by model: SELECT * FROM eat_album_stats WHERE model_id = '...' ORDER BY mean DESC;"
    )
    return header + "\n\n" + "\n\n".join(statement + ";" for statement in statements) + "\n"


def create_views(connection: sa.Connection) -> None:
    """Create (or replace) the views in the database of ``connection``."""
    for statement in view_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


def main(argv: list[str] | None = None) -> None:
    """``python -m eat_curate.library.sql_views DIALECT``: print the views file of DIALECT."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in DIALECTS:
        raise SystemExit(f"usage: python -m eat_curate.library.sql_views {{{'|'.join(DIALECTS)}}} > sql/views_DIALECT.sql")
    sys.stdout.write(generate_views_sql(args[0]))


if __name__ == "__main__":
    main()
