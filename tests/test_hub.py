"""push / pull / load against the fake Hub (tests/hubserver.py), through the real huggingface_hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

import i2i
from i2i.cli import cli
from i2i.core.registry import generators
from i2i.models.export import export_run
from i2i.models.folder import make_config, net_spec, save_model
from i2i.models.hub import HubError, pull, push
from tests.conftest import TINY
from tests.training import train

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _model(folder: Path, seed: int, ngf: int = 8) -> Path:
    torch.manual_seed(seed)
    spec = net_spec(generators, "resnet6", {"ngf": ngf})
    nets = {
        "AtoB": i2i.create_generator("resnet6", ngf=ngf),
        "BtoA": i2i.create_generator("resnet6", ngf=ngf),
    }
    config = make_config(
        "cyclegan", {"AtoB": spec, "BtoA": spec}, size=32, domains={"A": "day", "B": "night"}
    )
    return save_model(folder, config, nets)


IMAGE = Image.effect_noise((40, 32), 50).convert("RGB")


def _pixels(model, revision=None):
    return list(i2i.load(model, revision=revision, device="cpu")(IMAGE, direction="AtoB").tobytes())


def test_push_then_pull_gives_identical_outputs(hub, tmp_path):
    repo = hub.unique_repo_id("day2night")
    local = _model(tmp_path / "m", seed=0)
    push(local, repo, token=hub.token, message="first")
    folder = pull(repo)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert _pixels(folder) == _pixels(local)
    assert _pixels(repo) == _pixels(local)  # i2i.load on a Hub id
    card = (folder / "README.md").read_text()
    assert f'i2i.load("{repo}")' in card and "library_name: i2i" in card


def test_pinned_commit_and_tag_return_the_first_version(hub, tmp_path):
    from huggingface_hub import HfApi

    repo = hub.unique_repo_id("versions")
    first = push(_model(tmp_path / "v1", seed=1), repo, token=hub.token)
    HfApi(token=hub.token).create_tag(repo, tag="v1", revision=first.oid)
    push(_model(tmp_path / "v2", seed=2), repo, token=hub.token)
    v1, v2 = _pixels(tmp_path / "v1"), _pixels(tmp_path / "v2")
    assert v1 != v2
    assert _pixels(pull(repo)) == v2
    assert _pixels(pull(repo, revision=first.oid)) == v1
    assert _pixels(pull(repo, revision="v1")) == v1
    assert _pixels(f"{repo}@v1") == v1


def test_pull_works_offline_from_the_cache(hub, tmp_path):
    """With HF_HUB_OFFLINE=1, as a user sets it: a pulled model comes from the cache without a
    request, and one never pulled is a one-line error."""
    repo, never_pulled = hub.unique_repo_id("offline"), hub.unique_repo_id("elsewhere")
    push(_model(tmp_path / "m", seed=3), repo, token=hub.token)
    push(_model(tmp_path / "n", seed=4), never_pulled, token=hub.token)
    online = pull(repo)
    script = """
import sys
import i2i
from i2i.models.hub import HubError, pull

print(pull(sys.argv[1]))
print(list(i2i.load(sys.argv[1], device="cpu").directions))
try:
    pull(sys.argv[2])
except HubError as error:
    print(error)
"""
    asked = len(hub.requests)
    result = subprocess.run(
        [sys.executable, "-c", script, repo, never_pulled],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    path, directions, error = result.stdout.strip().splitlines()
    assert Path(path) == online and directions == "['AtoB', 'BtoA']"
    assert "is not in the local cache and the Hub cannot be reached" in error
    assert error.endswith("unset HF_HUB_OFFLINE to download it")
    assert len(hub.requests) == asked  # the Hub was never asked


def test_the_clients_retries_are_told_in_one_line(monkeypatch, caplog):
    """Ten warnings over half a minute look like a hang; one line says what is happening. The
    client's own retry loop runs against a closed port, so its real wording is what is met."""
    import logging

    from huggingface_hub.utils import _http, http_backoff

    from i2i.models.hub import hub_errors

    seen: list[str] = []
    client = logging.getLogger("huggingface_hub.utils._http")
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    client.addHandler(handler)
    monkeypatch.setattr(_http.time, "sleep", lambda seconds: None)
    closed = "http://127.0.0.1:9/user/repo/resolve/main/config.json"
    try:
        with (
            caplog.at_level(logging.WARNING, logger="i2i"),
            pytest.raises(HubError),
            hub_errors("user/repo", None),
        ):
            http_backoff("HEAD", closed, max_retries=3)
        assert client.filters == []  # taken off when the call failed
        told = [r.getMessage() for r in caplog.records if r.name == "i2i"]
        assert seen == [] and len(told) == 1, (seen, told)
        assert "does not answer" in told[0] and "trying again for a while" in told[0]
        # An HTTP error the client retries says itself how long it waits: left alone.
        with hub_errors("user/repo", None):
            client.warning("HTTP Error 503 thrown while requesting HEAD x")
            client.warning("Retrying in 1s [Retry 1/5].")
        client.warning("Retrying in 1s [Retry 1/5].")  # outside i2i's calls: left alone
    finally:
        client.removeHandler(handler)
    assert seen == ["HTTP Error 503 thrown while requesting HEAD x"] + 2 * [
        "Retrying in 1s [Retry 1/5]."
    ]


def test_push_a_training_run_to_a_branch(hub, toy_data, tmp_path):
    run = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(run), max_steps=2, **TINY)
    repo = hub.unique_repo_id("fromrun")
    push(run, repo, token=hub.token, revision="experiment", private=True)
    folder = pull(repo, revision="experiment", token=hub.token)
    assert (folder / "samples.png").is_file()
    assert json.loads((folder / "config.json").read_text())["training"]["steps"] == 2
    assert f"i2i pull {repo}@experiment\n" in (folder / "README.md").read_text()
    exported = export_run(run, tmp_path / "exported")
    assert _pixels(folder) == _pixels(exported)


def _one_line(error: Exception) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_missing_repo(hub):
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises(HubError) as info:
        pull("i2i-tester/no-such-model")
    assert "not found" in _one_line(info.value)
    assert isinstance(info.value.__cause__, RepositoryNotFoundError)


def test_missing_revision(hub, tmp_path):
    from huggingface_hub.errors import RevisionNotFoundError

    repo = hub.unique_repo_id("norev")
    push(_model(tmp_path / "m", seed=4), repo, token=hub.token)
    with pytest.raises(HubError) as info:
        pull(repo, revision="does-not-exist")
    assert "no revision 'does-not-exist'" in _one_line(info.value)
    assert isinstance(info.value.__cause__, RevisionNotFoundError)


def test_repo_that_is_not_an_i2i_model(hub, tmp_path):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RemoteEntryNotFoundError

    repo = hub.unique_repo_id("bert")
    api = HfApi(token=hub.token)
    api.create_repo(repo)
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "pytorch_model.bin").write_bytes(b"\x00" * 10)
    api.upload_folder(folder_path=str(tmp_path / "up"), repo_id=repo)
    with pytest.raises(HubError) as info:
        pull(repo)
    assert "not an i2i model" in _one_line(info.value)
    assert type(info.value.__cause__) is RemoteEntryNotFoundError  # not its parent

    (tmp_path / "up" / "config.json").write_text('{"model_type": "bert"}')
    api.upload_folder(folder_path=str(tmp_path / "up"), repo_id=repo)
    with pytest.raises(i2i.I2IError, match="not an i2i model"):
        pull(repo)


def test_missing_file(hub, tmp_path):
    from huggingface_hub import HfApi

    repo = hub.unique_repo_id("noweights")
    folder = _model(tmp_path / "m", seed=5)
    (folder / "model.safetensors").unlink()
    api = HfApi(token=hub.token)
    api.create_repo(repo)
    api.upload_folder(folder_path=str(folder), repo_id=repo)
    with pytest.raises(HubError, match=r"no model\.safetensors"):
        pull(repo)


def test_push_sets_the_license_and_datasets_of_the_card(hub, tmp_path):
    repo = hub.unique_repo_id("licensed")
    model = _model(tmp_path / "m", seed=4)
    push(model, repo, token=hub.token, license="cc-by-nc-4.0", datasets=["huggan/monet2photo"])
    folder = pull(repo, token=hub.token)
    config = json.loads((folder / "config.json").read_text())
    assert (config["license"], config["datasets"]) == ("cc-by-nc-4.0", ["huggan/monet2photo"])
    front = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    assert front["license"] == "cc-by-nc-4.0" and front["datasets"] == ["huggan/monet2photo"]
    assert json.loads((model / "config.json").read_text())["license"] is None  # not changed
    with pytest.raises(HubError, match="is not a Hub license id"):
        push(model, repo, token=hub.token, license="MIT License; rm")
    with pytest.raises(HubError, match="is not a Hub dataset id"):
        push(model, repo, token=hub.token, datasets=["a b"])
    with pytest.raises(HubError, match="is not a Hub license id") as info:
        push(model, repo, token=hub.token, license="x" * 100_000)
    assert len(str(info.value)) < 200  # one readable line, not the value


def test_a_push_to_repo_at_revision_says_to_use_revision(hub, tmp_path):
    with pytest.raises(HubError, match=r"push to 'user/repo' with --revision v2 \(Python"):
        push(_model(tmp_path / "m", seed=5), "user/repo@v2", token=hub.token)


def test_discriminators_asked_of_a_model_folder_without_them(hub, tmp_path):
    with pytest.raises(i2i.I2IError, match="model folder without discriminators") as info:
        push(_model(tmp_path / "m", seed=5), hub.unique_repo_id("d"), with_discriminators=True)
    assert "\n" not in str(info.value)


def test_wrong_token(hub, tmp_path):
    with pytest.raises(HubError) as info:
        push(_model(tmp_path / "m", seed=6), hub.unique_repo_id("x"), token="hf_wrong")
    assert "rejected the token" in _one_line(info.value)
    assert "with a token that has write access to it" in str(info.value)
    with pytest.raises(HubError, match=r"needs a token .* and none is set; set HF_TOKEN"):
        push(_model(tmp_path / "n", seed=6), hub.unique_repo_id("x"))  # no token at all
    repo = hub.unique_repo_id("private")
    push(_model(tmp_path / "p", seed=6), repo, token=hub.token, private=True)
    with pytest.raises(HubError, match="token that has read access to it"):
        pull(repo, token="hf_wrong")


def test_cli_push_pull_apply(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    repo = hub.unique_repo_id("monet2photo")
    local = _model(tmp_path / "m", seed=7)
    runner = CliRunner()
    result = runner.invoke(cli, ["push", str(local), repo, "--message", "hello"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["pull", repo])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip().splitlines()[-1]).is_dir()  # the path alone on stdout
    (tmp_path / "photos").mkdir()
    IMAGE.save(tmp_path / "photos" / "p.png")
    result = runner.invoke(
        cli, ["apply", repo, str(tmp_path / "photos"), "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "p.png").size == IMAGE.size
    result = runner.invoke(cli, ["pull", "i2i-tester/nothing-here"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_translator_hub_mixin_round_trip(hub, tmp_path):
    from i2i.infer.translator import Translator

    local = _model(tmp_path / "m", seed=8)
    translator = Translator.from_pretrained(local, device="cpu")
    repo = hub.unique_repo_id("mixin")
    translator.push_to_hub(repo, token=hub.token)
    again = Translator.from_pretrained(repo, device="cpu")
    assert again(IMAGE, direction="BtoA").tobytes() == translator(IMAGE, direction="BtoA").tobytes()
    saved = again.save_pretrained(tmp_path / "copy")
    assert _pixels(saved) == _pixels(local)


def test_push_private_makes_an_existing_public_repo_private(hub, tmp_path):
    from huggingface_hub import HfApi

    repo = hub.unique_repo_id("public")
    model = _model(tmp_path / "m", seed=9)
    push(model, repo, token=hub.token)
    push(model, repo, token=hub.token, private=True)
    assert HfApi(token=hub.token).model_info(repo).private is True


def test_a_private_model_is_not_found_without_the_token(hub, tmp_path):
    repo = hub.unique_repo_id("secret")
    push(_model(tmp_path / "m", seed=10), repo, token=hub.token, private=True)
    with pytest.raises(HubError, match="a private repo needs a token"):
        pull(repo)
    assert pull(repo, token=hub.token).is_dir()


@pytest.mark.parametrize("kind", ["link-out", "fifo", "broken"])
def test_push_sends_only_the_models_own_files(hub, tmp_path, kind):
    """A samples.png that links to a file elsewhere (a key, a password file) is never uploaded;
    a FIFO would block the upload forever; weights that do not fit the config are refused."""
    model = _model(tmp_path / "m", seed=3)
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    if kind == "link-out":
        (model / "samples.png").symlink_to(secret)
        expect = "points outside"
    elif kind == "fifo":
        os.mkfifo(model / "samples.png")
        expect = "is not a regular file"
    else:
        (model / "model.safetensors").write_bytes(b"\x00" * 16)
        expect = "model.safetensors"
    asked = len(hub.requests)
    with pytest.raises(i2i.I2IError) as info:
        push(model, hub.unique_repo_id("own"), token=hub.token)
    assert expect in _one_line(info.value)
    assert len(hub.requests) == asked  # refused before the Hub was asked


@pytest.mark.parametrize("swap", ["fifo", "other-weights", "unknown-net"])
def test_push_sends_what_it_checked_when_files_change_meanwhile(hub, tmp_path, monkeypatch, swap):
    """A file swapped for a FIFO after it was checked is refused on the open descriptor (a
    blocking open would hang the push), and weights replaced by another model's between the
    check and the copy are caught on the copy, which is what would be sent; so is a config that
    now names a network nobody registered."""
    import i2i.models.hub as hub_module
    import i2i.models.safefiles as safefiles

    model = _model(tmp_path / "m", seed=4)
    other = _model(tmp_path / "other", seed=5, ngf=16)
    checked, copy = safefiles.regular_file, hub_module.copy_regular
    copying = []

    def then_swapped(path, folder, what="file"):  # the check passes, then the file changes
        real = checked(path, folder, what)
        name = Path(path).name
        if copying and swap == "unknown-net" and name == "config.json":
            config = json.loads(Path(path).read_text())
            config["generators"]["AtoB"]["name"] = "no_such_generator"
            Path(path).write_text(json.dumps(config))
        elif copying and swap != "unknown-net" and name == "model.safetensors":
            os.remove(path)
            if swap == "fifo":
                os.mkfifo(path)
            else:
                Path(path).write_bytes((other / "model.safetensors").read_bytes())
        return real

    def copy_while_swapping(*args, **kwargs):
        copying.append(True)
        return copy(*args, **kwargs)

    monkeypatch.setattr(safefiles, "regular_file", then_swapped)
    monkeypatch.setattr(hub_module, "copy_regular", copy_while_swapping)
    asked = len(hub.requests)
    with pytest.raises(i2i.I2IError) as info:
        push(model, hub.unique_repo_id("swapped"), token=hub.token)
    expect = "is not a regular file" if swap == "fifo" else "changed while it was being pushed"
    assert expect in _one_line(info.value)
    assert len(hub.requests) == asked
