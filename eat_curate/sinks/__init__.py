"""The write side: where a run's records go.

- :class:`Sink`, the contract every engine writes through (``contract``);
- :func:`open_sinks`, the sinks of ``--out`` and ``--db``, checked before a run;
- ``parquet/``: the Parquet sink (target, journal, merge, index, history);
- ``sql/``: the SQL sink (schema, migrations and dialects in ``database``, batch writers, DDL).

Names are imported on first use (``eat_curate.lazy_exports``).
"""

from eat_curate.lazy_exports import lazy_exports

_MODULES = {
    "Sink": "eat_curate.sinks.contract",
    "check_outputs": "eat_curate.sinks.outputs",
    "open_sinks": "eat_curate.sinks.outputs",
    "ParquetSink": "eat_curate.sinks.parquet.sink",
    "SqlSink": "eat_curate.sinks.sql.sink",
    "database_url": "eat_curate.sinks.sql.database",
    "describe": "eat_curate.sinks.sql.database",
    "init_database": "eat_curate.sinks.sql.database",
    "generate_ddl": "eat_curate.sinks.sql.ddl",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
