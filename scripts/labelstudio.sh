#!/usr/bin/env bash
# Run a local Label Studio for the feedback loop (tests, `make run`, benchmarks).
#
#   scripts/labelstudio.sh install   # own venv at .venv-labelstudio + a migrated empty db (never the app venv:
#                                    # label-studio pins openai<2 and would downgrade langchain-openai)
#   scripts/labelstudio.sh start     # 127.0.0.1:$LABEL_STUDIO_PORT, data under $DATA_DIR/labelstudio
#   scripts/labelstudio.sh status    # exit 0 when running and healthy, 3 when stopped
#   scripts/labelstudio.sh token     # print the admin's API token (use as LABEL_STUDIO_API_KEY)
#   scripts/labelstudio.sh url       # print its URL (use as LABEL_STUDIO_URL)
#   scripts/labelstudio.sh stop      # SIGTERM by PID
#
# Settings (environment first, then ./.env, then the project's .env, then these defaults):
#   DATA_DIR                 ./data            state lives in $DATA_DIR/labelstudio (db, media, server.log, pid);
#                                              relative: under the project folder, wherever this runs
#   LABEL_STUDIO_PORT        8080
#   LABEL_STUDIO_USERNAME    admin@example.com admin login, created on the first start only
#   LABEL_STUDIO_PASSWORD    random            generated on the first start, kept in $DATA_DIR/labelstudio/credentials
#   LABEL_STUDIO_USER_TOKEN  random            legacy API token of the admin (LABEL_STUDIO_API_KEY when it is one)
#   LABEL_STUDIO_VENV        ./.venv-labelstudio
#   LABEL_STUDIO_START_TIMEOUT 180             seconds to wait for /health
set -euo pipefail

LS_VERSION="1.23.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "labelstudio.sh: $*" >&2; exit 1; }

# Read DATA_DIR and LABEL_STUDIO_* from ./.env without overriding the environment, the way the
# app reads it (pydantic-settings, with python-dotenv: comments, quotes, escapes, ${VAR}, last line
# wins), so this script and the app agree on the port and data dir. Uses the app's venv when it exists;
# before that, a bash reading of the common forms (KEY=value, "quoted", 'quoted', trailing # comment).
load_dotenv() {
  local file="${1:-.env}" line key value exports
  [[ -f "$file" ]] || return 0
  if [[ -x "$ROOT/.venv/bin/python" ]] && exports="$("$ROOT/.venv/bin/python" - "$file" 2>/dev/null <<'PY'
import os
import re
import shlex
import sys

from dotenv import dotenv_values

in_env = {key.upper() for key in os.environ}
for key, value in dotenv_values(sys.argv[1], encoding="utf-8").items():
    key = key.upper()
    if value is None or key in in_env or not re.fullmatch(r"DATA_DIR|LABEL_STUDIO_[A-Z0-9_]*", key):
        continue
    print(f"export {key}={shlex.quote(value)}")
PY
  )"; then
    eval "$exports"
    return 0
  fi
  local -A from_file=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    case "$key" in
      DATA_DIR | LABEL_STUDIO_*) ;;
      *) continue ;;
    esac
    [[ -n "${!key+x}" && -z "${from_file[$key]:-}" ]] && continue # the environment wins
    if [[ "$value" =~ ^\"([^\"]*)\" || "$value" =~ ^\'([^\']*)\' ]]; then
      value="${BASH_REMATCH[1]}"
    else
      value="${value%%[[:space:]]#*}"
      value="${value%"${value##*[![:space:]]}"}"
    fi
    export "$key=$value"
    from_file[$key]=1
  done <"$file"
}
# As settings.py: the working directory's .env first (it wins), then the project's own.
load_dotenv .env
[[ "$(pwd -P)" == "$ROOT" ]] || load_dotenv "$ROOT/.env"

VENV="${LABEL_STUDIO_VENV:-$ROOT/.venv-labelstudio}"
PORT="${LABEL_STUDIO_PORT:-8080}"
DATA="${DATA_DIR:-./data}"
[[ "$DATA" == /* ]] || DATA="$ROOT/$DATA"  # a relative DATA_DIR is the project's, as in settings.py
mkdir -p "$DATA"
LS_DIR="$(cd "$DATA" && pwd)/labelstudio"
PID_FILE="$LS_DIR/server.pid"
LOG_FILE="$LS_DIR/server.log"
CRED_FILE="$LS_DIR/credentials"
URL="http://127.0.0.1:$PORT"
START_TIMEOUT="${LABEL_STUDIO_START_TIMEOUT:-180}"

[[ "$PORT" =~ ^[0-9]+$ ]] || die "LABEL_STUDIO_PORT must be a number, got '$PORT'"

find_python() {
  local candidate
  for candidate in "${LABEL_STUDIO_PYTHON:-}" python3.11 python3.12 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

is_installed() {
  [[ -x "$VENV/bin/label-studio" ]] && compgen -G "$VENV/lib/python3*/site-packages/label_studio-$LS_VERSION.dist-info" >/dev/null
}

# The environment Label Studio runs in. HOST, PORT, DEBUG, CI, LOG_LEVEL are read by Label Studio
# without a prefix: keep the app's values (HOST=127.0.0.1 for the app, CI=true in CI) away from it.
ls_env() {
  env -u HOST -u PORT -u DEBUG -u CI -u LOG_LEVEL -u DJANGO_DB -u DATABASE_NAME -u DATA_DIR \
    LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false "$@"
}

TEMPLATE_DB="$VENV/template/label_studio.sqlite3"

# An empty, fully migrated database kept beside the venv: a fresh data dir starts from a copy
# instead of running Label Studio's ~400 migrations again (40-80 s on 2 cores).
build_template() {
  [[ -f "$TEMPLATE_DB" ]] && return 0
  local site dir
  site="$(compgen -G "$VENV/lib/python3*/site-packages/label_studio" | head -n1)"
  dir="$(mktemp -d "$VENV/template.XXXXXX")"
  echo "Preparing an empty Label Studio database (migrations, once per install; about a minute) ..."
  if ! (cd "$dir" && ls_env PYTHONPATH="$site" LABEL_STUDIO_BASE_DATA_DIR="$dir" \
    DATABASE_NAME="$dir/label_studio.sqlite3" DJANGO_SETTINGS_MODULE=core.settings.label_studio \
    "$VENV/bin/python" "$site/manage.py" migrate --noinput >"$dir/migrate.log" 2>&1); then
    tail -n 20 "$dir/migrate.log" >&2
    rm -rf "$dir"
    die "could not prepare the Label Studio database template"
  fi
  mkdir -p "$VENV/template"
  mv "$dir/label_studio.sqlite3" "$TEMPLATE_DB.tmp.$$" && mv "$TEMPLATE_DB.tmp.$$" "$TEMPLATE_DB"
  rm -rf "$dir"
}

cmd_install() {
  [[ -d "$VENV" && ! -f "$VENV/.gitignore" ]] && printf '# created by scripts/labelstudio.sh: keep this venv out of git\n*\n' >"$VENV/.gitignore"
  if is_installed; then
    build_template
    echo "label-studio $LS_VERSION is already installed in $VENV"
    return 0
  fi
  local python
  python="$(find_python)" || die "no Python 3.10-3.12 found for Label Studio's venv; set LABEL_STUDIO_PYTHON"
  echo "Installing label-studio $LS_VERSION into $VENV (about 80 s and 1 GB the first time) ..."
  [[ -x "$VENV/bin/python" ]] || "$python" -m venv "$VENV"
  printf '# created by scripts/labelstudio.sh: keep this venv out of git\n*\n' >"$VENV/.gitignore"
  local log="$VENV/install.log"
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q "label-studio==$LS_VERSION" >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -20 >&2
    die "pip install label-studio==$LS_VERSION failed (full log: $log)"
  fi
  is_installed || die "label-studio $LS_VERSION did not install into $VENV (see $log)"
  build_template
  echo "Installed label-studio $LS_VERSION in $VENV"
}

# A value from the credentials file written on the first start (KEY=VALUE lines).
credential() {
  [[ -f "$CRED_FILE" ]] || return 0
  sed -n "s/^$1=//p" "$CRED_FILE" | head -n1
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# Username, password and token: the environment wins, then what the first start saved,
# then a documented default (username) or a fresh random value (password, token).
resolve_credentials() {
  LS_USERNAME="${LABEL_STUDIO_USERNAME:-$(credential LABEL_STUDIO_USERNAME)}"
  LS_USERNAME="${LS_USERNAME:-admin@example.com}"
  LS_PASSWORD="${LABEL_STUDIO_PASSWORD:-$(credential LABEL_STUDIO_PASSWORD)}"
  LS_PASSWORD="${LS_PASSWORD:-$(random_hex 12)}"
  LS_TOKEN="${LABEL_STUDIO_USER_TOKEN:-$(credential LABEL_STUDIO_USER_TOKEN)}"
  if [[ -z "$LS_TOKEN" && -n "${LABEL_STUDIO_API_KEY:-}" && "$LABEL_STUDIO_API_KEY" != *.* ]]; then
    LS_TOKEN="$LABEL_STUDIO_API_KEY" # a legacy key in .env: make the server accept exactly that one
  fi
  LS_TOKEN="${LS_TOKEN:-$(random_hex 20)}"
  # A fixed Django secret: a new random one per start would void sessions and personal access tokens (JWT).
  LS_SECRET_KEY="$(credential SECRET_KEY)"
  LS_SECRET_KEY="${LS_SECRET_KEY:-$(random_hex 32)}"
  ((${#LS_TOKEN} > 5 && ${#LS_TOKEN} <= 40)) || die "LABEL_STUDIO_USER_TOKEN must be 6 to 40 characters"
}

save_credentials() {
  if [[ -f "$CRED_FILE" ]]; then
    grep -q '^SECRET_KEY=' "$CRED_FILE" || echo "SECRET_KEY=$LS_SECRET_KEY" >>"$CRED_FILE"
    return 0
  fi
  (
    umask 077
    printf 'LABEL_STUDIO_USERNAME=%s\nLABEL_STUDIO_PASSWORD=%s\nLABEL_STUDIO_USER_TOKEN=%s\nSECRET_KEY=%s\n' \
      "$LS_USERNAME" "$LS_PASSWORD" "$LS_TOKEN" "$LS_SECRET_KEY" >"$CRED_FILE"
  )
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A stale PID file may name a process that reused the number: only ours counts.
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"label-studio start "* && "$cmd" == *" --data-dir $LS_DIR "* ]] || return 1
  echo "$pid"
}

healthy() { curl -fsS --max-time 2 "$URL/health" 2>/dev/null | grep -q '"UP"'; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# Wait until $URL/health answers for process $1; fail clearly if it dies, moves port or hangs.
wait_healthy() {
  local pid="$1" log_start="$2" started="$3"
  while ! healthy; do
    if tail -c +"$((log_start + 1))" "$LOG_FILE" | grep -q "Port $PORT is in use"; then
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "port $PORT became busy while Label Studio started (it would have moved to another port). Set LABEL_STUDIO_PORT to a free port."
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 25 "$LOG_FILE" >&2
      die "Label Studio exited during start (log: $LOG_FILE)"
    fi
    if ((SECONDS - started > START_TIMEOUT)); then
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      tail -n 25 "$LOG_FILE" >&2
      die "Label Studio did not answer $URL/health within ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    sleep 0.5
  done
  # The port was free a moment ago, but Label Studio moves to the next free port without failing:
  # make sure the server answering is the one we started.
  if command -v ss >/dev/null 2>&1 && ss -ltnpH "sport = :$PORT" 2>/dev/null | grep -q "pid="; then
    ss -ltnpH "sport = :$PORT" | grep -q "pid=$pid," || {
      kill -TERM "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "another program answered on port $PORT while Label Studio started; set LABEL_STUDIO_PORT to a free port"
    }
  fi
}

cmd_start() {
  mkdir -p "$LS_DIR"
  exec 9>"$LS_DIR/.lock"
  flock 9 # one start/stop at a time per data dir (make run and a test run, say)
  local pid started=$SECONDS log_start
  touch "$LOG_FILE"
  if pid="$(running_pid)"; then
    if ! healthy; then
      echo "Label Studio (pid $pid) is starting; waiting for $URL/health ..."
      wait_healthy "$pid" "$(wc -c <"$LOG_FILE")" "$started"
    fi
    echo "Label Studio is already running at $URL (pid $pid)"
    return 0
  fi
  is_installed || cmd_install
  build_template
  if port_busy; then
    die "port $PORT on 127.0.0.1 is already in use by another program (Label Studio would silently move to the next port). Stop it or set LABEL_STUDIO_PORT to a free port."
  fi
  resolve_credentials
  [[ -f "$LS_DIR/label_studio.sqlite3" ]] || cp "$TEMPLATE_DB" "$LS_DIR/label_studio.sqlite3"
  echo "Starting Label Studio $LS_VERSION at $URL with data in $LS_DIR ..."
  log_start=$(wc -c <"$LOG_FILE")
  (
    cd "$LS_DIR"
    trap '' HUP
    exec 9>&- # the lock is ours, not the server's
    exec env -u HOST -u PORT -u DEBUG -u CI -u LOG_LEVEL -u DJANGO_DB -u DATABASE_NAME -u DATA_DIR \
      LATEST_VERSION_CHECK=false \
      COLLECT_ANALYTICS=false \
      LABEL_STUDIO_BASE_DATA_DIR="$LS_DIR" \
      LABEL_STUDIO_SSRF_PROTECTION_ENABLED=false \
      LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
      LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true \
      LABEL_STUDIO_USERNAME="$LS_USERNAME" \
      LABEL_STUDIO_PASSWORD="$LS_PASSWORD" \
      LABEL_STUDIO_USER_TOKEN="$LS_TOKEN" \
      SECRET_KEY="$LS_SECRET_KEY" \
      "$VENV/bin/label-studio" start --internal-host 127.0.0.1 -p "$PORT" --no-browser \
      --data-dir "$LS_DIR" --enable-legacy-api-token
  ) </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  save_credentials
  wait_healthy "$pid" "$log_start" "$started"
  echo "Label Studio is up at $URL (pid $pid, $((SECONDS - started)) s). Log in as $LS_USERNAME (password: scripts/labelstudio.sh status)."
}

cmd_stop() {
  local pid
  if [[ -d "$LS_DIR" ]]; then
    exec 9>"$LS_DIR/.lock"
    flock 9
  fi
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    echo "Label Studio is not running (no live PID in $PID_FILE)"
    return 0
  fi
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 200)); then
      echo "Label Studio (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  echo "Label Studio stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && healthy; then
    echo "Label Studio is running at $URL (pid $pid)"
    echo "  data:     $LS_DIR"
    echo "  log:      $LOG_FILE"
    if [[ -f "$CRED_FILE" ]]; then
      echo "  login:    $(credential LABEL_STUDIO_USERNAME) / $(credential LABEL_STUDIO_PASSWORD)"
      echo "  API key:  $(credential LABEL_STUDIO_USER_TOKEN)"
    fi
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then
    echo "Label Studio process $pid is alive but $URL/health does not answer (starting, or stuck: see $LOG_FILE)"
    return 1
  fi
  echo "Label Studio is not running (start it: scripts/labelstudio.sh start)"
  return 3
}

cmd_token() {
  local token="${LABEL_STUDIO_USER_TOKEN:-$(credential LABEL_STUDIO_USER_TOKEN)}"
  [[ -n "$token" ]] || die "no token yet: start Label Studio once (scripts/labelstudio.sh start) or set LABEL_STUDIO_USER_TOKEN"
  echo "$token"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  token) cmd_token ;;
  url) echo "$URL" ;;
  *)
    echo "usage: $0 install|start|stop|status|token|url" >&2
    exit 2
    ;;
esac
