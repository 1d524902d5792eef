"""What `eat-curate bench` measures, one module per benchmark; each reports figures and a ratio to a
baseline run in the same process, and ``report_lines`` turns its result into the command's text.

- ``model_speed``, ``preset_speed``, ``train_speed``: the model's forward and training step;
- ``manifest_listing``, ``decode``, ``raw_decode``, ``score_speed``, ``ray_engine_speed``, ``ray_start``:
  listing, decoding and the engines end to end;
- ``sinks``, ``memory``, ``read_side``, ``read_parquet``, ``xmp_speed``: the write side and the read side;
- ``gpu_decode_speed``, ``device_checks``: what only a GPU shows (``scripts/gpu_check.py``).

Shared by them: ``timing`` (interleaved rounds), ``engine_runs`` (a sink that only counts),
``scratch_databases`` (databases made for one run), and inputs: ``jpeg_folders``, ``bayer_dngs``.
Nothing here imports ``pipelines/`` or ``training/``: the commands pass the Ray engine or the loss in.
"""
