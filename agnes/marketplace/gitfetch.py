"""Fetching marketplace repositories with dulwich, and writing trees out of them.

Nothing here touches the state store: callers run it outside any unit of work. Fetches go
into bare repositories (a failed fetch leaves the previous objects and files alone), and
trees are written into fresh directories that the caller renames into place.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from dulwich.client import get_transport_and_path
from dulwich.config import ConfigDict
from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

from agnes.audit import redact_text
from agnes.errors import human_message

# User name sent with an access token over https (GitHub, GitLab and Gitea accept any).
TOKEN_USERNAME = "x-access-token"
FILE_MODES = (0o100644, 0o100755, 0o100664)


class FetchError(RuntimeError):
    """A fetch or read failed; the message is safe to show (token removed)."""


class TooLarge(FetchError):
    """A plugin's files exceed the size or file-count cap; the message names the cap."""


def redact(message: str, *secrets: str | None) -> str:
    """Remove the given secrets and anything token-like from an error message."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    return redact_text(message)


def rewrite_url(url: str, rewrites: list[str]) -> str:
    """Apply ``prefix=replacement`` rules (like git's ``url.<base>.insteadOf``), longest prefix first.

    Used for on-premise mirrors of public repositories (``AGNES_GIT_URL_REWRITES``).
    """
    rules = []
    for rule in rewrites:
        prefix, sep, replacement = rule.partition("=")
        if sep and prefix:
            rules.append((prefix, replacement))
    for prefix, replacement in sorted(rules, key=lambda r: -len(r[0])):
        if url.startswith(prefix):
            return replacement + url[len(prefix) :]
    return url


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    if url.startswith("/"):
        return url
    return None


def local_repository_problem(url: str) -> str | None:
    """Why a local path or ``file://`` URL cannot be fetched (it does not exist, or is not a git
    repository, bare or not), in words; None when it can, or when ``url`` is not local."""
    local = _local_path(url)
    if local is None:
        return None
    path = Path(local)
    if not path.exists():
        return f"{local} does not exist on the server."
    if not path.is_dir():
        return f"{local} is a file, not a git repository."
    try:
        Repo(str(path)).close()
    except NotGitRepository:
        return f"{local} is not a git repository (no .git folder, and not a bare repository)."
    except OSError as exc:
        return f"{local} cannot be read: {exc.strerror or exc}."
    return None


def open_or_init(path: Path) -> Repo:
    if (path / "HEAD").exists():
        return Repo(str(path))
    path.mkdir(parents=True, exist_ok=True)
    return Repo.init_bare(str(path))


def fetch(
    repo_dir: Path,
    url: str,
    *,
    ref: str | None = None,
    sha: str | None = None,
    token: str | None = None,
    timeout: float = 120.0,
) -> str:
    """Fetch one commit of ``url`` into the bare repository ``repo_dir``; returns its sha (hex).

    ``sha`` pins an exact commit (nothing is fetched when it is already here); otherwise
    ``ref`` (a branch or tag name) or the remote's HEAD is fetched, shallow (depth 1).

    Raises:
        FetchError: the remote is unreachable, refuses us, or lacks the ref/commit.
    """
    local = _local_path(url)
    if local is not None and not Path(local).exists():
        raise FetchError(f"repository not found: {local}")
    config = ConfigDict()
    config.set((b"http",), b"timeout", str(int(timeout)).encode())
    chosen: dict[str, bytes] = {}
    try:
        with open_or_init(repo_dir) as repo:
            if sha and sha.encode() in repo.object_store:
                return sha
            client, path = get_transport_and_path(
                url,
                config=config,
                username=TOKEN_USERNAME if token else None,
                password=token or None,
                pool_manager=_pool_manager(url, config, timeout) if local is None else None,
            )

            def determine_wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
                if sha:
                    target = sha.encode()
                else:
                    target = _pick_ref(refs, ref)
                chosen["sha"] = target
                return [] if target in repo.object_store else [target]

            client.fetch(path, repo, determine_wants=determine_wants, depth=1)
            target = chosen.get("sha")
            if target is None or target not in repo.object_store:
                raise FetchError(f"commit {sha or ref or 'HEAD'} was not received")
            if not isinstance(repo[target], Commit):
                raise FetchError(f"{target.decode()} is not a commit")
            repo.refs[b"refs/heads/synced"] = target
            return target.decode()
    except FetchError as exc:
        raise FetchError(redact(str(exc), token)) from None
    except Exception as exc:  # dulwich, urllib3 and OS errors all mean "could not fetch"
        raise FetchError(redact(f"could not fetch {url}: {_reason(exc)}", token)) from None


def _pool_manager(url: str, config: ConfigDict, timeout: float):  # type: ignore[no-untyped-def]
    """dulwich's HTTP pool (proxies, certificates) with one retry instead of three, so an
    unreachable host fails in about one timeout, not four."""
    import urllib3
    from dulwich.client import default_urllib3_manager

    manager = default_urllib3_manager(config, base_url=url, timeout=timeout)
    manager.connection_pool_kw["retries"] = urllib3.Retry(total=1, connect=1, read=1, redirect=3)
    return manager


def _reason(exc: BaseException) -> str:
    """A short reason for a failed fetch (urllib3 messages run to several lines)."""
    text = str(exc) or human_message(exc)
    checks = (
        ("NameResolutionError", "the host name does not resolve"),
        ("Name or service not known", "the host name does not resolve"),
        ("Connection refused", "the connection was refused"),
        ("timed out", "the connection timed out"),
        ("CERTIFICATE_VERIFY_FAILED", "the server's TLS certificate is not trusted"),
    )
    for needle, reason in checks:
        if needle in text:
            return reason
    if type(exc).__name__ == "HTTPUnauthorized":
        return "the server refused the credentials (check the access token)"
    if type(exc).__name__ == "NotGitRepository":
        return f"not a git repository ({text[:200]})"
    return text.splitlines()[0][:300]


def _pick_ref(refs: dict[bytes, bytes], ref: str | None) -> bytes:
    if ref:
        for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            peeled = refs.get(name.encode() + b"^{}") or refs.get(name.encode())
            if peeled:
                return peeled
        raise FetchError(f"the repository has no branch or tag '{ref}'")
    head = refs.get(b"HEAD")
    if not head:
        raise FetchError("the repository has no HEAD (is it empty?)")
    return head


def _subtree(repo: Repo, commit_sha: str, path: str) -> Tree | None:
    tree = repo[repo[commit_sha.encode()].tree]
    for part in [p for p in path.split("/") if p]:
        try:
            mode, sha = tree[part.encode()]
        except KeyError:
            return None
        if not stat.S_ISDIR(mode):
            return None
        tree = repo[sha]
    return tree


def read_file(repo_dir: Path, commit_sha: str, path: str) -> bytes | None:
    """Bytes of one file in a commit, or None when it is missing."""
    directory, _, name = path.rpartition("/")
    with Repo(str(repo_dir)) as repo:
        tree = _subtree(repo, commit_sha, directory)
        if tree is None:
            return None
        try:
            mode, sha = tree[name.encode()]
        except KeyError:
            return None
        obj = repo[sha]
        return obj.as_raw_string() if isinstance(obj, Blob) else None


def _included(rel: str, include: list[str] | None) -> bool:
    return include is None or any(rel == p or rel.startswith(p + "/") for p in include)


def write_tree(
    repo_dir: Path,
    commit_sha: str,
    path: str,
    dest: Path,
    *,
    include: list[str] | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
) -> tuple[int, int, str]:
    """Write directory ``path`` of a commit into the new directory ``dest``.

    Regular files keep their executable bit; symlinks, submodules and anything under a ``.git``
    directory are skipped (a served plugin must not point outside itself or carry a repository).
    ``include`` (relative paths) limits what is written to those files and directories. Returns
    ``(file_count, total_bytes, content_hash)`` where the hash covers every (relative path, mode,
    blob id) in order.

    Raises:
        FetchError: the directory does not exist in the commit.
        TooLarge: more than ``max_files`` files or ``max_bytes`` bytes (``dest`` is left partly
            written; the caller removes it).
    """
    digest = hashlib.sha256()
    count = size = 0
    with Repo(str(repo_dir)) as repo:
        tree = _subtree(repo, commit_sha, path)
        if tree is None:
            raise FetchError(f"'{path or '/'}' does not exist in commit {commit_sha[:12]}")
        dest.mkdir(parents=True)
        store = repo.object_store
        entries = []
        for entry in sorted(store.iter_tree_contents(tree.id), key=lambda e: e.path):
            if entry.mode not in FILE_MODES:
                continue
            rel = entry.path.decode("utf-8", "surrogateescape")
            parts = rel.split("/")
            if rel.startswith("/") or ".." in parts or ".git" in parts or not _included(rel, include):
                continue
            entries.append((entry, rel))
        if max_files is not None and len(entries) > max_files:
            raise TooLarge(
                f"the plugin has {len(entries)} files, more than the limit of {max_files} (AGNES_PLUGIN_MAX_FILES)"
            )
        for entry, rel in entries:
            data = store[entry.sha].as_raw_string()
            if max_bytes is not None and size + len(data) > max_bytes:
                raise TooLarge(
                    f"the plugin is larger than the limit of {max_bytes // (1024 * 1024)} MB (AGNES_PLUGIN_MAX_MB)"
                )
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o755 if entry.mode & 0o111 else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(target, mode)
            digest.update(b"%s\0%o\0%s\n" % (entry.path, 0o100755 if mode == 0o755 else 0o100644, entry.sha))
            count += 1
            size += len(data)
    return count, size, digest.hexdigest()
