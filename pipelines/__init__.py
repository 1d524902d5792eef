"""Ray pipelines: actor pools pinned to GPUs, cluster job entrypoints, scheduled-job specs."""
