"""Sinks (Parquet, SQL), the SQL schema, and the read-side queries."""
