"""Recipes: complete, reproducible training runs, each started with ``python -m training.recipes.<name>``.

Imported before any recipe module, so before torch loads OpenMP: where other
processes share the cores, spinning OpenMP threads slow training about ten
times (measured on 2 busy cores: 1.4 against 13.8 img/s), so recipes let
idle threads sleep unless the caller chose otherwise.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
