"""A local, stdlib-only, Hugging Face Hub-compatible HTTP server for the test-suite.

The server speaks enough of the Hub's HTTP API for the *real* ``huggingface_hub`` client
(``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``upload_folder``, ...) to run
against it: repo creation/deletion, repo info, tree listing, ``/resolve`` downloads (HEAD
and GET, with ``Range``), the preupload + NDJSON commit protocol, classic git-LFS uploads
(batch API, PUT, verify), tags and branches, ``validate-yaml`` and ``whoami-v2``. It binds
to 127.0.0.1 on a free port and keeps its data in a directory you give it (content-addressed
objects under ``objects/`` and the refs/commits in ``state.json``), so nothing ever leaves
loopback.

Usage::

    with HubServer(tmp_path / "hub", token="hf_test_token") as hub, hub_client(hub.url, tmp_path / "hf_home"):
        from huggingface_hub import HfApi, hf_hub_download

        api = HfApi(token=hub.token)
        api.create_repo("i2i-tester/demo")
        ...

or, with pytest, the two plain generator functions below (a ``conftest.py`` can wrap them)::

    @pytest.fixture(scope="session")
    def hub_server(tmp_path_factory):
        yield from hub_server_fixture(tmp_path_factory)

    @pytest.fixture
    def hub(hub_server, tmp_path):
        yield from hub_client_fixture(hub_server, tmp_path)

Pointing the client at the server -- import-order caveat
-------------------------------------------------------
``huggingface_hub.constants`` reads ``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE``,
``HF_HUB_OFFLINE``, ``HF_HUB_DISABLE_XET``, ``HF_HUB_DISABLE_TELEMETRY``... ONCE, at import
time, and ``huggingface_hub.hf_api`` builds the module-level ``HfApi()`` (behind
``huggingface_hub.create_repo``, ``upload_folder``, ...) with the endpoint of that moment.
Setting environment variables later has no effect on an already imported client, and in this
project it is always already imported: ``import timm`` (pulled in by ``i2i.nets``) imports
``huggingface_hub`` and ``huggingface_hub.hf_api``. So "set the env vars before importing" cannot
be relied upon inside one pytest process.

:func:`hub_client` therefore does both: it sets the environment variables (for subprocesses,
for a first import, and for what the client reads at call time such as ``HF_TOKEN``) AND patches
the already imported module attributes (``constants.ENDPOINT``,
``constants.HUGGINGFACE_CO_URL_TEMPLATE``, the cache paths, ``HF_HUB_DISABLE_XET``,
``HF_HUB_OFFLINE``, ``hf_api.api.endpoint``...). Everything is restored on exit. Offline mode
must be toggled the same way (``is_offline_mode()`` reads ``constants.HF_HUB_OFFLINE``, not the
environment): use :func:`hub_offline`. For a client in a subprocess (e.g. a CLI test), pass
``env={**os.environ, **client_env(hub.url, hf_home)}``.

By default :func:`hub_client` also installs an ``httpx2`` client factory whose request hook
refuses any host that is not loopback, so a mis-configured test fails loudly instead of
trying to reach huggingface.co.

Xet
---
``hf_xet`` is installed alongside ``huggingface_hub`` 2.4. Downloads only use Xet when a
``/resolve`` HEAD answers with ``X-Xet-Hash`` (+ a refresh route) or a tree entry has
``xetHash``: this server never sends those, so downloads are plain HTTP. Uploads, however,
pick Xet purely client-side (``is_xet_available()`` == ``hf_xet`` importable and not
``constants.HF_HUB_DISABLE_XET``); no server answer makes the client fall back to LFS.
``HF_HUB_DISABLE_XET=1`` (set and patched by :func:`hub_client`) is what forces the classic
preupload -> LFS batch -> PUT -> verify -> commit path. The ``xet-*-token`` endpoints answer
400 with an explicit message in case Xet is attempted anyway.

Behaviour modelled on the real Hub
----------------------------------
* A new repo gets an "initial commit" holding a ``.gitattributes`` with the usual LFS patterns.
* Preupload answers ``lfs`` when the path matches a ``filter=lfs`` pattern of the target
  branch's current ``.gitattributes`` (e.g. ``*.safetensors``, ``*.pt``), when the size is
  >= ``lfs_threshold`` (10 MiB by default, a constructor argument) or when the 512-byte sample
  contains a NUL byte (binary file); otherwise ``regular``. It returns the existing ``oid`` so
  the client skips unchanged files (no empty commit).
* Errors carry ``X-Error-Code`` / ``X-Error-Message`` and a JSON ``{"error": ...}`` body:
  ``RepoNotFound`` (404 with a valid token, 401 without), ``RevisionNotFound`` (404),
  ``EntryNotFound`` (404, with ``X-Repo-Commit``). A wrong token gets 401 "Invalid credentials
  in Authorization header" on every endpoint (as the Hub does); write endpoints without a
  token get 401. Private repos answer ``RepoNotFound`` to anonymous callers.
* ETag is the git blob sha1 for regular files and the sha256 for LFS files (also sent as
  ``X-Linked-Etag`` with ``X-Linked-Size``); files are served directly, without a CDN redirect.
* Revisions resolve from branch names, tag names, ``refs/heads/*``, ``refs/tags/*``, full
  commit shas and unique sha prefixes of at least 7 characters. Commits go to branches only.
  Pull requests are not supported.
* Spaces (``repo_type="space"``) must be created with a known SDK (``space_sdk="gradio"``, ...);
  their info reports ``sdk`` and ``models`` from the README front matter, as the Hub does. They
  are stored and served like any repo, but never run.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_TOKEN = "hf_test_token"
DEFAULT_USER = "i2i-tester"
DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024

# Plural URL segment -> repo type, and repo type -> prefix in web/resolve urls.
_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
# Segments that follow a repo id in /api/{type}s/... urls.
_ACTIONS = {
    "revision",
    "tree",
    "paths-info",
    "preupload",
    "commit",
    "commits",
    "tag",
    "branch",
    "refs",
    "resolve",
    "settings",
    "xet-write-token",
    "xet-read-token",
    "lfs-files",
}
_SPACE_SDKS = ("gradio", "docker", "static", "streamlit")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_HEX_RE = re.compile(r"^[0-9a-f]{7,40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z",
        "*.arrow",
        "*.bin",
        "*.bz2",
        "*.ckpt",
        "*.ftz",
        "*.gz",
        "*.h5",
        "*.joblib",
        "*.mlmodel",
        "*.model",
        "*.msgpack",
        "*.npy",
        "*.npz",
        "*.onnx",
        "*.ot",
        "*.parquet",
        "*.pb",
        "*.pickle",
        "*.pkl",
        "*.pt",
        "*.pth",
        "*.rar",
        "*.safetensors",
        "saved_model/**/*",
        "*.tar.*",
        "*.tar",
        "*.tflite",
        "*.tgz",
        "*.wasm",
        "*.xz",
        "*.zip",
        "*.zst",
        "*tfevents*",
    )
)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file content for an object."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def _gitattributes_lfs(gitattributes: str, path: str) -> bool:
    """Whether ``path`` is marked ``filter=lfs`` by a (simplified) .gitattributes file."""
    result = False
    basename = path.rsplit("/", 1)[-1]
    for raw in gitattributes.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, *attrs = line.split()
        if "/" in pattern.rstrip("/"):
            matched = fnmatch.fnmatchcase(path, pattern.lstrip("/"))
        else:
            matched = fnmatch.fnmatchcase(basename, pattern) or fnmatch.fnmatchcase(path, pattern)
        if not matched:
            continue
        for attr in attrs:
            if attr == "filter=lfs":
                result = True
            elif attr.startswith("filter=") or attr in ("-filter", "!filter"):
                result = False
    return result


def _parse_scalar(value: str) -> Any:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~", ""):
        return None
    with contextlib.suppress(ValueError):
        return int(value)
    if value.startswith("[") and value.endswith("]"):
        return [_parse_scalar(v) for v in value[1:-1].split(",") if v.strip()]
    return value


def parse_card_data(readme: str) -> dict[str, Any] | None:
    """Parse the YAML front matter of a README into a dict (top-level scalars and lists only).

    A deliberately tiny parser (the server is stdlib-only): nested mappings are skipped.
    """
    lines = readme.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    data: dict[str, Any] = {}
    current_list: str | None = None
    for line in lines[1:]:
        if line.strip() == "---":
            return data
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        stripped = line.strip()
        if stripped.startswith("- ") and current_list is not None:
            data[current_list].append(_parse_scalar(stripped[2:]))
            continue
        if line[0] in " \t":  # nested mapping content: not supported
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if value.strip():
            data[key] = _parse_scalar(value)
            current_list = None
        else:
            data[key] = []
            current_list = key
    return None  # unterminated front matter


# --------------------------------------------------------------------------------------------
# Storage model
# --------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One file of a commit."""

    sha256: str
    size: int
    lfs: bool
    git_oid: str  # sha1 of the git blob (content for regular files, pointer for LFS files)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "lfs": self.lfs, "git_oid": self.git_oid}


@dataclass
class _Commit:
    oid: str
    parents: list[str]
    files: dict[str, _Entry]
    title: str
    message: str
    date: str
    author: str

    def to_json(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "parents": self.parents,
            "files": {p: e.to_json() for p, e in self.files.items()},
            "title": self.title,
            "message": self.message,
            "date": self.date,
            "author": self.author,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Commit:
        files = {p: _Entry(**e) for p, e in data["files"].items()}
        return cls(**{**data, "files": files})


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "repo_type": self.repo_type,
            "repo_id": self.repo_id,
            "private": self.private,
            "created_at": self.created_at,
            "branches": self.branches,
            "tags": self.tags,
            "commits": {oid: c.to_json() for oid, c in self.commits.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Repo:
        commits = {oid: _Commit.from_json(c) for oid, c in data["commits"].items()}
        return cls(**{**data, "commits": commits})

    def resolve(self, revision: str) -> str | None:
        """Commit oid for a branch, tag, ``refs/...`` name, full sha or unique sha prefix."""
        if revision.startswith("refs/heads/"):
            return self.branches.get(revision[len("refs/heads/") :])
        if revision.startswith("refs/tags/"):
            return self.tags.get(revision[len("refs/tags/") :])
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        rev = revision.lower()
        if rev in self.commits:
            return rev
        if _HEX_RE.match(rev):
            matches = [oid for oid in self.commits if oid.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        return None


class HubError(Exception):
    """An HTTP error answer, raised inside request handlers."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.extra = extra or {}  # additional fields of the JSON body


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hub: HubServer) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut the kept-alive client connections (their handler threads then exit)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class HubServer:
    """A Hub-compatible server running in a background thread.

    Args:
        root: directory where the repos are stored (created if needed; reused if it already
            holds a ``state.json`` from a previous server).
        token: the one valid access token (write access to every namespace).
        user: the user name ``whoami-v2`` reports for ``token``; repos created without an
            organization go to this namespace.
        lfs_threshold: files of at least this size are uploaded through LFS.
        port: 0 (default) picks a free port.

    Attributes:
        url: ``http://127.0.0.1:<port>`` once started (use it as ``HF_ENDPOINT``).
        requests: ``(method, path)`` of every request received, in order.
        errors: tracebacks of unexpected server-side exceptions (answered with HTTP 500).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        token: str = DEFAULT_TOKEN,
        *,
        user: str = DEFAULT_USER,
        lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
        port: int = 0,
    ) -> None:
        self.root = Path(root)
        self.token = token
        self.user = user
        self.lfs_threshold = lfs_threshold
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self._port = port
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._upload_tickets: dict[str, tuple[str, int]] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> HubServer:
        if self._httpd is not None:
            return self
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        self._load()
        self._httpd = _Server(("127.0.0.1", self._port), self)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"HubServer:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- introspection helpers for tests ----------------------------------------------------------

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def head(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> str:
        """The commit sha a branch points to."""
        with self._lock:
            return self._repos[(repo_type, repo_id)].branches[branch]

    def files(
        self, repo_id: str, revision: str = "main", repo_type: str = "model"
    ) -> dict[str, bool]:
        """``{path: is_lfs}`` of a revision."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            oid = repo.resolve(revision)
            if oid is None:
                raise KeyError(revision)
            return {p: e.lfs for p, e in repo.commits[oid].files.items()}

    def requests_to(self, fragment: str, method: str | None = None) -> list[tuple[str, str]]:
        """Recorded requests whose path contains ``fragment`` (and of ``method`` if given)."""
        with self._lock:
            return [r for r in self.requests if fragment in r[1] and method in (None, r[0])]

    def unique_repo_id(self, prefix: str = "repo") -> str:
        """A fresh ``user/prefix-xxxxxxxx`` id, handy with a session-scoped server."""
        return f"{self.user}/{prefix}-{uuid.uuid4().hex[:8]}"

    # -- persistence ----------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.root / "state.json"

    def _load(self) -> None:
        if self._state_path.exists():
            data = json.loads(self._state_path.read_text())
            self._repos = {
                (r["repo_type"], r["repo_id"]): _Repo.from_json(r) for r in data.get("repos", [])
            }

    def _save(self) -> None:
        data = {"repos": [r.to_json() for r in self._repos.values()]}
        tmp = self._state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._state_path)

    def _object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def _has_object(self, sha256: str, size: int | None = None) -> bool:
        path = self._object_path(sha256)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def _store_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._object_path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return sha256

    def _read_object(self, sha256: str) -> bytes:
        return self._object_path(sha256).read_bytes()

    def _entry_for_bytes(self, data: bytes, lfs: bool) -> _Entry:
        sha256 = self._store_bytes(data)
        if lfs:
            return _Entry(sha256, len(data), True, git_blob_sha1(lfs_pointer(sha256, len(data))))
        return _Entry(sha256, len(data), False, git_blob_sha1(data))

    # -- repo operations (called with the lock held) ----------------------------------------------

    def _new_commit(
        self, repo: _Repo, parent: str | None, files: dict[str, _Entry], title: str, message: str
    ) -> _Commit:
        seed = f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{time.time_ns()}\n{uuid.uuid4()}\n"
        seed += json.dumps({p: e.to_json() for p, e in sorted(files.items())})
        commit = _Commit(
            oid=hashlib.sha1(seed.encode()).hexdigest(),
            parents=[parent] if parent else [],
            files=files,
            title=title,
            message=message,
            date=_now_iso(),
            author=self.user,
        )
        repo.commits[commit.oid] = commit
        return commit

    def _create_repo(self, repo_type: str, repo_id: str, private: bool) -> _Repo:
        repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=_now_iso())
        entry = self._entry_for_bytes(DEFAULT_GITATTRIBUTES.encode(), lfs=False)
        commit = self._new_commit(repo, None, {".gitattributes": entry}, "initial commit", "")
        repo.branches["main"] = commit.oid
        self._repos[(repo_type, repo_id)] = repo
        self._save()
        return repo

    def _gitattributes(self, files: dict[str, _Entry]) -> str:
        entry = files.get(".gitattributes")
        if entry is None:
            return ""
        return self._read_object(entry.sha256).decode("utf-8", errors="replace")

    def _is_lfs(self, path: str, size: int, sample: bytes, gitattributes: str) -> bool:
        if size == 0:
            return False
        return (
            size >= self.lfs_threshold or b"\0" in sample or _gitattributes_lfs(gitattributes, path)
        )

    def _last_commit(self, repo: _Repo, head: str, path: str) -> _Commit:
        """The most recent first-parent ancestor of ``head`` that changed ``path`` (file or folder)."""

        def snapshot(c: _Commit) -> dict[str, str]:
            return {
                p: e.git_oid for p, e in c.files.items() if p == path or p.startswith(path + "/")
            }

        commit = repo.commits[head]
        current = snapshot(commit)
        while commit.parents:
            parent = repo.commits[commit.parents[0]]
            if snapshot(parent) != current:
                return commit
            commit = parent
        return commit


# --------------------------------------------------------------------------------------------
# Request handling
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- plumbing -----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr logging
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._body: bytes | None = None
        self._body_consumed = False
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.parts = [unquote(p) for p in split.path.split("/") if p]
        with self.hub._lock:
            self.hub.requests.append((self.command, split.path))
        try:
            if self.command != "PUT":
                self._read_body()
            self._route()
        except HubError as err:
            self._send_error(err)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception:
            tb = traceback.format_exc()
            with self.hub._lock:
                self.hub.errors.append(tb)
            print(
                f"HubServer: unexpected error on {self.command} {self.path}\n{tb}", file=sys.stderr
            )
            last = tb.strip().splitlines()[-1]
            self._send_error(HubError(500, f"Internal test-server error: {last}"))
        finally:
            if not self._body_consumed:
                self.close_connection = True

    def _iter_body(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 1 << 20))
                    if not data:
                        raise ConnectionError("truncated chunked body")
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(remaining, 1 << 20))
                if not data:
                    raise ConnectionError("truncated body")
                remaining -= len(data)
                yield data
        self._body_consumed = True

    def _read_body(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self._iter_body())
        return self._body

    def _json_body(self) -> Any:
        body = self._read_body()
        if not body:
            return {}
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise HubError(400, f"Invalid JSON body: {exc}") from exc

    def _send(
        self,
        status: int,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _send_error(self, err: HubError) -> None:
        if not self._body_consumed:
            self.close_connection = True
        safe_message = err.message.encode("ascii", "replace").decode().replace("\n", " ")
        headers = {"X-Error-Message": safe_message, **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        body = json.dumps({**err.extra, "error": err.message}).encode()
        self._send(err.status, body, headers=headers)

    # -- auth -----------------------------------------------------------------------------------

    def _auth(self) -> bool:
        """True for the valid token, False for none; raises 401 for a wrong one."""
        header = self.headers.get("Authorization")
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.hub.token:
            raise HubError(401, _INVALID_CREDENTIALS)
        return True

    def _require_write(self) -> None:
        if not self._auth():
            raise HubError(
                401, "You must be authenticated (Authorization: Bearer <token>) to do this"
            )

    def _repo(self, repo_type: str, repo_id: str, *, write: bool = False) -> _Repo:
        authed = self._auth()
        if write and not authed:
            self._require_write()
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authed):
            raise HubError(404 if authed else 401, "Repository not found", "RepoNotFound")
        return repo

    def _revision(self, repo: _Repo, revision: str) -> str:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return oid

    def _branch(self, repo: _Repo, revision: str) -> str:
        name = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
        if name not in repo.branches:
            if repo.resolve(revision) is not None:
                raise HubError(400, f"Invalid rev id: {revision} is not a branch")
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return name

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.hub.url}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # -- routing --------------------------------------------------------------------------------

    def _route(self) -> None:
        parts, method = self.parts, self.command
        if not parts:
            raise HubError(404, "Not Found")
        if parts[0] == "api":
            return self._route_api(parts[1:], method)
        if len(parts) >= 5 and parts[-4:-1] == ["info", "lfs", "objects"]:
            return self._route_lfs(parts, method)
        if parts[0] == "_lfs_upload" and method == "PUT" and len(parts) == 2:
            return self._lfs_put(parts[1])
        if method in ("GET", "HEAD"):
            return self._route_resolve(parts)
        raise HubError(404, "Not Found")

    def _route_api(self, parts: list[str], method: str) -> None:
        hub = self.hub
        head = parts[0] if parts else ""
        if head == "whoami-v2" and method == "GET":
            return self._whoami()
        if head == "agent-harnesses" and method == "GET":
            return self._send_json({"standardEnvVars": [], "harnesses": {}})
        if head == "validate-yaml" and method == "POST":
            self._auth()
            return self._send_json({"errors": [], "warnings": []})
        if head == "repos" and parts[1:2] == ["create"] and method == "POST":
            return self._create_repo()
        if head == "repos" and parts[1:2] == ["delete"] and method == "DELETE":
            return self._delete_repo()
        if head in _TYPES and len(parts) == 1 and method == "GET":
            return self._list_repos(_TYPES[head])
        if head not in _TYPES or len(parts) < 2:
            raise HubError(404, "Not Found")

        repo_type = _TYPES[head]
        rest = parts[1:]
        if len(rest) >= 2 and rest[1] not in _ACTIONS:
            repo_id, rest = f"{rest[0]}/{rest[1]}", rest[2:]
        else:
            repo_id, rest = rest[0], rest[1:]
        action = rest[0] if rest else None
        args = rest[1:]

        with hub._lock:
            if action is None and method == "GET":
                return self._info(repo_type, repo_id, None)
            if action == "revision" and method == "GET" and args:
                return self._info(repo_type, repo_id, "/".join(args))
            if action == "tree" and method == "GET" and args:
                return self._tree(repo_type, repo_id, args[0], "/".join(args[1:]))
            if action == "paths-info" and method == "POST" and args:
                return self._paths_info(repo_type, repo_id, "/".join(args))
            if action == "refs" and method == "GET":
                return self._refs(repo_type, repo_id)
            if action == "commits" and method == "GET" and args:
                return self._commits(repo_type, repo_id, "/".join(args))
            if action == "preupload" and method == "POST" and args:
                return self._preupload(repo_type, repo_id, "/".join(args))
            if action == "commit" and method == "POST" and args:
                return self._commit(repo_type, repo_id, "/".join(args))
            if action == "tag" and args and method in ("POST", "DELETE"):
                return self._tag(repo_type, repo_id, "/".join(args), method)
            if action == "branch" and args and method in ("POST", "DELETE"):
                return self._branch_op(repo_type, repo_id, "/".join(args), method)
            if action == "settings" and method == "PUT":
                return self._update_settings(repo_type, repo_id)
            if action in ("xet-write-token", "xet-read-token"):
                self._repo(repo_type, repo_id)
                raise HubError(
                    400,
                    "Xet storage is not supported by the i2i test Hub server: "
                    "set HF_HUB_DISABLE_XET=1 (see tests/hubserver.py)",
                )
        raise HubError(404, "Not Found")

    # -- account ----------------------------------------------------------------------------------

    def _whoami(self) -> None:
        if not self._auth():
            raise HubError(401, _INVALID_CREDENTIALS)
        hub = self.hub
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(hub.user.encode()).hexdigest()[:24],
                "name": hub.user,
                "fullname": hub.user,
                "email": f"{hub.user}@example.invalid",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "periodEnd": None,
                "avatarUrl": "",
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {
                        "displayName": "hubserver",
                        "role": "write",
                        "createdAt": _now_iso(),
                    },
                },
            }
        )

    # -- repos ------------------------------------------------------------------------------------

    def _repo_id_from_payload(self, payload: dict[str, Any]) -> tuple[str, str]:
        name = payload.get("name")
        organization = payload.get("organization") or self.hub.user
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if not isinstance(name, str) or not _NAME_RE.match(name) or "--" in name or ".." in name:
            raise HubError(400, f"Invalid repo name: {name!r}")
        if not _NAME_RE.match(organization):
            raise HubError(400, f"Invalid organization: {organization!r}")
        return repo_type, f"{organization}/{name}"

    def _create_repo(self) -> None:
        self._require_write()
        payload = self._json_body()
        repo_type, repo_id = self._repo_id_from_payload(payload)
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        if repo_type == "space" and payload.get("sdk") not in _SPACE_SDKS:
            # The Hub refuses a Space without a known SDK; the README front matter can change it.
            raise HubError(400, f"Invalid sdk: use one of {', '.join(_SPACE_SDKS)}")
        with self.hub._lock:
            existing = self.hub._repos.get((repo_type, repo_id))
            if existing is not None:
                # The Hub's 409 carries the url: create_repo(exist_ok=True) reads it.
                raise HubError(
                    409,
                    f"You already created this {repo_type} repo",
                    extra={"url": self._repo_url(existing)},
                )
            repo = self.hub._create_repo(repo_type, repo_id, private)
            url = self._repo_url(repo)
        self._send_json({"url": url, "name": repo_id, "id": uuid.uuid4().hex[:24]})

    def _delete_repo(self) -> None:
        self._require_write()
        repo_type, repo_id = self._repo_id_from_payload(self._json_body())
        with self.hub._lock:
            if self.hub._repos.pop((repo_type, repo_id), None) is None:
                raise HubError(404, "Repository not found", "RepoNotFound")
            self.hub._save()
        self._send_json({})

    def _update_settings(self, repo_type: str, repo_id: str) -> None:
        payload = self._json_body()
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id, write=True)
            if "private" in payload:
                repo.private = bool(payload["private"])
            if "visibility" in payload:
                repo.private = payload["visibility"] == "private"
            self.hub._save()
        self._send_json({})

    def _list_repos(self, repo_type: str) -> None:
        """``GET /api/{type}s`` with the ``author`` and ``search`` filters (no pagination)."""
        authed = self._auth()
        author, search = self.query.get("author"), self.query.get("search", "")
        items = []
        with self.hub._lock:
            for repo in self.hub._repos.values():
                if repo.repo_type != repo_type or (repo.private and not authed):
                    continue
                if author and repo.repo_id.split("/")[0] != author:
                    continue
                if search and search.lower() not in repo.repo_id.lower():
                    continue
                head = repo.commits[repo.branches["main"]] if "main" in repo.branches else None
                items.append(
                    {
                        "_id": hashlib.sha1(f"{repo_type}/{repo.repo_id}".encode()).hexdigest()[
                            :24
                        ],
                        "id": repo.repo_id,
                        "private": repo.private,
                        "createdAt": repo.created_at,
                        "lastModified": head.date if head else repo.created_at,
                        "downloads": 0,
                        "likes": 0,
                        "tags": [],
                    }
                )
        items.sort(key=lambda item: item["id"])
        self._send_json(items)

    def _info(self, repo_type: str, repo_id: str, revision: str | None) -> None:
        hub = self.hub
        repo = self._repo(repo_type, repo_id)
        oid = self._revision(repo, revision or "main")
        commit = repo.commits[oid]
        blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling["size"] = entry.size
                sibling["blobId"] = entry.git_oid
                if entry.lfs:
                    pointer_size = len(lfs_pointer(entry.sha256, entry.size))
                    sibling["lfs"] = {
                        "size": entry.size,
                        "sha256": entry.sha256,
                        "pointerSize": pointer_size,
                    }
            siblings.append(sibling)
        card_data = None
        if "README.md" in commit.files:
            readme = hub._read_object(commit.files["README.md"].sha256).decode("utf-8", "replace")
            card_data = parse_card_data(readme)
        tags: list[str] = []
        if card_data:
            card_tags = card_data.get("tags")
            if isinstance(card_tags, list):
                tags.extend(str(t) for t in card_tags)
            elif isinstance(card_tags, str):
                tags.append(card_tags)
            if isinstance(card_data.get("library_name"), str):
                tags.append(card_data["library_name"])
            if isinstance(card_data.get("license"), str):
                tags.append(f"license:{card_data['license']}")
        namespace = repo_id.split("/")[0]
        data: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": namespace,
            "sha": oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": tags,
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
        }
        if card_data is not None:
            data["cardData"] = card_data
            if repo_type == "model" and isinstance(card_data.get("library_name"), str):
                data["library_name"] = card_data["library_name"]
            if repo_type == "model" and isinstance(card_data.get("pipeline_tag"), str):
                data["pipeline_tag"] = card_data["pipeline_tag"]
        if repo_type == "model":
            data["modelId"] = repo_id
            data["spaces"] = []
        if repo_type == "space":  # the Hub reads a Space's SDK and models from its front matter
            data["sdk"] = (card_data or {}).get("sdk")
            data["models"] = (card_data or {}).get("models") or []
        self._send_json(data)

    def _file_json(
        self, repo: _Repo, head: str, path: str, entry: _Entry, expand: bool
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": "file",
            "oid": entry.git_oid,
            "size": entry.size,
            "path": path,
        }
        if entry.lfs:
            pointer_size = len(lfs_pointer(entry.sha256, entry.size))
            item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": pointer_size}
        if expand:
            item["lastCommit"] = self._last_commit_json(repo, head, path)
        return item

    def _folder_json(
        self, repo: _Repo, head: str, path: str, files: dict[str, _Entry], expand: bool
    ) -> dict[str, Any]:
        children = sorted((p, e.git_oid) for p, e in files.items() if p.startswith(path + "/"))
        item: dict[str, Any] = {
            "type": "directory",
            "oid": hashlib.sha1(json.dumps(children).encode()).hexdigest(),
            "size": 0,
            "path": path,
        }
        if expand:
            item["lastCommit"] = self._last_commit_json(repo, head, path)
        return item

    def _last_commit_json(self, repo: _Repo, head: str, path: str) -> dict[str, Any]:
        commit = self.hub._last_commit(repo, head, path)
        return {"id": commit.oid, "title": commit.title, "date": commit.date}

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        oid = self._revision(repo, revision)
        files = repo.commits[oid].files
        path = path.strip("/")
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        expand = self.query.get("expand", "").lower() in ("1", "true")
        prefix = f"{path}/" if path else ""
        if path and not any(p.startswith(prefix) for p in files):
            raise HubError(
                404, f"Entry not found: {path}", "EntryNotFound", headers={"X-Repo-Commit": oid}
            )
        items: list[dict[str, Any]] = []
        folders: set[str] = set()
        for file_path in sorted(files):
            if not file_path.startswith(prefix):
                continue
            rel = file_path[len(prefix) :]
            dirs = rel.split("/")[:-1]
            for depth in range(1, len(dirs) + 1):
                if not recursive and depth > 1:
                    break
                folders.add(prefix + "/".join(dirs[:depth]))
            if recursive or not dirs:
                items.append(self._file_json(repo, oid, file_path, files[file_path], expand))
        items.extend(self._folder_json(repo, oid, d, files, expand) for d in sorted(folders))
        items.sort(key=lambda item: (item["type"] != "directory", item["path"]))
        self._send_json(items)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        oid = self._revision(repo, revision)
        files = repo.commits[oid].files
        body = self._read_body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            payload = json.loads(body or b"{}")
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        if isinstance(paths, str):
            paths = [paths]
        items = []
        for path in paths:
            path = path.strip("/")
            if path in files:
                items.append(self._file_json(repo, oid, path, files[path], expand))
            elif any(p.startswith(path + "/") for p in files):
                items.append(self._folder_json(repo, oid, path, files, expand))
        self._send_json(items)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        repo = self._repo(repo_type, repo_id)

        def ref(kind: str, name: str, target: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": target}

        self._send_json(
            {
                "branches": [ref("heads", n, t) for n, t in sorted(repo.branches.items())],
                "tags": [ref("tags", n, t) for n, t in sorted(repo.tags.items())],
                "converts": [],
                "pullRequests": [],
            }
        )

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        oid: str | None = self._revision(repo, revision)
        items = []
        while oid is not None:
            commit = repo.commits[oid]
            items.append(
                {
                    "id": commit.oid,
                    "authors": [{"user": commit.author}],
                    "date": commit.date,
                    "title": commit.title,
                    "message": commit.message,
                    "formatted": {"title": commit.title, "message": commit.message},
                }
            )
            oid = commit.parents[0] if commit.parents else None
        self._send_json(items)

    # -- uploads ----------------------------------------------------------------------------------

    def _reject_pr(self) -> None:
        if self.query.get("create_pr") in ("1", "true", "True"):
            raise HubError(400, "Pull requests are not supported by the i2i test Hub server")

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.hub
        repo = self._repo(repo_type, repo_id, write=True)
        self._reject_pr()
        branch = self._branch(repo, revision)
        files = repo.commits[repo.branches[branch]].files
        payload = self._json_body()
        gitattributes = hub._gitattributes(files)  # payload["gitIgnore"] is not modelled
        answers = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample", "") or "")
            lfs = hub._is_lfs(path, size, sample, gitattributes)
            existing = files.get(path)
            answers.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.etag if existing is not None else None,
                }
            )
        self._send_json({"files": answers, "commitOid": repo.branches[branch]})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        hub = self.hub
        repo = self._repo(repo_type, repo_id, write=True)
        self._reject_pr()
        branch = self._branch(repo, revision)
        parent = repo.branches[branch]
        files = dict(repo.commits[parent].files)
        header: dict[str, Any] = {}
        lines = [line for line in self._read_body().splitlines() if line.strip()]
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HubError(400, f"Invalid NDJSON line in commit payload: {exc}") from exc
            key, value = item.get("key"), item.get("value") or {}
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported file encoding {value.get('encoding')!r}")
                data = base64.b64decode(value.get("content", ""))
                files[value["path"]] = hub._entry_for_bytes(data, lfs=False)
            elif key == "lfsFile":
                oid = str(value.get("oid", "")).lower()
                if value.get("algo", "sha256") != "sha256" or not _SHA256_RE.match(oid):
                    raise HubError(400, f"Invalid LFS oid for {value.get('path')!r}")
                if not hub._has_object(oid):
                    raise HubError(
                        422,
                        f"LFS object {oid} of {value.get('path')!r} has not been uploaded",
                    )
                size = hub._object_path(oid).stat().st_size
                pointer = lfs_pointer(oid, size)
                files[value["path"]] = _Entry(oid, size, True, git_blob_sha1(pointer))
            elif key == "deletedFile":
                if files.pop(value.get("path", ""), None) is None:
                    raise HubError(
                        404,
                        f"A file with this name doesn't exist: {value.get('path')}",
                        "EntryNotFound",
                    )
            elif key == "deletedFolder":
                prefix = value.get("path", "").rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise HubError(
                        404,
                        f"A folder with this name doesn't exist: {value.get('path')}",
                        "EntryNotFound",
                    )
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unsupported commit operation {key!r}")
        expected_parent = header.get("parentCommit")
        if expected_parent and not parent.startswith(str(expected_parent).lower()):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        title = header.get("summary") or "Update"
        commit = hub._new_commit(repo, parent, files, title, header.get("description") or "")
        repo.branches[branch] = commit.oid
        hub._save()
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit.oid}",
                "commitMessage": title,
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    # -- refs -------------------------------------------------------------------------------------

    def _tag(self, repo_type: str, repo_id: str, arg: str, method: str) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        if method == "DELETE":
            if repo.tags.pop(arg, None) is None:
                raise HubError(404, f"Invalid rev id: {arg}", "RevisionNotFound")
        else:
            oid = self._revision(repo, arg)
            tag = self._json_body().get("tag")
            if not isinstance(tag, str) or not tag or tag.startswith("refs/"):
                raise HubError(400, f"Invalid tag name: {tag!r}")
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = oid
        self.hub._save()
        self._send_json({})

    def _branch_op(self, repo_type: str, repo_id: str, name: str, method: str) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        if method == "DELETE":
            if name == "main":
                raise HubError(403, "Cannot delete the main branch")
            if repo.branches.pop(name, None) is None:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
        else:
            if not name or name.startswith("refs/") or " " in name:
                raise HubError(400, f"Invalid branch name: {name!r}")
            if name in repo.branches:
                raise HubError(409, f"Branch {name} already exists")
            start = self._json_body().get("startingPoint") or "main"
            repo.branches[name] = self._revision(repo, start)
        self.hub._save()
        self._send_json({})

    # -- git LFS ----------------------------------------------------------------------------------

    def _route_lfs(self, parts: list[str], method: str) -> None:
        repo_parts = parts[:-4]
        repo_type = "model"
        if repo_parts and repo_parts[0] in ("datasets", "spaces", "kernels"):
            repo_type = _TYPES[repo_parts[0]]
            repo_parts = repo_parts[1:]
        if not repo_parts or not repo_parts[-1].endswith(".git") or method != "POST":
            raise HubError(404, "Not Found")
        repo_id = "/".join(repo_parts)[: -len(".git")]
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id, write=True)
        if parts[-1] == "batch":
            return self._lfs_batch(repo)
        if parts[-1] == "verify":
            payload = self._json_body()
            oid, size = str(payload.get("oid", "")), payload.get("size")
            if not self.hub._has_object(oid, size):
                raise HubError(404, f"LFS object {oid} (size {size}) not found")
            return self._send_json({})
        raise HubError(404, "Not Found")

    def _lfs_batch(self, repo: _Repo) -> None:
        hub = self.hub
        payload = self._json_body()
        if payload.get("operation") != "upload":
            raise HubError(400, "Only the 'upload' LFS batch operation is supported")
        transfers = payload.get("transfers") or ["basic"]
        if "basic" not in transfers:
            raise HubError(400, f"None of the transfers {transfers} is supported (only 'basic')")
        git_url = f"{hub.url}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects"
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")).lower(), obj.get("size")
            if not _SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {
                        "oid": str(oid),
                        "size": size if isinstance(size, int) else 0,
                        "error": {"code": 422, "message": "Invalid object"},
                    }
                )
                continue
            if hub._has_object(oid, size):
                objects.append({"oid": oid, "size": size})
                continue
            ticket = secrets.token_urlsafe(16)
            with hub._lock:
                hub._upload_tickets[ticket] = (oid, size)
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {
                        "upload": {"href": f"{hub.url}/_lfs_upload/{ticket}", "expires_in": 3600},
                        "verify": {"href": f"{git_url}/verify", "header": {}},
                    },
                }
            )
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, ticket: str) -> None:
        hub = self.hub
        with hub._lock:
            expected = hub._upload_tickets.get(ticket)
        if expected is None:
            raise HubError(403, "Unknown or expired LFS upload ticket")
        oid, size = expected
        path = hub._object_path(oid)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        received = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in self._iter_body():
                    digest.update(chunk)
                    received += len(chunk)
                    f.write(chunk)
            if received != size or digest.hexdigest() != oid:
                raise HubError(
                    400,
                    f"Uploaded content does not match: expected sha256 {oid} / {size} bytes, got "
                    f"{digest.hexdigest()} / {received} bytes",
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        with hub._lock:
            hub._upload_tickets.pop(ticket, None)
        self._send(200, b"", headers={"ETag": f'"{oid}"'})

    # -- downloads --------------------------------------------------------------------------------

    def _route_resolve(self, parts: list[str]) -> None:
        repo_type = "model"
        if parts[0] in ("datasets", "spaces", "kernels"):
            repo_type, parts = _TYPES[parts[0]], parts[1:]
        if len(parts) >= 4 and parts[2] == "resolve":
            repo_id, rest = f"{parts[0]}/{parts[1]}", parts[3:]
        elif len(parts) >= 3 and parts[1] == "resolve":
            repo_id, rest = parts[0], parts[2:]
        else:
            raise HubError(404, "Not Found")
        if len(rest) < 2:
            raise HubError(404, "Not Found")
        revision, filename = rest[0], "/".join(rest[1:])
        hub = self.hub
        with hub._lock:
            repo = self._repo(repo_type, repo_id)
            oid = self._revision(repo, revision)
            entry = repo.commits[oid].files.get(filename)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": oid})
        headers = {
            "X-Repo-Commit": oid,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename.rsplit('/', 1)[-1])}",
            "Cache-Control": "no-cache",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        start, end, status = 0, entry.size - 1, 200
        range_header = self.headers.get("Range")
        if range_header and entry.size > 0:
            match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", range_header)
            if match is None or match.groups() == ("", ""):
                raise HubError(416, f"Unsupported Range header: {range_header}")
            first, last = match.groups()
            if first:
                start = int(first)
                end = min(int(last), entry.size - 1) if last else entry.size - 1
            else:
                start = max(entry.size - int(last), 0)
            if start > end:
                raise HubError(
                    416,
                    "Requested range not satisfiable",
                    headers={"Content-Range": f"bytes */{entry.size}"},
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        length = end - start + 1 if entry.size else 0
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        with open(hub._object_path(entry.sha256), "rb") as f:
            f.seek(start)
            remaining = length
            while remaining:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)


# --------------------------------------------------------------------------------------------
# Pointing the real huggingface_hub client at a server
# --------------------------------------------------------------------------------------------

# Environment variables removed while a client is configured (they would override ours or
# leak a real token).
_CLEARED_ENV = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_OIDC_RESOURCE",
    "HUGGINGFACE_CO_STAGING",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
)


def client_env(
    url: str, hf_home: str | os.PathLike[str], token: str | None = None
) -> dict[str, str]:
    """Environment variables pointing a *fresh* huggingface_hub (e.g. in a subprocess) at ``url``.

    Merge into a copy of ``os.environ`` and drop :data:`_CLEARED_ENV` keys you do not set.
    """
    home = Path(hf_home)
    env = {
        "HF_ENDPOINT": url,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",
    }
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def _constants_patch(url: str, home: Path) -> dict[str, Any]:
    return {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "default_cache_path": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_HUB_CACHE": str(home / "hub"),
        "default_assets_cache_path": str(home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "default_xet_cache_path": str(home / "xet"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
        "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(home / ".check_for_skill_update_done"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
        "_staging_mode": False,
    }


def _loopback_guard(request: Any) -> None:
    """httpx2 request hook: refuse any host that is not loopback."""
    if (request.url.host or "").lower().strip("[]") not in _LOOPBACK_HOSTS:
        raise RuntimeError(
            f"huggingface_hub tried to reach {request.url} while configured for the local test "
            "Hub server (tests/hubserver.py); only loopback is allowed"
        )


def _guarded_factory(factory: Any) -> Any:
    """Wrap a huggingface_hub client factory so its clients run :func:`_loopback_guard` first."""

    def make_client() -> Any:
        client = factory()
        hooks = dict(client.event_hooks)
        hooks["request"] = [_loopback_guard, *hooks.get("request", [])]
        client.event_hooks = hooks
        return client

    return make_client


@contextlib.contextmanager
def hub_client(
    url: str,
    hf_home: str | os.PathLike[str],
    token: str | None = None,
    *,
    loopback_only: bool = True,
) -> Iterator[dict[str, str]]:
    """Point the in-process huggingface_hub client at ``url`` with its cache in ``hf_home``.

    Sets the env vars of :func:`client_env` and patches the already imported
    ``huggingface_hub`` (see the module docstring for why both are needed); restores
    everything on exit. ``token`` (optional) is exported as ``HF_TOKEN``, i.e. becomes the
    implicit token of every call. Yields the env dict (useful for subprocesses).
    """
    home = Path(hf_home)
    home.mkdir(parents=True, exist_ok=True)
    env = client_env(url, home, token)
    saved_env = {k: os.environ.get(k) for k in (*env, *_CLEARED_ENV)}
    for key in _CLEARED_ENV:
        os.environ.pop(key, None)
    os.environ.update(env)

    patches: list[tuple[Any, str, Any]] = []  # (object, attribute, previous value)

    def patch(obj: Any, name: str, value: Any) -> None:
        patches.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    http_module = None
    previous_factory = None
    try:
        import huggingface_hub
        from huggingface_hub import constants
        from huggingface_hub import hf_api as hf_api_module
        from huggingface_hub.utils import _http as http_module

        for name, value in _constants_patch(url, home).items():
            if hasattr(constants, name):
                patch(constants, name, value)
        host = (urlsplit(url).hostname or "").lower()
        patch(constants, "HF_URL_HOSTS", frozenset({*constants.HF_URL_HOSTS, host}))
        patch(hf_api_module.api, "endpoint", url)
        origin = http_module._url_origin(url)
        patch(http_module, "_HUB_ORIGINS", frozenset({*http_module._HUB_ORIGINS, origin}))
        for module_name, attr, value in (
            ("huggingface_hub.utils._cache_manager", "HF_HUB_CACHE", str(home / "hub")),
            ("huggingface_hub.utils._cache_assets", "HF_ASSETS_CACHE", str(home / "assets")),
        ):
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, attr):
                patch(module, attr, value)
        if loopback_only:
            previous_factory = http_module._GLOBAL_CLIENT_FACTORY
            huggingface_hub.set_client_factory(_guarded_factory(previous_factory))
        else:
            http_module.close_session()  # drop pooled connections to a previous server
        yield env
    finally:
        if http_module is not None:
            if previous_factory is not None:
                http_module.set_client_factory(previous_factory)
            else:
                http_module.close_session()
        for obj, name, value in reversed(patches):
            setattr(obj, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def hub_offline(offline: bool = True) -> Iterator[None]:
    """Toggle huggingface_hub's offline mode (``HF_HUB_OFFLINE``) for an already imported client."""
    from huggingface_hub import constants

    saved_env = os.environ.get("HF_HUB_OFFLINE")
    saved = constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1" if offline else "0"
    constants.HF_HUB_OFFLINE = offline
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


# --------------------------------------------------------------------------------------------
# Fixture building blocks (wrap them with @pytest.fixture in a test module or conftest.py)
# --------------------------------------------------------------------------------------------


def hub_server_fixture(tmp_path_factory: Any, token: str = DEFAULT_TOKEN) -> Iterator[HubServer]:
    """Body of a (session-scoped) fixture: a running :class:`HubServer` in a temp dir."""
    root = tmp_path_factory.mktemp("hubserver")
    with HubServer(root, token=token) as server:
        yield server
    shutil.rmtree(root, ignore_errors=True)


def hub_client_fixture(server: HubServer, tmp_path: Path) -> Iterator[HubServer]:
    """Body of a function-scoped fixture: the client configured for ``server`` with a fresh
    ``HF_HOME`` (so each test starts with an empty cache). Fails the test if the server
    raised unexpected exceptions meanwhile."""
    errors_before = len(server.errors)
    with hub_client(server.url, tmp_path / "hf_home"):
        yield server
    new_errors = server.errors[errors_before:]
    if new_errors:
        raise AssertionError("HubServer raised unexpected errors:\n" + "\n".join(new_errors))
