"""The Parquet sink: one file or a dataset folder, written through a journal and merged at the end of a run."""
