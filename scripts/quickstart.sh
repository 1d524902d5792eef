#!/usr/bin/env bash
# Set up eat-curate in ./.venv and run the main job on a small generated photo folder:
#   eat-curate score ./sample-photos --out scores.parquet --db photos.db
# then show the best photo of each album. Safe to run again (the second run skips what is scored).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${EAT_CURATE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.14.1 torchvision==0.29.1
python -m pip install -q -e .

[ -d sample-photos ] || eat-curate samples sample-photos

# No --model: the package's built-in culling model (`eat-curate models info culling-nano` says what it measures).
eat-curate score sample-photos --out scores.parquet --db photos.db
eat-curate rank photos.db --top 3
