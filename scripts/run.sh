#!/usr/bin/env bash
# `make run`: everything a fresh machine needs, then the app on http://HOST:PORT.
#   1. create .venv and install (scripts/bootstrap.sh app)
#   2. ingest the docs repo if the store is empty (DOCS_REPO, default Label Studio's GitHub repo)
#   3. start a local Label Studio (scripts/labelstudio.sh) unless LABEL_STUDIO_URL points elsewhere
#   4. serve app.py, which starts the local model when no OPENAI_API_KEY / OPENAI_BASE_URL is set
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh app

# Settings: the environment wins over ./.env (as in the app).
env_value() {
  local key="$1" default="${2:-}"
  if [ -n "${!key:-}" ]; then printf '%s' "${!key}"; return; fi
  if [ -f .env ]; then
    local line
    line=$(grep -E "^[[:space:]]*${key}=" .env | tail -n 1 || true)
    if [ -n "$line" ]; then line="${line#*=}"; line="${line%\"}"; line="${line#\"}"; printf '%s' "$line"; return; fi
  fi
  printf '%s' "$default"
}
data_dir=$(env_value DATA_DIR ./data)
ls_port=$(env_value LABEL_STUDIO_PORT 8080)
ls_url=$(env_value LABEL_STUDIO_URL "")

if [ ! -f "$data_dir/index/state.json" ]; then
  echo "No docs ingested yet: running python ingest.py (a few minutes the first time)"
  .venv/bin/python ingest.py
else
  # An index whose vectors were made another way (an older version, another EMBEDDINGS) is rebuilt.
  rc=0
  .venv/bin/python - <<'PY' || rc=$?
import sys
from qa.embeddings import make_embeddings
from qa.store import DocStore, StoreError
from settings import get_settings
settings = get_settings()
try:
    DocStore(settings.index_dir).check_model(make_embeddings(settings))
except StoreError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
PY
  if [ "$rc" = 3 ]; then
    echo "Rebuilding the index with the current embedding model: python ingest.py --reset"
    .venv/bin/python ingest.py --reset
  fi
fi

if [ -z "$ls_url" ] || [[ "$ls_url" == "http://127.0.0.1:$ls_port"* || "$ls_url" == "http://localhost:$ls_port"* ]]; then
  scripts/labelstudio.sh install
  scripts/labelstudio.sh start
  export LABEL_STUDIO_URL="http://127.0.0.1:$ls_port"
  if [ -z "$(env_value LABEL_STUDIO_API_KEY "")" ]; then
    LABEL_STUDIO_API_KEY=$(scripts/labelstudio.sh token)
    export LABEL_STUDIO_API_KEY
  fi
  echo "Label Studio: $LABEL_STUDIO_URL (login and password: $data_dir/labelstudio/credentials)"
  trap 'scripts/labelstudio.sh stop >/dev/null 2>&1 || true' EXIT
fi

.venv/bin/python app.py
