"""Image sources (folders, files, Parquet manifests, fsspec URLs) and robust decoding."""
