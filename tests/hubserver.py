"""A fake Hugging Face Hub: an in-memory HTTP server that the real ``huggingface_hub`` client talks
to, so the tests drive i2i's push, pull, ``i2i.load`` and Space publishing end to end, offline.

It answers what that client sends for those: creating repos (models and Spaces, public or
private), their settings, branches and tags; the commit API (preupload, then an NDJSON commit
with each file inline as base64, and deletions); repo info, the recursive tree and ``/resolve``
(HEAD and GET, with ``X-Repo-Commit`` and an ``ETag``), at a branch, a tag or a commit; and
errors the way the Hub sends them: ``X-Error-Code`` RepoNotFound, RevisionNotFound or
EntryNotFound, 401 for a wrong token, a private repo invisible without one. It leaves out what
i2i never uses: LFS and Xet transfers (every file is "regular"; ``HF_HUB_DISABLE_XET=1``),
pull requests, pagination, datasets.

The client reads its settings (``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_OFFLINE``,
``HF_HUB_DISABLE_XET``) once, when it is first imported. So nothing of it is patched: the server
binds its port when it is made, ``client_env`` gives the variables that point a client at it,
and ``tests/conftest.py`` sets them before anything imports the client. Offline mode is tested
in a process started with ``HF_HUB_OFFLINE=1``, as a user would run it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TOKEN = "hf_test_token"
USER = "i2i-tester"
KINDS = {"models": "model", "spaces": "space"}  # URL segment -> repo type
INVALID_TOKEN = "Invalid credentials in Authorization header"
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def client_env(url: str, hf_home: str | Path, token: str | None = None) -> dict[str, str]:
    """Environment that points a huggingface_hub client, imported after it is set, at ``url``
    with its cache and stored token in ``hf_home``."""
    env = {
        "HF_ENDPOINT": url,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",
    }
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def git_oid(data: bytes) -> str:
    """The git blob id of ``data``: what the Hub calls a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An error answer: HTTP status, message and, for the client to map, an X-Error-Code."""

    def __init__(
        self, status: int, message: str, code: str = "", commit: str = "", url: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.commit, self.url = commit, url  # X-Repo-Commit; the url of a repo that exists


@dataclass
class Repo:
    kind: str
    repo_id: str
    private: bool
    sdk: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # oid -> path -> bytes

    def commit(self, branch: str, files: dict[str, bytes]) -> str:
        oid = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
        self.commits[oid] = files
        self.branches[branch] = oid
        return oid

    def resolve(self, revision: str) -> str:
        """The commit a branch, tag or full commit id names."""
        revision = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        oid = self.branches.get(revision) or self.tags.get(revision)
        oid = oid or (revision if revision in self.commits else None)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return oid

    @property
    def url_prefix(self) -> str:
        return "spaces/" if self.kind == "space" else ""


class HubServer:
    """The fake Hub on 127.0.0.1: bound when made, serving from ``start()`` until ``stop()``.

    ``token`` is the one valid token (write access everywhere); ``requests`` records each
    request's method and path, so a test can tell whether the Hub was asked at all.
    """

    def __init__(self, token: str = TOKEN, user: str = USER) -> None:
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []  # unexpected server failures, answered with HTTP 500
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> HubServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()

    # -- for tests ----------------------------------------------------------------------------
    def unique_repo_id(self, prefix: str = "repo") -> str:
        """A fresh ``user/prefix-xxxxxxxx``: tests share one server and never collide."""
        return f"{self.user}/{prefix}-{uuid.uuid4().hex[:8]}"

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> set[str]:
        """The file paths of a revision."""
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            return set(repo.commits[repo.resolve(revision)])


class _Handler(BaseHTTPRequestHandler):
    """One request: parse, route to a ``_`` method, answer JSON, bytes or an error."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_GET

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _handle(self) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        body = self._body()
        with self.hub.lock:
            self.hub.requests.append((self.command, url.path))
            try:
                self.authed = self._authenticate()
                self._route(parts, body)
            except HubError as error:
                self._error(error)
            except Exception as error:  # a bug here: say so loudly, in the test and the answer
                self.hub.errors.append(f"{self.command} {self.path}: {error!r}")
                self._error(HubError(500, f"fake Hub failed: {error!r}"))

    def _body(self) -> bytes:
        if "chunked" not in self.headers.get("Transfer-Encoding", ""):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def _authenticate(self) -> bool:
        """True with the token, False without one; a wrong token is refused everywhere."""
        header = self.headers.get("Authorization")
        if header is None:
            return False
        if header != f"Bearer {self.hub.token}":
            raise HubError(401, INVALID_TOKEN)
        return True

    # -- answers ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Type": content_type}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, error: HubError) -> None:
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        if error.commit:
            headers["X-Repo-Commit"] = error.commit
        body = json.dumps({"error": error.message, "url": error.url}).encode()
        self._send(error.status, body, "application/json", **headers)

    # -- routing ------------------------------------------------------------------------------
    def _route(self, parts: list[str], body: bytes) -> None:
        method = self.command
        if parts[:2] == ["api", "validate-yaml"]:
            return self._json({"errors": [], "warnings": []})
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create(json.loads(body))
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in KINDS:
            repo = self._repo(KINDS[parts[1]], f"{parts[2]}/{parts[3]}")
            action, args = (parts[4], parts[5:]) if len(parts) > 4 else ("", [])
            routes = {
                ("GET", ""): lambda: self._info(repo, "main"),
                ("GET", "revision"): lambda: self._info(repo, "/".join(args)),
                ("GET", "tree"): lambda: self._tree(repo, args[0]),
                ("POST", "preupload"): lambda: self._preupload(repo, args[0], json.loads(body)),
                ("POST", "commit"): lambda: self._commit(repo, args[0], body),
                ("PUT", "settings"): lambda: self._settings(repo, json.loads(body)),
                ("POST", "branch"): lambda: self._branch(repo, args[0], body),
                ("POST", "tag"): lambda: self._tag(repo, args[0], json.loads(body)),
            }
            if (method, action) in routes:
                return routes[(method, action)]()
        kind, rest = ("space", parts[1:]) if parts[0] == "spaces" else ("model", parts)
        if method in ("GET", "HEAD") and len(rest) >= 5 and rest[2] == "resolve":
            repo = self._repo(kind, f"{rest[0]}/{rest[1]}")
            return self._resolve(repo, rest[3], "/".join(rest[4:]))
        raise HubError(404, f"the fake Hub does not answer {method} {self.path}")

    def _repo(self, kind: str, repo_id: str) -> Repo:
        repo = self.hub.repos.get((kind, repo_id))
        if repo is None or (repo.private and not self.authed):
            # Without a token the Hub cannot tell "missing" from "private": 401.
            raise HubError(404 if self.authed else 401, "Repository not found", "RepoNotFound")
        return repo

    def _writable(self, repo: Repo) -> Repo:
        if not self.authed:
            raise HubError(401, "You must be authenticated to write")
        return repo

    # -- repos --------------------------------------------------------------------------------
    def _create(self, payload: dict[str, Any]) -> None:
        if not self.authed:
            raise HubError(401, "You must be authenticated to create a repo")
        kind = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        prefix = "spaces/" if kind == "space" else ""
        url = f"{self.hub.url}/{prefix}{repo_id}"
        if (kind, repo_id) in self.hub.repos:
            raise HubError(409, f"You already created this {kind} repo", url=url)
        if kind == "space" and payload.get("sdk") not in ("gradio", "docker", "static"):
            raise HubError(400, "a Space needs a known sdk")
        repo = Repo(kind, repo_id, payload.get("visibility") == "private", payload.get("sdk"))
        repo.commit("main", {".gitattributes": GITATTRIBUTES})
        self.hub.repos[(kind, repo_id)] = repo
        self._json({"url": url})

    def _settings(self, repo: Repo, payload: dict[str, Any]) -> None:
        if "visibility" in payload:
            self._writable(repo).private = payload["visibility"] == "private"
        self._json({})

    def _branch(self, repo: Repo, name: str, body: bytes) -> None:
        if name in self._writable(repo).branches:
            raise HubError(409, f"Branch {name} already exists")
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        repo.branches[name] = repo.resolve(start)
        self._json({})

    def _tag(self, repo: Repo, revision: str, payload: dict[str, Any]) -> None:
        if payload["tag"] in self._writable(repo).tags:
            raise HubError(409, f"Tag {payload['tag']} already exists")
        repo.tags[payload["tag"]] = repo.resolve(revision)
        self._json({})

    def _info(self, repo: Repo, revision: str) -> None:
        oid = repo.resolve(revision)
        files = repo.commits[oid]
        info: dict[str, Any] = {
            "id": repo.repo_id,
            "sha": oid,
            "private": repo.private,
            "siblings": [{"rfilename": path} for path in sorted(files)],
            "tags": [],
        }
        if repo.kind == "space":  # the Hub reads a Space's sdk and models from its card
            front = files.get("README.md", b"").decode().split("---")
            card = (yaml.safe_load(front[1]) if len(front) > 2 else None) or {}
            info.update(sdk=card.get("sdk", repo.sdk), models=card.get("models", []))
        self._json(info)

    def _tree(self, repo: Repo, revision: str) -> None:
        files = repo.commits[repo.resolve(revision)]
        self._json(
            [
                {"type": "file", "path": path, "size": len(data), "oid": git_oid(data)}
                for path, data in sorted(files.items())
            ]
        )

    # -- commits ------------------------------------------------------------------------------
    def _branch_head(self, repo: Repo, revision: str) -> str:
        branch = revision.removeprefix("refs/heads/")
        if branch not in self._writable(repo).branches:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return branch

    def _preupload(self, repo: Repo, revision: str, payload: dict[str, Any]) -> None:
        head = repo.branches[self._branch_head(repo, revision)]
        files = repo.commits[head]
        self._json(
            {
                "files": [
                    {
                        "path": item["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_oid(files[item["path"]]) if item["path"] in files else None,
                    }
                    for item in payload["files"]
                ],
                "commitOid": head,
            }
        )

    def _commit(self, repo: Repo, revision: str, body: bytes) -> None:
        branch = self._branch_head(repo, revision)
        files = dict(repo.commits[repo.branches[branch]])
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile" and files.pop(value["path"], None) is None:
                raise HubError(404, f"no file {value['path']} to delete", "EntryNotFound")
            elif key not in ("header", "deletedFile"):
                raise HubError(400, f"the fake Hub takes no {key!r} in a commit")
        oid = repo.commit(branch, files)
        url = f"{self.hub.url}/{repo.url_prefix}{repo.repo_id}/commit/{oid}"
        self._json({"commitOid": oid, "commitUrl": url, "pullRequestUrl": None})

    # -- downloads ----------------------------------------------------------------------------
    def _resolve(self, repo: Repo, revision: str, path: str) -> None:
        oid = repo.resolve(revision)
        data = repo.commits[oid].get(path)
        if data is None:
            raise HubError(404, "Entry not found", "EntryNotFound", commit=oid)
        headers = {"X-Repo-Commit": oid, "ETag": f'"{git_oid(data)}"'}
        self._send(200, data, "application/octet-stream", **headers)
