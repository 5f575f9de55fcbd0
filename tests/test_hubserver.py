"""The local Hub server (tests/hubserver.py) driven by the real huggingface_hub client.

Fixture pattern: one server per session (repos get unique ids), and per test a client
configured for it with a fresh ``HF_HOME``. ``huggingface_hub`` is imported inside the tests,
after :func:`tests.hubserver.hub_client` has set the environment and patched the client -- the
patching is what makes it work even though ``timm`` may already have imported the client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.hubserver import (
    DEFAULT_GITATTRIBUTES,
    HubServer,
    client_env,
    hub_client,
    hub_offline,
)

# huggingface_hub's LFS PUT passes a file object as `data=` (client-side httpx2 deprecation).
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def api(hub):
    from huggingface_hub import HfApi

    return HfApi(token=hub.token)


def _write_model_folder(folder: Path, version: int) -> dict[str, bytes]:
    """A json config, a (forced-LFS) safetensors-named binary and a nested text file."""
    rng_bytes = bytes((i * 7919 + version * 31) % 251 for i in range(300_000))
    files = {
        "config.json": json.dumps({"version": version, "channels": [64, 128]}).encode(),
        "model.safetensors": rng_bytes,
        "docs/notes.txt": f"notes v{version}\n".encode(),
    }
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def test_client_is_configured_for_the_local_server(hub, api):
    from huggingface_hub import constants, hf_api

    assert hub.url == constants.ENDPOINT
    assert hf_api.api.endpoint == hub.url
    assert constants.HF_HUB_DISABLE_XET is True
    assert hub.url.startswith("http://127.0.0.1:")
    assert api.whoami()["name"] == hub.user


def test_whoami_with_wrong_token_is_401(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as exc_info:
        HfApi(token="hf_wrong").whoami()
    assert exc_info.value.response.status_code == 401


def test_loopback_guard_blocks_other_hosts(hub):
    from huggingface_hub import HfApi

    with pytest.raises(RuntimeError, match="only loopback"):
        HfApi(endpoint="https://huggingface.co", token=False).model_info("gpt2")


def test_upload_folder_then_download_identical_bytes(hub, api, tmp_path):
    from huggingface_hub import RepoFile, hf_hub_download, snapshot_download

    repo_id = hub.unique_repo_id("roundtrip")
    url = api.create_repo(repo_id)
    assert url.repo_id == repo_id
    api.create_repo(repo_id, exist_ok=True)  # 409 swallowed by the client

    local = _write_model_folder(tmp_path / "upload", version=1)
    hub.requests.clear()
    info = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "upload", commit_message="v1")
    assert len(info.oid) == 40
    assert info.oid == hub.head(repo_id)

    # The safetensors file went through classic LFS (batch -> PUT -> verify), nothing through Xet.
    assert hub.files(repo_id) == {
        ".gitattributes": False,
        "config.json": False,
        "model.safetensors": True,
        "docs/notes.txt": False,
    }
    assert hub.requests_to("/info/lfs/objects/batch", "POST")
    assert hub.requests_to("/_lfs_upload/", "PUT")
    assert hub.requests_to("/info/lfs/objects/verify", "POST")
    assert not hub.requests_to("xet")

    snapshot = Path(snapshot_download(repo_id))
    assert (snapshot / ".gitattributes").read_text() == DEFAULT_GITATTRIBUTES
    for rel, data in local.items():
        assert _read(snapshot / rel) == data
        assert _read(hf_hub_download(repo_id, rel)) == data
    assert snapshot.name == info.oid

    tree = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True)}
    weights = tree["model.safetensors"]
    assert isinstance(weights, RepoFile)
    assert weights.lfs is not None and weights.lfs.size == len(local["model.safetensors"])
    assert tree["config.json"].lfs is None
    assert "docs" in tree  # folders are listed too

    model = api.model_info(repo_id, files_metadata=True)
    assert model.sha == info.oid
    assert {s.rfilename for s in model.siblings} == {".gitattributes", *local}
    assert api.file_exists(repo_id, "docs/notes.txt")
    assert not api.file_exists(repo_id, "nope.txt")


def test_second_commit_pinned_revisions_tags_branches_and_offline(hub, api, tmp_path):
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id = hub.unique_repo_id("revisions")
    api.create_repo(repo_id)
    v1 = _write_model_folder(tmp_path / "v1", version=1)
    v2 = _write_model_folder(tmp_path / "v2", version=2)
    first = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v1").oid
    second = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v2").oid
    assert first != second
    api.create_tag(repo_id, tag="v1.0", revision=first)
    api.create_branch(repo_id, branch="dev", revision=first)

    for rel in v1:
        assert _read(hf_hub_download(repo_id, rel)) == v2[rel]
        assert _read(hf_hub_download(repo_id, rel, revision=first)) == v1[rel]
        assert _read(hf_hub_download(repo_id, rel, revision="v1.0")) == v1[rel]
        assert _read(hf_hub_download(repo_id, rel, revision=first[:7])) == v1[rel]
    assert Path(snapshot_download(repo_id, revision="v1.0")).name == first
    assert _read(Path(snapshot_download(repo_id)) / "config.json") == v2["config.json"]

    # Commit on a branch; main is untouched.
    dev_commit = api.upload_file(
        path_or_fileobj=b"dev only\n", path_in_repo="DEV.txt", repo_id=repo_id, revision="dev"
    )
    assert _read(hf_hub_download(repo_id, "DEV.txt", revision="dev")) == b"dev only\n"
    assert hub.head(repo_id, "dev") == dev_commit.oid
    assert "DEV.txt" not in hub.files(repo_id)
    refs = api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", first)]
    assert [c.commit_id for c in api.list_repo_commits(repo_id)][:2] == [second, first]

    # Offline: everything downloaded above is served from the cache.
    with hub_offline():
        hub.requests.clear()
        assert _read(hf_hub_download(repo_id, "config.json")) == v2["config.json"]
        assert _read(hf_hub_download(repo_id, "config.json", revision="v1.0")) == v1["config.json"]
        snapshot = Path(snapshot_download(repo_id, revision=first))
        assert _read(snapshot / "model.safetensors") == v1["model.safetensors"]
        with pytest.raises(LocalEntryNotFoundError):
            hf_hub_download(repo_id, "never-downloaded.txt")
        assert hub.requests == []
    path = hf_hub_download(repo_id, "model.safetensors", local_files_only=True)
    assert _read(path) == v2["model.safetensors"]


def test_unchanged_files_are_skipped_and_deletions(hub, api, tmp_path):
    repo_id = hub.unique_repo_id("skip")
    api.create_repo(repo_id)
    _write_model_folder(tmp_path / "v1", version=1)
    first = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v1").oid
    hub.requests.clear()
    again = api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "v1").oid
    assert again == first  # the preupload oids told the client nothing changed
    assert not hub.requests_to("/commit/")
    api.delete_file("docs/notes.txt", repo_id=repo_id)
    assert "docs/notes.txt" not in hub.files(repo_id)
    for name in ("a.txt", "b.txt"):
        api.upload_file(path_or_fileobj=b"x", path_in_repo=f"extra/{name}", repo_id=repo_id)
    api.delete_folder("extra", repo_id=repo_id)
    assert set(hub.files(repo_id)) == {".gitattributes", "config.json", "model.safetensors"}


def test_missing_repo_revision_and_file_errors(hub, api, tmp_path):
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_id = hub.unique_repo_id("errors")
    api.create_repo(repo_id)

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(hub.unique_repo_id("missing"), "config.json")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(hub.unique_repo_id("missing"))
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(hub.unique_repo_id("missing"))

    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, ".gitattributes", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(repo_id, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="0" * 40)

    with pytest.raises(RemoteEntryNotFoundError) as exc_info:
        hf_hub_download(repo_id, "missing.bin")
    assert type(exc_info.value) is RemoteEntryNotFoundError
    assert exc_info.value.response.status_code == 404


def test_repo_listing_settings_and_deletion(hub, api):
    from huggingface_hub import HfApi

    repo_id = hub.unique_repo_id("manage")
    api.create_repo(repo_id)
    assert repo_id in {m.id for m in api.list_models(author=hub.user, search="manage")}
    api.update_repo_settings(repo_id, private=True)
    assert api.model_info(repo_id).private is True
    assert not HfApi(token=False).repo_exists(repo_id)
    api.delete_repo(repo_id)
    assert not api.repo_exists(repo_id)
    api.delete_repo(repo_id, missing_ok=True)


def test_dataset_repo_roundtrip(hub, api):
    from huggingface_hub import hf_hub_download, snapshot_download

    repo_id = hub.unique_repo_id("dataset")
    api.create_repo(repo_id, repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n",
        path_in_repo="data/train.csv",
        repo_id=repo_id,
        repo_type="dataset",
    )
    path = hf_hub_download(repo_id, "data/train.csv", repo_type="dataset")
    assert _read(path) == b"a,b\n1,2\n"
    snapshot = Path(snapshot_download(repo_id, repo_type="dataset"))
    assert _read(snapshot / "data" / "train.csv") == b"a,b\n1,2\n"
    assert "datasets--" in str(snapshot)


def test_wrong_or_missing_token_on_upload_is_401(hub, api):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = hub.unique_repo_id("auth")
    api.create_repo(repo_id)
    for token in ("hf_wrong_token", False):
        with pytest.raises(HfHubHTTPError) as exc_info:
            HfApi(token=token).upload_file(
                path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id
            )
        assert exc_info.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as exc_info:
        HfApi(token="hf_wrong_token").create_repo(hub.unique_repo_id("auth"))
    assert exc_info.value.response.status_code == 401
    assert "x.txt" not in hub.files(repo_id)


def test_private_repo_is_invisible_without_the_token(hub, api, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    repo_id = hub.unique_repo_id("private")
    api.create_repo(repo_id, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="secret.txt", repo_id=repo_id)
    assert api.model_info(repo_id).private is True
    assert _read(hf_hub_download(repo_id, "secret.txt", token=hub.token)) == b"secret"

    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info(repo_id)
    # A fresh cache: with the file cached, the client would fall back to it on a HEAD error
    # (and force_download=True turns the RepositoryNotFoundError into a ValueError).
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "secret.txt", token=False, cache_dir=tmp_path / "anon_cache")
    with pytest.raises(HfHubHTTPError) as exc_info:
        HfApi(token="hf_wrong_token").model_info(repo_id)
    assert exc_info.value.response.status_code == 401


def test_card_data_and_large_files_go_to_lfs(tmp_path):
    # A dedicated server with a tiny LFS threshold, used through the plain context managers.
    with (
        HubServer(tmp_path / "hub", lfs_threshold=1024) as server,
        hub_client(server.url, tmp_path / "hf_home", token=server.token),
    ):
        from huggingface_hub import HfApi, hf_hub_download

        api = HfApi()  # implicit token from HF_TOKEN
        repo_id = f"{server.user}/cards"
        api.create_repo(repo_id)
        readme = "---\nlicense: mit\nlibrary_name: i2i\ntags:\n- image-to-image\n- cyclegan\n---\n# Demo\n"
        api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=repo_id)
        api.upload_file(path_or_fileobj=b"a" * 4096, path_in_repo="big.txt", repo_id=repo_id)
        info = api.model_info(repo_id)
        assert info.card_data.license == "mit"
        assert {"image-to-image", "cyclegan", "i2i"} <= set(info.tags)
        assert server.files(repo_id)["big.txt"] is True
        assert server.files(repo_id)["README.md"] is False
        assert _read(hf_hub_download(repo_id, "big.txt")) == b"a" * 4096

    # Leaving hub_client restored the client's configuration and the environment.
    from huggingface_hub import constants

    assert server.url != constants.ENDPOINT
    assert os.environ.get("HF_ENDPOINT") != server.url
    assert os.environ.get("HF_TOKEN") != server.token

    # The state survives a restart on the same directory.
    with HubServer(tmp_path / "hub") as again:
        assert again.repo_exists(repo_id)
        assert again.files(repo_id)["big.txt"] is True


def test_fresh_client_in_subprocess_via_env(hub, api, tmp_path):
    repo_id = hub.unique_repo_id("subprocess")
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="hello.txt", repo_id=repo_id)
    env = {**os.environ, **client_env(hub.url, tmp_path / "sub_home")}
    env.pop("HF_TOKEN", None)
    script = textwrap.dedent(
        f"""
        from huggingface_hub import constants, hf_hub_download
        assert constants.ENDPOINT == {hub.url!r}, constants.ENDPOINT
        print(open(hf_hub_download({repo_id!r}, "hello.txt")).read())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello"
