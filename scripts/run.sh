#!/usr/bin/env bash
# `make run`: everything a fresh machine needs, then the app on http://HOST:PORT.
#   1. create .venv and install (scripts/bootstrap.sh app)
#   2. ingest the docs repo if the store is empty (DOCS_REPO, default Label Studio's GitHub repo)
#   3. start a local Label Studio (scripts/labelstudio.sh) unless LABEL_STUDIO_URL points elsewhere
#   4. serve app.py, which starts the local model when no OPENAI_API_KEY / OPENAI_BASE_URL is set
set -euo pipefail
cd "$(dirname "$0")/.."

# The settings this script needs, read by the app's own settings.py (environment > .env > defaults,
# python-dotenv's parsing: comments, quotes, `export`), so it checks and starts what the app will use.
# `app_settings` prints shell assignments (`scripts/run.sh --shell-settings`); `app_settings people`
# (`--settings`) says what `make run` will use for a person, without the API key. Neither installs
# or starts anything; a setting that can't be used is one line naming it.
app_settings() {
  .venv/bin/python - "${1:-shell}" <<'PY'
import shlex
import sys

from settings import SettingsError, get_settings

try:
    s = get_settings()
except SettingsError as exc:
    sys.exit(f"error: {exc}")
if sys.argv[1] == "shell":
    values = {
        "data_dir": s.data_dir,
        "ls_port": s.label_studio_port,
        "ls_url": s.label_studio_url,
        "ls_api_key": s.label_studio_api_key,
    }
    for name, value in values.items():
        print(f"{name}={shlex.quote(str(value))}")
    sys.exit()

from qa.llm import model_label
from qa.store import DocStore, StoreError

try:
    before = DocStore(s.index_dir).read_state()
except StoreError:
    before = None
if before and before.repo:
    docs = f"{before.repo} at {before.ref or 'its default branch'} (ingested; make run serves it as it is)"
else:
    docs = f"{s.docs_repo} at {s.docs_ref or 'its default branch'}, {' '.join(s.docs_glob)} (ingested on first run)"
local = f"http://127.0.0.1:{s.label_studio_port}"
if not s.label_studio_url or s.label_studio_url.startswith((local, f"http://localhost:{s.label_studio_port}")):
    ls = f"{local}, started by make run (its token is read from its own data unless LABEL_STUDIO_API_KEY is set)"
else:
    key = "set" if s.label_studio_api_key else "NOT SET: rated answers stay in the local log (set LABEL_STUDIO_API_KEY)"
    ls = f"{s.label_studio_url} (not started here; API key {key})"
rows = {
    "data": s.data_dir.resolve(),
    "docs": docs,
    "answers": model_label(s),
    "Label Studio": ls,
    "app": f"http://{s.host}:{s.port}",
}
print("make run will use (environment > .env > defaults):")
for name, value in rows.items():
    print(f"  {name + ':':<14}{value}")
PY
}

if [ "${1:-}" = "--settings" ] || [ "${1:-}" = "--shell-settings" ]; then
  [ -x .venv/bin/python ] || { echo "run.sh: no .venv yet (make install)" >&2; exit 1; }
  if [ "$1" = "--settings" ]; then app_settings people; else app_settings; fi
  exit
fi

# A setting that can't be used stops here, before anything is installed (once .venv exists to read it).
if [ -x .venv/bin/python ]; then app_settings >/dev/null; fi
scripts/bootstrap.sh app
settings=$(app_settings)
eval "$settings"

# A first ingest that fails (no access to GitHub, a DOCS_REPO typo) does not stop the rest: the app
# starts, says nothing is ingested, and this says how to ingest from a local clone or a bundle.
ingest_or_explain() {
  local rc=0
  .venv/bin/python ingest.py "$@" || rc=$?
  if [ "$rc" = 130 ]; then exit 130; fi  # Ctrl-C: the user wants to stop, not an app without docs
  if [ "$rc" != 0 ]; then
    cat >&2 <<'EOF'
make run: the ingest above failed; the app starts anyway and says nothing is ingested.
  No access to GitHub, or your own docs? Ingest a local clone, folder or git bundle, then reload the page:
    .venv/bin/python ingest.py --repo PATH_OR_URL [--ref BRANCH_OR_TAG]
  (or set DOCS_REPO / DOCS_REF in .env and run make run again).
EOF
  fi
}

if [ ! -f "$data_dir/index/state.json" ]; then
  echo "No docs ingested yet: running python ingest.py (a few minutes the first time)"
  ingest_or_explain
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
    ingest_or_explain --reset
  fi
fi

if [ -z "$ls_url" ] || [[ "$ls_url" == "http://127.0.0.1:$ls_port"* || "$ls_url" == "http://localhost:$ls_port"* ]]; then
  # labelstudio.sh gets the values the app resolved, not its own reading of .env.
  export LABEL_STUDIO_PORT="$ls_port" DATA_DIR="$data_dir"
  scripts/labelstudio.sh install
  # One already running (another `make run`, or `scripts/labelstudio.sh start` by hand) is left
  # running when this app stops: only the Label Studio started here is stopped with it.
  ls_was_running=""
  if scripts/labelstudio.sh status >/dev/null 2>&1; then ls_was_running=1; fi
  scripts/labelstudio.sh start
  export LABEL_STUDIO_URL="http://127.0.0.1:$ls_port"
  if [ -z "$ls_api_key" ]; then
    LABEL_STUDIO_API_KEY=$(scripts/labelstudio.sh token)
    export LABEL_STUDIO_API_KEY
  fi
  echo "Label Studio: $LABEL_STUDIO_URL (login and password: $data_dir/labelstudio/credentials)"
  if [ -z "$ls_was_running" ]; then
    trap 'scripts/labelstudio.sh stop >/dev/null 2>&1 || true' EXIT
  fi
fi

.venv/bin/python app.py
