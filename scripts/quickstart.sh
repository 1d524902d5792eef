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

MODEL_ARGS=()
if ! eat-curate models list --json | python -c 'import json,sys; sys.exit(0 if any(m["default"] for m in json.load(sys.stdin)) else 1)'; then
  # No model ships with this version: make an untrained one so the pipeline runs end to end.
  # Its scores are random and mean nothing; see README, "Models", for real weights.
  eat-curate models list --json | python -c 'import json,sys; sys.exit(0 if any(m["name"] == "quickstart-untrained" for m in json.load(sys.stdin)) else 1)' \
    || eat-curate models init --preset tiny --name quickstart-untrained --seed 0
  MODEL_ARGS=(--model quickstart-untrained)
fi

eat-curate score sample-photos --out scores.parquet --db photos.db "${MODEL_ARGS[@]}"
eat-curate rank --db photos.db --top 3
