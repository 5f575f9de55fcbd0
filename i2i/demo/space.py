"""``i2i space``: a Gradio Space on the Hub that serves a model's demo page.

The Space holds three small files and no weights: ``app.py`` runs the same page as ``i2i demo``
for the model repo at a pinned commit (so pushing a new model never changes what a published
Space shows until ``i2i space`` runs again), ``requirements.txt`` pins the i2i version that wrote
it, and ``README.md`` carries the front matter the Hub reads (``sdk: gradio``, ``app_file``,
``models``). Writing them needs no Gradio; the Space installs it.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import __version__
from i2i.core.errors import I2IError
from i2i.infer.translator import check_scale_and_detail
from i2i.models.folder import CONFIG, read_config
from i2i.models.hub import REPO_ID, HubError, hub_errors, push, split_revision

__all__ = ["PublishedSpace", "publish_space", "space_files"]

APP_FILE = "app.py"
COMMIT = re.compile(r"[0-9a-f]{40}")
DEFAULT_REQUIREMENT = f"i2i[demo]=={__version__}"


@dataclass(frozen=True)
class PublishedSpace:
    space_id: str
    model_repo: str
    revision: str  # the model commit the Space serves
    commit: Any  # huggingface_hub's CommitInfo of the Space upload


def _gradio_version() -> str | None:
    try:
        return importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        return None


def space_files(
    model_repo: str,
    revision: str,
    *,
    requirement: str = DEFAULT_REQUIREMENT,
    scale: int | str | None = None,
    detail: str = "input",
) -> dict[str, str]:
    """The Space's files (name -> text) serving ``model_repo`` at commit ``revision``, with
    ``i2i demo``'s ``scale`` and ``detail``."""
    title = model_repo.split("/")[-1]
    sdk_version = _gradio_version()
    front_matter = [
        "---",
        f"title: {json.dumps(title)}",  # quoted: a name like `yes` or `1e5` stays a string
        "emoji: 🎨",
        "colorFrom: blue",
        "colorTo: green",
        "sdk: gradio",
        *([f"sdk_version: {sdk_version}"] if sdk_version else []),
        f"app_file: {APP_FILE}",
        "models:",
        f"- {json.dumps(model_repo)}",
        "tags:",
        "- i2i",
        "- image-to-image",
        "pinned: false",
        "---",
    ]
    readme = "\n".join(front_matter) + (
        f"\n\n# {title}\n\n"
        f"Try the image-to-image model [{model_repo}](/{model_repo}) (commit `{revision[:12]}`) "
        "in the browser: upload images, choose the direction, compare and download.\n\n"
        f"Written by `i2i space` (i2i {__version__}); run it again to serve a newer revision.\n"
    )
    # Code never takes an outside string but as a Python literal (repr): a repo id or a
    # revision from the Hub cannot end the string and run as code in the Space.
    how = "" if scale is None else f", scale={scale!r}"
    how += "" if detail == "input" else f", detail={detail!r}"
    app = (
        '"""Demo page of an i2i model at a pinned commit, written by `i2i space`."""\n\n'
        "from i2i.demo.page import serve\n\n"
        f"serve({model_repo!r}, revision={revision!r}{how})\n"
    )
    requirements = f"# the i2i that wrote this Space, with Gradio\n{requirement}\n"
    return {APP_FILE: app, "requirements.txt": requirements, "README.md": readme}


def _pin(model_repo: str, revision: str | None, token: str | None) -> str:
    """The commit ``revision`` (default: main) of an i2i model repo on the Hub."""
    from huggingface_hub import HfApi

    with hub_errors(model_repo, revision, token=token):
        info = HfApi(token=token).model_info(model_repo, revision=revision)
    if CONFIG not in {sibling.rfilename for sibling in info.siblings or []}:
        raise HubError(f"{model_repo!r} has no {CONFIG}: it is not an i2i model")
    return _commit(info.sha, model_repo)


def _commit(sha: Any, model_repo: str) -> str:
    """A commit id as the Hub answered it, which goes into the Space's files: 40 hex digits."""
    if not isinstance(sha, str) or not COMMIT.fullmatch(sha):
        raise HubError(
            f"the Hub answered {str(sha)[:60]!r} as the commit of {model_repo!r}, which is not "
            f"a commit id; check HF_ENDPOINT (is it the Hub?)"
        )
    return sha


def check_repo_id(repo_id: str, what: str) -> None:
    if not REPO_ID.match(repo_id):
        raise I2IError(f"{repo_id!r} is not a valid {what}; expected USER/NAME")


def publish_space(
    model: str | Path,
    space_id: str,
    *,
    revision: str | None = None,
    model_repo: str | None = None,
    private: bool = False,
    token: str | None = None,
    requirement: str = DEFAULT_REQUIREMENT,
    message: str | None = None,
    scale: int | str | None = None,
    detail: str = "input",
) -> PublishedSpace:
    """Create or update the Gradio Space ``space_id`` serving MODEL at a pinned commit.

    MODEL is a Hub id (``user/repo[@revision]``), or a local model or run folder, which is first
    pushed to ``model_repo`` (the Space needs the weights on the Hub). ``scale`` and ``detail``
    are ``i2i demo``'s, checked against the model's config before anything is pushed or the
    Space is written, so that a Space never fails as it starts.
    """
    from huggingface_hub import HfApi, hf_hub_download

    check_repo_id(space_id, "Space id")

    def check(config: dict[str, Any]) -> None:
        check_scale_and_detail(scale, detail, config)

    if scale != "model":  # pixels or none need no config: checked before anything is pushed
        check({})
    if "\n" in requirement or "\r" in requirement:
        raise I2IError(f"--requirement must be one line, got {requirement!r}")
    if Path(model).exists():
        if not model_repo:
            raise I2IError(
                f"{model} is a local folder; pass --model-repo USER/REPO to push it to the Hub "
                "first (the Space loads the model from there)"
            )
        check_repo_id(model_repo, "model repo id")
        pushed = push(model, model_repo, private=private, token=token, check=check)
        pinned = _commit(pushed.oid, model_repo)
    else:
        model_repo, at_revision = split_revision(str(model))
        check_repo_id(model_repo, "model repo id")
        pinned = _pin(model_repo, revision or at_revision, token)
        if scale == "model":
            with hub_errors(model_repo, pinned, token=token):
                config_file = hf_hub_download(model_repo, CONFIG, revision=pinned, token=token)
            check(read_config(Path(config_file).parent))
    api = HfApi(token=token)
    files = space_files(model_repo, pinned, requirement=requirement, scale=scale, detail=detail)
    with tempfile.TemporaryDirectory(prefix="i2i-space-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        with hub_errors(space_id, None, kind="Space", token=token, write=True):
            api.create_repo(
                space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
            )
            commit = api.upload_folder(
                folder_path=tmp,
                repo_id=space_id,
                repo_type="space",
                commit_message=message or f"Serve {model_repo}@{pinned[:12]} (i2i space)",
            )
    return PublishedSpace(space_id, model_repo, pinned, commit)
