"""Clone or update the docs repository under DATA_DIR, fetching as little as possible.

Remote URLs are cloned shallow with a blob filter and a sparse checkout of
the files the globs select, so only the Markdown blobs of one commit travel
(the Label Studio repo is ~1.2 GB with history; its Markdown is 2.6 MB).
Local paths and git bundles take the same path; git ignores the shallow and
filter options for them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class RepoError(RuntimeError):
    """The repository or ref cannot be had; the message says what to do."""


class RefNotFound(RepoError):
    """The repository is there, the ref is not (a tag of another repo left in DOCS_REF)."""


@dataclass(frozen=True)
class RepoFile:
    path: str  # repo-relative, forward slashes
    blob: str  # git blob sha: changes exactly when the content changes


@dataclass(frozen=True)
class Checkout:
    root: Path
    commit: str
    files: list[RepoFile]
    web_base: str  # e.g. https://github.com/OWNER/REPO, or "" when not a GitHub remote
    links: tuple[str, ...] = ()  # files the globs select that are symlinks or submodules: not read


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "PATH": _path_env(), "LC_ALL": "C"},
    )
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


def _path_env() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message from git"


def is_remote(url: str) -> bool:
    return bool(re.match(r"^(https?|ssh|git)://", url)) or bool(re.match(r"^[\w.-]+@[\w.-]+:", url))


def normalize_source(url: str) -> str:
    """Local paths become absolute so a later run from another cwd finds them."""
    if is_remote(url) or url.startswith("file://"):
        return url
    path = Path(url).expanduser()
    if not path.exists():
        raise RepoError(f"Docs repo {url!r} is neither a URL nor an existing path. Check --repo / DOCS_REPO.")
    return str(path.resolve())


def _check_repo_top(path: Path) -> None:
    """A local folder must be the top of a git repository (or a bare one): say so, not "does not exist"."""
    top = _git("rev-parse", "--show-toplevel", cwd=path, check=False)
    if top.returncode != 0:
        if _git("rev-parse", "--is-bare-repository", cwd=path, check=False).stdout.strip() == "true":
            return
        raise RepoError(
            f"{str(path)!r} is a folder but not a git repository: ingest reads committed files of a git "
            f"repo. Run `git init && git add . && git commit -m docs` in it, or pass the repo it belongs to."
        )
    root = Path(top.stdout.strip()).resolve()
    if root != path.resolve():
        inside = path.resolve().relative_to(root).as_posix()
        raise RepoError(
            f"{str(path)!r} is a folder inside the git repo {str(root)!r}. Pass the repo's top and select "
            f"the folder with a glob: --repo {root} --glob '{inside}/**/*.md'"
        )


def origin_web_base(path: str) -> str:
    """The GitHub page of a local clone's `origin` remote ("" for none, or one not on GitHub)."""
    if is_remote(path) or not Path(path).is_dir():
        return ""
    proc = _git("config", "--get", "remote.origin.url", cwd=Path(path), check=False)
    return github_web_base(proc.stdout.strip()) if proc.returncode == 0 else ""


def uncommitted(path: str, globs: list[str]) -> list[str]:
    """Files the globs select that have changes not committed in a local work tree (ingest reads commits)."""
    if is_remote(path) or not Path(path).is_dir():
        return []
    pathspecs = [f":(glob){g}" for g in globs]
    proc = _git(
        "status", "--porcelain", "-z", "--untracked-files=all", "--", *pathspecs, cwd=Path(path), check=False
    )
    if proc.returncode != 0:
        return []
    entries = proc.stdout.split("\0")
    changed, skip = [], False
    for entry in entries:
        if skip:  # a rename's second path (its origin)
            skip = False
            continue
        if len(entry) > 3:
            changed.append(entry[3:])
            skip = entry[0] in "RC"
    return changed


def github_web_base(url: str) -> str:
    """https://github.com/OWNER/REPO for GitHub remotes (https or ssh), else ""."""
    m = re.match(r"^(?:https?://|ssh://git@|git@)github\.com[/:]([^/]+)/([^/]+?)(?:\.git)?/?$", url)
    return f"https://github.com/{m.group(1)}/{m.group(2)}" if m else ""


def sparse_patterns(globs: list[str]) -> list[str]:
    """Turn `**/*.md`-style globs into non-cone sparse-checkout (gitignore) patterns."""
    patterns = []
    for glob in globs:
        glob = glob.lstrip("/")
        patterns.append(glob[3:] if glob.startswith("**/") else "/" + glob)
    return patterns


def _clone(url: str, dest: Path) -> None:
    """Clone `url` beside `dest`, then swap it in: a bad URL leaves the previous clone as it was."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fresh = dest.with_name(dest.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)  # a clone a kill left half-made
    args = ["clone", "--no-checkout", "--quiet"]
    if is_remote(url):
        args += ["--depth", "1", "--filter=blob:none"]
    proc = _git(*args, url, str(fresh), check=False)
    if proc.returncode != 0:
        shutil.rmtree(fresh, ignore_errors=True)
        raise RepoError(
            f"Could not clone the docs repo {url!r}: {_last_line(proc.stderr)}. "
            "Check the URL or path (--repo / DOCS_REPO) and your network."
        )
    if dest.exists():
        shutil.rmtree(dest)
    fresh.rename(dest)


def _current_origin(dest: Path) -> str | None:
    if not (dest / ".git").exists():
        return None
    proc = _git("config", "--get", "remote.origin.url", cwd=dest, check=False)
    ok = _git("rev-parse", "--git-dir", cwd=dest, check=False).returncode == 0
    return proc.stdout.strip() if proc.returncode == 0 and ok else None


def checkout(url: str, ref: str, dest: Path, globs: list[str]) -> Checkout:
    """Make `dest` a checkout of `ref` (default branch when empty) of `url`; list the files."""
    url = normalize_source(url)
    if Path(url).is_dir():
        _check_repo_top(Path(url))
    if _current_origin(dest) != url:
        _clone(url, dest)  # first run, another repo, or a clone a kill left half-made
    fetch = ["fetch", "--quiet", "--force", "--tags"]
    if is_remote(url):
        fetch += ["--depth", "1", "--filter=blob:none"]
    target = ref or "HEAD"
    proc = _git(*fetch, "origin", target, cwd=dest, check=False)
    if proc.returncode == 0:
        rev = "FETCH_HEAD"
    elif (
        ref
        and _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=dest, check=False).returncode
        == 0
    ):
        rev = ref  # a commit sha already present (local clones and bundles carry all history)
    else:
        detail = _last_line(proc.stderr)
        heads = _git("ls-remote", url, cwd=dest, check=False) if not ref else None
        if heads is not None and heads.returncode == 0 and not heads.stdout.strip():
            raise RepoError(
                f"The docs repo {url!r} has no commits yet: commit the docs to it, then run again."
            )
        if "not our ref" in detail or "couldn't find remote ref" in detail or "bad object" in detail or ref:
            raise RefNotFound(
                f"The ref {target!r} was not found in {url!r} ({detail}). "
                "Check --ref / DOCS_REF: a branch, tag or commit of that repo."
            )
        raise RepoError(f"Could not fetch {url!r}: {detail}. Check the URL and your network.")
    _git("sparse-checkout", "set", "--no-cone", *sparse_patterns(globs), cwd=dest)
    proc = _git("checkout", "--quiet", "--force", "--detach", rev, cwd=dest, check=False)
    if proc.returncode != 0:
        raise RepoError(f"Could not check out {target!r} of {url!r}: {_last_line(proc.stderr)}.")
    commit = _git("rev-parse", "HEAD", cwd=dest).stdout.strip()
    pathspecs = [f":(glob){g}" for g in globs]
    listing = _git("ls-files", "-s", "-z", "--", *pathspecs, cwd=dest).stdout
    files, links = [], []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, blob, _stage = meta.split()
        if mode.startswith("120") or mode.startswith("160"):  # symlinks and submodules are not docs:
            links.append(path)  # a link may point out of the repo (/etc/passwd), a submodule is another repo
            continue
        files.append(RepoFile(path=path, blob=blob))
    return Checkout(
        root=dest,
        commit=commit,
        files=sorted(files, key=lambda f: f.path),
        web_base=github_web_base(url) or origin_web_base(url),
        links=tuple(sorted(links)),
    )
