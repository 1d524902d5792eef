"""The write side: where a run's records go.

- :class:`Sink`, the contract every engine writes through (``contract``);
- :func:`open_sinks`, the sinks of ``--out`` and ``--db``, checked before a run;
- :func:`open_lookups` (``preview``): what those outputs already hold, read without writing (``score --dry-run``);
- :class:`RetryPolicy` (``retry``): how long a database that restarts or fails over is waited for;
  ``faults``: a full or read-only disk, a database gone past the limit, as one line and an exit code;
- ``parquet/``: the Parquet sink (target, journal, merge, index, history) and a finished result as readers see it;
- ``sql/``: the SQL sink (schema, migrations and dialects in ``database``, batch writers, DDL) and
  ``db import`` of a Parquet result.

Names are imported on first use (``eat_curate.lazy_exports``).
"""

from eat_curate.lazy_exports import lazy_exports

_MODULES = {
    "Sink": "eat_curate.sinks.contract",
    "check_outputs": "eat_curate.sinks.outputs",
    "open_sinks": "eat_curate.sinks.outputs",
    "open_lookups": "eat_curate.sinks.preview",
    "ParquetSink": "eat_curate.sinks.parquet.sink",
    "SqlSink": "eat_curate.sinks.sql.sink",
    "database_url": "eat_curate.sinks.sql.database",
    "describe": "eat_curate.sinks.sql.database",
    "without_password": "eat_curate.sinks.sql.database",
    "init_database": "eat_curate.sinks.sql.database",
    "generate_ddl": "eat_curate.sinks.sql.ddl",
    "import_parquet": "eat_curate.sinks.sql.parquet_import",
    "prune_missing": "eat_curate.sinks.sql.prune",
    "move_albums_to_parent": "eat_curate.sinks.sql.album_rule",
    "RetryPolicy": "eat_curate.sinks.retry",
    "DEFAULT_RETRY_FOR_S": "eat_curate.sinks.retry",
    "InfrastructureFailure": "eat_curate.sinks.faults",
    "cannot_write": "eat_curate.sinks.faults",
}
__all__ = sorted(_MODULES)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
