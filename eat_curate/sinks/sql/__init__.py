"""The SQL sink: one schema for SQLite and PostgreSQL, its migrations, and fast batch writers per dialect."""
